locals {
  # Graviton families (t4g, m7g, c6gn, ...) run arm64; everything else x86_64.
  architecture = can(regex("^[a-z]+[0-9]+g[a-z]*\\.", var.instance_type)) ? "arm64" : "x86_64"
  ami_id       = var.ami_id != null ? var.ami_id : one(data.aws_ami.al2023[*].id)
  vpc_id       = var.subnet_id != null ? one(data.aws_subnet.selected[*].vpc_id) : one(data.aws_vpc.default[*].id)

  ipv4_cidrs = [for cidr in var.allowed_cidrs : cidr if !strcontains(cidr, ":")]
  ipv6_cidrs = [for cidr in var.allowed_cidrs : cidr if strcontains(cidr, ":")]
  # Nothing by default: the operator comes in through SSM Session Manager.
  ingress_ports = merge(
    var.public_https ? { https_app = 443, https_airflow = 8443 } : {},
    var.public_https && var.domain != null ? { acme_http = 80 } : {},
    var.key_name != null ? { ssh = 22 } : {},
  )

  # The instance metadata service's hop limit (IMDSv2 token responses), on every instance. 2, not 1: the
  # appliance (and a worker) runs in a Docker container on the bridge network, one hop past the instance,
  # and its S3 sync gets the instance role's credentials from the metadata service (boto3's default chain;
  # no key is made anywhere). With 1 the container would get no token, hence no credentials, and every
  # sync would fail. The other container, the TLS proxy (public_https), can reach them too: docs/security.md.
  imds_hop_limit = 2

  # Where the appliance keeps its data on the instance (mounted at /data in the container).
  host_data_dir = "/var/lib/dataperf-appliance/data"
  host          = var.associate_public_ip ? aws_instance.appliance.public_ip : aws_instance.appliance.private_ip
  public_site   = var.domain != null ? var.domain : local.host

  # The variables of user_data.sh.tftpl, but `role` (appliance or worker: terraform/workers.tf).
  user_data = {
    region                     = var.region
    bucket                     = aws_s3_bucket.data.id
    s3_prefix                  = var.s3_prefix
    image                      = var.image == null ? "" : var.image
    source_repo                = var.source_repo == null ? "" : var.source_repo
    source_ref                 = var.source_ref
    data_dir                   = local.host_data_dir
    swap_size                  = var.swap_size
    public_https               = var.public_https
    domain                     = var.domain == null ? "" : var.domain
    proxy_image                = var.proxy_image
    ui_password_parameter      = aws_ssm_parameter.password["ui_password"].name
    airflow_password_parameter = aws_ssm_parameter.password["airflow_admin_password"].name
    workers                    = var.workers
    efs_id                     = one(aws_efs_file_system.data[*].id) == null ? "" : one(aws_efs_file_system.data[*].id)
    worker_env_parameter       = one(aws_ssm_parameter.worker_env[*].name) == null ? "" : one(aws_ssm_parameter.worker_env[*].name)
  }
}

# ---------------------------------------------------------------------------
# Lookups
# ---------------------------------------------------------------------------

data "aws_ami" "al2023" {
  count = var.ami_id == null ? 1 : 0

  owners      = ["amazon"]
  most_recent = true

  filter {
    name   = "name"
    values = ["al2023-ami-2023.*-${local.architecture}"]
  }

  filter {
    name   = "architecture"
    values = [local.architecture]
  }

  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }

  filter {
    name   = "root-device-type"
    values = ["ebs"]
  }
}

data "aws_vpc" "default" {
  count   = var.subnet_id == null ? 1 : 0
  default = true
}

data "aws_subnet" "selected" {
  count = var.subnet_id != null ? 1 : 0
  id    = var.subnet_id
}

# ---------------------------------------------------------------------------
# S3 bucket: the appliance's data and results
# ---------------------------------------------------------------------------

resource "aws_s3_bucket" "data" {
  #checkov:skip=CKV_AWS_18:Server access logging needs a second bucket for the logs; the appliance's data is private, reached only by the instance role and the account's admins (CloudTrail records the API calls).
  #checkov:skip=CKV_AWS_144:Cross-region replication doubles the storage bill; versioning protects against mistakes, and the runs can be recomputed.
  #checkov:skip=CKV2_AWS_62:No consumer of S3 event notifications exists: the appliance itself is the only reader.
  bucket        = var.bucket_name
  bucket_prefix = var.bucket_name == null ? "${var.name}-data-" : null
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_ownership_controls" "data" {
  bucket = aws_s3_bucket.data.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "data" {
  bucket = aws_s3_bucket.data.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "data" {
  bucket = aws_s3_bucket.data.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "data" {
  bucket = aws_s3_bucket.data.id

  rule {
    # The AWS managed key aws/s3: no key to manage, and any principal of the
    # account allowed to use the bucket may use it. The bucket key keeps the
    # KMS requests (and their cost) low.
    apply_server_side_encryption_by_default {
      sse_algorithm = "aws:kms"
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "data" {
  bucket = aws_s3_bucket.data.id

  rule {
    id     = "expire-old-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  # The lifecycle rule is about versions: apply it once versioning is on.
  depends_on = [aws_s3_bucket_versioning.data]
}

data "aws_iam_policy_document" "bucket" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.data.arn,
      "${aws_s3_bucket.data.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "data" {
  bucket = aws_s3_bucket.data.id
  policy = data.aws_iam_policy_document.bucket.json

  # A bucket policy is refused while the public access block is being set.
  depends_on = [aws_s3_bucket_public_access_block.data]
}

# ---------------------------------------------------------------------------
# Passwords: generated on the instance at first boot, kept in SSM
# ---------------------------------------------------------------------------

# Terraform creates the parameters with a placeholder, so that they have an
# owner and `terraform destroy` removes them; the instance overwrites the value
# at first boot and Terraform never reads or stores the real password.
resource "aws_ssm_parameter" "password" {
  #checkov:skip=CKV_AWS_337:SecureString under the AWS managed key aws/ssm; a customer managed key would cost a monthly fee and a key policy for no gain here.
  for_each = {
    ui_password            = "Password of the Streamlit UI of the DataPerf appliance."
    airflow_admin_password = "Password of the Airflow admin user of the DataPerf appliance."
  }

  name        = "/${var.name}/${each.key}"
  description = each.value
  type        = "SecureString"
  value       = "not yet generated: the instance writes it at first boot"

  lifecycle {
    ignore_changes = [value]
  }
}

# ---------------------------------------------------------------------------
# IAM: what the instance (the appliance) may do, and nothing else
# ---------------------------------------------------------------------------
#
# Two roles: this one for the main instance, and the workers' own (terraform/workers.tf), which may not
# delete objects nor read or write the password parameters. Each role has its inline policy and the SSM
# agent's (ssm_agent below); no AWS managed policy is attached.

data "aws_iam_policy_document" "assume_ec2" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

# What every instance of the deployment may do in the bucket, the appliance's and the workers': list it, and
# read and write under the prefix. The sync only adds or replaces objects (versioning keeps what was
# replaced): runs are append-only.
data "aws_iam_policy_document" "bucket_access" {
  statement {
    sid       = "ListTheBucket"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.data.arn]

    dynamic "condition" {
      for_each = var.s3_prefix == "" ? [] : [var.s3_prefix]
      content {
        test     = "StringLike"
        variable = "s3:prefix"
        values   = ["${condition.value}*"]
      }
    }
  }

  statement {
    sid = "ReadWriteUnderThePrefix"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:AbortMultipartUpload",
    ]
    resources = ["${aws_s3_bucket.data.arn}/${var.s3_prefix}*"]
  }
}

data "aws_iam_policy_document" "appliance" {
  source_policy_documents = [data.aws_iam_policy_document.bucket_access.json]

  # The one deletion: a dataset, by a user's choice on the Datasets page (Storage.delete_dataset, a
  # DeleteObjects request, which S3 authorizes key by key as s3:DeleteObject). Nothing under runs/ or
  # elsewhere; on the versioned bucket a deletion leaves a delete marker, and the deleted versions stay
  # for noncurrent_version_expiration_days.
  statement {
    sid       = "DeleteDatasets"
    actions   = ["s3:DeleteObject"]
    resources = ["${aws_s3_bucket.data.arn}/${var.s3_prefix}datasets/*"]
  }

  statement {
    sid     = "KeepItsPasswords"
    actions = ["ssm:GetParameter", "ssm:PutParameter"]
    # With workers, also the worker settings the main instance writes at first boot (the workers only read them).
    resources = concat([for parameter in aws_ssm_parameter.password : parameter.arn], aws_ssm_parameter.worker_env[*].arn)
  }
}

# The SSM agent's own rights, for Session Manager (the operator's shell and port forwards) and Run
# Command, in place of AWS's AmazonSSMManagedInstanceCore: that policy also allows ssm:GetParameter(s) on
# every parameter of the account and region (and State Manager, Inventory, Patch Manager and Distributor,
# which the appliance does not use), so the narrow statement above would limit nothing. The actions are
# the ones AWS documents for a custom Session Manager instance profile (ssm:UpdateInstanceInformation and
# ssmmessages, as in AWS's minimal policy AWSCloud9SSMInstanceProfile), plus ec2messages for Run Command.
# Resource "*": ssmmessages and ec2messages have no resource type, and each of these actions acts only on
# the calling instance's own registration, channels and messages; none reads data or a parameter.
data "aws_iam_policy_document" "ssm_agent" {
  #checkov:skip=CKV_AWS_356:ssmmessages has no resource type, and ssm:UpdateInstanceInformation is granted on * as AWS documents for a custom Session Manager instance profile: it registers the calling instance only. A narrower ARN, which no test here can check against AWS, would risk the operator's only way in.
  #checkov:skip=CKV_AWS_111:The agent's writes (its own registration, Session Manager's channels) act on the calling instance only; they are the ones AWS documents for Session Manager.
  statement {
    sid = "SessionManager"
    actions = [
      "ssm:UpdateInstanceInformation",
      "ssmmessages:CreateControlChannel",
      "ssmmessages:CreateDataChannel",
      "ssmmessages:OpenControlChannel",
      "ssmmessages:OpenDataChannel",
    ]
    resources = ["*"]
  }

  statement {
    sid = "RunCommand"
    actions = [
      "ec2messages:AcknowledgeMessage",
      "ec2messages:DeleteMessage",
      "ec2messages:FailMessage",
      "ec2messages:GetEndpoint",
      "ec2messages:GetMessages",
      "ec2messages:SendReply",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role" "appliance" {
  name_prefix        = "${var.name}-"
  description        = "The DataPerf appliance instance: its bucket, its datasets' deletion and its password parameters."
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json
}

resource "aws_iam_role_policy" "appliance" {
  name   = "appliance"
  role   = aws_iam_role.appliance.id
  policy = data.aws_iam_policy_document.appliance.json
}

# Session Manager: the operator's shell and port forwarding, with no inbound port and no key.
resource "aws_iam_role_policy" "ssm_agent" {
  name   = "ssm-agent"
  role   = aws_iam_role.appliance.id
  policy = data.aws_iam_policy_document.ssm_agent.json
}

resource "aws_iam_instance_profile" "appliance" {
  name_prefix = "${var.name}-"
  role        = aws_iam_role.appliance.name
}

# ---------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------

resource "aws_security_group" "appliance" {
  name_prefix = "${var.name}-"
  description = "DataPerf appliance: no inbound by default; HTTPS or SSH from allowed_cidrs only when asked"
  vpc_id      = local.vpc_id

  dynamic "ingress" {
    for_each = local.ingress_ports
    content {
      description      = "${ingress.key} from allowed_cidrs"
      protocol         = "tcp"
      from_port        = ingress.value
      to_port          = ingress.value
      cidr_blocks      = local.ipv4_cidrs
      ipv6_cidr_blocks = local.ipv6_cidrs
    }
  }

  # Out: HTTPS (packages, the image, git, S3, SSM) and HTTP (the Debian
  # mirrors of the image build). DNS, NTP and the instance metadata service
  # are reached without a rule.
  egress {
    description      = "HTTPS out"
    protocol         = "tcp"
    from_port        = 443
    to_port          = 443
    cidr_blocks      = ["0.0.0.0/0"]
    ipv6_cidr_blocks = ["::/0"]
  }

  egress {
    description      = "HTTP out (package mirrors)"
    protocol         = "tcp"
    from_port        = 80
    to_port          = 80
    cidr_blocks      = ["0.0.0.0/0"]
    ipv6_cidr_blocks = ["::/0"]
  }

  tags = {
    Name = var.name
  }

  lifecycle {
    create_before_destroy = true
  }
}

# ---------------------------------------------------------------------------
# The instance
# ---------------------------------------------------------------------------

resource "aws_instance" "appliance" {
  #checkov:skip=CKV_AWS_88:A public address lets the SSM agent and the image pulls out without a NAT gateway; the security group admits nothing by default, and allowed_cidrs only with public_https or key_name (set associate_public_ip = false to go without).
  #checkov:skip=CKV_AWS_126:Detailed (1-minute) monitoring costs extra; the 5-minute basic monitoring is enough for one appliance.
  ami                         = local.ami_id
  instance_type               = var.instance_type
  subnet_id                   = var.subnet_id
  vpc_security_group_ids      = concat([aws_security_group.appliance.id], [for key, group in aws_security_group.cluster : group.id if key == "main"])
  iam_instance_profile        = aws_iam_instance_profile.appliance.name
  key_name                    = var.key_name
  associate_public_ip_address = var.associate_public_ip
  ebs_optimized               = true

  user_data = templatefile("${path.module}/user_data.sh.tftpl", merge(local.user_data, { role = "appliance" }))
  # A changed user data only runs on a new instance: replace it (the data is in S3).
  user_data_replace_on_change = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = local.imds_hop_limit
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.root_volume_size
    encrypted             = true
    delete_on_termination = true
  }

  dynamic "credit_specification" {
    for_each = startswith(var.instance_type, "t") ? [var.cpu_credits] : []
    content {
      cpu_credits = credit_specification.value
    }
  }

  tags = {
    Name = var.name
  }

  # The role's policy must be in place before the first boot uses it.
  depends_on = [aws_iam_role_policy.appliance, aws_iam_role_policy.ssm_agent]

  lifecycle {
    precondition {
      condition     = local.ami_id != null
      error_message = "No Amazon Linux 2023 AMI was found for ${local.architecture} in ${var.region}; set ami_id."
    }
  }
}

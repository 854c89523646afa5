# One or more alike EC2 instances: the appliance's main instance and its Celery workers (../../compute.tf).
# What they share is fixed here: IMDSv2 only, an encrypted gp3 root volume, EBS optimization, and
# replacement when the user data changes. What differs between them comes in as variables.

resource "aws_instance" "this" {
  #checkov:skip=CKV_AWS_88:A public address lets the SSM agent and the image pulls out without a NAT gateway; the security groups admit nothing from the internet by default (the appliance's allowed_cidrs only with public_https or key_name; the workers' group only the main instance). associate_public_ip_address = false goes without.
  #checkov:skip=CKV_AWS_126:Detailed (1-minute) monitoring costs extra; the 5-minute basic monitoring is enough for the appliance and its workers.
  count = length(var.names)

  ami                         = var.ami_id
  instance_type               = var.instance_type
  subnet_id                   = var.subnet_id
  vpc_security_group_ids      = var.vpc_security_group_ids
  iam_instance_profile        = var.iam_instance_profile
  key_name                    = var.key_name
  associate_public_ip_address = var.associate_public_ip_address
  ebs_optimized               = true

  user_data = var.user_data
  # A changed user data only runs on a new instance: replace it (the data is in S3).
  user_data_replace_on_change = true

  # The metadata service's hop limit (IMDSv2 token responses): 2 by default, not 1. The appliance (and a
  # worker) runs in a Docker container on the bridge network, one hop past the instance, and its S3 sync
  # gets the instance role's credentials from the metadata service (boto3's default chain; no key is made
  # anywhere). With 1 the container would get no token, hence no credentials, and every sync would fail.
  # The other container, the TLS proxy (public_https), can reach them too: docs/security.md.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = var.metadata_hop_limit
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
    Name = var.names[count.index]
  }

  lifecycle {
    precondition {
      condition     = var.iam_instance_profile != null && length(var.vpc_security_group_ids) > 0
      error_message = "An instance needs iam_instance_profile and at least one of vpc_security_group_ids (EC2 would otherwise put it in the VPC's default group, without a role)."
    }
  }
}

# ---------------------------------------------------------------------------
# IAM: what the instances may do, and nothing else
# ---------------------------------------------------------------------------
#
# Two roles: the main instance's (the appliance), and the workers' own (workers > 0, below), which may not
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

# The workers' own role: the bucket under the prefix (their tasks download datasets and upload runs) and
# their settings, read-only. Unlike the main instance's role: no s3:DeleteObject, and no access to the
# password parameters (a worker cannot read them, nor overwrite them to lock the operator out or plant
# one). The SSM agent's rights are the main instance's (ssm_agent above).
data "aws_iam_policy_document" "worker" {
  count                   = local.cluster ? 1 : 0
  source_policy_documents = [data.aws_iam_policy_document.bucket_access.json]

  statement {
    sid       = "ReadItsSettings"
    actions   = ["ssm:GetParameter"]
    resources = [aws_ssm_parameter.worker_env[0].arn]
  }
}

resource "aws_iam_role" "worker" {
  count = local.cluster ? 1 : 0

  name_prefix        = "${var.name}-worker-"
  description        = "The DataPerf appliance's Celery workers: the bucket under the prefix (no deletion) and their settings (read-only)."
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json
}

resource "aws_iam_role_policy" "worker" {
  count = local.cluster ? 1 : 0

  name   = "worker"
  role   = aws_iam_role.worker[0].id
  policy = data.aws_iam_policy_document.worker[0].json
}

resource "aws_iam_role_policy" "worker_ssm_agent" {
  count = local.cluster ? 1 : 0

  name   = "ssm-agent"
  role   = aws_iam_role.worker[0].id
  policy = data.aws_iam_policy_document.ssm_agent.json
}

resource "aws_iam_instance_profile" "worker" {
  count = local.cluster ? 1 : 0

  name_prefix = "${var.name}-worker-"
  role        = aws_iam_role.worker[0].name
}

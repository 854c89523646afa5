# ---------------------------------------------------------------------------
# Scale-out (workers > 0): Celery workers on instances of their own
# ---------------------------------------------------------------------------
#
# The main instance runs the appliance with APPLIANCE_EXECUTOR=celery and no worker of its own; each
# worker instance runs the same image with `worker` (scripts/entrypoint.sh worker). They share:
#   - the data root, an EFS file system mounted at the same folder on every instance (the tasks of a run
#     hand each other files there); the main instance's PostgreSQL cluster stays on its own disk;
#   - the main instance's PostgreSQL (5432), Redis broker (6379) and execution API (8080), opened to the
#     workers' security group only; the main instance reads a running task's log from the worker (8793);
#   - the worker settings (broker, database and execution API addresses with their passwords, the JWT
#     secret), which the main instance writes at first boot into the SecureString parameter worker_env
#     and each worker reads at its first boot.
# The workers have an IAM role of their own (below), narrower than the main instance's.

locals {
  cluster              = var.workers > 0
  worker_instance_type = coalesce(var.worker_instance_type, var.instance_type)
  worker_architecture  = can(regex("^[a-z]+[0-9]+g[a-z]*\\.", local.worker_instance_type)) ? "arm64" : "x86_64"
  # Port -> what the workers reach on the main instance.
  main_ports_for_workers = local.cluster ? { execution_api = 8080, postgres = 5432, redis = 6379 } : {}
  # The security groups that mount the file system.
  efs_clients = local.cluster ? { main = aws_security_group.cluster["main"].id, workers = aws_security_group.cluster["workers"].id } : {}
}

resource "aws_efs_file_system" "data" {
  #checkov:skip=CKV_AWS_184:Encrypted at rest under the AWS managed key aws/elasticfilesystem; a customer managed key would cost a monthly fee and a key policy for no gain here.
  #checkov:skip=CKV2_AWS_18:The data root is a working copy: every finished run and dataset is in the versioned S3 bucket, so no AWS Backup plan.
  count = local.cluster ? 1 : 0

  creation_token   = "${var.name}-data"
  encrypted        = true
  performance_mode = "generalPurpose"
  throughput_mode  = "elastic"

  lifecycle_policy {
    transition_to_ia = "AFTER_30_DAYS"
  }

  tags = {
    Name = "${var.name}-data"
  }
}

resource "aws_efs_mount_target" "data" {
  count = local.cluster ? 1 : 0

  file_system_id  = aws_efs_file_system.data[0].id
  subnet_id       = aws_instance.appliance.subnet_id
  security_groups = [aws_security_group.cluster["efs"].id]
}

# Three groups without inline rules (the rules below refer to each other): the main instance's extra
# group, the workers', and the file system's.
resource "aws_security_group" "cluster" {
  for_each = local.cluster ? {
    main    = "DataPerf appliance main instance: its database, broker and execution API for the workers only"
    workers = "DataPerf appliance Celery workers: their task-log server for the main instance only"
    efs     = "DataPerf appliance data root (EFS): NFS from the main instance and the workers only"
  } : {}

  name_prefix = "${var.name}-${each.key}-"
  description = each.value
  vpc_id      = local.vpc_id
  tags        = { Name = "${var.name}-${each.key}" }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "main_from_workers" {
  for_each = local.main_ports_for_workers

  security_group_id            = aws_security_group.cluster["main"].id
  description                  = "${each.key} from the workers"
  ip_protocol                  = "tcp"
  from_port                    = each.value
  to_port                      = each.value
  referenced_security_group_id = aws_security_group.cluster["workers"].id
}

resource "aws_vpc_security_group_egress_rule" "workers_to_main" {
  for_each = local.main_ports_for_workers

  security_group_id            = aws_security_group.cluster["workers"].id
  description                  = "${each.key} of the main instance"
  ip_protocol                  = "tcp"
  from_port                    = each.value
  to_port                      = each.value
  referenced_security_group_id = aws_security_group.cluster["main"].id
}

resource "aws_vpc_security_group_ingress_rule" "worker_logs_from_main" {
  count = local.cluster ? 1 : 0

  security_group_id            = aws_security_group.cluster["workers"].id
  description                  = "Task logs (Airflow's log server) for the main instance"
  ip_protocol                  = "tcp"
  from_port                    = 8793
  to_port                      = 8793
  referenced_security_group_id = aws_security_group.cluster["main"].id
}

resource "aws_vpc_security_group_egress_rule" "main_to_worker_logs" {
  count = local.cluster ? 1 : 0

  security_group_id            = aws_security_group.cluster["main"].id
  description                  = "Task logs of the workers"
  ip_protocol                  = "tcp"
  from_port                    = 8793
  to_port                      = 8793
  referenced_security_group_id = aws_security_group.cluster["workers"].id
}

resource "aws_vpc_security_group_ingress_rule" "efs_from_clients" {
  for_each = local.efs_clients

  security_group_id            = aws_security_group.cluster["efs"].id
  description                  = "NFS from the ${each.key}"
  ip_protocol                  = "tcp"
  from_port                    = 2049
  to_port                      = 2049
  referenced_security_group_id = each.value
}

resource "aws_vpc_security_group_egress_rule" "clients_to_efs" {
  for_each = local.efs_clients

  security_group_id            = each.value
  description                  = "NFS to the data root"
  ip_protocol                  = "tcp"
  from_port                    = 2049
  to_port                      = 2049
  referenced_security_group_id = aws_security_group.cluster["efs"].id
}

# What the workers pull and reach on the internet: the image, packages, S3 and SSM (as the main instance).
resource "aws_vpc_security_group_egress_rule" "workers_out" {
  for_each = local.cluster ? { https = 443, http = 80 } : {}

  security_group_id = aws_security_group.cluster["workers"].id
  description       = "${upper(each.key)} out"
  ip_protocol       = "tcp"
  from_port         = each.value
  to_port           = each.value
  cidr_ipv4         = "0.0.0.0/0"
}

# Written by the main instance at first boot (secrets included), read by the workers; Terraform only
# creates it with a placeholder and never reads the value.
resource "aws_ssm_parameter" "worker_env" {
  #checkov:skip=CKV_AWS_337:SecureString under the AWS managed key aws/ssm; a customer managed key would cost a monthly fee and a key policy for no gain here.
  count = local.cluster ? 1 : 0

  name        = "/${var.name}/worker_env"
  description = "Settings of the DataPerf appliance's Celery workers (scripts/airflow-env.sh worker-env)."
  type        = "SecureString"
  tier        = "Standard"
  value       = "not yet generated: the main instance writes it at first boot"

  lifecycle {
    ignore_changes = [value]
  }
}

# The workers' own role: the bucket under the prefix (their tasks download datasets and upload runs) and
# their settings, read-only. Unlike the main instance's role: no s3:DeleteObject, and no access to the
# password parameters (a worker cannot read them, nor overwrite them to lock the operator out or plant
# one). The SSM agent's rights are the main instance's (ssm_agent, terraform/main.tf).
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

resource "aws_instance" "worker" {
  #checkov:skip=CKV_AWS_88:As the main instance: a public address lets the SSM agent and the image pulls out without a NAT gateway; the workers' security group admits only the main instance (set associate_public_ip = false to go without).
  #checkov:skip=CKV_AWS_126:Detailed (1-minute) monitoring costs extra; the 5-minute basic monitoring is enough.
  count = var.workers

  ami                         = local.ami_id
  instance_type               = local.worker_instance_type
  subnet_id                   = aws_instance.appliance.subnet_id
  vpc_security_group_ids      = [aws_security_group.cluster["workers"].id]
  iam_instance_profile        = aws_iam_instance_profile.worker[0].name
  key_name                    = var.key_name
  associate_public_ip_address = var.associate_public_ip
  ebs_optimized               = true

  # The same first boot as the main instance's, in the worker role (the same image: pulled, or built from
  # the same source_ref).
  user_data                   = templatefile("${path.module}/user_data.sh.tftpl", merge(local.user_data, { role = "worker" }))
  user_data_replace_on_change = true

  # As the main instance's (local.imds_hop_limit): the worker's container syncs with S3 under this role.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = local.imds_hop_limit
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.root_volume_size
    encrypted             = true
    delete_on_termination = true
  }

  dynamic "credit_specification" {
    for_each = startswith(local.worker_instance_type, "t") ? [var.cpu_credits] : []
    content {
      cpu_credits = credit_specification.value
    }
  }

  tags = {
    Name = "${var.name}-worker-${count.index + 1}"
  }

  # The mount target and the role's policies must be in place before the first boot uses them.
  depends_on = [aws_efs_mount_target.data, aws_iam_role_policy.worker, aws_iam_role_policy.worker_ssm_agent]

  lifecycle {
    precondition {
      condition     = local.worker_architecture == local.architecture
      error_message = "worker_instance_type (${local.worker_instance_type}) must have the main instance's architecture (${local.architecture}): the workers run the same image."
    }
  }
}

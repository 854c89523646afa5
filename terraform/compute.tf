# ---------------------------------------------------------------------------
# The instances: the appliance's main instance and, with workers > 0, its Celery workers
# ---------------------------------------------------------------------------
#
# Both are one definition, modules/instance (IMDSv2 only, encrypted gp3 root volume, replaced when the
# user data changes); they differ in their user data's role, their IAM role (identity.tf), their security
# groups (network.tf) and their Name tag.
#
# Scale-out (workers > 0): the main instance runs the appliance with APPLIANCE_EXECUTOR=celery and no
# worker of its own; each worker instance runs the same image with `worker` (scripts/runtime/entrypoint.sh
# worker). They share:
#   - the data root, an EFS file system mounted at the same folder on every instance (the tasks of a run
#     hand each other files there; storage.tf); the main instance's PostgreSQL cluster stays on its own disk;
#   - the main instance's PostgreSQL (5432), Redis broker (6379) and execution API (8080), opened to the
#     workers' security group only; the main instance reads a running task's log from the worker (8793);
#   - the worker settings (broker, database and execution API addresses with their passwords, the JWT
#     secret), which the main instance writes at first boot into the SecureString parameter worker_env
#     (parameters.tf) and each worker reads at its first boot.

locals {
  cluster = var.workers > 0

  # Graviton families (t4g, m7g, c6gn, ...) run arm64; everything else x86_64. The workers have the main
  # instance's architecture (variables.tf: worker_instance_type), hence its AMI.
  architecture         = can(regex("^[a-z]+[0-9]+g[a-z]*\\.", var.instance_type)) ? "arm64" : "x86_64"
  ami_id               = var.ami_id != null ? var.ami_id : one(data.aws_ami.al2023[*].id)
  worker_instance_type = coalesce(var.worker_instance_type, var.instance_type)

  # Where the appliance keeps its data on the instance (mounted at /data in the container).
  host_data_dir = "/var/lib/dataperf-appliance/data"

  # The variables of user_data.sh.tftpl, but `role` (appliance or worker).
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

# Fails ("Your query returned no results") where the region has no Amazon Linux 2023 AMI for the
# architecture: set ami_id then.
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

module "appliance" {
  source = "./modules/instance"

  names                       = [var.name]
  ami_id                      = local.ami_id
  instance_type               = var.instance_type
  cpu_credits                 = var.cpu_credits
  subnet_id                   = var.subnet_id
  vpc_security_group_ids      = concat([aws_security_group.appliance.id], [for key, group in aws_security_group.cluster : group.id if key == "main"])
  iam_instance_profile        = aws_iam_instance_profile.appliance.name
  key_name                    = var.key_name
  associate_public_ip_address = var.associate_public_ip
  user_data                   = templatefile("${path.module}/user_data.sh.tftpl", merge(local.user_data, { role = "appliance" }))
  root_volume_size            = var.root_volume_size

  # The role's policies must be in place before the first boot uses them.
  depends_on = [aws_iam_role_policy.appliance, aws_iam_role_policy.ssm_agent]
}

module "workers" {
  source = "./modules/instance"

  names                       = [for index in range(var.workers) : "${var.name}-worker-${index + 1}"]
  ami_id                      = local.ami_id
  instance_type               = local.worker_instance_type
  cpu_credits                 = var.cpu_credits
  subnet_id                   = module.appliance.instances[0].subnet_id
  vpc_security_group_ids      = [for key, group in aws_security_group.cluster : group.id if key == "workers"]
  iam_instance_profile        = one(aws_iam_instance_profile.worker[*].name)
  key_name                    = var.key_name
  associate_public_ip_address = var.associate_public_ip
  # The same first boot as the main instance's, in the worker role (the same image: pulled, or built from
  # the same source_ref).
  user_data        = templatefile("${path.module}/user_data.sh.tftpl", merge(local.user_data, { role = "worker" }))
  root_volume_size = var.root_volume_size

  # The mount target and the role's policies must be in place before the first boot uses them.
  depends_on = [aws_efs_mount_target.data, aws_iam_role_policy.worker, aws_iam_role_policy.worker_ssm_agent]
}

# The instances were resources of this module before modules/instance: their state follows them, and an
# existing deployment keeps its running instances.
moved {
  from = aws_instance.appliance
  to   = module.appliance.aws_instance.this[0]
}

moved {
  from = aws_instance.worker
  to   = module.workers.aws_instance.this
}

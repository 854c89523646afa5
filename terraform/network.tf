# ---------------------------------------------------------------------------
# Network: the VPC, and the security groups with their rules
# ---------------------------------------------------------------------------
#
# Every rule is a resource of its own (aws_vpc_security_group_ingress_rule / _egress_rule), none inline:
# the groups themselves hold no rule.

locals {
  vpc_id = var.subnet_id != null ? one(data.aws_subnet.selected[*].vpc_id) : one(data.aws_vpc.default[*].id)

  # The appliance's public ports, each from every block of allowed_cidrs. Nothing by default: the operator
  # comes in through SSM Session Manager.
  ingress_ports = merge(
    var.public_https ? { https_app = 443, https_airflow = 8443 } : {},
    var.public_https && var.domain != null ? { acme_http = 80 } : {},
    var.key_name != null ? { ssh = 22 } : {},
  )
  ingress_from_allowed_cidrs = {
    for pair in setproduct(keys(local.ingress_ports), var.allowed_cidrs) : "${pair[0]} ${pair[1]}" => {
      name = pair[0]
      port = local.ingress_ports[pair[0]]
      cidr = pair[1]
    }
  }

  # Out to the internet, from the main instance and from the workers: HTTPS (packages, the image, git, S3,
  # SSM) and HTTP (the Debian mirrors of the image build). DNS, NTP and the instance metadata service are
  # reached without a rule. The workers' group has no IPv6 rule.
  egress_to_internet = merge([
    for group, cidrs in merge({ appliance = ["0.0.0.0/0", "::/0"] }, local.cluster ? { workers = ["0.0.0.0/0"] } : {}) : {
      for pair in setproduct(["https", "http"], cidrs) : "${group} ${pair[0]} ${pair[1]}" => {
        group = group
        name  = pair[0]
        port  = { https = 443, http = 80 }[pair[0]]
        cidr  = pair[1]
      }
    }
  ]...)
  security_group_ids = merge({ appliance = aws_security_group.appliance.id }, { for key, group in aws_security_group.cluster : key => group.id })

  # Port -> what the workers reach on the main instance.
  main_ports_for_workers = local.cluster ? { execution_api = 8080, postgres = 5432, redis = 6379 } : {}
  # The security groups that mount the file system.
  efs_clients = local.cluster ? { main = aws_security_group.cluster["main"].id, workers = aws_security_group.cluster["workers"].id } : {}
}

data "aws_vpc" "default" {
  count   = var.subnet_id == null ? 1 : 0
  default = true
}

data "aws_subnet" "selected" {
  count = var.subnet_id != null ? 1 : 0
  id    = var.subnet_id
}

# The main instance's group. Its name prefix is "<name>-appliance-" since its rules left the group for
# resources of their own: an existing deployment gets a new group (created before the old one goes, the
# instance moved to it in place), since the old group's inline rules would collide with the new resources.
resource "aws_security_group" "appliance" {
  name_prefix = "${var.name}-appliance-"
  description = "DataPerf appliance: no inbound by default; HTTPS or SSH from allowed_cidrs only when asked"
  vpc_id      = local.vpc_id

  tags = {
    Name = var.name
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "appliance_from_allowed_cidrs" {
  for_each = local.ingress_from_allowed_cidrs

  security_group_id = aws_security_group.appliance.id
  description       = "${each.value.name} from allowed_cidrs"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = strcontains(each.value.cidr, ":") ? null : each.value.cidr
  cidr_ipv6         = strcontains(each.value.cidr, ":") ? each.value.cidr : null
}

resource "aws_vpc_security_group_egress_rule" "to_internet" {
  for_each = local.egress_to_internet

  security_group_id = local.security_group_ids[each.value.group]
  description       = "${upper(each.value.name)} out"
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = strcontains(each.value.cidr, ":") ? null : each.value.cidr
  cidr_ipv6         = strcontains(each.value.cidr, ":") ? each.value.cidr : null
}

# The workers' rules out to the internet were a resource of their own before to_internet.
moved {
  from = aws_vpc_security_group_egress_rule.workers_out["https"]
  to   = aws_vpc_security_group_egress_rule.to_internet["workers https 0.0.0.0/0"]
}

moved {
  from = aws_vpc_security_group_egress_rule.workers_out["http"]
  to   = aws_vpc_security_group_egress_rule.to_internet["workers http 0.0.0.0/0"]
}

# ---------------------------------------------------------------------------
# Scale-out (workers > 0): the groups of the main instance, the workers and the file system
# ---------------------------------------------------------------------------

# Three groups (the rules below refer to each other): the main instance's extra group, the workers', and
# the file system's.
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

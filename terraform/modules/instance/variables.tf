variable "names" {
  description = "The Name tag of each instance to launch: one instance per name, in this order (so is the instances output). An empty list launches none."
  type        = list(string)
  nullable    = false

  validation {
    condition     = alltrue([for name in var.names : length(name) >= 1 && length(name) <= 255]) && length(distinct(var.names)) == length(var.names)
    error_message = "names must be distinct Name tags of 1 to 255 characters each."
  }
}

variable "ami_id" {
  description = "The AMI every instance launches from."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "ami_id must be an AMI id such as \"ami-0123456789abcdef0\"."
  }
}

variable "user_data" {
  description = "The first boot's script, as text (the provider encodes it). A change replaces the instances: user data runs only on a new instance."
  type        = string
  nullable    = false

  validation {
    condition     = length(var.user_data) > 0 && length(var.user_data) <= 16384
    error_message = "user_data must be 1 to 16384 characters (EC2's limit is 16 KB)."
  }
}

variable "iam_instance_profile" {
  description = "Name of the IAM instance profile every instance runs under: its role's temporary credentials reach the instance (and its containers) through the metadata service. May be null only when names is empty."
  type        = string

  validation {
    condition     = var.iam_instance_profile == null || can(regex("^[A-Za-z0-9+=,.@_-]{1,128}$", coalesce(var.iam_instance_profile, "x")))
    error_message = "iam_instance_profile must be the name of an instance profile (1 to 128 letters, digits and + = , . @ _ -)."
  }
}

variable "vpc_security_group_ids" {
  description = "The security groups of every instance: 1 to 5 (EC2's limit per network interface); none only when names is empty."
  type        = list(string)
  nullable    = false

  validation {
    condition     = length(var.vpc_security_group_ids) <= 5 && alltrue([for id in var.vpc_security_group_ids : length(id) > 0])
    error_message = "vpc_security_group_ids must name at most 5 security groups, by id."
  }
}

variable "instance_type" {
  description = "The EC2 instance type of every instance. Burstable (t*) types get cpu_credits."
  type        = string
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.instance_type))
    error_message = "instance_type must be an EC2 instance type such as \"t3.medium\"."
  }
}

variable "cpu_credits" {
  description = "CPU credit option of burstable (t*) instance types: \"unlimited\" (the default, as AWS's for t3) or \"standard\". Ignored for other types."
  type        = string
  default     = "unlimited"
  nullable    = false

  validation {
    condition     = contains(["standard", "unlimited"], var.cpu_credits)
    error_message = "cpu_credits must be \"standard\" or \"unlimited\"."
  }
}

variable "root_volume_size" {
  description = "Size in GiB of each instance's root volume (gp3, encrypted, deleted with the instance). null = the AMI's size."
  type        = number
  default     = null

  validation {
    condition     = var.root_volume_size == null || try(var.root_volume_size >= 1 && var.root_volume_size <= 16384 && floor(var.root_volume_size) == var.root_volume_size, false)
    error_message = "root_volume_size must be null or a whole number of GiB from 1 to 16384 (gp3's limit)."
  }
}

variable "subnet_id" {
  description = "The subnet of every instance. null = a default subnet of the region's default VPC, chosen by EC2."
  type        = string
  default     = null

  validation {
    condition     = var.subnet_id == null || can(regex("^subnet-[0-9a-f]{8,17}$", coalesce(var.subnet_id, "x")))
    error_message = "subnet_id must be null or a subnet id such as \"subnet-0123456789abcdef0\"."
  }
}

variable "associate_public_ip_address" {
  description = "Give every instance a public IPv4 address (true) or not (false). null = the subnet's setting."
  type        = bool
  default     = null
}

variable "key_name" {
  description = "Name of an existing EC2 key pair for SSH. null = no key."
  type        = string
  default     = null

  validation {
    condition     = var.key_name == null || try(length(var.key_name) > 0 && length(var.key_name) <= 255, false)
    error_message = "key_name must be null or the name of an existing EC2 key pair (1 to 255 characters)."
  }
}

variable "metadata_hop_limit" {
  description = "Hop limit of the instance metadata service's IMDSv2 token responses (IMDSv1 is off). 2 by default: a Docker container on the bridge network is one hop past the instance and needs a token to get the role's credentials (see main.tf)."
  type        = number
  default     = 2
  nullable    = false

  validation {
    condition     = var.metadata_hop_limit >= 1 && var.metadata_hop_limit <= 64 && floor(var.metadata_hop_limit) == var.metadata_hop_limit
    error_message = "metadata_hop_limit must be a whole number from 1 to 64."
  }
}

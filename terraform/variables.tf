# The values modules/instance takes as they are (key_name, cpu_credits, ami_id, subnet_id) are validated
# there, at plan time as the others here.

# ---------------------------------------------------------------------------
# Access
# ---------------------------------------------------------------------------

variable "allowed_cidrs" {
  description = "CIDR blocks (IPv4 or IPv6) allowed to reach the appliance's public ports: HTTPS (443 for the app, 8443 for Airflow) with public_https = true, and SSH (22) with key_name set. Usually your own address, e.g. [\"203.0.113.7/32\"]. Empty (the default) with neither: nothing listens to the internet, and the operator comes in through SSM Session Manager. An allow-list that covers the internet, whole (0.0.0.0/0) or split (0.0.0.0/1 + 128.0.0.0/1, or more than a /8 of IPv4 or a /32 of IPv6 in all), is refused unless allow_public = true."
  type        = list(string)
  default     = []
  nullable    = false
  validation {
    condition     = length(var.allowed_cidrs) > 0 || (!var.public_https && var.key_name == null)
    error_message = "public_https and key_name open ports: allowed_cidrs must then name who may reach them, e.g. [\"203.0.113.7/32\"] (your address)."
  }
  validation {
    condition     = alltrue([for cidr in var.allowed_cidrs : can(cidrhost(cidr, 0)) && length(split("/", cidr)) == 2])
    error_message = "Each entry of allowed_cidrs must be a CIDR block such as \"203.0.113.7/32\" or \"2001:db8::/64\"."
  }
  validation {
    # The addresses the list admits, summed per family (an upper bound of what it covers, overlaps counted
    # twice): whatever way it is split, a list that covers the internet is over the limit.
    condition = var.allow_public || try(
      sum(concat([0], [for cidr in var.allowed_cidrs : pow(2, 32 - tonumber(split("/", cidr)[1])) if !strcontains(cidr, ":")])) <= pow(2, 24) &&
      sum(concat([0], [for cidr in var.allowed_cidrs : pow(2, 128 - tonumber(split("/", cidr)[1])) if strcontains(cidr, ":")])) <= pow(2, 96),
      false,
    )
    error_message = "allowed_cidrs admits more than a /8 of IPv4 or a /32 of IPv6 in all: it (nearly) opens the appliance to the whole internet (0.0.0.0/0, or the same split into blocks such as 0.0.0.0/1 + 128.0.0.0/1). Give your own address instead, or set allow_public = true if you really mean it."
  }
}

variable "allow_public" {
  description = "Allow an allow-list that covers the internet (0.0.0.0/0, ::/0, or the same split into blocks), i.e. expose the appliance's public ports to everyone. Even then only HTTPS and a password-protected login answer."
  type        = bool
  default     = false
  nullable    = false
}

variable "public_https" {
  description = "Serve the app and Airflow over HTTPS to allowed_cidrs: a Caddy reverse proxy on the instance terminates TLS on 443 (the app) and 8443 (Airflow); the appliance itself listens on no public port. false (the default) = no public port: reach the app, Airflow and a shell through SSM Session Manager (see the ssm_* outputs)."
  type        = bool
  default     = false
  nullable    = false
}

variable "domain" {
  description = "With public_https: a DNS name pointing at the instance's address, for a Let's Encrypt certificate (Let's Encrypt must then reach ports 80 and 443, i.e. allow_public). null (the default) = a self-signed certificate for the instance's address, from Caddy's own CA (the browser warns once)."
  type        = string
  default     = null
  validation {
    condition     = var.domain == null || can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", coalesce(var.domain, "x")))
    error_message = "domain must be null or a lower-case DNS name such as \"appliance.example.com\"."
  }
}

variable "proxy_image" {
  description = "The Caddy image of the TLS proxy (public_https = true)."
  type        = string
  default     = "docker.io/library/caddy:2.8"
  nullable    = false
  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$", var.proxy_image))
    error_message = "proxy_image must be an image reference such as \"docker.io/library/caddy:2.8\"."
  }
}

variable "key_name" {
  description = "Name of an existing EC2 key pair for SSH from allowed_cidrs. null (the default) = no key and no SSH port open: SSM Session Manager gives a shell (ssm_shell_command)."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------------
# What runs on the instance
# ---------------------------------------------------------------------------

variable "image" {
  description = "A prebuilt appliance image to run, e.g. \"ghcr.io/acme/dataperf-appliance:1.0\". Set either image or source_repo."
  type        = string
  default     = null

  validation {
    condition     = (var.image == null) != (var.source_repo == null)
    error_message = "Set exactly one of image (a prebuilt appliance image) and source_repo (a git URL the instance clones and builds with docker build)."
  }

  validation {
    condition     = var.image == null || can(regex("^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$", coalesce(var.image, "x")))
    error_message = "image must be an image reference such as \"registry.example.com/dataperf-appliance:1.0\" (letters, digits and . _ / : @ + - only)."
  }
}

variable "source_repo" {
  description = "A git URL of this repository (https:// or ssh://), cloned on the instance and built with `docker build` from its Dockerfile at first boot. Used when image is null."
  type        = string
  default     = null

  validation {
    condition     = var.source_repo == null || can(regex("^(https://|ssh://|git@)[A-Za-z0-9._/:@~+-]+$", coalesce(var.source_repo, "x")))
    error_message = "source_repo must be a git URL starting with https://, ssh:// or git@ (letters, digits and . _ / : @ ~ + - only)."
  }
}

variable "source_ref" {
  description = "The branch or tag of source_repo to build."
  type        = string
  default     = "main"
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._/-]*$", var.source_ref))
    error_message = "source_ref must be a branch or tag name (letters, digits and . _ / - only)."
  }
}

variable "s3_prefix" {
  description = "Key prefix of the appliance's data inside the bucket (APPLIANCE_S3_PREFIX). Ends with \"/\"; \"\" = the whole bucket."
  type        = string
  default     = "dataperf-appliance/"
  nullable    = false

  validation {
    condition     = var.s3_prefix == "" || can(regex("^[A-Za-z0-9_.-][A-Za-z0-9_./-]*/$", var.s3_prefix))
    error_message = "s3_prefix must be \"\" or a key prefix ending in \"/\" that does not start with \"/\" (letters, digits and _ . - / only), e.g. \"dataperf-appliance/\"."
  }
}

# ---------------------------------------------------------------------------
# Instance
# ---------------------------------------------------------------------------

variable "instance_type" {
  description = "EC2 instance type. The appliance idles at about 1.1 GB of memory after use and a benchmark run needs more, so at least 4 GiB: t3.medium (2 vCPU, 4 GiB) by default. Graviton (…g) types get an arm64 AMI."
  type        = string
  default     = "t3.medium"
  nullable    = false

  validation {
    condition = can(regex(
      "^((t3|t3a|t4g)\\.(medium|large|xlarge|2xlarge)|(m|c|r)[5-8][a-z]*\\.(large|xlarge|2xlarge|4xlarge))$",
      var.instance_type,
    ))
    error_message = "instance_type must have at least 4 GiB of memory and be a current general-purpose, compute or memory family: t3/t3a/t4g .medium to .2xlarge, or m/c/r generations 5 to 8 .large to .4xlarge (e.g. t3.medium, t3.large, m6i.large)."
  }
}

variable "workers" {
  description = "Celery worker instances besides the main one (README \"Scale out\"). 0 (the default): one instance runs everything (LocalExecutor). N > 0: N more instances of worker_instance_type run the same image as Celery workers, and the main instance switches to the CeleryExecutor with no worker of its own; an EFS file system holds the data root of all of them, and the main instance's PostgreSQL, Redis and execution API are opened to the workers' security group only. Each worker costs about what the main instance costs (t3.medium: about $33 a month running, with its disk), plus EFS storage ($0.30 per GB-month)."
  type        = number
  default     = 0
  nullable    = false

  validation {
    condition     = var.workers >= 0 && var.workers <= 20 && floor(var.workers) == var.workers
    error_message = "workers must be a whole number from 0 to 20."
  }
}

variable "worker_instance_type" {
  description = "EC2 instance type of the workers (workers > 0); null (the default) = instance_type. Same architecture as instance_type (the same image), and the same families as instance_type allows."
  type        = string
  default     = null

  validation {
    condition = var.worker_instance_type == null || can(regex(
      "^((t3|t3a|t4g)\\.(medium|large|xlarge|2xlarge)|(m|c|r)[5-8][a-z]*\\.(large|xlarge|2xlarge|4xlarge))$",
      coalesce(var.worker_instance_type, "x"),
    ))
    error_message = "worker_instance_type must be null or a type instance_type accepts (e.g. t3.medium, c6i.large)."
  }

  validation {
    # Graviton (…g) types are arm64, the others x86_64 (compute.tf: local.architecture).
    condition     = var.workers == 0 || can(regex("^[a-z]+[0-9]+g[a-z]*\\.", coalesce(var.worker_instance_type, var.instance_type))) == can(regex("^[a-z]+[0-9]+g[a-z]*\\.", var.instance_type))
    error_message = "worker_instance_type must have the architecture of instance_type (Graviton …g types are arm64, the others x86_64): the workers run the same image and AMI."
  }
}

variable "cpu_credits" {
  description = "CPU credit option of burstable (t*) types: \"unlimited\" (the AWS default for t3; a benchmark run that keeps the CPUs busy for long costs extra, about $0.05 per vCPU-hour above the baseline) or \"standard\" (never costs extra, but is throttled to the baseline, 20% of 2 vCPUs on t3.medium, once its credits are spent)."
  type        = string
  default     = "unlimited"
  nullable    = false
}

variable "ami_id" {
  description = "AMI to launch. null (the default) = the latest Amazon Linux 2023 AMI, found by a data source. The user data expects Amazon Linux 2023 (dnf, aws CLI)."
  type        = string
  default     = null
}

variable "root_volume_size" {
  description = "Size in GiB of the encrypted gp3 root volume, which holds Docker's images and the appliance's data root (a working copy: the data lives in S3)."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = var.root_volume_size >= 20 && var.root_volume_size <= 1000 && floor(var.root_volume_size) == var.root_volume_size
    error_message = "root_volume_size must be a whole number of GiB from 20 to 1000."
  }
}

variable "swap_size" {
  description = "Size in GiB of a swap file on the root volume, headroom for memory peaks during a run; 0 = none."
  type        = number
  default     = 2
  nullable    = false

  validation {
    condition     = var.swap_size >= 0 && var.swap_size <= 16 && floor(var.swap_size) == var.swap_size
    error_message = "swap_size must be a whole number of GiB from 0 to 16."
  }
}

variable "subnet_id" {
  description = "Subnet to launch in. null (the default) = a default subnet of the region's default VPC. The subnet must give the instance a route to the internet (packages, the image, S3) and, for associate_public_ip = true, be public."
  type        = string
  default     = null
}

variable "associate_public_ip" {
  description = "Give the instance a public IPv4 address (the URLs in the outputs use it). false = private address only, e.g. behind a VPN."
  type        = bool
  default     = true
  nullable    = false
}

# ---------------------------------------------------------------------------
# Bucket
# ---------------------------------------------------------------------------

variable "bucket_name" {
  description = "Name of the S3 bucket to create for data and results. null (the default) = a unique name starting with \"<name>-data-\"."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", coalesce(var.bucket_name, "x")))
    error_message = "bucket_name must be null or a valid S3 bucket name (3 to 63 lower-case letters, digits, dots and hyphens)."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the bucket even when it still holds data (every run and dataset, all versions). false (the default) = destroy stops at a non-empty bucket, and the data survives."
  type        = bool
  default     = false
  nullable    = false
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which an overwritten or deleted object version is removed for good (the bucket keeps versions so a mistaken overwrite can be undone)."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1 && floor(var.noncurrent_version_expiration_days) == var.noncurrent_version_expiration_days
    error_message = "noncurrent_version_expiration_days must be a whole number of days, at least 1."
  }
}

# ---------------------------------------------------------------------------
# Naming
# ---------------------------------------------------------------------------

variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "us-east-1"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as \"us-east-1\"."
  }
}

variable "name" {
  description = "Name of the deployment: prefixes the names of its resources and the SSM parameter path /<name>/. Unique per account and region."
  type        = string
  default     = "dataperf-appliance"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3 to 32 lower-case letters, digits and hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
  nullable    = false
}

terraform {
  # 1.9 is the first version whose variable validations may refer to other variables.
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100, < 6.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(
      {
        Project   = "dataperf-appliance"
        ManagedBy = "terraform"
      },
      var.tags,
    )
  }
}

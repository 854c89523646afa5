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
# EFS file system: the data root shared by the main instance and the workers (workers > 0)
# ---------------------------------------------------------------------------

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
  subnet_id       = module.appliance.instances[0].subnet_id
  security_groups = [aws_security_group.cluster["efs"].id]
}

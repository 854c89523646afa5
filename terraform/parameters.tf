# ---------------------------------------------------------------------------
# SSM parameters: the passwords and the workers' settings, written on the main instance at first boot
# ---------------------------------------------------------------------------

# Terraform creates the parameters with a placeholder, so that they have an
# owner and `terraform destroy` removes them; the instance overwrites the value
# at first boot and Terraform never reads or stores the real password.
resource "aws_ssm_parameter" "password" {
  #checkov:skip=CKV_AWS_337:SecureString under the AWS managed key aws/ssm; a customer managed key would cost a monthly fee and a key policy for no gain here.
  for_each = {
    ui_password            = "Password of the Streamlit UI of the DataPerf appliance."
    airflow_admin_password = "Password of the Airflow admin user of the DataPerf appliance."
  }

  name        = "/${var.name}/${each.key}"
  description = each.value
  type        = "SecureString"
  value       = "not yet generated: the instance writes it at first boot"

  lifecycle {
    ignore_changes = [value]
  }
}

# Written by the main instance at first boot (secrets included), read by the workers; Terraform only
# creates it with a placeholder and never reads the value.
resource "aws_ssm_parameter" "worker_env" {
  #checkov:skip=CKV_AWS_337:SecureString under the AWS managed key aws/ssm; a customer managed key would cost a monthly fee and a key policy for no gain here.
  count = local.cluster ? 1 : 0

  name        = "/${var.name}/worker_env"
  description = "Settings of the DataPerf appliance's Celery workers (scripts/runtime/airflow-cli.sh worker-env)."
  type        = "SecureString"
  tier        = "Standard"
  value       = "not yet generated: the main instance writes it at first boot"

  lifecycle {
    ignore_changes = [value]
  }
}

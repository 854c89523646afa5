locals {
  host        = var.associate_public_ip ? module.appliance.instances[0].public_ip : module.appliance.instances[0].private_ip
  public_site = var.domain != null ? var.domain : local.host
}

output "streamlit_url" {
  description = "The appliance's UI (Streamlit), behind its login page (the UI password: read_passwords_command). By default through the SSM port forward (ssm_port_forward_commands.streamlit, then open this URL); with public_https over HTTPS. It answers a few minutes after apply, once the instance has installed Docker and pulled or built the image."
  value       = var.public_https ? "https://${local.public_site}" : "http://localhost:8501"
}

output "airflow_url" {
  description = "Airflow's API server and web UI, user admin, password from read_passwords_command. By default through the SSM port forward (ssm_port_forward_commands.airflow); with public_https over HTTPS on 8443."
  value       = var.public_https ? "https://${local.public_site}:8443" : "http://localhost:8080"
}

output "ssm_shell_command" {
  description = "A root shell on the instance through SSM Session Manager (needs the AWS CLI's Session Manager plugin), e.g. to follow the first boot: sudo tail -f /var/log/cloud-init-output.log."
  value       = "aws ssm start-session --region ${var.region} --target ${module.appliance.instances[0].id}"
}

output "ssm_port_forward_commands" {
  description = "Forward the app (8501) and Airflow (8080) to the same ports of your machine through SSM Session Manager; keep each running and open streamlit_url and airflow_url."
  value = {
    for name, port in { streamlit = 8501, airflow = 8080 } : name => join(" ", [
      "aws ssm start-session --region ${var.region} --target ${module.appliance.instances[0].id}",
      "--document-name AWS-StartPortForwardingSession --parameters portNumber=${port},localPortNumber=${port}",
    ])
  }
}

output "bucket" {
  description = "The S3 bucket holding the appliance's datasets and runs (under s3_prefix)."
  value       = aws_s3_bucket.data.id
}

output "s3_uri" {
  description = "Where the data lives: s3://<bucket>/<prefix>."
  value       = "s3://${aws_s3_bucket.data.id}/${var.s3_prefix}"
}

output "instance_id" {
  description = "The EC2 instance running the appliance."
  value       = module.appliance.instances[0].id
}

output "password_parameters" {
  description = "The SSM parameters (SecureString) that hold the UI and Airflow admin passwords once the instance has written them at first boot."
  value       = { for key, parameter in aws_ssm_parameter.password : key => parameter.name }
}

output "read_passwords_command" {
  description = "Prints the UI and Airflow admin passwords (with credentials allowed to read and decrypt the parameters). Until the first boot is done it prints the placeholder text."
  value       = "aws ssm get-parameters --region ${var.region} --with-decryption --names ${join(" ", [for parameter in aws_ssm_parameter.password : parameter.name])} --query 'Parameters[].[Name,Value]' --output text"
}

output "ssh_command" {
  description = "SSH to the instance (only with key_name set), e.g. to follow the first boot: sudo tail -f /var/log/cloud-init-output.log."
  value       = var.key_name == null ? null : "ssh -i <path to ${var.key_name}.pem> ec2-user@${local.host}"
}

output "instances" {
  description = "The instances (aws_instance objects), in the order of names: their id, addresses, subnet, AMI, metadata options, root volume, user data, ..."
  value       = aws_instance.this
}

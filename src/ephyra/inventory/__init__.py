"""What a cloud is made of: hosts, their roles, and the services they run."""

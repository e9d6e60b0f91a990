"""Block storage: a storage host's volumes moved off it by Cinder's own migration."""

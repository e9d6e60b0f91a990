"""The forklift: move Ironic nodes from one control plane to another, and back."""

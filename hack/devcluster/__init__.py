"""Local Kubernetes control plane for development and tests (not part of the product)."""

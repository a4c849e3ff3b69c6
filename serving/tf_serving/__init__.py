"""Stock TF Serving for the context head: config files, Kubernetes manifests, models.config."""

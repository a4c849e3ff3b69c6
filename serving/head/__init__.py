"""The context head: history state + what the user views now -> user embedding, in process or
through TF Serving (gRPC or REST), pinned to one model version."""

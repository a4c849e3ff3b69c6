"""The online half: feature store, ScaNN index, context head and the retrieval service."""

"""The catalog's ScaNN index: built and recall-gated by IndexBuilder, loaded by the Retriever."""

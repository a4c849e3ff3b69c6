"""The retrieval service: one release (model, index, states of one model version) answering
`/v1/retrieve` over HTTP, with named fallbacks, metrics and background release swaps."""

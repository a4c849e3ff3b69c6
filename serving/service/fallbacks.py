"""Names of the fallbacks a response reports (and /metrics counts): defined once."""
UNKNOWN_USER = "unknown_user"  # no state for the user: the cold-start state
STATE_STORE_UNAVAILABLE = "state_store_unavailable"  # the cold-start state for everyone
UNKNOWN_CONTEXT_ITEM = "unknown_context_item"  # its given categories, else no context
TF_SERVING_UNAVAILABLE = "tf_serving_unavailable"  # the in-process head answered
TF_SERVING_CIRCUIT_OPEN = "tf_serving_circuit_open"  # the in-process head answered
# The head gave NaN or infinite values: embedded again without context or demographics, else from
# the cold-start state alone (which a release is checked to embed finitely).
NON_FINITE_EMBEDDING = "non_finite_embedding"
SHORT_ANSWER = "short_answer"  # fewer than k items: the catalog, less exclusions, has no more

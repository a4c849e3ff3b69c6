"""Names of the fallbacks a response reports (and /metrics counts): defined once."""
UNKNOWN_USER = "unknown_user"  # no state for the user: the cold-start state
STATE_STORE_UNAVAILABLE = "state_store_unavailable"  # the cold-start state for everyone
UNKNOWN_CONTEXT_ITEM = "unknown_context_item"  # its given categories, else no context
TF_SERVING_UNAVAILABLE = "tf_serving_unavailable"  # the in-process head answered
TF_SERVING_CIRCUIT_OPEN = "tf_serving_circuit_open"  # the in-process head answered

ALL = (UNKNOWN_USER, STATE_STORE_UNAVAILABLE, UNKNOWN_CONTEXT_ITEM, TF_SERVING_UNAVAILABLE,
       TF_SERVING_CIRCUIT_OPEN)

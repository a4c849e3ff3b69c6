"""Column, feature and split names shared by every stage; defined once, imported everywhere."""

# ---- Input contract: the tables a user brings (README "Input contract"). ----
EVENTS = "events"
ITEMS = "items"
USERS = "users"
GROUND_TRUTH = "ground_truth"
GROUND_TRUTH_ITEMS = "ground_truth_items"
TABLE_FORMATS = ("parquet", "csv")
CSV_LIST_SEPARATOR = ";"

USER_ID = "user_id"
ITEM_ID = "item_id"
EVENT_TYPE = "event_type"
TIMESTAMP = "timestamp"
CATEGORIES = "categories"
CONFIDENCES = "confidences"
COUNTRY = "country"
AGE_BUCKET = "age_bucket"

EVENT_VIEW = "view"
EVENT_CONVERSION = "conversion"
EVENT_TYPES = (EVENT_VIEW, EVENT_CONVERSION)

EVENTS_COLUMNS = (USER_ID, ITEM_ID, EVENT_TYPE, TIMESTAMP)
ITEMS_COLUMNS = (ITEM_ID, CATEGORIES, CONFIDENCES)
DEFAULT_DEMOGRAPHIC_COLUMNS = (COUNTRY, AGE_BUCKET)
UNKNOWN = "unknown"

# ---- Ground truth written by `ctxrec generate` (synthetic data only). ----
GT_INTENT_CATEGORY = "intent_category"
GT_LAST_VIEW_ITEM_ID = "last_view_item_id"
GT_INTEREST_CATEGORIES = "interest_categories"
GT_INTEREST_WEIGHTS = "interest_weights"
GT_PRIMARY_CATEGORY = "primary_category"
GT_POPULARITY = "popularity"

# ---- Example features written by SequenceExampleGen (one tf.Example per conversion). ----
HISTORY_ITEM_IDS = "history_item_ids"
HISTORY_CATEGORIES = "history_categories"
HISTORY_AGE_DAYS = "history_age_days"
LABEL_ITEM_ID = "label_item_id"
LABEL_CATEGORIES = "label_categories"
LABEL_CONFIDENCES = "label_confidences"
LABEL_TIMESTAMP = "label_timestamp"
# The request context is a session: the last views before the conversion, most recent first
# (view 0 is the item being viewed now). One entry per view in CONTEXT_ITEM_ID and
# CONTEXT_AGE_SECONDS; each view's categories (primary first) and their confidences are
# concatenated in CONTEXT_CATEGORIES / CONTEXT_CONFIDENCES, CONTEXT_CATEGORY_COUNTS per view
# saying how many. The signatures take them dense: ids and ages [B, S], categories and
# confidences [B, S, K] ("" / 0 padding).
CONTEXT_ITEM_ID = "context_item_id"
CONTEXT_CATEGORIES = "context_categories"
CONTEXT_CONFIDENCES = "context_confidences"
CONTEXT_CATEGORY_COUNTS = "context_category_counts"
CONTEXT_AGE_SECONDS = "context_age_seconds"
DEFAULT_SESSION_VIEWS = 8  # views per session an example and the model keep
# 1 on a train example whose context PseudoContextAugmenter derived from its label (the Trainer
# validates with logged contexts only); not in the schema, so Transform and the model never see it.
PSEUDO_CONTEXT = "pseudo_context"
EXAMPLE_USER_ID = USER_ID


def demographic_feature(column: str) -> str:
    """Names the example feature holding a demographic column, so user columns cannot clash."""
    return f"demo_{column}"


# ---- Splits. ----
TRAIN = "train"
EVAL = "eval"
SPLITS = (TRAIN, EVAL)

# ---- Item tower inputs of the exported `embed_items` signature (raw item features). ----
ITEM_CATEGORIES = "item_categories"
ITEM_CONFIDENCES = "item_confidences"

# ---- Exported signatures and their outputs. ----
SIGNATURE_ENCODE_HISTORY = "encode_history"
SIGNATURE_CONTEXT_HEAD = "context_head"
SIGNATURE_EMBED_ITEMS = "embed_items"
SIGNATURE_SERVING_DEFAULT = "serving_default"
HISTORY_STATE = "history_state"
USER_EMBEDDING = "user_embedding"
# The score's exact category boosts beside the user embedding (trainer/score_priors.py): keys
# (transform/category_keys.py; 0 = none) and weights in score units, added to q·v of the items
# whose primary category has that key.
BOOST_KEYS = "boost_keys"
BOOST_WEIGHTS = "boost_weights"
ITEM_EMBEDDING = "item_embedding"

# ---- Vocabularies written by the tf.Transform preprocessing_fn. ----
ITEM_VOCABULARY = "item_id"
CATEGORY_VOCABULARY = "category"
LABEL_FREQUENCY_VOCABULARY = "label_item_frequency"


def demographic_vocabulary(column: str) -> str:
  return f"demographic_{column}"

"""ctxrec: contextual sequential two-tower retrieval as a TFX pipeline."""
import os

# TFRS 0.7.7 and TFX 1.16 need Keras 2: tf-keras must be selected before TensorFlow loads.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

__version__ = "0.1.0"


# KFP v2 finds a custom artifact type by its TYPE_NAME read as an import path
# (`ctxrec.HistoryStates`), so the types are attributes of this package, loaded on first use.
_ARTIFACT_TYPES = {"HistoryStates": "ctxrec.components.history_states",
                   "PublishedStates": "ctxrec.components.state_publisher.component",
                   "CatalogIndex": "ctxrec.components.index_builder.component"}


def __getattr__(name: str):
  if name in _ARTIFACT_TYPES:
    import importlib  # pylint: disable=g-import-not-at-top
    return getattr(importlib.import_module(_ARTIFACT_TYPES[name]), name)
  raise AttributeError(f"module 'ctxrec' has no attribute {name!r}")

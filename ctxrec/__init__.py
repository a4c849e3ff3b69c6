"""ctxrec: contextual sequential two-tower retrieval as a TFX pipeline."""
import os

# TFRS 0.7.7 and TFX 1.16 need Keras 2: tf-keras must be selected before TensorFlow loads.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

__version__ = "0.1.0"

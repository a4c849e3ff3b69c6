"""The tiny pipeline's Transform graph and augmented train examples, for the trainer tests."""
import glob
import os

import pytest
import tensorflow_transform as tft


@pytest.fixture(scope="module")
def tft_output(tiny_output):
  return tft.TFTransformOutput(tiny_output("Transform", "transform_graph"))


@pytest.fixture(scope="module")
def train_files(tiny_output):
  return glob.glob(os.path.join(tiny_output("PseudoContextAugmenter", "augmented_examples"),
                                "Split-train", "*.gz"))

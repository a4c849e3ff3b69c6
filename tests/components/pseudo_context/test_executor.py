"""The executor end to end on hand-built Examples: eval untouched, train gets pseudo-context."""
import collections
import json
import math
import os
from typing import Dict, List, Tuple

import pytest
import tensorflow as tf
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from ctxrec.components.pseudo_context import spec_keys as keys
from ctxrec.components.pseudo_context.config import MODE_ITEM, PseudoContextConfig
from ctxrec.components.pseudo_context.executor import SUMMARY_FILE, Executor
from ctxrec.transform import features as f

CATEGORIES = ("c0", "c1", "c2", "c3")
LABEL_COUNTS = {"pop": 300, "mid": 150, "rare": 10}  # per category: popularity as a label
SOLO = ("solo_item", "solo", 50)  # a category with a single item: nothing to substitute
TRAIN_FILES = 2


def _item(item_id: str, category: str) -> Tuple[List[str], List[float]]:
  return [category, f"sec_{item_id}", "shared"], [0.9, 0.3, 0.05]


def _catalog() -> Dict[str, Tuple[List[str], List[float]]]:
  catalog = {f"{c}_{name}": _item(f"{c}_{name}", c) for c in CATEGORIES for name in LABEL_COUNTS}
  catalog[SOLO[0]] = _item(SOLO[0], SOLO[1])
  return catalog


def _labels() -> List[str]:
  labels = [f"{c}_{name}" for c in CATEGORIES for name, n in LABEL_COUNTS.items()
            for _ in range(n)]
  return labels + [SOLO[0]] * SOLO[2]


def _bytes(values) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))


def _floats(values) -> tf.train.Feature:
  return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def _example(index: int, label: str, context: List[str]) -> bytes:
  catalog = _catalog()
  categories, confidences = catalog[label]
  context_categories, context_confidences = catalog[context[0]] if context else ([], [])
  feature = {
      f.EXAMPLE_USER_ID: _bytes([f"u{index}"]),
      f.LABEL_ITEM_ID: _bytes([label]),
      f.LABEL_CATEGORIES: _bytes(categories),
      f.LABEL_CONFIDENCES: _floats(confidences),
      f.LABEL_TIMESTAMP: tf.train.Feature(int64_list=tf.train.Int64List(value=[index])),
      f.CONTEXT_ITEM_ID: _bytes(context),
      f.CONTEXT_CATEGORIES: _bytes(context_categories),
      f.CONTEXT_CONFIDENCES: _floats(context_confidences),
  }
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _write(path: str, records: List[bytes]) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with tf.io.TFRecordWriter(path, options="GZIP") as writer:
    for record in records:
      writer.write(record)


def _read(split_dir: str) -> List[bytes]:
  files = sorted(tf.io.gfile.glob(os.path.join(split_dir, "*.gz")))
  return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> standard_artifacts.Examples:
  """Input Examples as SequenceExampleGen writes them: train without context, eval with it."""
  uri = str(tmp_path_factory.mktemp("input"))
  train = [_example(i, label, []) for i, label in enumerate(_labels())]
  for part in range(TRAIN_FILES):
    _write(os.path.join(uri, f"Split-{f.TRAIN}", f"data_tfrecord-{part:05d}-of-00002.gz"),
           train[part::TRAIN_FILES])
  _write(os.path.join(uri, f"Split-{f.EVAL}", "data_tfrecord-00000-of-00001.gz"),
         [_example(i, "c0_mid", ["c0_pop"] if i % 2 else []) for i in range(20)])
  artifact = standard_artifacts.Examples()
  artifact.uri = uri
  artifact.split_names = artifact_utils.encode_split_names(list(f.SPLITS))
  return artifact


def _run(source, out_dir: str, config: PseudoContextConfig) -> standard_artifacts.Examples:
  output = standard_artifacts.Examples()
  output.uri = out_dir
  exec_properties = {keys.RATE: config.rate, keys.P_SUBSTITUTE: config.p_substitute,
                     keys.CONFIDENCE_JITTER: config.confidence_jitter,
                     keys.P_DROP_SECONDARY: config.p_drop_secondary, keys.MODE: config.mode,
                     keys.SEED: config.seed}
  Executor().Do({keys.EXAMPLES: [source]}, {keys.AUGMENTED_EXAMPLES: [output]}, exec_properties)
  return output


def _parsed(output, split: str) -> List[Dict[str, list]]:
  parsed = []
  for record in _read(artifact_utils.get_split_uri([output], split)):
    feature = tf.train.Example.FromString(record).features.feature
    parsed.append({name: list(value.bytes_list.value or value.float_list.value or
                              value.int64_list.value) for name, value in feature.items()})
  return parsed


@pytest.fixture(scope="module")
def default_run(source, tmp_path_factory):
  return _run(source, str(tmp_path_factory.mktemp("default")), PseudoContextConfig())


@pytest.fixture(scope="module")
def half_run(source, tmp_path_factory):
  config = PseudoContextConfig(rate=0.5, p_substitute=0.3, seed=3)
  return _run(source, str(tmp_path_factory.mktemp("half")), config)


@pytest.fixture(scope="module")
def item_run(source, tmp_path_factory):
  config = PseudoContextConfig(p_substitute=1.0, mode=MODE_ITEM)
  return _run(source, str(tmp_path_factory.mktemp("item")), config)


def test_eval_passes_through_byte_for_byte(source, default_run):
  source_dir = artifact_utils.get_split_uri([source], f.EVAL)
  output_dir = artifact_utils.get_split_uri([default_run], f.EVAL)
  assert sorted(_read(output_dir)) == sorted(_read(source_dir))
  assert artifact_utils.decode_split_names(default_run.split_names) == list(f.SPLITS)
  assert default_run.get_string_custom_property("file_format") == "tfrecords_gzip"
  assert default_run.get_string_custom_property("payload_format") == "FORMAT_TF_EXAMPLE"


def test_every_train_example_gets_context_shaped_like_real_context(default_run):
  catalog = _catalog()
  train = _parsed(default_run, f.TRAIN)
  assert len(train) == len(_labels())
  for example in train:
    label = example[f.LABEL_ITEM_ID][0].decode()
    categories = [c.decode() for c in example[f.CONTEXT_CATEGORIES]]
    confidences = example[f.CONTEXT_CONFIDENCES]
    assert example[f.CONTEXT_ITEM_ID] == []  # categories mode names no item
    assert categories and len(categories) == len(confidences)
    assert all(0.0 < w <= 1.0 for w in confidences)
    assert categories[0] == catalog[label][0][0]  # a substitute shares the label's primary
    assert any(set(categories) <= set(c) and c[0] == categories[0] for c, _ in catalog.values())


def test_counts_reach_the_properties_and_the_summary_file(default_run):
  with open(os.path.join(default_run.uri, SUMMARY_FILE)) as handle:
    summary = json.load(handle)
  assert summary["parameters"] == {"rate": 1.0, "p_substitute": 0.3, "confidence_jitter": 0.2,
                                   "p_drop_secondary": 0.3, "mode": "categories", "seed": 0}
  counts = summary["counts"]
  assert counts["examples"] == counts["augmented"] == len(_labels())
  assert 0 < counts["substituted"] < counts["augmented"] and counts["no_substitute"] > 0
  for name, value in counts.items():
    assert default_run.get_int_custom_property(name) == value


def _within(observed: int, n: int, p: float) -> bool:
  return abs(observed - n * p) <= 4 * math.sqrt(n * p * (1 - p))


def test_augmented_and_substituted_shares_match_the_rates(half_run):
  train = _parsed(half_run, f.TRAIN)
  with_context = sum(1 for e in train if e[f.CONTEXT_CATEGORIES])
  counts = {n: half_run.get_int_custom_property(n) for n in ("augmented", "substituted",
                                                             "no_substitute", "examples")}
  assert with_context == counts["augmented"]
  assert _within(counts["augmented"], counts["examples"], 0.5)
  drawn = counts["substituted"] + counts["no_substitute"]  # substitution drawn at p_substitute
  assert _within(drawn, counts["augmented"], 0.3)


def test_item_mode_substitutes_by_popularity_and_never_names_the_label(item_run):
  train = _parsed(item_run, f.TRAIN)
  chosen = collections.Counter()
  for example in train:
    label = example[f.LABEL_ITEM_ID][0].decode()
    context = [i.decode() for i in example[f.CONTEXT_ITEM_ID]]
    if label == SOLO[0]:
      assert context == []  # no other item in its category, and the label is never shown
      continue
    assert len(context) == 1 and context[0] != label
    assert context[0].split("_")[0] == label.split("_")[0]
    if label.endswith("_mid"):
      chosen[context[0].split("_")[1]] += 1
  assert chosen["pop"] > 10 * chosen["rare"]  # odds 300 : 10 by label counts
  assert item_run.get_int_custom_property("no_substitute") == SOLO[2]
  assert item_run.get_int_custom_property("substituted") == len(_labels()) - SOLO[2]


def test_input_without_train_split_is_refused(source, tmp_path):
  no_train = standard_artifacts.Examples()
  no_train.uri = source.uri
  no_train.split_names = artifact_utils.encode_split_names([f.EVAL])
  with pytest.raises(ValueError, match="no 'train' split"):
    _run(no_train, str(tmp_path), PseudoContextConfig())

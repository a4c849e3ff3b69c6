"""The executor end to end on hand-built Examples: eval untouched; train keeps its logged sessions
and gets pseudo-sessions elsewhere, in the shape fitted to those logged sessions."""
import collections
import dataclasses
import json
import math
import os
from typing import Dict, List, Tuple

import pytest
import tensorflow as tf
from tfx.types import artifact_utils
from tfx.types import standard_artifacts

from ctxrec.components import session_features
from ctxrec.components.pseudo_context import config as config_lib
from ctxrec.components.pseudo_context import pseudo_context as pc
from ctxrec.components.pseudo_context import spec_keys as keys
from ctxrec.components.pseudo_context.config import MODE_ITEM, PseudoContextConfig
from ctxrec.components.pseudo_context.executor import SUMMARY_FILE, Executor
from ctxrec.components.request_context import Context, View
from ctxrec.transform import features as f

CATEGORIES = ("c0", "c1", "c2", "c3")
LABEL_COUNTS = {"pop": 300, "mid": 150, "rare": 10}  # per category: popularity as a label
SOLO = ("solo_item", "solo", 50)  # a category with a single item: nothing to substitute
TRAIN_FILES = 2
# Train examples with a logged session, as (label, session items most recent first, how many):
# one view in another category; a sibling in the label's category (the label-derived view, at 0)
# then a view elsewhere; a view elsewhere, the label itself (at 1), a sibling.
OTHER = ("c0_mid", ("c1_pop",), 30)
SIBLING = ("c2_mid", ("c2_pop", "c1_mid"), 40)
ITSELF = ("c3_mid", ("c0_pop", "c3_mid", "c3_pop"), 30)
LOGGED = (OTHER, SIBLING, ITSELF)
REAL = sum(n for _, _, n in LOGGED)
GAP = 30  # seconds between the logged views (and before the first)
FIT_P_OTHER = OTHER[2] / REAL  # 0.3
FIT_P_SUBSTITUTE = SIBLING[2] / (SIBLING[2] + ITSELF[2])  # 4/7
FIT_LENGTHS = (OTHER[2] / REAL, SIBLING[2] / REAL, ITSELF[2] / REAL)  # lengths 1, 2, 3
FIT_POSITIONS = (SIBLING[2] / (SIBLING[2] + ITSELF[2]), ITSELF[2] / (SIBLING[2] + ITSELF[2]))
FIT_P_ON = ITSELF[2] / (SIBLING[2] + 2 * ITSELF[2])  # other views: SIBLING's off, ITSELF's 1 on


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


def _session(items) -> Context:
  catalog = _catalog()
  return Context(tuple(View(item, tuple(catalog[item][0]), tuple(catalog[item][1]), GAP * (n + 1))
                       for n, item in enumerate(items)))


def _example(index: int, label: str, context) -> bytes:
  categories, confidences = _catalog()[label]
  feature = {
      f.EXAMPLE_USER_ID: _bytes([f"u{index}"]),
      f.LABEL_ITEM_ID: _bytes([label]),
      f.LABEL_CATEGORIES: _bytes(categories),
      f.LABEL_CONFIDENCES: _floats(confidences),
      f.LABEL_TIMESTAMP: tf.train.Feature(int64_list=tf.train.Int64List(value=[index])),
      **session_features.session_features(_session(context)),
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


def _logged() -> List[bytes]:
  """The train examples with a logged context; user ids continue after _labels()'."""
  records, index = [], len(_labels())
  for label, context, n in LOGGED:
    for _ in range(n):
      records.append(_example(index, label, context))
      index += 1
  return records


def _source(uri: str, train: List[bytes]) -> standard_artifacts.Examples:
  for part in range(TRAIN_FILES):
    _write(os.path.join(uri, f"Split-{f.TRAIN}", f"data_tfrecord-{part:05d}-of-00002.gz"),
           train[part::TRAIN_FILES])
  _write(os.path.join(uri, f"Split-{f.EVAL}", "data_tfrecord-00000-of-00001.gz"),
         [_example(i, "c0_mid", ["c0_pop", "c1_pop"] if i % 2 else []) for i in range(20)])
  artifact = standard_artifacts.Examples()
  artifact.uri = uri
  artifact.split_names = artifact_utils.encode_split_names(list(f.SPLITS))
  return artifact


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> standard_artifacts.Examples:
  """Input Examples as SequenceExampleGen writes them: most train examples without a session,
  REAL of them with a logged one (enough to fit from), eval with or without."""
  assert REAL >= config_lib.MIN_REAL_CONTEXTS_TO_FIT
  train = [_example(i, label, []) for i, label in enumerate(_labels())] + _logged()
  return _source(str(tmp_path_factory.mktemp("input")), train)


@pytest.fixture(scope="module")
def few_logged_source(tmp_path_factory) -> standard_artifacts.Examples:
  """Too few logged sessions to fit from: the fallbacks apply."""
  few = config_lib.MIN_REAL_CONTEXTS_TO_FIT - 1
  train = [_example(i, label, []) for i, label in enumerate(_labels()[::10])]
  train += [_example(len(train) + i, ITSELF[0], ITSELF[1]) for i in range(few)]
  return _source(str(tmp_path_factory.mktemp("few")), train)


def _run(source, out_dir: str, config: PseudoContextConfig) -> standard_artifacts.Examples:
  output = standard_artifacts.Examples()
  output.uri = out_dir
  exec_properties = {keys.CONFIG: config.to_json()}
  Executor().Do({keys.EXAMPLES: [source]}, {keys.AUGMENTED_EXAMPLES: [output]}, exec_properties)
  return output


def _summary(output) -> dict:
  with open(os.path.join(output.uri, SUMMARY_FILE)) as handle:
    return json.load(handle)


def _parsed(output, split: str) -> List[Tuple[str, str, Context]]:
  """Each example of a split as (user id, label, session)."""
  parsed = []
  for record in _read(artifact_utils.get_split_uri([output], split)):
    example = tf.train.Example.FromString(record)
    feature = example.features.feature
    parsed.append((feature[f.EXAMPLE_USER_ID].bytes_list.value[0].decode(),
                   feature[f.LABEL_ITEM_ID].bytes_list.value[0].decode(),
                   session_features.read_session(example)))
  return parsed


def _without_logged_context(output) -> List[Tuple[str, str, Context]]:
  """The output train examples whose input had no logged session (user ids u0..)."""
  return [e for e in _parsed(output, f.TRAIN) if int(e[0][1:]) < len(_labels())]


@pytest.fixture(scope="module")
def default_run(source, tmp_path_factory):
  return _run(source, str(tmp_path_factory.mktemp("default")), PseudoContextConfig())


@pytest.fixture(scope="module")
def half_run(source, tmp_path_factory):
  config = PseudoContextConfig(rate=0.5, p_other_category=0.0, p_substitute=0.3, seed=3)
  return _run(source, str(tmp_path_factory.mktemp("half")), config)


@pytest.fixture(scope="module")
def item_run(source, tmp_path_factory):
  config = PseudoContextConfig(use_real_context=False, p_other_category=0.0, p_substitute=1.0,
                               session_lengths=(1.0,), mode=MODE_ITEM)
  return _run(source, str(tmp_path_factory.mktemp("item")), config)


def test_eval_passes_through_byte_for_byte(source, default_run):
  source_dir = artifact_utils.get_split_uri([source], f.EVAL)
  output_dir = artifact_utils.get_split_uri([default_run], f.EVAL)
  assert sorted(_read(output_dir)) == sorted(_read(source_dir))
  assert artifact_utils.decode_split_names(default_run.split_names) == list(f.SPLITS)
  assert default_run.get_string_custom_property("file_format") == "tfrecords_gzip"
  assert default_run.get_string_custom_property("payload_format") == "FORMAT_TF_EXAMPLE"


def test_logged_contexts_pass_through_byte_for_byte(source, default_run):
  output = collections.Counter(_read(artifact_utils.get_split_uri([default_run], f.TRAIN)))
  # The records as written (map fields serialize in no fixed order: rebuilding one may not
  # give the same bytes).
  logged = collections.Counter(
      r for r in _read(artifact_utils.get_split_uri([source], f.TRAIN))
      if tf.train.Example.FromString(r).features.feature[f.CONTEXT_CATEGORIES].bytes_list.value)
  assert sum(logged.values()) == REAL
  assert output & logged == logged  # every one, unchanged
  assert default_run.get_int_custom_property("real_context") == REAL


def _within(observed: int, n: int, p: float) -> bool:
  return abs(observed - n * p) <= 4 * math.sqrt(n * p * (1 - p))


def test_every_train_example_gets_a_session_shaped_like_the_logged_ones(default_run):
  catalog = _catalog()
  train = _without_logged_context(default_run)
  assert len(train) == len(_labels())
  lengths = collections.Counter()
  for _, label, session in train:
    ages = [view.seconds_ago for view in session.views]
    assert 1 <= len(ages) <= len(FIT_LENGTHS) and ages[0] >= 1
    assert all(b > a for a, b in zip(ages, ages[1:]))  # older with every position
    for view in session.views:
      assert view.item_id == ""  # categories mode names no item
      assert view.categories and len(view.categories) == len(view.confidences)
      assert all(0.0 < w <= 1.0 for w in view.confidences)
      assert any(set(view.categories) <= set(c) and c[0] == view.categories[0]
                 for c, _ in catalog.values())
    if label != SOLO[0]:  # the solo category has no sibling: its on-category views are skipped
      lengths[len(ages)] += 1
  assert sum(len(s.views) for _, _, s in train) == default_run.get_int_custom_property("views")
  for length, share in enumerate(FIT_LENGTHS, start=1):
    assert _within(lengths[length], sum(lengths.values()), share)


def test_summary_shows_parameters_fitted_to_the_logged_sessions(default_run):
  summary = _summary(default_run)
  logged = summary["logged_contexts"]
  padding = f.DEFAULT_SESSION_VIEWS
  gaps = [0] * pc.GAP_BINS
  gaps[pc.gap_bin(GAP)] = sum(len(items) * n for _, items, n in LOGGED)
  assert logged == {"real": REAL, "other_category": OTHER[2],
                    "same_category": SIBLING[2] + ITSELF[2], "substituted": SIBLING[2],
                    "lengths": [OTHER[2], SIBLING[2], ITSELF[2]] + [0] * (padding - 3),
                    "positions": [SIBLING[2], ITSELF[2]] + [0] * (padding - 2),
                    "on_category": ITSELF[2], "off_category": SIBLING[2] + ITSELF[2],
                    "gaps": gaps}
  parameters = dict(summary["parameters"])
  assert parameters.pop("p_other_category") == pytest.approx(FIT_P_OTHER)
  assert parameters.pop("p_substitute") == pytest.approx(FIT_P_SUBSTITUTE)
  assert parameters.pop("session_lengths") == pytest.approx(list(FIT_LENGTHS))
  assert parameters.pop("label_positions") == pytest.approx(list(FIT_POSITIONS))
  assert parameters.pop("p_on_category") == pytest.approx(FIT_P_ON)
  assert parameters.pop("view_gap_seconds") == pytest.approx(GAP, rel=0.1)
  expected = dataclasses.asdict(PseudoContextConfig())
  for name in config_lib.FITTED:
    del expected[name]
    assert f"{name} fitted" in summary["fitted_from"]
  assert parameters == expected  # nothing else changed by fitting
  assert f"{REAL} train examples" in summary["fitted_from"]
  counts = summary["counts"]
  assert set(counts) == {"examples", "real_context", "augmented", "other_category",
                         "substituted", "no_substitute", "views", "on_category_views"}
  assert counts["examples"] == len(_labels()) + REAL
  assert counts["real_context"] == REAL and counts["augmented"] == len(_labels())
  for name, value in counts.items():
    assert default_run.get_int_custom_property(name) == value


def test_pseudo_sessions_follow_the_fitted_rates(default_run):
  counts = _summary(default_run)["counts"]
  assert _within(counts["other_category"], counts["augmented"], FIT_P_OTHER)
  same_category = counts["augmented"] - counts["other_category"]
  drawn = counts["substituted"] + counts["no_substitute"]  # substitution drawn at p_substitute
  assert _within(drawn, same_category, FIT_P_SUBSTITUTE)
  assert counts["no_substitute"] > 0  # the solo category has nothing to substitute
  others = counts["views"] - counts["augmented"]  # views besides the label-derived one
  assert others > 0.8 * counts["augmented"]  # mean fitted length 2, few views skipped
  assert _within(counts["on_category_views"], others, FIT_P_ON)


def test_explicit_rates_are_kept_against_the_logged_sessions(half_run):
  summary = _summary(half_run)
  assert summary["parameters"]["p_other_category"] == 0.0
  assert summary["parameters"]["p_substitute"] == 0.3
  assert "p_other_category set in the config" in summary["fitted_from"]
  assert "p_substitute set in the config" in summary["fitted_from"]
  assert "session_lengths fitted" in summary["fitted_from"]
  train = _without_logged_context(half_run)
  with_context = sum(1 for _, _, session in train if session.views)
  counts = summary["counts"]
  assert counts["real_context"] == REAL and counts["other_category"] == 0
  assert with_context == counts["augmented"]
  assert _within(counts["augmented"], len(_labels()), 0.5)
  drawn = counts["substituted"] + counts["no_substitute"]
  assert _within(drawn, counts["augmented"], 0.3)


def test_without_real_context_every_example_gets_a_pseudo_session(item_run):
  train = _parsed(item_run, f.TRAIN)
  chosen = collections.Counter()
  for _, label, session in train:
    ids = [view.item_id for view in session.views]
    if label == SOLO[0]:
      assert ids == [""]  # no other item in its category, and the label is never shown
      continue
    # Logged sessions too are replaced: ITSELF's named the label, OTHER's another category;
    # now each is one view of a sibling of the label (session_lengths set to one view).
    assert len(ids) == 1 and ids[0] != label
    assert ids[0].split("_")[0] == label.split("_")[0]
    if label.endswith("_mid"):
      chosen[ids[0].split("_")[1]] += 1
  assert chosen["pop"] > 10 * chosen["rare"]  # odds 300 : 10 by label counts
  total = len(_labels()) + REAL
  assert len(train) == total
  assert item_run.get_int_custom_property("real_context") == 0
  assert item_run.get_int_custom_property("augmented") == total
  assert item_run.get_int_custom_property("no_substitute") == SOLO[2]
  assert item_run.get_int_custom_property("substituted") == total - SOLO[2]


def test_too_few_logged_sessions_give_one_view_sessions(few_logged_source, tmp_path):
  output = _run(few_logged_source, str(tmp_path), PseudoContextConfig())
  summary = _summary(output)
  few = config_lib.MIN_REAL_CONTEXTS_TO_FIT - 1
  assert summary["logged_contexts"]["real"] == few
  parameters = summary["parameters"]
  for name in config_lib.FITTED:
    expected = config_lib.FALLBACKS[name]
    assert parameters[name] == (list(expected) if isinstance(expected, tuple) else expected)
    assert f"{name} a fallback" in summary["fitted_from"]
  assert f"{few} train examples" in summary["fitted_from"]
  counts = summary["counts"]
  assert counts["real_context"] == few and counts["views"] == counts["augmented"]
  lengths = collections.Counter(len(s.views) for _, _, s in _parsed(output, f.TRAIN))
  assert lengths == {1: counts["augmented"], len(ITSELF[1]): few}  # pseudo: the label view


def test_input_without_train_split_is_refused(source, tmp_path):
  no_train = standard_artifacts.Examples()
  no_train.uri = source.uri
  no_train.split_names = artifact_utils.encode_split_names([f.EVAL])
  with pytest.raises(ValueError, match="no 'train' split"):
    _run(no_train, str(tmp_path), PseudoContextConfig())

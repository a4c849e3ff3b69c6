"""Pseudo-context for one example: popularity draws, substitution rules, perturbation, config."""
import collections

import numpy as np
import pytest
import tensorflow as tf

from ctxrec.components.pseudo_context import pseudo_context as pc
from ctxrec.components.pseudo_context.config import MODE_ITEM, PseudoContextConfig
from ctxrec.transform import features as f

SHOES = pc.Item(b"shoe", (b"shoes", b"running", b"sale"), (0.9, 0.4, 0.2))
POOL = pc.CategoryPool([(pc.Item(b"a", (b"shoes",), (0.9,)), 90),
                        (pc.Item(b"b", (b"shoes",), (0.8,)), 9),
                        (pc.Item(b"c", (b"shoes",), (0.7,)), 1)])


def _draws(pool, exclude, n=4000):
  rng = np.random.default_rng(1)
  return collections.Counter(pool.draw(exclude, rng).item_id for _ in range(n))


def test_draw_follows_popularity_and_never_returns_the_excluded_item():
  draws = _draws(POOL, b"c")
  assert set(draws) == {b"a", b"b"}
  assert abs(draws[b"a"] / 4000 - 90 / 99) < 0.02
  draws = _draws(POOL, b"a")
  assert set(draws) == {b"b", b"c"}
  assert abs(draws[b"b"] / 4000 - 0.9) < 0.02
  assert set(_draws(POOL, b"unknown")) == {b"a", b"b", b"c"}


def test_draw_finds_nothing_when_the_category_has_no_other_item():
  pool = pc.CategoryPool([(SHOES, 5)])
  assert pool.draw(b"shoe", np.random.default_rng(0)) is None
  assert pc.CategoryPool([]).draw(b"shoe", np.random.default_rng(0)) is None


def test_item_mode_with_certain_substitution_never_names_the_label():
  config = PseudoContextConfig(p_substitute=1.0, mode=MODE_ITEM)
  rng = np.random.default_rng(0)
  label = pc.Item(b"b", (b"shoes",), (0.8,))
  for _ in range(200):
    context, outcome = pc.pseudo_context(label, POOL, config, rng)
    assert context.item_ids in ((b"a",), (b"c",)) and outcome.substituted
  context, outcome = pc.pseudo_context(SHOES, None, config, rng)
  assert context.item_ids == () and context.categories[0] == b"shoes"
  assert outcome == pc.Outcome(augmented=True, no_substitute=True)


def test_categories_mode_never_names_an_item():
  rng = np.random.default_rng(0)
  for p_substitute in (0.0, 1.0):
    context, _ = pc.pseudo_context(SHOES, POOL, PseudoContextConfig(p_substitute=p_substitute),
                                   rng)
    assert context.item_ids == ()


def test_perturb_keeps_the_primary_and_clips_confidences():
  rng = np.random.default_rng(0)
  exact = PseudoContextConfig(confidence_jitter=0.0, p_drop_secondary=0.0)
  assert pc.perturb(SHOES, exact, rng) == (SHOES.categories, SHOES.confidences)
  categories, confidences = pc.perturb(SHOES, PseudoContextConfig(p_drop_secondary=1.0), rng)
  assert categories == (b"shoes",) and len(confidences) == 1
  wild = PseudoContextConfig(confidence_jitter=5.0, p_drop_secondary=0.0)
  values = np.concatenate([pc.perturb(SHOES, wild, rng)[1] for _ in range(200)])
  assert values.min() == pc.MIN_CONFIDENCE and values.max() == pc.MAX_CONFIDENCE


def _serialized(label_id: bytes = b"shoe") -> bytes:
  feature = {
      f.LABEL_ITEM_ID: tf.train.Feature(bytes_list=tf.train.BytesList(value=[label_id])),
      f.LABEL_CATEGORIES: tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"shoes"])),
      f.LABEL_CONFIDENCES: tf.train.Feature(float_list=tf.train.FloatList(value=[0.9])),
  }
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def test_augment_is_fixed_by_seed_and_bytes():
  pools = {b"shoes": POOL}
  config = PseudoContextConfig(p_substitute=0.5, mode=MODE_ITEM)
  runs = [pc.augment(_serialized(bytes([i])), pools, config)[0] for i in range(50)]
  again = [pc.augment(_serialized(bytes([i])), pools, config)[0] for i in range(50)]
  other = PseudoContextConfig(p_substitute=0.5, mode=MODE_ITEM, seed=1)
  reseeded = [pc.augment(_serialized(bytes([i])), pools, other)[0] for i in range(50)]
  assert runs == again and runs != reseeded


def test_augment_leaves_an_example_without_label_untouched():
  serialized = tf.train.Example().SerializeToString()
  assert pc.augment(serialized, {}, PseudoContextConfig()) == (serialized, pc.Outcome())


@pytest.mark.parametrize("field, value, hint", [
    ("rate", 1.5, "rate is a probability"), ("p_substitute", -0.1, "p_substitute"),
    ("p_drop_secondary", float("nan"), "p_drop_secondary"),
    ("confidence_jitter", -1.0, "confidence_jitter"), ("mode", "items", "mode must be one of"),
    ("seed", 1.5, "seed must be an integer")])
def test_invalid_config_says_what_to_fix(field, value, hint):
  with pytest.raises(ValueError, match=hint):
    PseudoContextConfig(**{field: value})

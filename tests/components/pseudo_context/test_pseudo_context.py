"""Pseudo-context for one example: popularity draws, draws from other categories, substitution
rules, perturbation, logged contexts, fitting to their statistics, config."""
import collections
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from ctxrec.components.pseudo_context import config as config_lib
from ctxrec.components.pseudo_context import pseudo_context as pc
from ctxrec.components.pseudo_context.config import MODE_ITEM, PseudoContextConfig
from ctxrec.transform import features as f

SHOES = pc.Item(b"shoe", (b"shoes", b"running", b"sale"), (0.9, 0.4, 0.2))
POOL = pc.CategoryPool([(pc.Item(b"a", (b"shoes",), (0.9,)), 90),
                        (pc.Item(b"b", (b"shoes",), (0.8,)), 9),
                        (pc.Item(b"c", (b"shoes",), (0.7,)), 1)])  # 100 shoe labels
HATS = pc.CategoryPool([(pc.Item(b"h1", (b"hats",), (0.9,)), 200),
                        (pc.Item(b"h2", (b"hats", b"sale"), (0.9, 0.1)), 100)])  # 300
BAGS = pc.CategoryPool([(pc.Item(b"bag", (b"bags",), (0.9,)), 100)])  # 100
SHOES_ONLY = pc.LabelPools([(b"shoes", POOL)])
ALL = pc.LabelPools([(b"hats", HATS), (b"shoes", POOL), (b"bags", BAGS)])
# Probabilities set explicitly: nothing left to fit.
EXACT = PseudoContextConfig(p_other_category=0.0, p_substitute=0.0)


def _config(**overrides) -> PseudoContextConfig:
  return dataclasses.replace(EXACT, **overrides)


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


def _other_draws(pools, category, n=8000):
  rng = np.random.default_rng(2)
  return collections.Counter(pools.draw_other(category, rng).item_id for _ in range(n))


@pytest.mark.parametrize("category, expected", [
    # label counts: shoes 100 (a 90, b 9, c 1), hats 300 (h1 200, h2 100), bags 100
    (b"shoes", {b"h1": 200 / 400, b"h2": 100 / 400, b"bag": 100 / 400}),
    (b"hats", {b"a": 90 / 200, b"b": 9 / 200, b"c": 1 / 200, b"bag": 100 / 200}),
    (b"bags", {b"a": 90 / 400, b"b": 9 / 400, b"c": 1 / 400, b"h1": 200 / 400,
               b"h2": 100 / 400}),
    (b"unknown", {b"a": 90 / 500, b"b": 9 / 500, b"c": 1 / 500, b"h1": 200 / 500,
                  b"h2": 100 / 500, b"bag": 100 / 500})])
def test_draw_other_skips_the_label_category_and_follows_label_counts(category, expected):
  n = 8000
  draws = _other_draws(ALL, category, n)
  assert set(draws) <= set(expected)  # never an item of the label's own category
  for item_id, share in expected.items():
    assert abs(draws[item_id] / n - share) <= 4 * np.sqrt(share * (1 - share) / n) + 1e-3


def test_draw_other_finds_nothing_without_another_category():
  rng = np.random.default_rng(0)
  assert SHOES_ONLY.draw_other(b"shoes", rng) is None
  assert pc.LabelPools([]).draw_other(b"shoes", rng) is None
  assert SHOES_ONLY.draw_other(b"hats", rng).categories[0] == b"shoes"
  assert ALL.get(b"hats") is HATS and ALL.get(b"unknown") is None


def test_certain_other_category_always_shows_another_primary_category():
  rng = np.random.default_rng(0)
  config = _config(p_other_category=1.0, mode=MODE_ITEM)
  primaries = collections.Counter()
  for _ in range(300):
    context, outcome = pc.pseudo_context(SHOES, ALL, config, rng)
    assert outcome == pc.Outcome(augmented=True, other_category=True)
    assert context.categories[0] != SHOES.categories[0]
    assert len(context.item_ids) == 1
    assert ALL.get(context.categories[0]) is not None
    primaries[context.categories[0]] += 1
  assert primaries[b"hats"] > primaries[b"bags"]  # 300 : 100 by label counts


def test_other_category_without_another_category_falls_back_to_the_label_category():
  rng = np.random.default_rng(0)
  context, outcome = pc.pseudo_context(SHOES, SHOES_ONLY, _config(p_other_category=1.0), rng)
  assert context.categories[0] == b"shoes" and outcome == pc.Outcome(augmented=True)


def test_other_category_and_substitution_follow_their_probabilities():
  rng = np.random.default_rng(5)
  config = _config(p_other_category=0.3, p_substitute=0.5)
  n = 4000
  outcomes = collections.Counter()
  for _ in range(n):
    _, outcome = pc.pseudo_context(pc.Item(b"b", (b"shoes",), (0.8,)), ALL, config, rng)
    outcomes[(outcome.other_category, outcome.substituted)] += 1
  # other category 0.3; else substitution with 0.5: 0.35; else the label: 0.35
  for key, share in {(True, False): 0.3, (False, True): 0.35, (False, False): 0.35}.items():
    assert abs(outcomes[key] / n - share) < 4 * np.sqrt(share * (1 - share) / n)


def test_item_mode_with_certain_substitution_never_names_the_label():
  config = _config(p_substitute=1.0, mode=MODE_ITEM)
  rng = np.random.default_rng(0)
  label = pc.Item(b"b", (b"shoes",), (0.8,))
  for _ in range(200):
    context, outcome = pc.pseudo_context(label, SHOES_ONLY, config, rng)
    assert context.item_ids in ((b"a",), (b"c",)) and outcome.substituted
  context, outcome = pc.pseudo_context(pc.Item(b"h", (b"hats",), (0.9,)), SHOES_ONLY, config,
                                       rng)
  assert context.item_ids == () and context.categories[0] == b"hats"
  assert outcome == pc.Outcome(augmented=True, no_substitute=True)


def test_categories_mode_never_names_an_item():
  rng = np.random.default_rng(0)
  for p_other, p_substitute in ((0.0, 0.0), (0.0, 1.0), (1.0, 0.0)):
    context, _ = pc.pseudo_context(SHOES, ALL, _config(p_other_category=p_other,
                                                       p_substitute=p_substitute), rng)
    assert context.item_ids == ()


@pytest.mark.parametrize("unfitted", [
    PseudoContextConfig(), PseudoContextConfig(p_substitute=0.3),
    PseudoContextConfig(p_other_category=0.1)])
def test_pseudo_context_refuses_an_unfitted_config(unfitted):
  assert not unfitted.fitted
  with pytest.raises(ValueError, match="fit"):
    pc.pseudo_context(SHOES, ALL, unfitted, np.random.default_rng(0))


def test_perturb_keeps_the_primary_and_clips_confidences():
  rng = np.random.default_rng(0)
  exact = PseudoContextConfig(confidence_jitter=0.0, p_drop_secondary=0.0)
  assert pc.perturb(SHOES, exact, rng) == (SHOES.categories, SHOES.confidences)
  categories, confidences = pc.perturb(SHOES, PseudoContextConfig(p_drop_secondary=1.0), rng)
  assert categories == (b"shoes",) and len(confidences) == 1
  wild = PseudoContextConfig(confidence_jitter=5.0, p_drop_secondary=0.0)
  values = np.concatenate([pc.perturb(SHOES, wild, rng)[1] for _ in range(200)])
  assert values.min() == pc.MIN_CONFIDENCE and values.max() == pc.MAX_CONFIDENCE


def _bytes(*values: bytes) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _serialized(label_id: bytes = b"shoe", label_category: bytes = b"shoes",
                context: pc.Item = None) -> bytes:
  feature = {
      f.LABEL_ITEM_ID: _bytes(label_id),
      f.LABEL_CATEGORIES: _bytes(label_category),
      f.LABEL_CONFIDENCES: tf.train.Feature(float_list=tf.train.FloatList(value=[0.9])),
      # SequenceExampleGen writes the context features always, empty when there is none.
      f.CONTEXT_ITEM_ID: _bytes(*([context.item_id] if context else [])),
      f.CONTEXT_CATEGORIES: _bytes(*(context.categories if context else ())),
      f.CONTEXT_CONFIDENCES: tf.train.Feature(float_list=tf.train.FloatList(
          value=context.confidences if context else ())),
  }
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _context(serialized: bytes) -> pc.Context:
  feature = tf.train.Example.FromString(serialized).features.feature
  return pc.Context(tuple(feature[f.CONTEXT_ITEM_ID].bytes_list.value),
                    tuple(feature[f.CONTEXT_CATEGORIES].bytes_list.value),
                    tuple(feature[f.CONTEXT_CONFIDENCES].float_list.value))


LOGGED_HAT = pc.Item(b"h1", (b"hats", b"sale"), (0.75, 0.25))


def test_augment_is_fixed_by_seed_and_bytes():
  config = _config(p_other_category=0.3, p_substitute=0.5, mode=MODE_ITEM)
  runs = [pc.augment(_serialized(bytes([i])), ALL, config)[0] for i in range(50)]
  again = [pc.augment(_serialized(bytes([i])), ALL, config)[0] for i in range(50)]
  reseeded = [pc.augment(_serialized(bytes([i])), ALL, dataclasses.replace(config, seed=1))[0]
              for i in range(50)]
  assert runs == again and runs != reseeded


def test_augment_leaves_an_example_without_label_untouched():
  serialized = tf.train.Example().SerializeToString()
  assert pc.augment(serialized, pc.LabelPools([]), EXACT) == (serialized, pc.Outcome())


def test_augment_keeps_a_logged_context_byte_for_byte():
  serialized = _serialized(context=LOGGED_HAT)
  # Even a config that would rewrite every context leaves a logged one alone, unfitted or not.
  for config in (_config(p_other_category=1.0, mode=MODE_ITEM), PseudoContextConfig()):
    augmented, outcome = pc.augment(serialized, ALL, config)
    assert augmented == serialized
    assert outcome == pc.Outcome(real_context=True)
  assert pc.read_context(tf.train.Example.FromString(serialized)) == pc.Item(
      b"h1", (b"hats", b"sale"), (0.75, 0.25))


def test_augment_replaces_a_logged_context_unless_told_to_use_it():
  serialized = _serialized(label_id=b"b", context=pc.Item(b"b", (b"shoes",), (0.8,)))
  config = _config(use_real_context=False, p_substitute=1.0, mode=MODE_ITEM)
  augmented, outcome = pc.augment(serialized, SHOES_ONLY, config)
  assert outcome == pc.Outcome(augmented=True, substituted=True)
  context = _context(augmented)
  assert context.item_ids in ((b"a",), (b"c",)) and context.categories == (b"shoes",)


def _marked_pseudo(serialized: bytes) -> bool:
  feature = tf.train.Example.FromString(serialized).features.feature
  return list(feature[f.PSEUDO_CONTEXT].int64_list.value) == [1]


def test_only_a_derived_context_is_marked_pseudo():
  derived, _ = pc.augment(_serialized(), ALL, _config(mode=MODE_ITEM))
  logged, _ = pc.augment(_serialized(context=LOGGED_HAT), ALL, _config(mode=MODE_ITEM))
  cleared, _ = pc.augment(_serialized(context=LOGGED_HAT), ALL,
                          _config(use_real_context=False, rate=0.0))
  assert _marked_pseudo(derived)
  assert not _marked_pseudo(logged) and not _marked_pseudo(cleared)


def test_a_logged_context_left_without_pseudo_context_is_cleared():
  serialized = _serialized(context=LOGGED_HAT)
  augmented, outcome = pc.augment(serialized, ALL, _config(use_real_context=False, rate=0.0))
  assert outcome == pc.Outcome()
  assert _context(augmented) == pc.NO_CONTEXT
  assert pc.read_context(tf.train.Example.FromString(augmented)) is None


def test_an_example_without_context_and_without_pseudo_context_is_untouched():
  serialized = _serialized()
  assert pc.augment(serialized, ALL, _config(rate=0.0)) == (serialized, pc.Outcome())


@pytest.mark.parametrize("label, category, context, expected", [
    (b"shoe", b"shoes", None, pc.ContextStats()),
    (b"shoe", b"shoes", LOGGED_HAT, pc.ContextStats(real=1, other_category=1)),
    (b"shoe", b"shoes", pc.Item(b"a", (b"shoes",), (0.9,)),
     pc.ContextStats(real=1, same_category=1, substituted=1)),
    (b"shoe", b"shoes", pc.Item(b"shoe", (b"shoes", b"sale"), (0.9, 0.1)),
     pc.ContextStats(real=1, same_category=1)),
    # primary categories compared, not secondaries: a hat on sale is not a shoe on sale
    (b"h2", b"hats", pc.Item(b"h1", (b"hats",), (0.9,)),
     pc.ContextStats(real=1, same_category=1, substituted=1))])
def test_context_stats_classifies_a_logged_context(label, category, context, expected):
  assert pc.context_stats(_serialized(label, category, context)) == expected


def test_context_stats_add_up():
  total = sum([pc.ContextStats(1, 1, 0, 0), pc.ContextStats(1, 0, 1, 1),
               pc.ContextStats(1, 0, 1, 0)], pc.ContextStats())
  assert total == pc.ContextStats(real=3, other_category=1, same_category=2, substituted=1)


def test_fit_sets_the_shares_of_the_logged_contexts():
  stats = pc.ContextStats(real=200, other_category=50, same_category=150, substituted=60)
  fitted = pc.fit(PseudoContextConfig(rate=0.7, mode=MODE_ITEM, seed=4), stats)
  assert fitted.p_other_category == 50 / 200 and fitted.p_substitute == 60 / 150
  assert fitted == PseudoContextConfig(rate=0.7, mode=MODE_ITEM, seed=4, p_other_category=0.25,
                                       p_substitute=0.4)
  assert fitted.fitted


def test_fit_needs_enough_logged_contexts():
  minimum = config_lib.MIN_REAL_CONTEXTS_TO_FIT
  enough = pc.fit(PseudoContextConfig(), pc.ContextStats(minimum, minimum // 2,
                                                         minimum - minimum // 2, 1))
  assert enough.p_other_category == (minimum // 2) / minimum
  assert enough.p_substitute == 1 / (minimum - minimum // 2)
  for stats in (pc.ContextStats(),
                pc.ContextStats(minimum - 1, minimum // 2, minimum - 1 - minimum // 2, 1)):
    fallback = pc.fit(PseudoContextConfig(), stats)
    assert fallback.p_other_category == config_lib.FALLBACK_P_OTHER_CATEGORY
    assert fallback.p_substitute == config_lib.FALLBACK_P_SUBSTITUTE


def test_fit_falls_back_for_substitution_when_no_logged_context_shares_the_category():
  fitted = pc.fit(PseudoContextConfig(), pc.ContextStats(real=80, other_category=80))
  assert fitted.p_other_category == 1.0
  assert fitted.p_substitute == config_lib.FALLBACK_P_SUBSTITUTE


@pytest.mark.parametrize("stats", [
    pc.ContextStats(), pc.ContextStats(real=200, other_category=50, same_category=150,
                                       substituted=60)])
def test_fit_never_overrides_explicit_values(stats):
  explicit = PseudoContextConfig(p_other_category=0.0, p_substitute=1.0)  # 0.0 is a value
  assert pc.fit(explicit, stats) == explicit
  half = pc.fit(PseudoContextConfig(p_other_category=0.0), stats)
  assert half.p_other_category == 0.0 and half.p_substitute == pc.fit(
      PseudoContextConfig(), stats).p_substitute
  half = pc.fit(PseudoContextConfig(p_substitute=0.0), stats)
  assert half.p_substitute == 0.0 and half.p_other_category == pc.fit(
      PseudoContextConfig(), stats).p_other_category


@pytest.mark.parametrize("field, value, hint", [
    ("rate", 1.5, "rate is a probability"), ("p_substitute", -0.1, "p_substitute"),
    ("p_other_category", 1.5, "p_other_category"),
    ("p_other_category", float("nan"), "p_other_category"),
    ("p_drop_secondary", float("nan"), "p_drop_secondary"),
    ("confidence_jitter", -1.0, "confidence_jitter"), ("mode", "items", "mode must be one of"),
    ("seed", 1.5, "seed must be an integer")])
def test_invalid_config_says_what_to_fix(field, value, hint):
  with pytest.raises(ValueError, match=hint):
    PseudoContextConfig(**{field: value})

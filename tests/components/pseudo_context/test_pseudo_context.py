"""Pseudo-sessions for one example: popularity draws, draws from other categories, the label view's
substitution rules and perturbation, the shape of the session around it, logged sessions,
fitting to their statistics, config."""
import collections
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from ctxrec.components import session_features
from ctxrec.components.pseudo_context import config as config_lib
from ctxrec.components.pseudo_context import pseudo_context as pc
from ctxrec.components.pseudo_context.config import MODE_ITEM, PseudoContextConfig
from ctxrec.components.request_context import NO_CONTEXT, Context, View
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
# Every parameter set explicitly: nothing left to fit; one view, the label-derived one.
EXACT = PseudoContextConfig(p_other_category=0.0, p_substitute=0.0, session_lengths=(1.0,),
                            label_positions=(1.0,), p_on_category=0.0, view_gap_seconds=60.0)
MIN = config_lib.MIN_REAL_CONTEXTS_TO_FIT


def _config(**overrides) -> PseudoContextConfig:
  return dataclasses.replace(EXACT, **overrides)


def _draws(pool, exclude, n=4000):
  rng = np.random.default_rng(1)
  return collections.Counter(pool.draw(exclude, rng).item_id for _ in range(n))


def _within(observed: int, n: int, p: float) -> bool:
  return abs(observed - n * p) <= 4 * np.sqrt(n * p * (1 - p)) + 1


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


# ---- The label-derived view (a one-view session). ----

def _label_view(label, pools, config, rng):
  session, outcome = pc.pseudo_session(label, pools, config, rng)
  assert len(session.views) == 1 and outcome.views == 1
  return session.views[0], outcome._replace(views=0)


def test_certain_other_category_always_shows_another_primary_category():
  rng = np.random.default_rng(0)
  config = _config(p_other_category=1.0, mode=MODE_ITEM)
  primaries = collections.Counter()
  for _ in range(300):
    view, outcome = _label_view(SHOES, ALL, config, rng)
    assert outcome == pc.Outcome(augmented=True, other_category=True)
    assert view.categories[0] != "shoes" and view.item_id
    assert ALL.get(view.categories[0].encode()) is not None
    primaries[view.categories[0]] += 1
  assert primaries["hats"] > primaries["bags"]  # 300 : 100 by label counts


def test_other_category_without_another_category_falls_back_to_the_label_category():
  rng = np.random.default_rng(0)
  view, outcome = _label_view(SHOES, SHOES_ONLY, _config(p_other_category=1.0), rng)
  assert view.categories[0] == "shoes" and outcome == pc.Outcome(augmented=True)


def test_other_category_and_substitution_follow_their_probabilities():
  rng = np.random.default_rng(5)
  config = _config(p_other_category=0.3, p_substitute=0.5)
  n = 4000
  outcomes = collections.Counter()
  for _ in range(n):
    _, outcome = _label_view(pc.Item(b"b", (b"shoes",), (0.8,)), ALL, config, rng)
    outcomes[(outcome.other_category, outcome.substituted)] += 1
  # other category 0.3; else substitution with 0.5: 0.35; else the label: 0.35
  for key, share in {(True, False): 0.3, (False, True): 0.35, (False, False): 0.35}.items():
    assert abs(outcomes[key] / n - share) < 4 * np.sqrt(share * (1 - share) / n)


def test_item_mode_with_certain_substitution_never_names_the_label():
  config = _config(p_substitute=1.0, mode=MODE_ITEM)
  rng = np.random.default_rng(0)
  label = pc.Item(b"b", (b"shoes",), (0.8,))
  for _ in range(200):
    view, outcome = _label_view(label, SHOES_ONLY, config, rng)
    assert view.item_id in ("a", "c") and outcome.substituted
  view, outcome = _label_view(pc.Item(b"h", (b"hats",), (0.9,)), SHOES_ONLY, config, rng)
  assert view.item_id == "" and view.categories[0] == "hats"
  assert outcome == pc.Outcome(augmented=True, no_substitute=True)


def test_categories_mode_never_names_an_item():
  rng = np.random.default_rng(0)
  for p_other, p_substitute in ((0.0, 0.0), (0.0, 1.0), (1.0, 0.0)):
    view, _ = _label_view(SHOES, ALL, _config(p_other_category=p_other,
                                              p_substitute=p_substitute), rng)
    assert view.item_id == ""


@pytest.mark.parametrize("unfitted", [
    PseudoContextConfig(), PseudoContextConfig(p_substitute=0.3),
    PseudoContextConfig(p_other_category=0.1),
    dataclasses.replace(EXACT, session_lengths=None),
    dataclasses.replace(EXACT, view_gap_seconds=None)])
def test_pseudo_session_refuses_an_unfitted_config(unfitted):
  assert not unfitted.fitted
  with pytest.raises(ValueError, match="fit"):
    pc.pseudo_session(SHOES, ALL, unfitted, np.random.default_rng(0))


def test_perturb_keeps_the_primary_and_clips_confidences():
  rng = np.random.default_rng(0)
  exact = PseudoContextConfig(confidence_jitter=0.0, p_drop_secondary=0.0)
  assert pc.perturb(SHOES, exact, rng) == (SHOES.categories, SHOES.confidences)
  categories, confidences = pc.perturb(SHOES, PseudoContextConfig(p_drop_secondary=1.0), rng)
  assert categories == (b"shoes",) and len(confidences) == 1
  wild = PseudoContextConfig(confidence_jitter=5.0, p_drop_secondary=0.0)
  values = np.concatenate([pc.perturb(SHOES, wild, rng)[1] for _ in range(200)])
  assert values.min() == pc.MIN_CONFIDENCE and values.max() == pc.MAX_CONFIDENCE


# ---- The session around it. ----

def _sessions(config, label=SHOES, pools=ALL, n=2000, seed=7):
  rng = np.random.default_rng(seed)
  return [pc.pseudo_session(label, pools, config, rng) for _ in range(n)]


def test_session_lengths_follow_the_length_weights():
  shares = (0.2, 0.5, 0.0, 0.3)
  drawn = _sessions(_config(session_lengths=shares, p_on_category=0.5))
  lengths = collections.Counter(len(session.views) for session, _ in drawn)
  assert set(lengths) == {1, 2, 4}  # no empty pool here: no view skipped; never the 0 weight
  for length, share in enumerate(shares, start=1):
    assert _within(lengths[length], len(drawn), share)
  assert all(outcome.views == len(session.views) for session, outcome in drawn)


def test_the_label_view_sits_at_a_drawn_position_below_the_length():
  # In item mode, with neither other category nor substitution, only the label view names the
  # label (other views on its category are siblings, never the label).
  config = _config(session_lengths=(0.0, 0.0, 1.0), label_positions=(0.5, 0.0, 0.5, 1.0),
                   p_on_category=0.5, mode=MODE_ITEM)
  positions = collections.Counter()
  for session, _ in _sessions(config):
    ids = [view.item_id for view in session.views]
    assert len(ids) == 3 and ids.count("shoe") == 1
    positions[ids.index("shoe")] += 1
    label_view = session.views[ids.index("shoe")]
    assert label_view.categories[0] == "shoes" and set(label_view.categories) <= {
        "shoes", "running", "sale"}
  assert set(positions) == {0, 2}  # position 3's weight is beyond the length, 1 has none
  assert _within(positions[0], 2000, 0.5)
  single = _config(label_positions=(0.0, 1.0))  # a length-1 session: position 0, weight or not
  assert all(s.views[0].categories[0] == "shoes" for s, _ in _sessions(single, n=50))


def test_other_views_are_on_the_label_category_as_often_as_p_on_category():
  config = _config(session_lengths=(0.0, 0.0, 0.0, 1.0), p_on_category=0.25, mode=MODE_ITEM)
  on = others = 0
  for session, outcome in _sessions(config, n=1000):
    rest = [view for view in session.views if view.item_id != "shoe"]
    assert len(rest) == 3  # the label view once, three others
    on_category = [view for view in rest if view.categories[0] == "shoes"]
    assert {view.item_id for view in on_category} <= {"a", "b", "c"}  # siblings, not the label
    assert outcome.on_category_views == len(on_category)
    on, others = on + len(on_category), others + len(rest)
  assert _within(on, others, 0.25)


def test_ages_grow_with_position_by_the_gap():
  config = _config(session_lengths=(0.0, 0.0, 1.0), p_on_category=0.5, gap_jitter=0.0,
                   view_gap_seconds=30.0)
  session, _ = _sessions(config, n=1)[0]
  assert [view.seconds_ago for view in session.views] == [30, 60, 90]
  tiny = dataclasses.replace(config, view_gap_seconds=0.01)  # at least a second apart
  assert [v.seconds_ago for v in _sessions(tiny, n=1)[0][0].views] == [1, 2, 3]
  for session, _ in _sessions(dataclasses.replace(config, gap_jitter=1.5), n=300):
    ages = [view.seconds_ago for view in session.views]
    assert ages[0] >= 1 and all(b > a for a, b in zip(ages, ages[1:]))


def test_categories_mode_gives_every_view_an_empty_item_id():
  config = _config(session_lengths=(0.0, 0.0, 0.0, 1.0), p_on_category=0.5, p_substitute=0.5)
  for session, _ in _sessions(config, n=300):
    assert len(session.views) == 4
    assert all(view.item_id == "" and view.categories for view in session.views)
  augmented, _ = pc.augment(_serialized(), ALL, config)
  example = tf.train.Example.FromString(augmented)
  assert list(example.features.feature[f.CONTEXT_ITEM_ID].bytes_list.value) == [b""] * 4
  assert len(session_features.read_session(example).views) == 4


def test_views_that_cannot_be_drawn_are_skipped():
  # Off-category views need another category; on-category ones a sibling of the label.
  off = _config(session_lengths=(0.0, 0.0, 1.0), p_on_category=0.0)
  on = _config(session_lengths=(0.0, 0.0, 1.0), p_on_category=1.0)
  for config, label, pools in ((off, SHOES, SHOES_ONLY),
                               (on, pc.Item(b"bag", (b"bags",), (0.9,)), ALL)):
    for session, outcome in _sessions(config, label, pools, n=50):
      assert len(session.views) == 1 == outcome.views
      assert session.views[0].categories[0] == label.categories[0].decode()


# ---- Examples. ----

def _bytes(*values: bytes) -> tf.train.Feature:
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _view(item: pc.Item, seconds_ago: int = 30) -> View:
  return View(item.item_id.decode(), tuple(c.decode() for c in item.categories),
              item.confidences, seconds_ago)


def _session(*items: pc.Item, gap: int = 30) -> Context:
  return Context(tuple(_view(item, gap * (n + 1)) for n, item in enumerate(items)))


def _serialized(label_id: bytes = b"shoe", label_category: bytes = b"shoes",
                session: Context = NO_CONTEXT) -> bytes:
  feature = {
      f.LABEL_ITEM_ID: _bytes(label_id),
      f.LABEL_CATEGORIES: _bytes(label_category),
      f.LABEL_CONFIDENCES: tf.train.Feature(float_list=tf.train.FloatList(value=[0.9])),
      # SequenceExampleGen writes the session features always, empty when there is none.
      **session_features.session_features(session),
  }
  return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _read(serialized: bytes) -> Context:
  return session_features.read_session(tf.train.Example.FromString(serialized))


HAT = pc.Item(b"h1", (b"hats", b"sale"), (0.75, 0.25))
BAG = pc.Item(b"bag", (b"bags",), (0.9,))
A = pc.Item(b"a", (b"shoes",), (0.9,))
B = pc.Item(b"b", (b"shoes",), (0.8,))
LOGGED_HAT = _session(HAT)


def test_augment_is_fixed_by_seed_and_bytes():
  config = _config(p_other_category=0.3, p_substitute=0.5, mode=MODE_ITEM,
                   session_lengths=(0.3, 0.3, 0.4), label_positions=(0.5, 0.5),
                   p_on_category=0.5, gap_jitter=1.0)
  runs = [pc.augment(_serialized(bytes([i])), ALL, config)[0] for i in range(50)]
  again = [pc.augment(_serialized(bytes([i])), ALL, config)[0] for i in range(50)]
  reseeded = [pc.augment(_serialized(bytes([i])), ALL, dataclasses.replace(config, seed=1))[0]
              for i in range(50)]
  assert runs == again and runs != reseeded
  assert len({len(_read(r).views) for r in runs}) > 1  # the sessions do vary


def test_augment_draws_the_same_from_bytes_serialized_in_another_order():
  example = tf.train.Example.FromString(_serialized())
  reordered = tf.train.Example()
  for name in reversed(sorted(example.features.feature)):
    reordered.features.feature[name].CopyFrom(example.features.feature[name])
  config = _config(session_lengths=(0.3, 0.3, 0.4), p_on_category=0.5)
  assert (pc.augment(example.SerializeToString(), ALL, config)[0] ==
          pc.augment(reordered.SerializeToString(), ALL, config)[0])


def test_augment_leaves_an_example_without_label_untouched():
  serialized = tf.train.Example().SerializeToString()
  assert pc.augment(serialized, pc.LabelPools([]), EXACT) == (serialized, pc.Outcome())


def test_augment_keeps_a_logged_session_byte_for_byte():
  serialized = _serialized(session=_session(HAT, A))
  # Even a config that would rewrite every session leaves a logged one alone, unfitted or not.
  for config in (_config(p_other_category=1.0, mode=MODE_ITEM), PseudoContextConfig()):
    augmented, outcome = pc.augment(serialized, ALL, config)
    assert augmented == serialized
    assert outcome == pc.Outcome(real_context=True)
  assert [view.item_id for view in _read(serialized).views] == ["h1", "a"]


def test_augment_replaces_a_logged_session_unless_told_to_use_it():
  serialized = _serialized(label_id=b"b", session=_session(B, HAT))
  config = _config(use_real_context=False, p_substitute=1.0, mode=MODE_ITEM)
  augmented, outcome = pc.augment(serialized, SHOES_ONLY, config)
  assert outcome == pc.Outcome(augmented=True, substituted=True, views=1)
  (view,) = _read(augmented).views
  assert view.item_id in ("a", "c") and view.categories == ("shoes",)


def test_augment_refuses_context_features_that_disagree():
  example = tf.train.Example.FromString(_serialized(session=LOGGED_HAT))
  del example.features.feature[f.CONTEXT_CATEGORY_COUNTS]  # the single-view format of before
  with pytest.raises(ValueError, match="regenerate the examples with SequenceExampleGen"):
    pc.augment(example.SerializeToString(), ALL, EXACT)


def _marked_pseudo(serialized: bytes) -> bool:
  feature = tf.train.Example.FromString(serialized).features.feature
  return list(feature[f.PSEUDO_CONTEXT].int64_list.value) == [1]


def test_only_a_derived_session_is_marked_pseudo():
  derived, _ = pc.augment(_serialized(), ALL, _config(mode=MODE_ITEM))
  logged, _ = pc.augment(_serialized(session=LOGGED_HAT), ALL, _config(mode=MODE_ITEM))
  cleared, _ = pc.augment(_serialized(session=LOGGED_HAT), ALL,
                          _config(use_real_context=False, rate=0.0))
  assert _marked_pseudo(derived)
  assert not _marked_pseudo(logged) and not _marked_pseudo(cleared)


def test_a_logged_session_left_without_pseudo_session_is_cleared():
  serialized = _serialized(session=_session(HAT, A))
  augmented, outcome = pc.augment(serialized, ALL, _config(use_real_context=False, rate=0.0))
  assert outcome == pc.Outcome()
  assert _read(augmented) == NO_CONTEXT
  feature = tf.train.Example.FromString(augmented).features.feature
  assert all(not feature[name].WhichOneof("kind") or not getattr(
      feature[name], feature[name].WhichOneof("kind")).value
             for name in session_features.SESSION_FEATURES)


def test_an_example_without_session_and_without_pseudo_session_is_untouched():
  serialized = _serialized()
  assert pc.augment(serialized, ALL, _config(rate=0.0)) == (serialized, pc.Outcome())


# ---- Statistics of the logged sessions, and fitting to them. ----

def _gaps(*seconds: int) -> tuple:
  counts = [0] * pc.GAP_BINS
  for gap in seconds:
    counts[pc.gap_bin(gap)] += 1
  return tuple(counts)


def _hot(index: int, width: int = f.DEFAULT_SESSION_VIEWS) -> tuple:
  return tuple(int(i == index) for i in range(width))


SHOE = pc.Item(b"shoe", (b"shoes",), (0.9,))
# Four logged sessions of the label "shoe" (ages 30 s apart):
# the label at position 1 among a hat (off) and a sibling (on) ...
WITH_LABEL = _session(HAT, SHOE, A)
# ... a sibling only (the label-derived view, substituted) ...
SIBLING_ONLY = _session(A)
# ... nothing of the label's category ...
ELSEWHERE = _session(HAT, pc.Item(b"bag", (b"bags",), (0.9,)))
# ... two siblings: the most recent is the label-derived view, the other on-category.
TWO_SIBLINGS = _session(B, A)
SESSIONS = (WITH_LABEL, SIBLING_ONLY, ELSEWHERE, TWO_SIBLINGS)


@pytest.mark.parametrize("session, expected", [
    (NO_CONTEXT, pc.ContextStats()),
    (WITH_LABEL, pc.ContextStats(real=1, same_category=1, lengths=_hot(2), positions=_hot(1),
                                 on_category=1, off_category=1, gaps=_gaps(30, 30, 30))),
    (SIBLING_ONLY, pc.ContextStats(real=1, same_category=1, substituted=1, lengths=_hot(0),
                                   positions=_hot(0), gaps=_gaps(30))),
    (ELSEWHERE, pc.ContextStats(real=1, other_category=1, lengths=_hot(1), off_category=1,
                                gaps=_gaps(30, 30))),
    (TWO_SIBLINGS, pc.ContextStats(real=1, same_category=1, substituted=1, lengths=_hot(1),
                                   positions=_hot(0), on_category=1, gaps=_gaps(30, 30))),
    # primary categories compared, not secondaries: a hat on sale is not a shoe on sale
    (_session(pc.Item(b"x", (b"hats", b"shoes"), (0.9, 0.1))),
     pc.ContextStats(real=1, other_category=1, lengths=_hot(0), gaps=_gaps(30)))])
def test_context_stats_measure_a_logged_session(session, expected):
  assert pc.context_stats(_serialized(session=session)) == expected


def test_context_stats_read_the_first_session_views():
  long = _session(*([HAT] * 5 + [SHOE]))  # the label is the sixth view
  assert pc.context_stats(_serialized(session=long), 8).positions == _hot(5)
  short = pc.context_stats(_serialized(session=long), 3)
  assert short.lengths == (0, 0, 1) and short.other_category == 1 and short.positions == ()


def test_context_stats_add_up():
  total = sum([pc.ContextStats(1, 1, 0, 0, (1,), (), 0, 2, (1, 0)),
               pc.ContextStats(1, 0, 1, 1, (0, 1), (0, 1), 1, 0, (0, 0, 2))], pc.ContextStats())
  assert total == pc.ContextStats(real=2, other_category=1, same_category=1, substituted=1,
                                  lengths=(1, 1), positions=(0, 1), on_category=1,
                                  off_category=2, gaps=(1, 0, 2))


def _stats(sessions, copies: int) -> pc.ContextStats:
  return sum((pc.context_stats(_serialized(session=s)) for s in sessions for _ in range(copies)),
             pc.ContextStats())


def test_fit_sets_the_shape_of_the_logged_sessions():
  copies = MIN // len(SESSIONS) + 1
  fitted = pc.fit(PseudoContextConfig(rate=0.7, mode=MODE_ITEM, seed=4), _stats(SESSIONS, copies))
  assert fitted.fitted
  assert fitted.p_other_category == pytest.approx(1 / 4)  # ELSEWHERE
  assert fitted.p_substitute == pytest.approx(2 / 3)  # of the three with a label view
  assert fitted.session_lengths == pytest.approx((1 / 4, 2 / 4, 1 / 4))
  assert fitted.label_positions == pytest.approx((2 / 3, 1 / 3))
  assert fitted.p_on_category == pytest.approx(2 / 4)  # other views: 1 of 2, -, 0 of 1, 1 of 1
  assert fitted.view_gap_seconds == pytest.approx(30, rel=0.1)
  assert dataclasses.replace(fitted, **{name: None for name in config_lib.FITTED}) == (
      PseudoContextConfig(rate=0.7, mode=MODE_ITEM, seed=4))  # nothing else changed


def test_fitted_sessions_are_drawn_in_the_shape_of_the_logged_ones():
  fitted = pc.fit(PseudoContextConfig(mode=MODE_ITEM), _stats(SESSIONS, MIN))
  drawn = _sessions(fitted, pc.Item(b"b", (b"shoes",), (0.8,)), n=3000)
  lengths = collections.Counter(len(session.views) for session, _ in drawn)
  for length, share in ((1, 0.25), (2, 0.5), (3, 0.25)):
    assert _within(lengths[length], len(drawn), share)
  gaps = [s.views[0].seconds_ago for s, _ in drawn]
  assert 15 <= np.median(gaps) <= 60  # log-normal around the fitted 30 s


def test_fit_follows_the_median_gap():
  sessions = [_session(A, gap=gap) for gap in (5, 40, 40, 40, 2000)]
  fitted = pc.fit(PseudoContextConfig(), _stats(sessions, MIN))
  assert fitted.view_gap_seconds == pytest.approx(40, rel=0.1)  # not pulled by the outliers
  assert pc.gap_bin(0) == pc.gap_bin(1) == 0
  assert pc.gap_bin(10 ** 9) == pc.GAP_BINS - 1


@pytest.mark.parametrize("copies", [0, 1])
def test_too_few_logged_sessions_fall_back_to_one_label_view(copies):
  stats = _stats(SESSIONS[:1], copies) + _stats(SESSIONS, (MIN - 1) // len(SESSIONS))
  assert stats.real < MIN
  fallback = pc.fit(PseudoContextConfig(), stats)
  for name in config_lib.FITTED:
    assert getattr(fallback, name) == config_lib.FALLBACKS[name]
  assert fallback.session_lengths == (1.0,) and fallback.label_positions == (1.0,)
  for session, outcome in _sessions(dataclasses.replace(fallback, mode=MODE_ITEM), n=300):
    assert len(session.views) == 1 and outcome.views == 1
    (view,) = session.views
    assert view.categories[0] != "shoes" or view.item_id in ("shoe", "a", "b", "c")


def test_fit_needs_enough_logged_sessions():
  elsewhere = MIN - MIN // 2
  stats = _stats([SIBLING_ONLY], MIN // 2) + _stats([ELSEWHERE], elsewhere)
  assert stats.real == MIN
  enough = pc.fit(PseudoContextConfig(), stats)
  assert enough.p_other_category == pytest.approx(elsewhere / MIN)
  assert enough.p_substitute == 1.0 and enough.label_positions == (1.0,)
  assert enough.session_lengths == pytest.approx((1 - elsewhere / MIN, elsewhere / MIN))


def test_fit_falls_back_where_no_logged_session_shows_the_label_category():
  fitted = pc.fit(PseudoContextConfig(), _stats([_session(HAT)], MIN))
  assert fitted.p_other_category == 1.0 and fitted.session_lengths == (1.0,)
  assert fitted.p_substitute == config_lib.FALLBACK_P_SUBSTITUTE
  assert fitted.label_positions == config_lib.FALLBACK_LABEL_POSITIONS
  assert fitted.p_on_category == config_lib.FALLBACK_P_ON_CATEGORY  # no second view either


@pytest.mark.parametrize("copies", [0, MIN])
def test_fit_never_overrides_explicit_values(copies):
  stats = _stats(SESSIONS, copies)
  assert pc.fit(EXACT, stats) == EXACT
  measured = pc.fit(PseudoContextConfig(), stats)
  for name in config_lib.FITTED:
    value = (0.0 if name.startswith("p_") else 7.0 if name == "view_gap_seconds" else (0.0, 1.0))
    half = pc.fit(PseudoContextConfig(**{name: value}), stats)
    assert getattr(half, name) == value  # 0.0 is a value
    assert half == dataclasses.replace(measured, **{name: value})


@pytest.mark.parametrize("field, value, hint", [
    ("rate", 1.5, "rate is a probability"), ("p_substitute", -0.1, "p_substitute"),
    ("p_other_category", 1.5, "p_other_category"),
    ("p_other_category", float("nan"), "p_other_category"),
    ("p_on_category", 2.0, "p_on_category is a probability"),
    ("p_drop_secondary", float("nan"), "p_drop_secondary"),
    ("confidence_jitter", -1.0, "confidence_jitter"), ("gap_jitter", float("inf"), "gap_jitter"),
    ("view_gap_seconds", 0.0, "view_gap_seconds must be"),
    ("session_views", 0, "session_views must be an integer >= 1"),
    ("session_views", 2.0, "session_views must be an integer"),
    ("session_lengths", (1.0,) * 9, "session_lengths has 9 entries"),
    ("session_lengths", (), "session_lengths has 0 entries"),
    ("label_positions", (0.0, 0.0), "label_positions has no positive weight"),
    ("label_positions", (1.0, -1.0), "label_positions has a negative"),
    ("mode", "items", "mode must be one of"), ("seed", 1.5, "seed must be an integer")])
def test_invalid_config_says_what_to_fix(field, value, hint):
  with pytest.raises(ValueError, match=hint):
    PseudoContextConfig(**{field: value})


def test_weights_fit_within_session_views_and_survive_json():
  config = PseudoContextConfig(session_views=3, session_lengths=[1, 2, 3],
                               label_positions=[1.0])
  assert config.session_lengths == (1.0, 2.0, 3.0) and config.label_positions == (1.0,)
  assert PseudoContextConfig.from_json(config.to_json()) == config
  with pytest.raises(ValueError, match="give 1 to session_views \\(2\\)"):
    PseudoContextConfig(session_views=2, session_lengths=(1.0, 1.0, 1.0))

"""The time contract: history is strictly before the label's day; context precedes the label."""
import pytest

from ctxrec.components.sequence_example_gen.config import SequenceExampleGenConfig, epoch_day
from ctxrec.components.sequence_example_gen.example_builder import build_user_examples
from ctxrec.components.sequence_example_gen.input_tables import Item
from ctxrec.transform import features as f

DAY, HOUR = 86400, 3600
T0 = 1767225600  # 2026-01-01 00:00 UTC
CATALOG = {i: Item((f"cat_{i}", "shared"), (0.8, 0.2)) for i in "abcdefghij"}
CONFIG = SequenceExampleGenConfig()


def _build(events, config=CONFIG, eval_start_day=10**6, demographics=("US", "25-34")):
  out = []
  for split, example in build_user_examples("u1", events, CATALOG, demographics, config,
                                            eval_start_day):
    feature = example.features.feature
    out.append((split, {
        name: list(value.bytes_list.value or value.float_list.value or value.int64_list.value)
        for name, value in feature.items()}))
  return out


def _text(values):
  return [v.decode() for v in values]


def test_history_excludes_the_label_day_and_later():
  events = [(T0 + 10 * HOUR, "conversion", "a"), (T0 + 23 * HOUR, "conversion", "b"),
            (T0 + DAY + 1 * HOUR, "conversion", "c"), (T0 + DAY + 12 * HOUR, "conversion", "d"),
            (T0 + 3 * DAY, "conversion", "e")]
  examples = _build(list(reversed(events)))  # input order must not matter
  labels = [_text(e[f.LABEL_ITEM_ID])[0] for _, e in examples]
  assert labels == ["a", "b", "c", "d", "e"]
  histories = [_text(e[f.HISTORY_ITEM_IDS]) for _, e in examples]
  # Day-0 conversions are first-ever ones: cold-start examples with an empty history.
  assert histories == [[], [], ["a", "b"], ["a", "b"], ["a", "b", "c", "d"]]
  assert examples[0][1][f.HISTORY_AGE_DAYS] == [] and examples[0][1][f.HISTORY_CATEGORIES] == []
  assert examples[4][1][f.HISTORY_AGE_DAYS] == [2, 2, 1, 1]
  assert _text(examples[4][1][f.HISTORY_CATEGORIES]) == ["cat_a", "cat_b", "cat_c", "cat_d"]
  assert examples[2][1][f.LABEL_TIMESTAMP] == [T0 + DAY + HOUR]


def test_history_keeps_the_last_l_conversions_most_recent_last():
  events = [(T0 + d * DAY, "conversion", "abcdefghij"[d]) for d in range(10)]
  examples = _build(events, SequenceExampleGenConfig(history_length=3))
  assert _text(examples[-1][1][f.HISTORY_ITEM_IDS]) == ["g", "h", "i"]


def test_label_features_and_demographics():
  events = [(T0, "conversion", "a"), (T0 + DAY, "conversion", "b")]
  (_, example) = _build(events, demographics=(f.UNKNOWN, "55+"))[-1]
  assert _text(example[f.LABEL_CATEGORIES]) == ["cat_b", "shared"]
  assert example[f.LABEL_CONFIDENCES] == pytest.approx([0.8, 0.2])
  assert _text(example[f.demographic_feature("country")]) == [f.UNKNOWN]
  assert _text(example[f.demographic_feature("age_bucket")]) == ["55+"]


def test_split_by_label_day_and_context_in_both_splits():
  label_day = epoch_day("2026-01-05")
  events = [(T0, "conversion", "a")]
  for day in (3, 4, 5):  # 2026-01-04, -05, -06
    t = T0 + day * DAY + 12 * HOUR
    events += [(t - 30 * 60, "view", "f"), (t - 10 * 60, "view", "g"), (t, "conversion", "h")]
  examples = _build(events, eval_start_day=label_day)
  assert [s for s, _ in examples] == [f.TRAIN, f.TRAIN, f.EVAL, f.EVAL]
  first = examples[0][1]
  assert first[f.CONTEXT_ITEM_ID] == [] and first[f.CONTEXT_CATEGORIES] == []
  for _, example in examples[1:]:  # train examples record their real session too
    assert _text(example[f.CONTEXT_ITEM_ID]) == ["g", "f"]  # most recent first
    assert example[f.CONTEXT_AGE_SECONDS] == [10 * 60, 30 * 60]
    assert example[f.CONTEXT_CATEGORY_COUNTS] == [2, 2]
    assert _text(example[f.CONTEXT_CATEGORIES]) == ["cat_g", "shared", "cat_f", "shared"]
    assert example[f.CONTEXT_CONFIDENCES] == pytest.approx([0.8, 0.2, 0.8, 0.2])


def test_the_session_keeps_its_last_views_and_skips_uncatalogued_ones():
  t = T0 + DAY
  views = [(t - (20 - i) * 60, "view", item) for i, item in enumerate("abcdexf")]
  examples = _build([(T0, "conversion", "j")] + views + [(t, "conversion", "g")],
                    SequenceExampleGenConfig(session_views=4))
  session = examples[-1][1]
  assert _text(session[f.CONTEXT_ITEM_ID]) == ["f", "e", "d", "c"]  # "x" is not in the catalog
  assert session[f.CONTEXT_AGE_SECONDS] == [14 * 60, 16 * 60, 17 * 60, 18 * 60]
  with pytest.raises(ValueError, match="session_views"):
    SequenceExampleGenConfig(session_views=0)


def test_context_window_and_same_second_view():
  base = T0 + DAY
  events = [(T0, "conversion", "a"), (base, "view", "b"), (base + 2 * HOUR, "conversion", "c"),
            (base + 3 * HOUR, "view", "d"), (base + 3 * HOUR, "conversion", "e"),
            (base + 4 * HOUR, "conversion", "f")]
  examples = _build(events, eval_start_day=0)
  contexts = [_text(e[f.CONTEXT_ITEM_ID]) for _, e in examples]
  # a has no view before it; b is 2h before c: outside the 1h window; d is viewed in the same
  # second as e, under the 1 s minimum gap, so e has no context; f is 1h after d: the window
  # is inclusive.
  assert contexts == [[], [], [], ["d"]]
  narrow = _build(events, SequenceExampleGenConfig(session_window_seconds=60), eval_start_day=0)
  assert [_text(e[f.CONTEXT_ITEM_ID]) for _, e in narrow] == [[], [], [], []]
  no_gap = _build(events, SequenceExampleGenConfig(min_context_gap_seconds=0), eval_start_day=0)
  assert [_text(e[f.CONTEXT_ITEM_ID]) for _, e in no_gap] == [[], [], ["d"], ["d"]]

"""The generator's promises: deterministic files, the documented schema, and the stated process."""
import dataclasses
import json
import os

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from ctxrec.synthetic import generator
from ctxrec.synthetic.profiles import PROFILES, GeneratorConfig
from ctxrec.transform import features as f

TINY = PROFILES["tiny"]
FILES = [f"{stem}.parquet" for stem in
         (f.EVENTS, f.ITEMS, f.USERS, f.GROUND_TRUTH, f.GROUND_TRUTH_ITEMS)]


def _read(directory, stem: str) -> pd.DataFrame:
  return pd.read_parquet(os.path.join(directory, f"{stem}.parquet"))


def _bytes(directory) -> dict:
  return {name: (directory / name).read_bytes() for name in FILES}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  """tiny profile in chunks of 128 users, so the multi-chunk path is the one tested."""
  out = tmp_path_factory.mktemp("gen") / "tiny"
  summary = generator.generate(dataclasses.replace(TINY, user_chunk_size=128), 3, str(out))
  return out, summary


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
  first = generator.generate(TINY, 11, str(tmp_path / "a"))
  generator.generate(TINY, 11, str(tmp_path / "b"))
  generator.generate(TINY, 12, str(tmp_path / "c"))
  assert sorted(os.listdir(tmp_path / "a")) == sorted(FILES)
  assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b")
  other = _bytes(tmp_path / "c")
  assert all(other[name] != data for name, data in _bytes(tmp_path / "a").items())
  assert first.elapsed_seconds < 5.0


def test_regenerating_into_an_existing_folder_replaces_files_and_leaves_no_staging(tmp_path):
  generator.generate(TINY, 1, str(tmp_path / "out"))
  generator.generate(TINY, 2, str(tmp_path / "out"))
  generator.generate(TINY, 2, str(tmp_path / "fresh"))
  assert _bytes(tmp_path / "out") == _bytes(tmp_path / "fresh")
  assert sorted(os.listdir(tmp_path)) == ["fresh", "out"]


def test_a_failed_run_leaves_nothing_behind(tmp_path, monkeypatch):
  def boom(*args, **kwargs):
    raise RuntimeError("boom")

  monkeypatch.setattr(generator, "_chunk_tables", boom)
  with pytest.raises(RuntimeError, match="boom"):
    generator.generate(TINY, 1, str(tmp_path / "out"))
  assert os.listdir(tmp_path) == []


def test_summary_matches_the_files_and_chunks_become_row_groups(tiny):
  out, summary = tiny
  events = _read(out, f.EVENTS)
  assert summary.users == len(_read(out, f.USERS)) == TINY.num_users
  assert summary.items == len(_read(out, f.ITEMS)) == TINY.num_items
  assert summary.events == len(events)
  assert summary.conversions == (events[f.EVENT_TYPE] == f.EVENT_CONVERSION).sum()
  assert summary.conversions == len(_read(out, f.GROUND_TRUTH))
  assert summary.views == summary.events - summary.conversions
  assert pq.ParquetFile(out / f"{f.EVENTS}.parquet").num_row_groups == 4  # ceil(500 / 128)


def test_schema_and_ids(tiny):
  out, _ = tiny
  schemas = {stem: pq.read_schema(out / f"{stem}.parquet") for stem in
             (f.EVENTS, f.ITEMS, f.USERS, f.GROUND_TRUTH, f.GROUND_TRUTH_ITEMS)}
  assert schemas[f.EVENTS].names == list(f.EVENTS_COLUMNS)
  assert str(schemas[f.EVENTS].field(f.TIMESTAMP).type) == "int64"
  assert schemas[f.ITEMS].names == list(f.ITEMS_COLUMNS)
  assert schemas[f.USERS].names == [f.USER_ID, *f.DEFAULT_DEMOGRAPHIC_COLUMNS]
  assert schemas[f.GROUND_TRUTH].names == [
      f.USER_ID, f.ITEM_ID, f.TIMESTAMP, f.GT_INTENT_CATEGORY, f.GT_LAST_VIEW_ITEM_ID,
      f.GT_INTEREST_CATEGORIES, f.GT_INTEREST_WEIGHTS, generator.GT_USER_STYLE,
      generator.GT_DIRECT]
  assert str(schemas[f.GROUND_TRUTH].field(generator.GT_USER_STYLE).type) == "int32"
  assert str(schemas[f.GROUND_TRUTH].field(generator.GT_DIRECT).type) == "bool"
  assert schemas[f.GROUND_TRUTH_ITEMS].names == [f.ITEM_ID, f.GT_PRIMARY_CATEGORY, f.GT_POPULARITY,
                                                 generator.GT_STYLE]
  users = _read(out, f.USERS)
  assert users[f.USER_ID].tolist() == [f"u{i:07d}" for i in range(TINY.num_users)]
  assert set(users[f.COUNTRY]) <= set(TINY.countries)
  assert set(users[f.AGE_BUCKET]) <= set(TINY.age_buckets)
  assert _read(out, f.ITEMS)[f.ITEM_ID].tolist() == [f"i{i:07d}" for i in range(TINY.num_items)]
  meta = json.loads(schemas[f.GROUND_TRUTH].metadata[b"ctxrec"])
  assert meta["p_follow"] == TINY.p_follow
  assert meta["p_convert_viewed"] == TINY.p_convert_viewed
  assert meta["views_per_session_mean"] == TINY.views_per_session_mean
  for knob in ("p_offcategory_view", "p_convert_direct", "num_styles", "taste_strength"):
    assert meta[knob] == getattr(TINY, knob)
  config = dataclasses.replace(TINY, user_chunk_size=128)
  assert meta["config"] == json.loads(json.dumps(dataclasses.asdict(config)))
  assert sorted(meta["category_popularity"]) == [f"c{c:03d}" for c in range(TINY.num_categories)]
  assert sum(meta["category_popularity"].values()) == pytest.approx(1.0)


def test_events_are_ordered_and_sessions_are_separated(tiny):
  out, _ = tiny
  events = _read(out, f.EVENTS)
  assert set(events[f.EVENT_TYPE]) == set(f.EVENT_TYPES)
  ordered = events.sort_values([f.USER_ID, f.TIMESTAMP], kind="stable").reset_index(drop=True)
  pd.testing.assert_frame_equal(events, ordered)
  start = TINY.start_timestamp
  assert events[f.TIMESTAMP].between(start, start + TINY.num_days * 86400 + 7200).all()
  same_user = events[f.USER_ID].eq(events[f.USER_ID].shift()).to_numpy()
  gaps = events[f.TIMESTAMP].diff().to_numpy()
  # Within a session: 10-600 s; between sessions: slots are 3 h apart, starts in the first hour.
  assert (((gaps >= 10) & (gaps <= 600)) | (gaps >= 3600))[same_user].all()
  # A conversion follows its session's last view 30-600 s before, or starts a direct session.
  rows = np.flatnonzero(events[f.EVENT_TYPE].to_numpy() == f.EVENT_CONVERSION)
  direct = _read(out, f.GROUND_TRUTH)[generator.GT_DIRECT].to_numpy()
  after_view = (same_user[rows] & (events[f.EVENT_TYPE].to_numpy()[rows - 1] == f.EVENT_VIEW)
                & (gaps[rows] >= 30) & (gaps[rows] <= 600))
  starts_session = ~same_user[rows] | (gaps[rows] >= 3600)
  assert (after_view == ~direct).all() and (starts_session == direct).all()


def test_items_categories_confidences_styles_and_popularity(tiny):
  out, _ = tiny
  items = _read(out, f.ITEMS)
  truth = _read(out, f.GROUND_TRUTH_ITEMS)
  lengths = items[f.CATEGORIES].map(len)
  assert lengths.between(1, 3).all() and (items[f.CONFIDENCES].map(len) == lengths).all()
  assert items[f.CATEGORIES].map(lambda c: len(set(c)) == len(c)).all()
  # The primary is the most confident category, wherever it is listed.
  strongest = [cs[int(np.argmax(ws))] for cs, ws in zip(items[f.CATEGORIES], items[f.CONFIDENCES])]
  assert (np.array(strongest) == truth[f.GT_PRIMARY_CATEGORY].to_numpy()).all()
  confidences = np.concatenate(items[f.CONFIDENCES].to_numpy())
  primary_conf = np.array([max(ws) for ws in items[f.CONFIDENCES]])
  assert ((primary_conf >= 0.6) & (primary_conf <= 1.0)).all()
  assert np.sort(confidences)[:-len(items)].max() <= 0.5 and confidences.min() > 0
  # p_unsorted_categories shuffles the listing: primary-first with probability 1/length then.
  first = items[f.CATEGORIES].map(lambda c: c[0]).to_numpy() == truth[f.GT_PRIMARY_CATEGORY]
  not_first = TINY.p_unsorted_categories * (1 - 1 / lengths.to_numpy())
  assert abs((~first).sum() - not_first.sum()) < 4 * np.sqrt((not_first * (1 - not_first)).sum())
  per_category = truth.groupby(f.GT_PRIMARY_CATEGORY)[f.GT_POPULARITY]
  assert per_category.size().min() >= TINY.min_items_per_category
  assert len(per_category.size()) == TINY.num_categories
  np.testing.assert_allclose(per_category.sum().to_numpy(), 1.0, rtol=1e-12)
  styles = truth[generator.GT_STYLE].value_counts()
  assert sorted(styles.index) == list(range(TINY.num_styles))
  assert styles.min() > 0.5 * len(truth) / TINY.num_styles


def test_sorted_listing_when_p_unsorted_is_zero(tmp_path):
  config = dataclasses.replace(TINY, num_users=10, p_unsorted_categories=0.0)
  generator.generate(config, 3, str(tmp_path / "out"))
  items = _read(tmp_path / "out", f.ITEMS)
  truth = _read(tmp_path / "out", f.GROUND_TRUTH_ITEMS)
  assert (items[f.CATEGORIES].map(lambda c: c[0]) == truth[f.GT_PRIMARY_CATEGORY]).all()
  assert (items[f.CONFIDENCES].map(lambda c: c[0] == max(c))).all()


def test_conversions_are_in_the_intent_and_the_last_view_is_the_real_context(tiny):
  out, _ = tiny
  truth = _read(out, f.GROUND_TRUTH)
  primary = _read(out, f.GROUND_TRUTH_ITEMS).set_index(f.ITEM_ID)[f.GT_PRIMARY_CATEGORY]
  intent = truth[f.GT_INTENT_CATEGORY].to_numpy()
  assert (primary.loc[truth[f.ITEM_ID]].to_numpy() == intent).all()
  events = _read(out, f.EVENTS)
  conversion_rows = np.flatnonzero(events[f.EVENT_TYPE].to_numpy() == f.EVENT_CONVERSION)
  converted = events.iloc[conversion_rows].reset_index(drop=True)
  pd.testing.assert_frame_equal(converted[[f.USER_ID, f.ITEM_ID, f.TIMESTAMP]],
                                truth[[f.USER_ID, f.ITEM_ID, f.TIMESTAMP]])
  direct = truth[generator.GT_DIRECT].to_numpy()
  last_views = events[f.ITEM_ID].to_numpy()[conversion_rows - 1]
  assert (truth[f.GT_LAST_VIEW_ITEM_ID].to_numpy() == np.where(direct, "", last_views)).all()
  # Direct sessions at the rate p_convert_direct; off-intent last views at p_off * (1 - pi(c)).
  n = len(truth)
  p = TINY.p_convert_direct
  assert abs(direct.sum() - p * n) < 4 * np.sqrt(n * p * (1 - p))
  meta = json.loads(pq.read_schema(out / f"{f.GROUND_TRUTH}.parquet").metadata[b"ctxrec"])
  pi = truth[f.GT_INTENT_CATEGORY].map(meta["category_popularity"]).to_numpy()[~direct]
  off = primary.loc[truth[f.GT_LAST_VIEW_ITEM_ID][~direct]].to_numpy() != intent[~direct]
  p_off = TINY.p_offcategory_view * (1 - pi)
  assert abs(off.sum() - p_off.sum()) < 4 * np.sqrt((p_off * (1 - p_off)).sum())


def _style_match_share(out) -> float:
  truth = _read(out, f.GROUND_TRUTH)
  styles = _read(out, f.GROUND_TRUTH_ITEMS).set_index(f.ITEM_ID)[generator.GT_STYLE]
  return float((styles.loc[truth[f.ITEM_ID]].to_numpy() == truth[generator.GT_USER_STYLE]).mean())


def test_conversions_follow_the_users_taste(tiny, tmp_path):
  out, _ = tiny
  truth = _read(out, f.GROUND_TRUTH)
  assert truth[generator.GT_USER_STYLE].between(0, TINY.num_styles - 1).all()
  assert (truth.groupby(f.USER_ID)[generator.GT_USER_STYLE].nunique() == 1).all()
  # beta = 6, 8 styles: about half of the fresh draws match the user's style, not one in eight.
  assert _style_match_share(out) > 2.5 / TINY.num_styles
  generator.generate(dataclasses.replace(TINY, taste_strength=0.0), 3, str(tmp_path / "flat"))
  assert _style_match_share(tmp_path / "flat") == pytest.approx(1 / TINY.num_styles, abs=0.03)


def test_new_users_are_active_only_in_the_last_days(tmp_path):
  def late_share(share: float) -> float:
    config = dataclasses.replace(TINY, num_users=2000, new_user_share=share)
    out = tmp_path / f"new{share}"
    generator.generate(config, 9, str(out))
    first = _read(out, f.EVENTS).groupby(f.USER_ID)[f.TIMESTAMP].min()
    cutoff = config.start_timestamp + (config.num_days - config.new_user_days) * 86400
    return float((first >= cutoff).mean()), len(first)

  baseline, _ = late_share(0.0)
  late, active = late_share(0.3)
  assert baseline < 0.03
  # New users that have any session at all, all of it in the last 7 days.
  assert 0.2 < late - baseline < 0.35 and active > 1500


def _interest_hits(out) -> tuple:
  """Per conversion: is the intent among the user's interests, and pi's mass on those interests."""
  truth = _read(out, f.GROUND_TRUTH)
  meta = json.loads(pq.read_schema(out / f"{f.GROUND_TRUTH}.parquet").metadata[b"ctxrec"])
  pi = meta["category_popularity"]
  hit = np.array([c in set(cs) for c, cs in
                  zip(truth[f.GT_INTENT_CATEGORY], truth[f.GT_INTEREST_CATEGORIES])])
  pi_mass = truth[f.GT_INTEREST_CATEGORIES].map(lambda cs: sum(pi[c] for c in cs)).to_numpy()
  return truth, hit, pi_mass


def test_intents_follow_long_term_interests_at_the_rate_p_follow_implies(tiny):
  out, _ = tiny
  truth, hit, pi_mass = _interest_hits(out)
  assert len(truth) > 2000
  # P(intent in interests) = p_follow + (1 - p_follow) * pi(interests), independently per session.
  p = TINY.p_follow + (1 - TINY.p_follow) * pi_mass
  sd = np.sqrt((p * (1 - p)).sum())
  assert abs(hit.sum() - p.sum()) < 4 * sd
  # The check has power: intents drawn from pi alone would land far away.
  assert abs(hit.sum() - pi_mass.sum()) > 10 * sd
  weights = truth[f.GT_INTEREST_WEIGHTS].map(np.sum).to_numpy()
  np.testing.assert_allclose(weights, 1.0, rtol=1e-12)
  sizes = truth[f.GT_INTEREST_CATEGORIES].map(len)
  assert sizes.between(TINY.core_interests_min, TINY.core_interests_max).all()
  assert truth[f.GT_INTEREST_CATEGORIES].map(lambda cs: len(set(cs)) == len(cs)).all()


def test_p_follow_one_puts_every_intent_in_the_interests(tmp_path):
  config = GeneratorConfig(num_users=200, num_items=400, num_categories=30, num_days=10,
                           p_follow=1.0)
  generator.generate(config, 5, str(tmp_path / "out"))
  _, hit, _ = _interest_hits(tmp_path / "out")
  assert hit.size > 100 and hit.all()


def test_conversion_rate_and_views_per_session_match_the_config(tiny):
  out, summary = tiny
  sessions = summary.sessions
  assert summary.conversions / sessions == pytest.approx(TINY.p_convert, abs=0.03)
  with_views = 1 - TINY.p_convert * TINY.p_convert_direct
  assert summary.views / sessions == pytest.approx(
      with_views * (1 + TINY.views_per_session_mean), abs=0.1)
  # Slots drawn twice are merged, so a user has slightly fewer sessions than the Poisson mean;
  # new users have sessions at the same daily rate for new_user_days days only.
  days = TINY.new_user_share * TINY.new_user_days + (1 - TINY.new_user_share) * TINY.num_days
  expected = TINY.sessions_per_user_mean * days / TINY.num_days
  per_user = sessions / TINY.num_users
  assert 0.85 * expected < per_user <= 1.05 * expected


def test_sparse_profile_looks_like_a_small_shops_short_log(tmp_path):
  config = PROFILES["sparse"]
  generator.generate(config, 1, str(tmp_path / "sparse"))
  events = _read(tmp_path / "sparse", f.EVENTS)
  assert events[f.ITEM_ID].isin(set(_read(tmp_path / "sparse", f.ITEMS)[f.ITEM_ID])).all()
  span = events[f.TIMESTAMP].max() - events[f.TIMESTAMP].min()
  assert 8 * 86400 < span <= 9 * 86400 + 7200 and config.num_items == 50000
  is_conversion = events[f.EVENT_TYPE] == f.EVENT_CONVERSION
  conversions = events[is_conversion].reset_index()
  assert 1500 <= len(conversions) <= 3000
  per_item = conversions[f.ITEM_ID].value_counts()
  assert (per_item == 1).mean() >= 0.6
  views = events[~is_conversion][[f.USER_ID, f.ITEM_ID, f.TIMESTAMP]]
  assert 0.3 <= _seen_within_the_hour(conversions, views) <= 0.5


def _seen_within_the_hour(conversions: pd.DataFrame, views: pd.DataFrame) -> float:
  """Share of conversions after a view of the same item by the same user within the hour."""
  pairs = conversions.merge(views, on=[f.USER_ID, f.ITEM_ID], suffixes=("", "_view"))
  gap = pairs[f.TIMESTAMP] - pairs[f"{f.TIMESTAMP}_view"]
  return pairs[(gap > 0) & (gap <= 3600)]["index"].nunique() / len(conversions)


def test_shop_profile_has_the_shape_of_a_real_shops_log(tmp_path):
  """Shaped after a real e-commerce log (issue 21): thousands of fine-grained categories of
  heavy-tailed sizes, most items in the log seen once, tens of views per conversion."""
  config = PROFILES["shop"]
  generator.generate(config, 7, str(tmp_path / "shop"))
  events = _read(tmp_path / "shop", f.EVENTS)
  truth = _read(tmp_path / "shop", f.GROUND_TRUTH_ITEMS)
  assert len(truth) == 50000 and 800 <= events[f.USER_ID].nunique() <= 1000
  span = events[f.TIMESTAMP].max() - events[f.TIMESTAMP].min()
  assert 8 * 86400 < span <= 9 * 86400 + 7200
  sizes = truth[f.GT_PRIMARY_CATEGORY].value_counts()
  assert len(sizes) == 3000 and sizes.median() <= 6 and 1000 <= sizes.max() <= 4000
  assert (events[f.ITEM_ID].value_counts() == 1).mean() >= 0.65  # of the items in the log
  is_conversion = events[f.EVENT_TYPE] == f.EVENT_CONVERSION
  conversions = events[is_conversion].reset_index()
  assert 1000 <= len(conversions) <= 2000 and (~is_conversion).sum() / len(conversions) >= 10
  views = events[~is_conversion][[f.USER_ID, f.ITEM_ID, f.TIMESTAMP]]
  assert 0.3 <= _seen_within_the_hour(conversions, views) <= 0.5
  per_session = events[~is_conversion].groupby([f.USER_ID, events[f.TIMESTAMP] // 3600]).size()
  assert per_session.mean() >= 4  # sessions of several views


def test_invalid_config_is_rejected():
  with pytest.raises(ValueError, match="min_items_per_category"):
    GeneratorConfig(num_items=10, num_categories=20)
  with pytest.raises(ValueError, match="p_follow"):
    GeneratorConfig(p_follow=1.5)
  with pytest.raises(ValueError, match="p_convert_direct"):
    GeneratorConfig(p_convert_direct=-0.1)
  with pytest.raises(ValueError, match="num_styles"):
    GeneratorConfig(num_styles=0)
  with pytest.raises(ValueError, match="taste_strength"):
    GeneratorConfig(taste_strength=-1.0)
  with pytest.raises(ValueError, match="item_lognormal_sigma"):
    GeneratorConfig(item_lognormal_sigma=-1.0)


def test_profiles_are_the_single_source_of_names():
  assert set(PROFILES) == {"tiny", "demo", "large", "sparse", "shop"}
  assert (PROFILES["tiny"].num_users, PROFILES["tiny"].num_items) == (500, 1000)
  assert (PROFILES["demo"].num_users, PROFILES["demo"].num_items) == (20000, 10000)
  assert (PROFILES["large"].num_users, PROFILES["large"].num_items) == (10**6, 10**6)

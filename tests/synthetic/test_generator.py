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
      f.GT_INTEREST_CATEGORIES, f.GT_INTEREST_WEIGHTS]
  assert schemas[f.GROUND_TRUTH_ITEMS].names == [f.ITEM_ID, f.GT_PRIMARY_CATEGORY, f.GT_POPULARITY]
  users = _read(out, f.USERS)
  assert users[f.USER_ID].tolist() == [f"u{i:07d}" for i in range(TINY.num_users)]
  assert set(users[f.COUNTRY]) <= set(TINY.countries)
  assert set(users[f.AGE_BUCKET]) <= set(TINY.age_buckets)
  assert _read(out, f.ITEMS)[f.ITEM_ID].tolist() == [f"i{i:07d}" for i in range(TINY.num_items)]
  meta = json.loads(schemas[f.GROUND_TRUTH].metadata[b"ctxrec"])
  assert meta["p_follow"] == TINY.p_follow
  assert meta["p_convert_viewed"] == TINY.p_convert_viewed
  assert meta["views_per_session_mean"] == TINY.views_per_session_mean
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
  gaps = events[f.TIMESTAMP].diff().to_numpy()[same_user]
  # Within a session: 10-600 s; between sessions: slots are 3 h apart, starts in the first hour.
  assert (((gaps >= 10) & (gaps <= 600)) | (gaps >= 3600)).all()
  previous_type = events[f.EVENT_TYPE].shift().to_numpy()[same_user]
  is_conversion = events[f.EVENT_TYPE].to_numpy()[same_user] == f.EVENT_CONVERSION
  assert (previous_type[is_conversion] == f.EVENT_VIEW).all()


def test_items_categories_confidences_and_popularity(tiny):
  out, _ = tiny
  items = _read(out, f.ITEMS)
  truth = _read(out, f.GROUND_TRUTH_ITEMS)
  lengths = items[f.CATEGORIES].map(len)
  assert lengths.between(1, 3).all() and (items[f.CONFIDENCES].map(len) == lengths).all()
  assert items[f.CATEGORIES].map(lambda c: len(set(c)) == len(c)).all()
  primary_conf = items[f.CONFIDENCES].map(lambda c: c[0])
  assert primary_conf.between(0.6, 1.0).all()
  secondary = np.concatenate([c[1:] for c in items[f.CONFIDENCES]])
  assert ((secondary > 0) & (secondary <= 0.5)).all()
  assert (items[f.CATEGORIES].map(lambda c: c[0]) == truth[f.GT_PRIMARY_CATEGORY]).all()
  per_category = truth.groupby(f.GT_PRIMARY_CATEGORY)[f.GT_POPULARITY]
  assert per_category.size().min() >= TINY.min_items_per_category
  assert len(per_category.size()) == TINY.num_categories
  np.testing.assert_allclose(per_category.sum().to_numpy(), 1.0, rtol=1e-12)


def test_conversions_and_last_views_share_the_intent_category(tiny):
  out, _ = tiny
  truth = _read(out, f.GROUND_TRUTH)
  primary = _read(out, f.GROUND_TRUTH_ITEMS).set_index(f.ITEM_ID)[f.GT_PRIMARY_CATEGORY]
  intent = truth[f.GT_INTENT_CATEGORY].to_numpy()
  assert (primary.loc[truth[f.ITEM_ID]].to_numpy() == intent).all()
  assert (primary.loc[truth[f.GT_LAST_VIEW_ITEM_ID]].to_numpy() == intent).all()
  events = _read(out, f.EVENTS)
  conversion_rows = np.flatnonzero(events[f.EVENT_TYPE].to_numpy() == f.EVENT_CONVERSION)
  converted = events.iloc[conversion_rows].reset_index(drop=True)
  pd.testing.assert_frame_equal(converted[[f.USER_ID, f.ITEM_ID, f.TIMESTAMP]],
                                truth[[f.USER_ID, f.ITEM_ID, f.TIMESTAMP]])
  last_views = events[f.ITEM_ID].to_numpy()[conversion_rows - 1]
  assert (last_views == truth[f.GT_LAST_VIEW_ITEM_ID].to_numpy()).all()


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
  assert summary.views / sessions == pytest.approx(1 + TINY.views_per_session_mean, abs=0.1)
  # Slots drawn twice are merged, so a user has slightly fewer sessions than the Poisson mean.
  per_user = sessions / TINY.num_users
  assert 0.85 * TINY.sessions_per_user_mean < per_user <= 1.05 * TINY.sessions_per_user_mean


def test_invalid_config_is_rejected():
  with pytest.raises(ValueError, match="min_items_per_category"):
    GeneratorConfig(num_items=10, num_categories=20)
  with pytest.raises(ValueError, match="p_follow"):
    GeneratorConfig(p_follow=1.5)

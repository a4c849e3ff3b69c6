"""The catalog index: searcher by catalog size, the recall gate, ids, portability, refusals."""
import hashlib
import os
import shutil

import numpy as np
import pytest

from ctxrec.serving.index import index_dir
from ctxrec.serving.index import searcher_config as sc
from ctxrec.serving.index.build import BuildSpec, Catalog, build_index
from ctxrec.serving.index.exact import exact_top_k, exact_truth, recall_at_k
from ctxrec.serving.index.manifest import IndexDirError
from ctxrec.serving.index.retriever import Retriever
from ctxrec.transform import category_keys

DIM = 32


def _clustered(items: int, seed: int = 0, clusters: int = 40) -> np.ndarray:
  """Unit vectors around a few centres: the shape real item embeddings have."""
  rng = np.random.default_rng(seed)
  centres = rng.normal(size=(clusters, DIM))
  vectors = centres[rng.integers(clusters, size=items)] + 0.35 * rng.normal(size=(items, DIM))
  return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def _catalog(items: int, version: str = "7") -> Catalog:
  ids = [f"item-{i:06d}" for i in np.random.default_rng(1).permutation(items)]
  return Catalog(ids, _clustered(items), version, hashlib.sha256(str(items).encode()).hexdigest())


def _build(tmp_path, catalog, spec=BuildSpec(), name="index", queries=200):
  directory = str(tmp_path / name)
  manifest, measured = build_index(catalog, _clustered(queries, seed=9), "test", spec, directory)
  return directory, manifest, measured


@pytest.mark.parametrize("items,kind", [(1_000, sc.BRUTE_FORCE), (19_999, sc.BRUTE_FORCE),
                                        (50_000, sc.AH), (250_000, sc.TREE_AH)])
def test_the_searcher_follows_the_catalog_size(items, kind):
  config = sc.config_for_catalog(items)
  assert config.kind == kind
  if kind == sc.TREE_AH:
    assert config.num_leaves == 500  # about sqrt(n)


def test_ids_map_back_to_item_ids(tmp_path):
  catalog = _catalog(800)
  directory, manifest, _ = _build(tmp_path, catalog)
  assert manifest.searcher["kind"] == sc.BRUTE_FORCE and manifest.recall["recall@100"] == 1.0
  retriever = Retriever(directory, model_version="7")
  ids, scores = retriever.search(catalog.embeddings[:50], 10)
  assert list(ids[:, 0]) == list(catalog.item_ids[:50])  # an item is its own best match
  rows, exact_scores = exact_top_k(catalog.embeddings[:50], catalog.embeddings, 10)
  assert (ids == np.asarray(catalog.item_ids, dtype=object)[rows]).all()
  np.testing.assert_allclose(scores, exact_scores, rtol=1e-5)


@pytest.mark.parametrize("items", [2_000, 30_000])  # brute force, and AH whose scores are
def test_boosted_search_is_the_exact_top_k_of_dot_product_plus_boosts(tmp_path, items):  # rescored
  """Thousands of categories, a few items each: the boosted categories' items come in wherever
  the searcher ranked them, each scored exactly; the rest by dot product."""
  rng = np.random.default_rng(3)
  names = [f"cat{c:05d}" for c in rng.integers(0, items // 3, size=items)]
  catalog = Catalog([f"item-{i:06d}" for i in range(items)], _clustered(items), "7", "a" * 64,
                    [[name] for name in names], [[0.9]] * items)
  directory, _, _ = _build(tmp_path, catalog)
  retriever = Retriever(directory)
  queries = _clustered(20, seed=5)
  keys = np.stack([category_keys.keys_of([names[i], names[i + 1], ""]) for i in range(20)])
  weights = np.tile(np.array([[0.5, 0.2, 9.0]], np.float32), (20, 1))  # NO_KEY's weight unused
  ids, scores = retriever.search(queries, 10, keys, weights)
  item_keys = category_keys.keys_of(names)
  exact = queries @ catalog.embeddings.T + category_keys.boost_scores(keys, weights, item_keys)
  order = np.argsort(-exact, axis=1, kind="stable")[:, :10]
  np.testing.assert_allclose(scores, np.take_along_axis(exact, order, axis=1), rtol=1e-5)
  assert all(names[i] in [names[int(x[5:])] for x in ids[i]] for i in range(20))
  plain_ids, _ = retriever.search(queries, 10)
  assert (plain_ids != ids).any()  # the boosts moved items in


def test_recall_counts_items_tied_with_the_true_top_k():
  items = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.5, 0.0], [0.0, 1.0]], np.float32)
  truth = exact_truth(np.array([[1.0, 0.0]], np.float32), items, 2)
  assert set(truth.rows[0]) <= {0, 1, 2}
  assert recall_at_k(np.array([[2, 1]]), truth, 2) == 1.0  # other rows of equal score
  assert recall_at_k(np.array([[2, 3]]), truth, 2) == 0.5  # 3 scores lower
  assert recall_at_k(np.array([[4, -1]]), truth, 2) == 0.0  # -1: ScaNN's "no result"


def test_the_index_carries_its_catalog_for_context_lookups(tmp_path):
  embeddings = _clustered(30)
  ids = [f"item-{i}" for i in range(30)]
  categories = [[f"c{i % 3}", "shared"] if i % 2 else [f"c{i % 3}"] for i in range(30)]
  confidences = [[0.75, 0.25] if i % 2 else [1.0] for i in range(30)]
  catalog = Catalog(ids, embeddings, "7", "f" * 64, categories, confidences)
  directory, _, _ = _build(tmp_path, catalog)
  loaded = Retriever(directory).catalog
  assert len(loaded) == 30 and "item-3" in loaded and "item-99" not in loaded
  assert loaded["item-3"].categories == ("c0", "shared")
  assert loaded["item-3"].confidences == (0.75, 0.25)
  assert loaded["item-4"].categories == ("c1",) and loaded.get("nope") is None


@pytest.mark.parametrize("spec", [
    BuildSpec(),
    BuildSpec(searcher=sc.SearcherConfig(kind=sc.AH)),
    BuildSpec(searcher=sc.SearcherConfig(kind=sc.TREE_AH, num_leaves=60))])
def test_serialize_move_load_gives_identical_results(tmp_path, spec):
  catalog = _catalog(6_000)
  directory, _, _ = _build(tmp_path, catalog, spec)
  queries = _clustered(64, seed=5)
  before = Retriever(directory).search(queries, 100)
  moved = str(tmp_path / "elsewhere" / "index")
  shutil.move(directory, moved)
  after = Retriever(moved).search(queries, 100)
  assert (before[0] == after[0]).all()
  np.testing.assert_array_equal(before[1], after[1])


def test_tuning_finds_settings_that_reach_the_threshold(tmp_path):
  spec = BuildSpec(searcher=sc.SearcherConfig(kind=sc.TREE_AH, num_leaves=100))
  _, manifest, measured = _build(tmp_path, _catalog(20_000), spec)
  assert manifest.blessed and manifest.recall["recall@100"] >= 0.95
  passing = [m for m in measured if m.recall[100] >= 0.95]
  assert manifest.ms_per_query_batched == min(m.ms_per_query for m in passing)
  assert manifest.settings["leaves_to_search"] < 100  # not a brute force in disguise


def test_a_weak_configuration_is_refused_by_the_recall_gate(tmp_path):
  spec = BuildSpec(searcher=sc.SearcherConfig(kind=sc.TREE_AH, num_leaves=200),
                   settings=sc.SearchSettings(leaves_to_search=1, reorder=100))
  _, manifest, _ = _build(tmp_path, _catalog(20_000), spec)
  assert not manifest.blessed and manifest.recall["recall@100"] < 0.95
  assert manifest.settings == {"leaves_to_search": 1, "reorder": 100}


def test_another_model_version_is_refused(tmp_path):
  directory, _, _ = _build(tmp_path, _catalog(300, version="7"))
  with pytest.raises(IndexDirError, match="embedded by model version 7, not 8"):
    Retriever(directory, model_version="8")


def test_single_and_batched_queries_and_threads_agree(tmp_path):
  catalog = _catalog(5_000)
  directory, _, _ = _build(tmp_path, catalog, BuildSpec(searcher=sc.SearcherConfig(kind=sc.AH)))
  queries = _clustered(20, seed=3)
  one_thread, two_threads = Retriever(directory), Retriever(directory, num_threads=2)
  batched = one_thread.search(queries, 50)
  single_ids, single_scores = one_thread.search(queries[4], 50)
  assert single_ids.shape == (50,) and (single_ids == batched[0][4]).all()
  assert (two_threads.search(queries, 50)[0] == batched[0]).all()


def test_k_must_fit_the_catalog_and_queries_the_dimension(tmp_path):
  directory, _, _ = _build(tmp_path, _catalog(30))
  retriever = Retriever(directory)
  with pytest.raises(ValueError, match="k=31: ask for 1 to 30 items"):
    retriever.search(np.ones(DIM), 31)
  with pytest.raises(ValueError, match="dimension 32"):
    retriever.search(np.ones(DIM + 1), 5)


def test_partial_and_corrupt_directories_are_refused(tmp_path):
  directory, manifest, _ = _build(tmp_path, _catalog(300))
  victim = os.path.join(directory, sorted(n for n in manifest.files if "scann" in n)[0])
  with open(victim, "r+b") as handle:
    handle.truncate(3)
  with pytest.raises(IndexDirError, match="has 3 bytes"):
    Retriever(directory)
  os.remove(os.path.join(directory, index_dir.MANIFEST_FILE))
  with pytest.raises(IndexDirError, match="no manifest.json"):
    Retriever(directory)


def test_publishing_replaces_a_version_in_one_step(tmp_path):
  root = str(tmp_path / "serving" / "index")
  first, _, _ = _build(tmp_path, _catalog(300), name="first")
  second, _, _ = _build(tmp_path, _catalog(400), name="second")
  assert index_dir.publish(first, root, "7") == os.path.join(root, "7")
  index_dir.publish(second, root, "7")
  assert os.listdir(root) == ["7"]  # no staging or retired directory left behind
  assert Retriever(os.path.join(root, "7")).manifest.items == 400


def test_an_empty_catalog_is_refused(tmp_path):
  empty = Catalog([], np.zeros((0, DIM), np.float32), "7", "0" * 64)
  with pytest.raises(ValueError, match="the catalog is empty"):
    build_index(empty, _clustered(5), "test", BuildSpec(), str(tmp_path / "x"))

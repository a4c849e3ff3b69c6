"""The exported SavedModel: four signatures, raw features in, consistent, stock TensorFlow only."""
import glob
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from ctxrec.components import request_context
from ctxrec.components.retrieval_evaluator import metrics, methods
from ctxrec.trainer import exported_model
from ctxrec.trainer import score_priors
from ctxrec.trainer.config import TrainerConfig
from ctxrec.transform import category_keys
from ctxrec.transform import features as f

pytestmark = pytest.mark.slow
L, K, S = 50, 4, TrainerConfig().session_views
D, TAIL = TrainerConfig().embedding_dim, score_priors.TAIL_WIDTH  # learned, top categories
SIGNATURES = (f.SIGNATURE_ENCODE_HISTORY, f.SIGNATURE_CONTEXT_HEAD, f.SIGNATURE_EMBED_ITEMS,
              f.SIGNATURE_SERVING_DEFAULT)


@pytest.fixture(scope="module")
def signatures(tiny_model_dir):
  return tf.saved_model.load(tiny_model_dir).signatures


@pytest.fixture(scope="module")
def eval_requests(tiny_output, signatures):
  examples = tiny_output("SequenceExampleGen", "examples")
  files = glob.glob(os.path.join(examples, "Split-eval", "*.gz"))
  return exported_model.example_requests(files, signatures[f.SIGNATURE_SERVING_DEFAULT])


def test_context_head_of_encoded_history_equals_serving_default(signatures, eval_requests):
  inputs = eval_requests.inputs
  batch = {name: value[:64] for name, value in inputs.items()}
  state = exported_model.call(signatures[f.SIGNATURE_ENCODE_HISTORY], batch)[f.HISTORY_STATE]
  two_step = exported_model.call(signatures[f.SIGNATURE_CONTEXT_HEAD],
                                 {**batch, f.HISTORY_STATE: state})
  one_step = exported_model.call(signatures[f.SIGNATURE_SERVING_DEFAULT], batch)
  np.testing.assert_allclose(two_step[f.USER_EMBEDDING], one_step[f.USER_EMBEDDING], atol=1e-5)
  np.testing.assert_array_equal(two_step[f.BOOST_KEYS], one_step[f.BOOST_KEYS])
  np.testing.assert_allclose(two_step[f.BOOST_WEIGHTS], one_step[f.BOOST_WEIGHTS], atol=1e-5)
  assert state.shape == (64, D + TAIL)  # the encoder state, then the top categories


def _request(history, context_categories=(), context_confidences=(), item="", views=()):
  """One request; the context is one view (`item` and its categories), then `views`."""
  def pad(values, width, fill):
    return [list(values)[:width] + [fill] * (width - len(values))]
  first = ((request_context.View(item, tuple(context_categories), tuple(context_confidences)),)
           if item or context_categories else ())
  context = request_context.Context(first + tuple(views))
  return {f.HISTORY_ITEM_IDS: np.array(pad(history, L, ""), dtype=object),
          f.HISTORY_CATEGORIES: np.array(pad(["c001"] * len(history), L, ""), dtype=object),
          f.HISTORY_AGE_DAYS: np.array(pad([1] * len(history), L, 0), dtype=np.int64),
          **request_context.context_arrays([context], S, K),
          f.demographic_feature("country"): np.array(["US"], dtype=object),
          f.demographic_feature("age_bucket"): np.array(["25-34"], dtype=object)}


def test_empty_context_and_empty_history_give_finite_embeddings(signatures):
  for request in (_request(["i0000001", "i0000002"]), _request([])):
    user = exported_model.call(signatures[f.SIGNATURE_SERVING_DEFAULT], request)
    assert user[f.USER_EMBEDDING].shape == (1, D + 1)
    assert all(np.all(np.isfinite(value)) for value in user.values())


def test_the_boosts_name_the_context_and_history_categories_exactly(signatures):
  """An unseen category, one of thousands, gets its own exact boost: no vocabulary, no code."""
  user = exported_model.call(signatures[f.SIGNATURE_SERVING_DEFAULT], _request(
      ["i0000002", "i0000003"], ["never-seen-category", "c002"], [0.9, 0.3]))
  keys, weights = user[f.BOOST_KEYS][0], user[f.BOOST_WEIGHTS][0]
  unseen, c002, c001 = category_keys.keys_of(["never-seen-category", "c002", "c001"])
  by_key = {int(k): float(w) for k, w in zip(keys, weights) if k}
  assert set(by_key) == {unseen, c002, c001}  # the context's two, the history's one
  assert by_key[unseen] > by_key[c002] > 0 and by_key[c001] > 0  # confidence orders them
  without = exported_model.call(signatures[f.SIGNATURE_SERVING_DEFAULT],
                                _request(["i0000002"]))
  assert {int(k) for k in without[f.BOOST_KEYS][0] if k} == {c001}  # history only


def test_an_earlier_view_boosts_its_category_less_and_repeats_add_up(signatures):
  """The session's boosts: each view's categories, decayed by position, one weight per key."""
  def boosts(views):
    user = exported_model.call(signatures[f.SIGNATURE_SERVING_DEFAULT], _request(
        [], ["c002"], [1.0], views=views))
    keys = user[f.BOOST_KEYS][0]
    assert len({int(k) for k in keys if k}) == int(np.count_nonzero(keys))  # each key once
    return {int(k): float(w) for k, w in zip(keys, user[f.BOOST_WEIGHTS][0]) if k}
  c002, c003 = category_keys.keys_of(["c002", "c003"])
  older = request_context.View("", ("c003",), (1.0,), 60)
  one = boosts([older])
  assert one[c002] > one[c003] > 0
  twice = boosts([older, older])  # the request's weights move with its session a little
  assert twice[c003] - twice[c002] > one[c003] - one[c002]


def test_unknown_ids_map_to_oov_without_error(signatures):
  request = _request(["never-seen-item"], ["never-seen-category"], [0.7], item="nope")
  request[f.demographic_feature("country")] = np.array(["Atlantis"], dtype=object)
  user = exported_model.call(signatures[f.SIGNATURE_SERVING_DEFAULT], request)[f.USER_EMBEDDING]
  items = exported_model.call(signatures[f.SIGNATURE_EMBED_ITEMS], {
      f.ITEM_ID: np.array(["never-seen-item", "i0000001"], dtype=object),
      f.ITEM_CATEGORIES: np.array([["zzz", "", "", ""], ["c001", "", "", ""]], dtype=object),
      f.ITEM_CONFIDENCES: np.array([[0.9, 0, 0, 0], [0.9, 0, 0, 0]], dtype=np.float32),
  })[f.ITEM_EMBEDDING]
  assert np.all(np.isfinite(user)) and np.all(np.isfinite(items))
  assert np.linalg.norm(items[:, :D], axis=1) == pytest.approx([1.0, 1.0], abs=1e-5)
  assert items.shape == (2, D + 1)
  assert items[0, -1] < items[1, -1] < 0  # log P(label): a never-seen item is the least likely


def test_loads_in_plain_tensorflow_with_stock_ops_only(tiny_model_dir):
  script = textwrap.dedent(f"""
      import os, sys
      os.environ["TF_USE_LEGACY_KERAS"] = "1"
      import tensorflow as tf
      from tensorflow.core.protobuf import saved_model_pb2
      from tensorflow.python.framework import op_def_registry
      loaded = tf.saved_model.load({tiny_model_dir!r})
      assert set(loaded.signatures) >= {set(SIGNATURES)!r}, list(loaded.signatures)
      proto = saved_model_pb2.SavedModel()
      with open(os.path.join({tiny_model_dir!r}, "saved_model.pb"), "rb") as fh:
        proto.ParseFromString(fh.read())
      graph = proto.meta_graphs[0].graph_def
      ops = {{n.op for n in graph.node}}
      for function in graph.library.function:
        ops |= {{n.op for n in function.node_def}}
      functions = {{fn.signature.name for fn in graph.library.function}}
      custom = sorted(op for op in ops - functions if op_def_registry.get(op) is None)
      assert not custom, custom
      project = [m for m in sys.modules if m.split(".")[0] in
                 ("ctxrec", "tensorflow_transform", "tensorflow_recommenders", "scann", "tfx")]
      assert not project, project
      print("ops", len(ops))
  """)
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          cwd="/", check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert "ops" in result.stdout


def test_saved_model_cli_lists_the_four_signatures_with_inputs(tiny_model_dir):
  cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
  shown = subprocess.run([cli, "show", "--all", "--dir", tiny_model_dir], capture_output=True,
                         text=True, check=True).stdout
  for name in SIGNATURES:
    assert f"signature_def['{name}']" in shown
  for name in (f.HISTORY_ITEM_IDS, f.CONTEXT_CATEGORIES, f.HISTORY_STATE, f.ITEM_ID,
               f.ITEM_CATEGORIES):
    assert f"inputs['{name}']" in shown
  for name in (f.HISTORY_STATE, f.USER_EMBEDDING, f.BOOST_KEYS, f.BOOST_WEIGHTS, f.ITEM_EMBEDDING):
    assert f"outputs['{name}']" in shown


def test_real_context_lifts_recall_at_50(signatures, eval_requests, tiny_data):
  catalog = methods.Catalog.load(os.path.join(tiny_data, "items.parquet"))
  item_embeddings = exported_model.embed(
      signatures[f.SIGNATURE_EMBED_ITEMS], exported_model.catalog_inputs(catalog.items, K),
      f.ITEM_EMBEDDING)
  has = eval_requests.has_context
  positions = catalog.positions(eval_requests.labels)[has]
  recall = {}
  for mode, requests in (("real", eval_requests.inputs),
                         ("none", exported_model.without_context(eval_requests.inputs))):
    inputs = {name: value[has] for name, value in requests.items()}
    ranks = methods.model_ranks(signatures, item_embeddings, catalog.primary_keys, inputs,
                                positions)
    recall[mode] = metrics.metrics_from_ranks(ranks)["recall@50"]
  assert recall["real"] > 1.2 * recall["none"], recall

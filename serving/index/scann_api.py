"""The one place ctxrec touches ScaNN's pybind API (its TF ops are not in stock TF Serving).

ScaNN 1.3.2 writes the absolute paths of its files into `scann_assets.pbtxt` when it serializes
a searcher, so `load` rewrites them to wherever the directory lives now, without writing to it.
Item ids are kept by ctxrec beside the searcher, never in ScaNN's pickled docids.
"""
import os

from google.protobuf import text_format
from scann.scann_ops import scann_assets_pb2
from scann.scann_ops.py import scann_ops_pybind

ASSETS_FILE = "scann_assets.pbtxt"
Searcher = scann_ops_pybind.ScannSearcher
builder = scann_ops_pybind.builder


def relocated_assets(directory: str) -> str:
  """The directory's assets text with every asset path moved into `directory`."""
  with open(os.path.join(directory, ASSETS_FILE)) as handle:
    assets = text_format.Parse(handle.read(), scann_assets_pb2.ScannAssets())
  for asset in assets.assets:
    asset.asset_path = os.path.join(directory, os.path.basename(asset.asset_path))
  return text_format.MessageToString(assets)


def load(directory: str) -> Searcher:
  """Loads a serialized searcher from `directory`, wherever it was written."""
  directory = os.path.abspath(directory)
  return Searcher(scann_ops_pybind.scann_pybind.ScannNumpy(directory, relocated_assets(directory)))


def serialize(searcher: Searcher, directory: str) -> None:
  os.makedirs(directory, exist_ok=True)
  searcher.searcher.serialize(directory)  # not ScannSearcher.serialize: no pickled docids

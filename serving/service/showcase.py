"""Live answers of a run's release, through the real HTTP service: what `make run` ends with.

Picks the users whose last event is a view of a catalog item, asks the service for their top
items while they view it and without context, and prints both with categories and timings.
"""
import dataclasses
from typing import Callable, List, Optional, Tuple

import httpx
import pandas as pd

from ctxrec.components.sequence_example_gen import input_tables
from ctxrec.serving.service import server
from ctxrec.serving.service.release import Release
from ctxrec.transform import features as f


@dataclasses.dataclass(frozen=True)
class Viewer:
  user_id: str
  item_id: str


def last_viewers(data_dir: str, release: Release, count: int) -> List[Viewer]:
  """Users with a published state whose latest event is a view of an indexed item."""
  events = pd.concat(frame for _, frame in input_tables.iter_batches(
      input_tables.locate_tables(data_dir).events, f.EVENTS_COLUMNS))
  latest = events.sort_values(f.TIMESTAMP).groupby(f.USER_ID).tail(1)
  views = latest[(latest[f.EVENT_TYPE] == f.EVENT_VIEW)
                 & latest[f.ITEM_ID].isin(release.retriever.catalog)].iloc[::-1]
  chosen: List[Viewer] = []
  for start in range(0, len(views), 256):
    rows = views.iloc[start:start + 256]
    states = release.store.get_many(list(rows[f.USER_ID]), release.states_version)
    chosen += [Viewer(str(u), str(i)) for u, i, s in
               zip(rows[f.USER_ID], rows[f.ITEM_ID], states) if s is not None]
    if len(chosen) >= count:
      break
  return chosen[:count]


def _line(answer: dict, category: Callable[[str], str]) -> str:
  items = ", ".join(f"{i['item_id']} ({category(i['item_id'])})" for i in answer["items"])
  timings = answer["timings_ms"]
  flags = f"  fallbacks: {', '.join(answer['fallbacks'])}" if answer["fallbacks"] else ""
  return (f"{items}\n      state {timings['state']:.2f} ms, head {timings['head']:.2f} ms, ann "
          f"{timings['ann']:.2f} ms, total {timings['total']:.2f} ms{flags}")


def live_answers(data_dir: str, config: server.ServeConfig, users: int = 3,
                 k: int = 5, emit: Callable[[str], None] = print) -> Optional[Tuple[dict, ...]]:
  """Starts the service on a free loopback port and prints answers; None without a release."""
  service = server.build(config)
  release = service.manager.current
  if release is None:
    emit(f"no complete release under {config.serving_dir} (model, index and states of one "
         f"version): nothing to serve")
    return None
  catalog = release.retriever.catalog
  category = lambda item_id: catalog[item_id].categories[0]  # noqa: E731
  answers = []
  emit(f"\nLive answers of the retrieval service (model {release.model_version}, "
       f"states {release.states_version}, {release.retriever.manifest.items} items):")
  with server.running(service.app) as (url, _), httpx.Client(base_url=url, timeout=30) as http:
    for viewer in last_viewers(data_dir, release, users):
      with_context = http.post("/v1/retrieve", json={
          "user_id": viewer.user_id, "context": {"item_id": viewer.item_id}, "k": k}).json()
      without = http.post("/v1/retrieve", json={"user_id": viewer.user_id, "k": k}).json()
      emit(f"  user {viewer.user_id} views {viewer.item_id} ({category(viewer.item_id)})")
      emit(f"    with context:    {_line(with_context, category)}")
      emit(f"    without context: {_line(without, category)}")
      answers.append({"user_id": viewer.user_id, "viewing": viewer.item_id,
                      "with_context": with_context, "without_context": without})
  emit(f"  (serve it yourself: ctxrec serve --serving-dir {config.serving_dir} --store "
       f"{config.store_uri})")
  return tuple(answers)

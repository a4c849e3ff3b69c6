"""Live answers of a run's release, through the real HTTP service: what `make run` ends with.

Picks the users whose last event is a view of a catalog item, asks the service for their top
items with their session (their last catalogued views within the session window, most recent
first, as the examples take them) and without context, and prints both with categories and
timings.
"""
import dataclasses
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import httpx
import pandas as pd

from ctxrec.components.sequence_example_gen import input_tables
from ctxrec.components.sequence_example_gen.config import SequenceExampleGenConfig
from ctxrec.serving.service import server
from ctxrec.serving.service.release import Release
from ctxrec.transform import features as f

SESSION_WINDOW_SECONDS = SequenceExampleGenConfig().session_window_seconds


@dataclasses.dataclass(frozen=True)
class Viewer:
  """A user and their session: (item id, seconds before their last view), most recent first."""
  user_id: str
  views: Tuple[Tuple[str, int], ...]

  def context(self) -> dict:
    """The request's `context`."""
    return {"views": [{"item_id": item, "seconds_ago": age} for item, age in self.views]}


def _catalogued_views(data_dir: str, catalog, timestamp_unit: str) -> pd.DataFrame:
  """Every view of a catalog item, timestamps in epoch seconds, oldest first."""
  events = pd.concat(frame for _, frame in input_tables.iter_batches(
      input_tables.locate_tables(data_dir).events, f.EVENTS_COLUMNS, timestamp_unit))
  events[f.TIMESTAMP] = input_tables.parse_timestamps(events[f.TIMESTAMP], timestamp_unit)[0]
  events = events.sort_values(f.TIMESTAMP, kind="stable")
  latest = events.groupby(f.USER_ID).tail(1)
  viewing = latest[(latest[f.EVENT_TYPE] == f.EVENT_VIEW) & latest[f.ITEM_ID].isin(catalog)]
  views = events[(events[f.EVENT_TYPE] == f.EVENT_VIEW) & events[f.ITEM_ID].isin(catalog)]
  return views[views[f.USER_ID].isin(viewing[f.USER_ID])]


def session_of(views: pd.DataFrame, width: int, window: int) -> Tuple[Tuple[str, int], ...]:
  """One user's last `width` views within `window` seconds of the last one, most recent first."""
  now = int(views[f.TIMESTAMP].iloc[-1])
  recent = views[views[f.TIMESTAMP] >= now - window].iloc[::-1].head(width)
  return tuple((str(i), now - int(t)) for i, t in zip(recent[f.ITEM_ID], recent[f.TIMESTAMP]))


def last_viewers(data_dir: str, release: Release, count: int, timestamp_unit: str = "s",
                 window: int = SESSION_WINDOW_SECONDS) -> List[Viewer]:
  """Users with a published state whose latest event is a view of an indexed item, most recent
  viewers first, with their sessions as wide as the model reads."""
  views = _catalogued_views(data_dir, release.retriever.catalog, timestamp_unit)
  width = release.signature.session_views
  users = list(dict.fromkeys(views[f.USER_ID].iloc[::-1]))
  by_user = {user: frame for user, frame in views.groupby(f.USER_ID, sort=False)}
  chosen: List[Viewer] = []
  for start in range(0, len(users), 256):
    batch = users[start:start + 256]
    states = release.store.get_many([str(u) for u in batch], release.states_version)
    chosen += [Viewer(str(u), session_of(by_user[u], width, window))
               for u, s in zip(batch, states) if s is not None]
    if len(chosen) >= count:
      break
  return chosen[:count]


def _item(item: dict, category: Callable[[str], str]) -> str:
  pinned = " pinned" if item["pinned"] else ""
  return f"{item['item_id']} ({category(item['item_id'])}){pinned}"


def _line(answer: dict, category: Callable[[str], str]) -> str:
  items = ", ".join(_item(i, category) for i in answer["items"])
  timings = answer["timings_ms"]
  flags = f"  fallbacks: {', '.join(answer['fallbacks'])}" if answer["fallbacks"] else ""
  return (f"{items}\n      state {timings['state']:.2f} ms, head {timings['head']:.2f} ms, ann "
          f"{timings['ann']:.2f} ms, total {timings['total']:.2f} ms{flags}")


def session_text(views: Sequence[Tuple[str, int]], category: Callable[[str], str]) -> str:
  """The session as printed: `item (category) N s ago`, most recent first."""
  return ", ".join(f"{item} ({category(item)}) {age} s ago" for item, age in views)


def _ask(http: httpx.Client, viewer: Viewer, k: int) -> Dict[str, dict]:
  with_session = http.post("/v1/retrieve", json={
      "user_id": viewer.user_id, "context": viewer.context(), "k": k}).json()
  without = http.post("/v1/retrieve", json={"user_id": viewer.user_id, "k": k}).json()
  return {"with_context": with_session, "without_context": without}


def live_answers(data_dir: str, config: server.ServeConfig, users: int = 3, k: int = 5,
                 emit: Callable[[str], None] = print,
                 timestamp_unit: str = "s") -> Optional[Tuple[dict, ...]]:
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
    for viewer in last_viewers(data_dir, release, users, timestamp_unit):
      answer = _ask(http, viewer, k)
      emit(f"  user {viewer.user_id}, session of {len(viewer.views)} views (most recent "
           f"first): {session_text(viewer.views, category)}")
      emit(f"    with the session: {_line(answer['with_context'], category)}")
      emit(f"    without context:  {_line(answer['without_context'], category)}")
      answers.append({"user_id": viewer.user_id, "views": viewer.views, **answer})
  emit(f"  (serve it yourself: ctxrec serve --serving-dir {config.serving_dir} --store "
       f"{config.store_uri})")
  return tuple(answers)

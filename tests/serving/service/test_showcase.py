"""`ctxrec ask` (what `make run` ends with) and `ctxrec serve`'s option checks."""
import pandas as pd

from ctxrec.pipeline import cli
from ctxrec.serving.service import server, showcase
from ctxrec.transform import features as f


def test_live_answers_go_through_the_http_service(tiny_release, tiny_data):
  serving_dir, store_uri, version = tiny_release
  lines = []
  answers = showcase.live_answers(tiny_data, server.ServeConfig(serving_dir, store_uri),
                                  users=2, emit=lines.append)
  assert len(answers) == 2
  for answer in answers:
    assert len(answer["with_context"]["items"]) == 5
    assert answer["with_context"]["model_version"] == version
    assert answer["with_context"]["fallbacks"] == []
    assert answer["with_context"]["items"] != answer["without_context"]["items"]
    ages = [age for _, age in answer["views"]]
    assert ages[0] == 0 and ages == sorted(ages)  # most recent first, from the last view
    viewed = list(dict.fromkeys(item for item, _ in answer["views"]))[:5]
    assert [i["item_id"] for i in answer["with_context"]["items"][:len(viewed)]] == viewed
  text = "\n".join(lines)
  first = answers[0]["views"][0][0]
  assert f"session of {len(answers[0]['views'])} views (most recent first): {first}" in text
  assert "pinned" in text and "total" in text


def test_a_session_is_the_last_views_within_the_window_most_recent_first():
  views = pd.DataFrame({f.ITEM_ID: ["a", "b", "c", "d", "e"],
                        f.TIMESTAMP: [0, 5000, 9000, 9500, 10000]})
  assert showcase.session_of(views, 8, 3600) == (("e", 0), ("d", 500), ("c", 1000))
  assert showcase.session_of(views, 2, 3600) == (("e", 0), ("d", 500))
  viewer = showcase.Viewer("u", (("e", 0), ("d", 500)))
  assert viewer.context() == {"views": [{"item_id": "e", "seconds_ago": 0},
                                        {"item_id": "d", "seconds_ago": 500}]}


def test_live_answers_without_a_release_say_so(tmp_path, tiny_data):
  lines = []
  config = server.ServeConfig(str(tmp_path / "serving"), f"sqlite:///{tmp_path}/s.sqlite")
  assert showcase.live_answers(tiny_data, config, emit=lines.append) is None
  assert "no complete release" in lines[0]


def test_serve_refuses_an_unknown_tf_serving_scheme(tmp_path, capsys):
  code = cli.main(["serve", "--serving-dir", str(tmp_path), "--store",
                   f"sqlite:///{tmp_path}/s.sqlite", "--tf-serving", "ftp://host:1"])
  assert code == 2
  assert "grpc://HOST:PORT or http://HOST:PORT" in capsys.readouterr().err


def test_serve_refuses_a_missing_token_file_before_loading_anything(tmp_path, capsys):
  code = cli.main(["serve", "--serving-dir", str(tmp_path), "--store",
                   f"sqlite:///{tmp_path}/s.sqlite", "--auth-token-file", str(tmp_path / "no")])
  assert code == 2
  error = capsys.readouterr().err
  assert "--auth-token-file" in error and "no such file" in error

"""`ctxrec ask` (what `make run` ends with) and `ctxrec serve`'s option checks."""
from ctxrec.pipeline import cli
from ctxrec.serving.service import server, showcase


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
  text = "\n".join(lines)
  assert f"views {answers[0]['viewing']}" in text and "total" in text


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

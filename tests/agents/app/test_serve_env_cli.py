"""``textgen-env serve-env``: flags from the env configs, refusals before any model loads, and a served env."""

from __future__ import annotations

import pytest

from agents.app.cli import main
from agents.app.serve_env_cli import env_flag_names

pytest.importorskip("openenv")


def test_every_env_argument_but_objects_is_a_flag():
    names = env_flag_names()
    assert {"max_new_tokens", "reward", "kl_coef", "prompts", "max_reply_tokens", "scenarios"} <= set(names)
    assert "tokenizer" not in names and "render_mode" not in names


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--host", "0.0.0.0"], "Expected a loopback host"),
        (["--reward-kwargs", "{not json"], "Expected --reward-kwargs to be a JSON object"),
        (["--env", "TextEdit-v0"], "invalid choice"),
    ],
    ids=["remote-host", "bad-json", "unknown-env"],
)
def test_refused_before_any_model_loads(argv, match, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve-env", *argv])
    assert exit_info.value.code == 2 and match in capsys.readouterr().err


def test_a_bad_env_setting_is_one_line(tiny_model_dir, capsys):
    code = main(["serve-env", "--model", tiny_model_dir, "--action-mode", "top_k"])
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]  # transformers' bars aside
    assert code == 2 and errors == [
        "textgen-env: error: Expected action_mode='vocab' for a completion-level env, got 'top_k'"
    ]


def test_it_serves_the_env_it_is_given_and_prints_the_url(tiny_model_dir, monkeypatch, capsys):
    from textgen_env.integrations import openenv_server

    served = []
    monkeypatch.setattr(openenv_server.EnvServer, "run", lambda server: served.append(server))
    argv = ["--env", "TextGen-v0", "--model", tiny_model_dir, "--port", "0", "--max-new-tokens", "5"]
    assert main(["serve-env", *argv, "--reward", "keyword", "--reward-kwargs", '{"keywords": ["great"]}']) == 0
    [server] = served
    server._socket.close()
    assert server.env_id == "TextGen-v0" and server.url in capsys.readouterr().out

"""The OpenEnv server driven by OpenEnv's own clients: reset, step, state, concurrent sessions, rewards equal to the
local env's, the token and completion and dialogue envs, the access rules, and bad input."""

from __future__ import annotations

import asyncio

import httpx
import pytest

pytest.importorskip("openenv")

from openenv.core.generic_client import GenericEnvClient

from textgen_env import TextCompletionEnv
from textgen_env.integrations.openenv import TextGenAction, TextGenEnvClient
from textgen_env.integrations.openenv_server import EnvFactory, EnvServer

KEYWORD = dict(reward="keyword", reward_kwargs={"keywords": ["great"]})


@pytest.fixture(scope="module")
def settings(tiny):
    model, tokenizer = tiny
    return dict(model=model, tokenizer=tokenizer, max_new_tokens=6, max_prompt_tokens=16)


@pytest.fixture(scope="module")
def completion_server(settings):
    with EnvServer(EnvFactory("TextCompletion-v0", **settings, **KEYWORD), max_sessions=4) as server:
        yield server


def _local_step(settings, seed, text):
    env = TextCompletionEnv(**settings, **KEYWORD)
    _, info = env.reset(seed=seed)
    _, reward, _, _, step_info = env.step(text)
    return info["prompt"], reward, step_info


def test_typed_client_reset_step_state_match_the_local_env(completion_server, settings):
    prompt, reward, info = _local_step(settings, seed=5, text="the movie was great")
    with TextGenEnvClient(base_url=completion_server.url).sync() as client:
        first = client.reset(seed=5)
        assert first.observation.prompt == prompt and not first.done and first.reward is None
        result = client.step(TextGenAction(text="the movie was great"))
        state = client.state()
    assert result.done and result.reward == pytest.approx(reward) == 1.0
    assert result.observation.text == "the movie was great"
    assert result.observation.reward_components == pytest.approx(info["reward_components"])
    assert result.observation.input_ids[-len(info["completion_ids"]) :] == info["completion_ids"]
    assert state.step_count == 1 and state.done and state.episode_return == pytest.approx(1.0)
    assert state.text == "the movie was great" and state.episode_id


def test_openenvs_generic_client_speaks_to_it_with_plain_dicts(completion_server):
    with GenericEnvClient(base_url=completion_server.url).sync() as client:
        client.reset(seed=1, prompt="the film was")
        result = client.step({"token_ids": [10, 11]})
        state = client.state()
    assert result.done and result.observation["prompt"] == "the film was"
    assert result.observation["info"]["completion_ids"][:2] == [10, 11]
    assert state["step_count"] == 1


def test_concurrent_sessions_are_isolated_and_equal_the_local_env(completion_server, settings):
    texts = ["great", "the plot was slow", "a great great film"]

    async def session(seed: int, text: str):
        async with TextGenEnvClient(base_url=completion_server.url) as client:
            start = await client.reset(seed=seed)
            await asyncio.sleep(0)  # interleave the sessions
            result = await client.step(TextGenAction(text=text))
            return start.observation.prompt, result.reward, (await client.state()).episode_id

    async def all_sessions():
        return await asyncio.gather(*(session(seed, text) for seed, text in enumerate(texts)))

    results = asyncio.run(all_sessions())
    for seed, (text, (prompt, reward, _)) in enumerate(zip(texts, results)):
        local_prompt, local_reward, _ = _local_step(settings, seed, text)
        assert (prompt, reward) == (local_prompt, pytest.approx(local_reward))
    assert len({episode for *_, episode in results}) == 3


def test_token_env_takes_one_token_per_step(settings):
    server = EnvServer(EnvFactory("TextGen-v0", **settings), max_sessions=1)
    with server, TextGenEnvClient(base_url=server.url).sync() as client:
        client.reset(seed=0)
        with pytest.raises(RuntimeError, match="Expected token_ids with exactly one id for TextGen-v0"):
            client.step(TextGenAction(token_ids=[10, 11]))
        steps = 0
        result = client.step(TextGenAction(token_ids=[10]))
        while not result.done:
            result = client.step(TextGenAction(token_ids=[11]))
            steps += 1
        assert steps == 5 and result.observation.stop_reason == "max_new_tokens"
        with pytest.raises(RuntimeError, match="Cannot step TextGen-v0 after the episode ended"):
            client.step(TextGenAction(token_ids=[10]))


def test_dialogue_is_served_one_reply_per_step(tiny):
    model, tokenizer = tiny
    factory = EnvFactory("TextDialogue-v0", model=model, tokenizer=tokenizer, max_reply_tokens=4, max_turns=2)
    with EnvServer(factory, max_sessions=1) as server, TextGenEnvClient(base_url=server.url).sync() as client:
        opening = client.reset(seed=0).observation.messages
        result = client.step(TextGenAction(text="the story was great"))
    assert [m["role"] for m in opening] == ["user"]
    assert result.observation.messages[1] == {"role": "assistant", "content": "the story was great"}
    assert result.done or result.observation.messages[-1]["role"] == "user"


@pytest.mark.parametrize(
    ("path", "headers", "status", "match"),
    [
        ("/health", {}, 200, "healthy"),
        ("/health", {"host": "evil.example:80"}, 403, "Expected a Host header naming this server"),
        ("/health", {"origin": "http://evil.example"}, 403, "Expected no Origin or this server's own"),
        ("/step", {}, 405, "Expected episodes over the WebSocket session"),
        ("/state", {}, 405, "Expected episodes over the WebSocket session"),
    ],
    ids=["ok", "dns-rebinding-host", "cross-site-origin", "stateless-step", "stateless-state"],
)
def test_http_access_rules(completion_server, path, headers, status, match):
    method = "POST" if path == "/step" else "GET"
    response = httpx.request(
        method, completion_server.url + path, headers=headers, json={} if method == "POST" else None
    )
    assert response.status_code == status and match in response.text


def test_a_wrong_token_is_refused_over_http_and_websocket(completion_server):
    wrong = completion_server.url.rsplit("/", 1)[0] + "/not-the-token-at-all"
    response = httpx.get(wrong + "/health")
    assert response.status_code == 401 and "Expected the server's token" in response.text
    with pytest.raises(ConnectionError), TextGenEnvClient(base_url=wrong).sync() as client:
        client.reset()


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda settings: EnvFactory("TextEdit-v0"), ValueError, "Expected env_id to be one of"),
        (lambda settings: EnvFactory(**settings, action_mode="top_k"), ValueError, "Expected action_mode='vocab'"),
        (lambda settings: TextGenAction(), ValueError, "Expected exactly one of token_ids and text"),
    ],
    ids=["env-id", "env-settings", "empty-action"],
)
def test_bad_settings_raise(settings, call, error, match):
    with pytest.raises(error, match=match):
        call(settings)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"host": "0.0.0.0"}, "Expected a loopback host"),
        ({"max_sessions": 0}, "Expected max_sessions to be an int >= 1"),
        ({"session_timeout": -1}, "Expected session_timeout to be a positive number"),
        ({"allowed_hosts": ["http://x"]}, "Expected allowed_hosts to hold host names"),
    ],
    ids=["remote-host", "sessions", "timeout", "allowed-host"],
)
def test_bad_server_settings_raise(settings, kwargs, match):
    factory = EnvFactory("TextCompletion-v0", **settings)
    with pytest.raises(ValueError, match=match):
        EnvServer(factory, **kwargs)

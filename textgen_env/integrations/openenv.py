"""OpenEnv adapter: the package's envs as an openenv-core `Environment`, their action/observation/state types, a client.

OpenEnv (openenv-core) serves an env over a WebSocket session (``/ws``: reset, step, state, close) with typed
Pydantic messages; TRL, torchforge, SkyRL, ART and others consume such servers. `TextGenEnvironment` puts one of
our Gymnasium envs behind that interface (one instance per session); `textgen_env.integrations.openenv_server`
serves it on loopback with the feedback page's Host/Origin/token rules. The served envs (`SERVED_ENVS`):

* ``TextGen-v0``: one token per step (``TextGenAction(token_ids=[id])``);
* ``TextCompletion-v0``: one whole completion per step (``token_ids`` or ``text``), the OpenEnv "text in, text
  out" contract;
* ``TextDialogue-v0``: one assistant reply per step (through `CompletionWrapper`); the simulated user's answer
  is in the next observation's ``messages``.

>>> action = TextGenAction(text=" a great film")  # doctest: +SKIP
>>> client = TextGenEnvClient(base_url=server.url).sync()  # doctest: +SKIP
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from typing import Any
from uuid import uuid4

import gymnasium as gym
import numpy as np

from textgen_env.completion import CompletionWrapper
from textgen_env.integrations._deps import missing_dependency

try:
    from openenv.core.client_types import StepResult
    from openenv.core.env_client import EnvClient
    from openenv.core.env_server.interfaces import Environment
    from openenv.core.env_server.types import Action, EnvironmentMetadata, Observation, State
    from pydantic import Field, model_validator
except ModuleNotFoundError as error:  # pragma: no cover - the interop extra is installed in CI
    raise missing_dependency(error, "openenv", "openenv-core", feature="The OpenEnv adapter") from error

__all__ = [
    "SERVED_ENVS",
    "TextGenAction",
    "TextGenEnvClient",
    "TextGenEnvironment",
    "TextGenObservation",
    "TextGenState",
    "json_safe",
]

SERVED_ENVS = ("TextGen-v0", "TextCompletion-v0", "TextDialogue-v0")
"""The env ids the OpenEnv server takes; TextDialogue-v0 is served one reply per step."""


class TextGenAction(Action):
    """One step's action: token ids (TextGen-v0: exactly one; the completion envs: the whole completion), or text
    (the completion envs only), never both."""

    token_ids: list[int] | None = Field(default=None, description="token ids; TextGen-v0 takes exactly one")
    text: str | None = Field(default=None, description="the completion as text (TextCompletion-v0, TextDialogue-v0)")

    @model_validator(mode="after")
    def _one_kind(self) -> TextGenAction:
        if (self.token_ids is None) == (self.text is None):
            raise ValueError("Expected exactly one of token_ids and text, got both or neither")
        return self


class TextGenObservation(Observation):
    """What a reset or step returns (besides ``reward`` and ``done``, which OpenEnv sends next to it)."""

    prompt: str = Field(default="", description="the episode's prompt (for a dialogue: the conversation so far)")
    text: str = Field(default="", description="the completion so far (for a dialogue: the latest reply)")
    input_ids: list[int] = Field(default_factory=list, description="prompt and completion token ids, no padding")
    messages: list[dict[str, str]] = Field(default_factory=list, description="a dialogue's chat messages so far")
    reward_components: dict[str, float] = Field(default_factory=dict, description="the step's reward by part")
    stop_reason: str | None = Field(default=None, description="why the completion ended (eos, stop_string, ...)")
    arrays: dict[str, list[float]] = Field(
        default_factory=dict, description="the Gymnasium observation's arrays as lists (left-padded as in Gym)"
    )
    info: dict[str, Any] = Field(default_factory=dict, description="the Gymnasium env's info dict (JSON-safe)")


class TextGenState(State):
    """A session's state: OpenEnv's ``episode_id`` and ``step_count`` with the episode's text and return."""

    prompt: str = ""
    text: str = ""
    done: bool = False
    episode_return: float = 0.0


def json_safe(value: Any) -> Any:
    """`value` with numpy scalars and arrays (and tuples) turned into JSON types, recursively."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return value


class TextGenEnvironment(Environment):
    """One OpenEnv session over one of our Gymnasium envs (a TextGenEnv, or a completion-level env).

    Args:
        env: the Gymnasium env (built per session by the server's factory; model, tokenizer and reward are shared).
        env_id: its id, for messages and metadata.
    """

    SUPPORTS_CONCURRENT_SESSIONS = True  # every session has its own env (episode state, KV cache)

    def __init__(self, env: gym.Env, env_id: str) -> None:
        super().__init__()
        self.env = env
        self.env_id = env_id
        self.completion_level = isinstance(env, CompletionWrapper)
        self._state = TextGenState()

    def reset(
        self, seed: int | None = None, episode_id: str | None = None, prompt: str | None = None, **kwargs: Any
    ) -> TextGenObservation:
        """Start an episode (`prompt`: start from this text, TextGen-v0 and TextCompletion-v0 only)."""
        if kwargs:
            raise ValueError(f"Expected reset arguments among seed, episode_id and prompt, got {sorted(kwargs)}")
        options = None if prompt is None else {"prompt": prompt}
        observation, info = self.env.reset(seed=seed, options=options)
        self._state = TextGenState(episode_id=episode_id or str(uuid4()), step_count=0, prompt=info.get("prompt", ""))
        return self._observation(observation, info, reward=None, done=False)

    def step(self, action: TextGenAction, timeout_s: float | None = None, **kwargs: Any) -> TextGenObservation:
        """One step: a token (TextGen-v0) or a completion (the completion envs)."""
        if self._state.episode_id is None:
            raise gym.error.ResetNeeded(f"Cannot step {self.env_id} before reset")
        if self._state.done:
            raise gym.error.ResetNeeded(f"Cannot step {self.env_id} after the episode ended; reset first")
        if self.completion_level:
            move: Any = action.text if action.text is not None else action.token_ids
        elif action.token_ids is None or len(action.token_ids) != 1:
            given = "text" if action.text is not None else f"{len(action.token_ids or [])} token ids"
            raise ValueError(
                f"Expected token_ids with exactly one id for {self.env_id} (one token per step), got {given}"
            )
        else:
            move = action.token_ids[0]
        observation, reward, terminated, truncated, info = self.env.step(move)
        done = bool(terminated or truncated)
        self._state.step_count += 1
        self._state.text = str(info.get("text", ""))
        self._state.done = done
        self._state.episode_return += float(reward)
        return self._observation(observation, info, reward=float(reward), done=done)

    def _observation(
        self, observation: Any, info: dict[str, Any], reward: float | None, done: bool
    ) -> TextGenObservation:
        arrays = dict(observation) if isinstance(observation, Mapping) else {"hidden": observation}
        ids: list[int] = []
        if "input_ids" in arrays and "attention_mask" in arrays:
            ids = np.asarray(arrays["input_ids"])[np.asarray(arrays["attention_mask"]).astype(bool)].tolist()
        conversation = info.get("conversation", [])
        return TextGenObservation(
            prompt=str(info.get("prompt", "")),
            text=str(info.get("text", info.get("reply", ""))),
            input_ids=ids,
            messages=[{"role": str(m["role"]), "content": str(m["content"])} for m in conversation],
            reward_components=json_safe(info.get("reward_components", {})),
            stop_reason=info.get("stop_reason"),
            arrays={key: json_safe(np.asarray(value)) for key, value in arrays.items()},
            info=json_safe(info),
            reward=reward,
            done=done,
        )

    @property
    def state(self) -> TextGenState:
        return self._state

    def get_metadata(self) -> EnvironmentMetadata:
        level = "one completion per step" if self.completion_level else "one token per step"
        return EnvironmentMetadata(name=self.env_id, description=f"textgen-env's {self.env_id} ({level})", version="0")

    def close(self) -> None:
        self.env.close()


class TextGenEnvClient(EnvClient[TextGenAction, TextGenObservation, TextGenState]):
    """OpenEnv's WebSocket client with our types: ``TextGenEnvClient(base_url=server.url).sync()`` then
    ``reset(seed=..., prompt=...)``, ``step(TextGenAction(...))``, ``state()``."""

    def _step_payload(self, action: TextGenAction) -> dict[str, Any]:
        return dict(action.model_dump(exclude_none=True, exclude={"metadata"}))

    def _parse_result(self, payload: dict[str, Any]) -> StepResult[TextGenObservation]:
        observation = TextGenObservation(
            **payload.get("observation", {}), reward=payload.get("reward"), done=payload.get("done", False)
        )
        return StepResult(observation=observation, reward=payload.get("reward"), done=payload.get("done", False))

    def _parse_state(self, payload: dict[str, Any]) -> TextGenState:
        return TextGenState(**payload)


def session_factory(make_env: Callable[[], gym.Env], env_id: str) -> Callable[[], TextGenEnvironment]:
    """The per-session factory OpenEnv's server calls: a fresh `TextGenEnvironment` over ``make_env()``."""

    def factory() -> TextGenEnvironment:
        return TextGenEnvironment(make_env(), env_id)

    factory.__name__ = f"{env_id} session"
    return factory

"""The env loop every rollout and every env-stepping evaluation runs: the policy samples, the env steps.

`run_episodes` resets every slot of a vector env (TextGen-v0 or TextDialogue-v0), samples each slot's next token with
the policy's KV cache until every slot's episode has ended (``step_unfinished``: no autoreset), and returns the
finished episodes as plain lists (`agents.rollout.Episode`). Tokens the env inserts (tool results) are conditioned
on but never actions: they are marked in ``env_token_mask`` with log-prob, reward and value 0. In a conversation an
episode is one assistant reply, with the conversation so far as its prompt, and a reply's last reward also carries
its conversation's later replies' rewards (the return is the conversation's from that reply on).

`agents.base.Agent` collects its training rollouts with it (sampling with its own generator and `sample_actions`);
an evaluation that must step the env (an env with tools) calls it with a seeded sampler of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from agents.functional import selective_log_softmax
from agents.policy import LMPolicy
from agents.rollout import Episode

if TYPE_CHECKING:
    from textgen_env import TextGenVectorEnv
    from textgen_env.dialogue import TextDialogueVectorEnv

__all__ = ["EPISODE_INFO_KEYS", "run_episodes"]

EPISODE_INFO_KEYS = ("task", "tool_call_count", "tool_error_count", "tool_malformed_count", "stop_reason")
"""The keys of an episode's last ``info`` that `run_episodes` keeps in ``Episode.info`` (when the env reports them):
the task item and its scores, the episode's tool calls, errors and malformed calls, why it stopped."""


@torch.no_grad()
def run_episodes(
    env: TextGenVectorEnv | TextDialogueVectorEnv,
    policy: LMPolicy,
    seeds: list[int],
    sample: Callable[[torch.Tensor], torch.Tensor],
    temperature: float,
    options: dict[str, Any] | None = None,
) -> list[Episode]:
    """One episode per slot of `env` (one per reply in a conversation), reset with `seeds` and `options`.

    Args:
        env: the vector env, in token observation and vocab action modes.
        policy: samples with its KV cache (``rollout_cache``/``rollout_step``).
        seeds: one reset seed per slot.
        sample: (B, V) logits -> (B,) actions (at `temperature`; the caller's generator).
        temperature: the temperature of the recorded log-probs (that of `sample`).
        options: ``env.reset`` options (for example one task item per slot).
    """
    n = env.num_envs
    obs, _ = env.reset(seed=seeds, options=options)  # type: ignore[arg-type]  # list[int] suits both envs
    cache = policy.rollout_cache(n)
    prompts = _prompt_ids(obs, range(n))
    tokens: list[list[int]] = [list(p) for p in prompts]
    restart = [True] * n
    active = np.ones(n, dtype=bool)
    records = [_new_record() for _ in range(n)]
    replies: list[list[Episode]] = [[] for _ in range(n)]
    while active.any():
        logits, values = policy.rollout_step(cache, tokens, restart)
        actions = sample(logits)
        logprobs = selective_log_softmax(logits / temperature, actions) if temperature > 0 else torch.zeros(n)
        obs, rewards, terminated, truncated, infos = env.step_unfinished(actions.numpy())
        tokens, restart = [[int(a)] for a in actions], [False] * n
        reply_ended = infos.get("reply_ended", np.zeros(n, dtype=bool))
        inserted = _env_tokens(infos, n)  # tool results the env appended after each action
        for i in np.flatnonzero(active):
            record = records[i]
            record["actions"].append(int(actions[i]))
            record["rewards"].append(float(rewards[i]))
            record["logprobs"].append(float(logprobs[i]))
            if values is not None:
                record["values"].append(float(values[i]))
            record["env"].append(False)
            if inserted[i]:  # env tokens: conditioned on, never actions (0 log-prob, reward and value)
                k = len(inserted[i])
                record["actions"].extend(inserted[i])
                record["env"].extend([True] * k)
                record["rewards"].extend([0.0] * k)
                record["logprobs"].extend([0.0] * k)
                if values is not None:
                    record["values"].extend([0.0] * k)
                tokens[i], restart[i] = prompts[i] + record["actions"], True  # the cache takes the text anew
            over = bool(terminated[i] or truncated[i])
            if over or bool(reply_ended[i]):
                replies[i].append(
                    Episode(
                        prompt=str(infos["prompt"][i]),
                        completion=str(infos["text"][i]),
                        prompt_ids=prompts[i],
                        completion_ids=record["actions"],
                        rewards=record["rewards"],
                        logprobs=record["logprobs"],
                        values=record["values"],
                        slot=int(i),
                        turn=len(replies[i]),
                        env_token_mask=record["env"] if any(record["env"]) else [],
                        info=_episode_info(infos, int(i)),
                    )
                )
                records[i] = _new_record()
            if over:
                active[i] = False
            elif reply_ended[i]:  # the user answered: the next reply starts from the longer conversation
                prompts[i] = _prompt_ids(obs, [i])[0]
                tokens[i], restart[i] = list(prompts[i]), True
    finished = []
    for episodes in replies:
        for earlier, later in zip(episodes[-2::-1], episodes[:0:-1]):  # last reply first
            earlier.rewards[-1] += sum(later.rewards)
        finished.extend(episodes)
    return finished


def _new_record() -> dict[str, list]:
    return {"actions": [], "rewards": [], "logprobs": [], "values": [], "env": []}


def _episode_info(infos: dict[str, Any], i: int) -> dict[str, Any]:
    """Slot `i`'s values of `EPISODE_INFO_KEYS` in a vector env's step infos (those it reports for that slot)."""
    return {key: _slot_value(infos[key], i) for key in EPISODE_INFO_KEYS if key in infos and _present(infos, key, i)}


def _present(infos: dict[str, Any], key: str, i: int) -> bool:
    mask = infos.get(f"_{key}")
    return mask is None or bool(mask[i])


def _slot_value(value: Any, i: int) -> Any:
    """Slot `i`'s entry of one batched info value (Gymnasium nests a dict value as a dict of batched values)."""
    if isinstance(value, dict):
        return {k: _slot_value(v, i) for k, v in value.items() if not k.startswith("_") and _present(value, k, i)}
    entry = value[i]
    return entry.item() if isinstance(entry, np.generic) else entry


def _env_tokens(infos: dict[str, Any], n: int) -> list[list[int]]:
    """Per slot, the token ids the env inserted after this step's action (``info["env_tokens"]``; [] for none)."""
    values, present = infos.get("env_tokens"), infos.get("_env_tokens")
    if values is None or present is None:
        return [[] for _ in range(n)]
    return [[int(t) for t in values[i]] if present[i] else [] for i in range(n)]


def _prompt_ids(obs: dict[str, np.ndarray], slots: Any) -> list[list[int]]:
    """The unpadded prompt tokens of `slots` in a token observation."""
    ids, mask = obs["input_ids"], obs["attention_mask"].astype(bool)
    return [ids[i][mask[i]].tolist() for i in slots]

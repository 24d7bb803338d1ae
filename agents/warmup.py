"""A supervised warm-up on tool-call demonstrations, for a model too small to call a tool it has only read about.

SmolLM2-135M-Instruct, told about the calculator in its system prompt (and shown an example call), never writes a
call: RL then has nothing to reinforce. The warm-up shows it the format on a few training items before RL starts:

1. `tool_call_demonstrations` drives a task env with tools through scripted episodes: for each item, the tokens of a
   call of the tool on the item's expression (``item.metadata["expression"]``, which the arithmetic and word-problem
   tasks record), then, after the result the env itself computes and inserts as env tokens, the reference answer
   and EOS. The episodes are the env's own (its prompt rendering, call detection and result tokens), with the
   inserted result marked in ``env_token_mask``.
2. `supervised_warmup` fine-tunes the policy on them: the mean negative log-likelihood of the demonstrated actions
   (never of the env's tokens: the completion mask leaves them out, as in RL), AdamW, a few epochs.

The warmed-up model is then the start of RL and its KL reference (as an SFT model is in RLHF), so the KL penalty does
not pull the policy back to a model that never calls the tool.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from agents.functional import masked_mean, selective_log_softmax
from agents.policy import LMPolicy
from agents.rollout import Episode, RolloutBatch
from textgen_env import TextGenVectorEnv
from textgen_env.tasks import TaskItem
from textgen_env.tools import call_format_for

__all__ = ["supervised_warmup", "tool_call_demonstrations"]


def tool_call_demonstrations(
    env: TextGenVectorEnv, items: Sequence[TaskItem], *, tool: str = "calculator", argument: str = "expression"
) -> list[Episode]:
    """One scripted episode per item of `env` (a task env with `tool`): call `tool` on the item's expression, then
    write the reference answer (see the module docstring). Episodes that do not end as scripted (a prompt or a
    token limit cut them) are left out."""
    tools = getattr(env.config, "tools", ())
    if tool not in {t.name for t in tools}:
        raise ValueError(f"Expected an env with the {tool!r} tool, got tools {[t.name for t in tools]}")
    missing = [item.question for item in items if argument not in item.metadata]
    if missing:
        raise ValueError(
            f"Expected task items with metadata[{argument!r}] to demonstrate a {tool} call, got none in "
            f"{missing[0]!r} (the arithmetic and word-problem tasks record it)"
        )
    tokenizer, n = env.tokenizer, env.num_envs
    call_format = call_format_for(tokenizer, env.config.tool_format)  # the one the env detects
    episodes: list[Episode] = []
    for start in range(0, len(items), n):
        chunk = list(items[start : start + n])
        given = chunk + [chunk[-1]] * (n - len(chunk))
        scripts = [
            [
                tokenizer(call_format.call_text(tool, {argument: item.metadata[argument]}), add_special_tokens=False)[
                    "input_ids"
                ],
                [*tokenizer(str(item.answer), add_special_tokens=False)["input_ids"], tokenizer.eos_token_id],
            ]
            for item in given
        ]
        ran = _scripted_round(env, given, scripts)[: len(chunk)]  # the real slots, then those that ran as scripted
        episodes.extend(episode for episode in ran if episode is not None)
    if items and not episodes:
        raise ValueError(
            f"Expected demonstrations that end as scripted within max_new_tokens={env.config.max_new_tokens}, got "
            f"none: a call, its result and the answer take {sum(map(len, scripts[0]))} tokens plus the result's"
        )
    return episodes


def _scripted_round(
    env: TextGenVectorEnv, items: list[TaskItem], scripts: list[list[list[int]]]
) -> list[Episode | None]:
    """Each slot writes its script's first part, then (once the env has inserted the call's result) its second; per
    slot its episode, or None where it did not end as scripted."""
    n = env.num_envs
    obs, _ = env.reset(seed=list(range(n)), options={"item": items})
    prompts = [obs["input_ids"][i][obs["attention_mask"][i].astype(bool)].tolist() for i in range(n)]
    plan = [list(first) + list(second) for first, second in scripts]
    written = [0] * n
    completions: list[list[int]] = [[] for _ in range(n)]
    inserted: list[list[bool]] = [[] for _ in range(n)]
    done = np.zeros(n, dtype=bool)
    finished: list[Episode | None] = [None] * n
    while not done.all():
        actions = np.array([plan[i][min(written[i], len(plan[i]) - 1)] for i in range(n)], dtype=np.int64)
        _, _, terminated, truncated, infos = env.step_unfinished(actions)
        env_tokens, present = infos.get("env_tokens"), infos.get("_env_tokens")
        for i in np.flatnonzero(~done):
            completions[i].append(int(actions[i]))
            inserted[i].append(False)
            written[i] += 1
            if env_tokens is not None and present is not None and present[i]:
                completions[i].extend(int(t) for t in env_tokens[i])
                inserted[i].extend([True] * len(env_tokens[i]))
            if terminated[i] or truncated[i]:
                done[i] = True
                if written[i] == len(plan[i]) and terminated[i] and any(inserted[i]):  # ended as scripted
                    finished[i] = Episode(
                        prompt=str(infos["prompt"][i]),
                        completion=str(infos["text"][i]),
                        prompt_ids=prompts[i],
                        completion_ids=completions[i],
                        rewards=[0.0] * len(completions[i]),
                        logprobs=[0.0] * len(completions[i]),
                        slot=int(i),
                        env_token_mask=inserted[i],
                    )
    return finished


def supervised_warmup(
    policy: LMPolicy,
    episodes: Sequence[Episode],
    *,
    epochs: int = 3,
    learning_rate: float = 1e-4,
    minibatch_size: int = 8,
    seed: int = 0,
) -> dict[str, Any]:
    """Fine-tune `policy` on `episodes`' actions (never their env tokens): mean NLL per action, AdamW; returns the
    mean loss of each epoch and the number of demonstrations."""
    if not episodes:
        raise ValueError("Expected at least one demonstration, got none")
    for name, value in (("epochs", epochs), ("minibatch_size", minibatch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"Expected {name} to be an int >= 1, got {value!r}")
    if not learning_rate > 0:
        raise ValueError(f"Expected learning_rate > 0, got {learning_rate!r}")
    batch = RolloutBatch.from_episodes(list(episodes), policy.tokenizer.pad_token_id)
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=learning_rate, weight_decay=0.0)
    order = np.random.default_rng(seed)
    losses = []
    for _ in range(epochs):
        total = []
        for rows in np.array_split(order.permutation(len(batch)), max(1, -(-len(batch) // minibatch_size))):
            part = batch.select(rows).to(policy.device)
            logits = policy.score(part).logits
            loss = -masked_mean(selective_log_softmax(logits, part.actions), part.completion_mask)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.trainable_parameters(), 1.0)
            optimizer.step()
            total.append(float(loss.detach()))
        losses.append(float(np.mean(total)))
    optimizer.zero_grad(set_to_none=True)
    return {"demonstrations": len(episodes), "epoch_losses": losses}

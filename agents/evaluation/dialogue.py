"""Held-out evaluation of an agent on conversations (TextDialogue-v0): the user's mean rating per conversation, the
exact KL to the reference summed over a conversation's replies, reply lengths, with standard errors.

Conversations are the independent units: each is one sample (its mean rating), so the standard errors are over
conversations, and two evaluations with the same seed meet the same scenarios and users (`paired_gain` pairs them).
The agent's own collection loop runs the conversations with a sampler seeded for the evaluation; the agent's env,
generator and token count are restored afterwards, so evaluating never changes training.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch

from agents.base import Agent
from agents.evaluation.statistics import mean_with_error, paired_difference
from agents.evaluation.textgen import EvalResult, distinct_n, gain_summary
from agents.functional import masked_sum
from agents.rollout import RolloutBatch

__all__ = ["evaluate_dialogue", "gain_by_scenario", "rescore_dialogue_model"]


def evaluate_dialogue(agent: Agent, env, *, rounds: int = 2, seed: int = 0) -> EvalResult:
    """Run ``rounds x env.num_envs`` conversations of `env` (a ``TextDialogueVectorEnv``) with `agent`'s policy.

    Returns an `EvalResult` whose "prompts" are conversations (one sample each): ``reward`` is the mean rating per
    conversation, ``kl`` the summed exact KL of its replies, ``length`` its reply tokens; ``samples`` hold the
    conversations.
    """
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"Expected rounds to be an int >= 1, got {rounds!r}")
    saved_env, saved_generator, saved_steps = agent.env, agent.generator, agent.num_timesteps
    agent.env, agent.generator = env, torch.Generator().manual_seed(seed)
    ratings: list[float] = []
    kls: list[float] = []
    lengths: list[int] = []
    samples: list[dict[str, object]] = []
    replies: list[str] = []
    with agent.policy.float32():  # the float32 policy, also after training with bf16_autocast
        try:
            for round_index in range(rounds):
                seeds = [seed * 1_000_003 + round_index * env.num_envs + i for i in range(env.num_envs)]
                episodes = agent._collect_round(seeds, agent.config.temperature)
                batch = RolloutBatch.from_episodes(episodes, agent.policy.tokenizer.pad_token_id)
                agent.policy.score_reference(
                    batch, temperature=agent.config.temperature, chunk_size=agent.config.minibatch_size
                )
                assert batch.kl is not None  # score_reference filled it
                episode_kl = masked_sum(batch.kl, batch.completion_mask, dim=1).tolist()
                cursor = 0
                for slot in range(env.num_envs):
                    state = env.conversation(slot)
                    count, marks = state.replies, list(state.ratings)
                    ratings.append(float(np.mean(marks)) if marks else 0.0)
                    kls.append(float(sum(episode_kl[cursor : cursor + count])))
                    lengths.append(sum(len(e.completion_ids) for e in episodes[cursor : cursor + count]))
                    replies.extend(e.completion for e in episodes[cursor : cursor + count])
                    samples.append(
                        {
                            "scenario": state.scenario,
                            "conversation": [dict(m) for m in state.messages],
                            "feedback": list(marks),
                        }
                    )
                    cursor += count
        finally:
            agent.env, agent.generator, agent.num_timesteps = saved_env, saved_generator, saved_steps
    index = list(range(len(ratings)))
    return EvalResult(
        reward=mean_with_error(ratings),
        kl=mean_with_error(kls),
        length=mean_with_error(lengths),
        distinct2=distinct_n(replies),
        num_prompts=len(ratings),
        samples_per_prompt=1,
        seed=seed,
        prompt_index=index,
        rewards=ratings,
        kls=kls,
        lengths=lengths,
        samples=samples,
    )


def gain_by_scenario(before: EvalResult, after: EvalResult) -> dict[str, dict[str, float]]:
    """The paired rating gain of two `evaluate_dialogue` results (same seed) split by scenario.

    Returns ``{scenario: {"conversations", "before", "after", "gain", "gain_se"}}``, SEs over the scenario's
    conversations (``nan`` for a scenario met only once).
    """
    names = [cast(str, s["scenario"]) for s in before.samples]  # evaluate_dialogue wrote each scenario's name
    if names != [s["scenario"] for s in after.samples]:
        raise ValueError("Expected two evaluations of the same conversations (same seed), got different scenarios")
    table: dict[str, dict[str, float]] = {}
    for name in sorted(set(names)):
        rows = [i for i, n in enumerate(names) if n == name]
        gain = paired_difference([before.rewards[i] for i in rows], [after.rewards[i] for i in rows])
        table[name] = {
            "conversations": len(rows),
            "before": float(np.mean([before.rewards[i] for i in rows])),
            "after": float(np.mean([after.rewards[i] for i in rows])),
            "gain": gain.mean,
            "gain_se": gain.se,
        }
    return table


def rescore_dialogue_model(
    model: str,
    env,
    *,
    rounds: int = 8,
    seed: int = 0,
    temperature: float = 1.0,
    gain: bool = False,
) -> dict:
    """`evaluate_dialogue` of a saved model (a train run's ``OUTPUT/model``) on `env`'s conversations.

    `env` (a ``TextDialogueVectorEnv``) holds the reference: its model is the KL's reference and, with a simulated
    user, plays the user. With `gain`, the reference itself talks through the same conversations (same seed) and
    the paired gain, overall and by scenario, joins the summary.
    """
    from agents.reinforce import REINFORCE  # any agent runs the conversations; none of them is trained here

    reference = env.model  # loaded now, also when the user is rule-based and the env would not need it
    trained = REINFORCE(env, model=model, reference=reference, temperature=temperature)
    after = evaluate_dialogue(trained, env, rounds=rounds, seed=seed)
    if not gain:
        return after.summary()
    before = evaluate_dialogue(
        REINFORCE(env, reference=reference, temperature=temperature), env, rounds=rounds, seed=seed
    )
    return {**gain_summary(before, after), "gain_by_scenario": gain_by_scenario(before, after)}

"""The KL penalty pulls the policy toward the reference, in every agent and in the SB3 recipe (tiny model).

With a task reward of 0 the penalty is the whole objective, so its optimum is policy = reference:
* a policy that starts away from the reference comes back (the exact KL at the prompts falls under half its start);
* a policy that starts at the reference stays there (KL 0, the same completion lengths).
Before the fix, PPO and REINFORCE subtracted the exact per-token KL (a function of the state only) from the rewards;
that term cancels out of the policy gradient and the first test fails: the KL rose from 0.5 to 27 nats.
"""

from __future__ import annotations

import copy

import pytest
import torch
from stable_baselines3 import PPO as SB3PPO

from agents import GRPO, PPO, REINFORCE
from agents.evaluation import evaluate
from agents.policy import LMPolicy
from agents.rollout import RolloutBatch
from agents.sb3 import KLPenaltyCallback, LMActorCriticPolicy, LMSource, make_sb3_env
from textgen_env import TextGenVectorEnv

PROMPTS = ["the movie was", "i think it was"]
TOKENS = 6


def zero_reward(prompt: str, completion: str, done: bool) -> float:
    return 0.0


def drifted(model: torch.nn.Module, scale: float = 3.0, seed: int = 1) -> torch.nn.Module:
    """A copy of `model` whose output embeddings carry noise: about 0.5 nats of KL per 6-token completion."""
    copied = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        weight = copied.get_output_embeddings().weight
        weight.add_(torch.randn(weight.shape, generator=generator) * scale * weight.std())
    return copied


def zero_reward_env(tiny, num_envs: int = 8) -> TextGenVectorEnv:
    model, tokenizer = tiny
    return TextGenVectorEnv(
        num_envs=num_envs, model=model, tokenizer=tokenizer, reward=zero_reward, max_new_tokens=TOKENS, prompts=PROMPTS
    )


def kl_and_length(lm, tiny) -> tuple[float, float]:
    """Exact KL(lm || reference) per completion and mean length, over 16 samples of each prompt (fixed seed)."""
    model, tokenizer = tiny
    policy = LMPolicy(lm, tokenizer, value_head=False, reference=model)
    result = evaluate(policy, zero_reward_env(tiny, 1), PROMPTS, samples_per_prompt=16, seed=0)
    return result.kl.mean, result.length.mean


AGENTS = [(PPO, {}), (REINFORCE, {"epochs": 1}), (GRPO, {}), (GRPO, {"kl_estimator": "k3"})]
AGENT_IDS = ["ppo", "reinforce", "grpo", "grpo-k3"]


def penalty_only_agent(tiny, cls, options: dict, policy_model):
    """`cls` on the zero-reward env with kl_coef 0.5: policy_model (None: a copy of the reference) vs the tiny model."""
    model, _ = tiny
    return cls(
        zero_reward_env(tiny),
        model=policy_model,
        reference=model,
        kl_coef=0.5,
        learning_rate=3e-2,
        episodes_per_iteration=16,
        minibatch_size=8,
        seed=0,
        **options,
    )


@pytest.mark.parametrize("cls, options", AGENTS, ids=AGENT_IDS)
def test_penalty_alone_brings_a_drifted_policy_back(tiny, cls, options):
    model, _ = tiny
    agent = penalty_only_agent(tiny, cls, options, drifted(model))
    start, _ = kl_and_length(agent.policy.model, tiny)
    assert start > 0.3
    agent.learn(40 * 16 * TOKENS)
    end, _ = kl_and_length(agent.policy.model, tiny)
    assert end < 0.5 * start, f"KL {start:.3f} -> {end:.3f}"


@pytest.mark.parametrize("cls, options", AGENTS, ids=AGENT_IDS)
def test_policy_at_the_reference_does_not_move(tiny, cls, options):
    agent = penalty_only_agent(tiny, cls, options, None)
    start_kl, start_length = kl_and_length(agent.policy.model, tiny)
    agent.learn(20 * 16 * TOKENS)
    end_kl, end_length = kl_and_length(agent.policy.model, tiny)
    assert start_kl == pytest.approx(0.0, abs=1e-6) and end_kl == pytest.approx(0.0, abs=1e-6)
    assert end_length == start_length


def sb3_ppo(tiny, lm) -> SB3PPO:
    model, tokenizer = tiny
    env = make_sb3_env(
        4,
        model=model,
        tokenizer=tokenizer,
        reward=zero_reward,
        max_new_tokens=TOKENS,
        max_prompt_tokens=8,
        prompts=PROMPTS,
        seed=0,
        reference_logprobs=True,
    )
    return SB3PPO(
        LMActorCriticPolicy,
        env,
        n_steps=24,
        batch_size=48,
        n_epochs=4,
        learning_rate=1e-2,
        ent_coef=0.0,
        seed=0,
        policy_kwargs={"model": LMSource(lm), "tokenizer": tokenizer},
    )


@pytest.mark.slow
def test_sb3_recipe_brings_a_drifted_policy_back(tiny):
    model, _ = tiny
    ppo = sb3_ppo(tiny, drifted(model))
    start, _ = kl_and_length(ppo.policy.lm, tiny)
    ppo.learn(4000, callback=KLPenaltyCallback(kl_coef=0.5))
    end, _ = kl_and_length(ppo.policy.lm, tiny)
    assert end < 0.5 * start, f"KL {start:.3f} -> {end:.3f}"


def test_sb3_recipe_at_the_reference_does_not_move(tiny):
    model, _ = tiny
    ppo = sb3_ppo(tiny, model)
    start_kl, start_length = kl_and_length(ppo.policy.lm, tiny)
    ppo.learn(960, callback=KLPenaltyCallback(kl_coef=0.5))
    end_kl, end_length = kl_and_length(ppo.policy.lm, tiny)
    assert start_kl == pytest.approx(0.0, abs=1e-6) and end_kl == pytest.approx(0.0, abs=1e-6)
    assert end_length == start_length


def test_sb3_recipe_needs_reference_logprobs_and_no_env_kl(tiny):
    model, tokenizer = tiny
    for settings in ({"reference_logprobs": False}, {"reference_logprobs": True, "kl_coef": 0.1}):
        env = make_sb3_env(
            2, model=model, tokenizer=tokenizer, reward=zero_reward, max_new_tokens=4, prompts=PROMPTS, **settings
        )
        ppo = SB3PPO(
            LMActorCriticPolicy,
            env,
            n_steps=4,
            batch_size=8,
            policy_kwargs={"model": LMSource(model), "tokenizer": tokenizer},
        )
        with pytest.raises(ValueError, match=r"Expected envs built with reference_logprobs=True and kl_coef=0"):
            ppo.learn(8, callback=KLPenaltyCallback(kl_coef=0.1))


def test_kl_to_go_sums_the_kl_after_each_token():
    from agents.functional import kl_to_go

    kl = torch.tensor([[0.1, 0.2, 0.3, 9.0], [0.5, 0.25, 9.0, 9.0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.bool)
    expected = [[0.5, 0.3, 0.0, 0.0], [0.25, 0.0, 0.0, 0.0]]
    torch.testing.assert_close(kl_to_go(kl, mask), torch.tensor(expected))


def test_score_term_with_per_state_term_is_the_gradient_of_the_whole_completion_kl():
    """Enumerate every 2-token completion of a tabular policy: the expected gradient of the per-state KL term plus
    log pi x the KL still to come equals the gradient of KL(pi || ref) over whole completions."""
    from agents.functional import exact_kl_from_logits, kl_to_go

    torch.manual_seed(0)
    vocab = 3
    first = torch.randn(vocab, requires_grad=True)  # logits of token 1
    second = torch.randn(vocab, vocab, requires_grad=True)  # logits of token 2 given token 1
    ref_first, ref_second = torch.randn(vocab), torch.randn(vocab, vocab)
    whole = 0.0
    surrogate = 0.0
    for a in range(vocab):
        for b in range(vocab):
            logits = torch.stack([first, second[a]])[None]  # (1, 2, V)
            ref = torch.stack([ref_first, ref_second[a]])[None]
            logp = torch.log_softmax(logits, -1)[0, [0, 1], [a, b]]  # (2,)
            ref_logp = torch.log_softmax(ref, -1)[0, [0, 1], [a, b]]
            prob = logp.sum().exp()
            whole = whole + prob * (logp - ref_logp).sum()  # KL of whole completions, exactly
            per_state = exact_kl_from_logits(logits, ref)  # (1, 2) with its pathwise gradient
            to_go = kl_to_go(per_state.detach(), torch.ones(1, 2, dtype=torch.bool))
            # the expectation under the (fixed) sampling policy of the loss GRPO minimises for beta = 1
            surrogate = surrogate + prob.detach() * (per_state.sum() + (logp * to_go[0]).sum())
    expected = torch.autograd.grad(whole, [first, second], retain_graph=True)
    got = torch.autograd.grad(surrogate, [first, second])
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-4)


def test_leave_one_out_baseline_is_the_mean_of_the_other_members_running_at_that_position():
    from agents.functional import leave_one_out_baseline

    values = torch.tensor([[1.0, 2.0, 3.0], [3.0, 4.0, 9.0], [5.0, 9.0, 9.0], [7.0, 8.0, 9.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]], dtype=torch.bool)
    groups = torch.tensor([0, 0, 0, 1])  # the last episode is alone in its group
    expected = [[4.0, 4.0, 0.0], [3.0, 2.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    torch.testing.assert_close(leave_one_out_baseline(values, mask, groups), torch.tensor(expected))
    moved = values.clone()
    moved[0] += 100.0  # an episode's own values never enter its own baseline
    torch.testing.assert_close(leave_one_out_baseline(moved, mask, groups)[0], torch.tensor(expected[0]))
    with pytest.raises(ValueError, match="Expected integer group_ids of shape"):
        leave_one_out_baseline(values, mask, groups.float())


def test_the_baselined_score_term_keeps_the_gradient_of_the_whole_completion_kl():
    """Enumerate every pair of 2-token completions drawn independently by a tabular policy (a group of 2): with the
    other member's KL to come subtracted, the expected update is still grad KL(pi || ref) of whole completions."""
    from agents.functional import exact_kl_from_logits, kl_to_go, leave_one_out_baseline

    torch.manual_seed(1)
    vocab = 3
    first = torch.randn(vocab, requires_grad=True)
    second = torch.randn(vocab, vocab, requires_grad=True)
    ref_first, ref_second = torch.randn(vocab), torch.randn(vocab, vocab)
    completions = [(a, b) for a in range(vocab) for b in range(vocab)]
    logps, per_states, whole = [], [], 0.0
    for a, b in completions:
        logits = torch.stack([first, second[a]])[None]  # (1, 2, V)
        ref = torch.stack([ref_first, ref_second[a]])[None]
        logp = torch.log_softmax(logits, -1)[0, [0, 1], [a, b]]
        ref_logp = torch.log_softmax(ref, -1)[0, [0, 1], [a, b]]
        whole = whole + logp.sum().exp() * (logp - ref_logp).sum()
        logps.append(logp)
        per_states.append(exact_kl_from_logits(logits, ref)[0])  # (2,)
    mask = torch.ones(2, 2, dtype=torch.bool)
    surrogate = 0.0
    for i in range(len(completions)):
        for j in range(len(completions)):  # member i and its peer j
            prob = (logps[i].sum() + logps[j].sum()).exp().detach()
            pair = torch.stack([per_states[i], per_states[j]]).detach()  # (2, 2)
            to_go = kl_to_go(pair, mask)
            to_go = to_go - leave_one_out_baseline(to_go, mask, torch.tensor([0, 0]))
            surrogate = surrogate + prob * (per_states[i].sum() + (logps[i] * to_go[0]).sum())
    expected = torch.autograd.grad(whole, [first, second], retain_graph=True)
    got = torch.autograd.grad(surrogate, [first, second])
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-4)


def test_grpo_controller_reads_the_exact_kl_of_the_rollout_policy(keyword_env):
    from agents.functional import masked_sum

    agent = GRPO(
        keyword_env(4),
        group_size=2,
        episodes_per_iteration=8,
        minibatch_size=4,
        learning_rate=1e-2,
        kl_coef=0.1,
        kl_target=0.5,
        kl_horizon=8,
        seed=0,
    )
    with torch.no_grad():  # move away from the reference first
        for param in agent.policy.trainable_parameters():
            param.add_(0.3 * torch.randn_like(param))
    rollout = agent.collect()
    check = RolloutBatch.concat([rollout], agent.policy.tokenizer.pad_token_id)
    agent.policy.score_reference(check, temperature=1.0, chunk_size=8)  # before the update, independently
    expected = float(masked_sum(check.kl, check.completion_mask)) / len(check)
    assert expected > 0.01
    seen = []
    update = agent.kl_controller.update
    agent.kl_controller.update = lambda kl, n: (seen.append(kl), update(kl, n))[1]
    stats = agent.update(rollout)
    assert seen == [pytest.approx(expected, rel=1e-5)] and stats["rollout/kl"] == seen[0]


@pytest.mark.parametrize(("agent_class", "kwargs"), AGENTS, ids=lambda a: getattr(a, "__name__", ""))
def test_an_env_penalty_under_an_agent_penalty_is_refused(tiny, agent_class, kwargs):
    model, tokenizer = tiny
    env = TextGenVectorEnv(
        num_envs=4,
        model=model,
        tokenizer=tokenizer,
        reward=zero_reward,
        max_new_tokens=TOKENS,
        prompts=PROMPTS,
        kl_coef=0.1,
    )
    with pytest.raises(ValueError, match="Expected an env built with kl_coef=0 under an agent with its own KL"):
        agent_class(env, kl_coef=0.05, **kwargs)
    agent_class(env, kl_coef=0.0, kl_target=None, **kwargs)  # one penalty: the env's


def test_grpo_kl_estimator_is_checked():
    from agents.config import GRPOConfig

    with pytest.raises(ValueError, match=r"Expected kl_estimator to be one of \('exact', 'k3'\), got 'k2'"):
        GRPOConfig(kl_estimator="k2")

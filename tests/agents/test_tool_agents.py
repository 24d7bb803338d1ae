"""Our agents with tools (tiny model, scripted tool calls): tool results are env tokens that the rollout marks, the
update scores exactly the tokens the policy saw and chose (log-probs equal the rollout's to 1e-5), and PPO, GRPO and
REINFORCE put no gradient, value target, advantage or KL on env tokens; DQN puts no TD loss on them and bootstraps
across them."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch

from agents import GRPO, PPO, REINFORCE
from agents.functional import selective_log_softmax
from textgen_env.testing import tiny_tool_model_and_tokenizer
from textgen_env.tools import CALL_FORMATS

CALL = CALL_FORMATS["tags"].call_text("calculator", {"expression": "12*34"})  # 62 characters, 62 tokens


@pytest.fixture(scope="module")
def tool_lm():
    return tiny_tool_model_and_tokenizer()


def _scripts(tokenizer) -> list[list[int]]:
    """Two scripts of the same number of actions: one calls the calculator, one does not; both end with EOS."""
    with_call = tokenizer(f"{CALL}ok", add_special_tokens=False)["input_ids"]
    plain = tokenizer("x" * len(with_call), add_special_tokens=False)["input_ids"]
    return [[*with_call, tokenizer.eos_token_id], [*plain, tokenizer.eos_token_id]]


def _agent(cls, tool_lm, num_envs=4, **kwargs):
    model, tokenizer = tool_lm
    env = gym.make_vec(
        "TextGen-v0",
        num_envs=num_envs,
        model=model,
        tokenizer=tokenizer,
        prompts=["Q: 12*34?"],
        tools=["calculator"],
        max_new_tokens=120,
        max_prompt_tokens=16,
        reward="length",
    )
    agent = cls(env, episodes_per_iteration=num_envs, minibatch_size=2, seed=0, **kwargs)
    scripts, calls = _scripts(tokenizer), [0]

    def scripted(logits, temperature):  # the policy's log-probs of these actions are still what the rollout keeps
        k = calls[0] % len(scripts[0])
        calls[0] += 1
        return torch.tensor([scripts[i % 2][k] for i in range(logits.shape[0])])

    agent.sample_actions = scripted  # type: ignore[method-assign]
    return agent, tokenizer


ALGORITHMS = [(PPO, {}), (GRPO, {"group_size": 2}), (REINFORCE, {"baseline": "value"})]
IDS = ["ppo", "grpo", "reinforce"]


@pytest.mark.parametrize("cls, options", ALGORITHMS, ids=IDS)
def test_the_rollout_marks_tool_results_and_scores_exactly_what_the_policy_saw(tool_lm, cls, options):
    agent, tokenizer = _agent(cls, tool_lm, **options)
    rollout = agent.collect()
    width = rollout.completion_widths
    inserted = rollout.env_token_mask
    assert inserted[0::2].any(dim=1).all() and not inserted[1::2].any()  # slots 0, 2 called the tool
    for row in range(len(rollout)):
        completion = rollout.actions[row, : int(width[row])].tolist()
        assert tokenizer.decode(completion, skip_special_tokens=True) == rollout.completions[row]  # token for token
        assert not (rollout.completion_mask[row] & inserted[row]).any()
    row = rollout.actions[0, : int(width[0])]
    assert tokenizer.decode(row[inserted[0, : int(width[0])]].tolist()) == "<tool_result>408</tool_result>"
    assert int(rollout.completion_mask.sum()) == agent.num_timesteps  # actions only
    for name in ("logprobs", "rewards", "values"):
        assert not getattr(rollout, name)[inserted].any(), name
    with torch.no_grad():
        logits = agent.policy.score(rollout, temperature=agent.config.temperature).logits
    scored = selective_log_softmax(logits, rollout.actions) * rollout.completion_mask
    torch.testing.assert_close(scored, rollout.logprobs, atol=1e-5, rtol=0)  # the KV-cached rollout's numbers
    episodes = rollout.to_episodes()
    assert episodes[0].env_token_mask == inserted[0, : int(width[0])].tolist() and episodes[1].env_token_mask == []


@pytest.mark.parametrize("cls, options", ALGORITHMS, ids=IDS)
def test_env_tokens_get_no_gradient_advantage_or_kl(tool_lm, cls, options):
    agent, _ = _agent(cls, tool_lm, kl_coef=0.1, epochs=1, **options)
    rollout = agent.collect()
    seen = []
    score = agent.policy.score

    def recording(batch, **kwargs):
        out = score(batch, **kwargs)
        if out.logits.requires_grad:  # the update's forward (the reference's runs without grad)
            out.logits.retain_grad()
            if out.values is not None:
                out.values.retain_grad()
            seen.append((batch, out))
        return out

    agent.policy.score = recording  # type: ignore[method-assign]
    agent.update(rollout)
    assert seen
    touched = 0.0
    for batch, out in seen:
        env_tokens = batch.env_token_mask.to(out.logits.device)
        assert out.logits.grad is not None and not out.logits.grad[env_tokens].any()
        touched += float(out.logits.grad[batch.completion_mask].abs().sum())
        if out.values is not None and out.values.grad is not None:
            assert not out.values.grad[env_tokens].any()
    assert touched > 0  # the actions do get gradients
    inserted = rollout.env_token_mask
    assert inserted.any()
    per_token = ("returns", "kl", "reference_logprobs") + (() if cls is GRPO else ("advantages",))
    for name in per_token:  # GRPO's advantage is one per episode, spread over every column (padding too)
        value = getattr(rollout, name)
        if value is not None:
            assert not value[inserted].any(), name


def test_the_sampling_evaluation_refuses_an_env_with_tools(tool_lm):
    from agents.evaluation.textgen import generate_completions

    agent, _ = _agent(PPO, tool_lm, num_envs=2)
    with pytest.raises(NotImplementedError, match="Expected an env without tools for this evaluation"):
        generate_completions(agent.policy, agent.env, ["Q"])


def test_dialogue_replies_with_tool_calls_are_scored_token_exactly(tool_lm):
    from textgen_env.dialogue import Scenario

    model, tokenizer = tool_lm
    scenario = Scenario(
        name="math",
        persona="a student",
        goal="get 12*34",
        opening="What is 12*34?",
        follow_ups=("And again?",),
        rubric="keyword",
        rubric_kwargs={"keywords": ["408"]},
        satisfied_at=2.0,
    )
    env = gym.make_vec(
        "TextDialogue-v0",
        num_envs=2,
        model=model,
        tokenizer=tokenizer,
        scenarios=[scenario],
        tools=["calculator"],
        max_turns=2,
        max_reply_tokens=100,
        max_context_tokens=300,
        chat_template=False,
    )
    agent = PPO(env, episodes_per_iteration=4, minibatch_size=2, seed=0)
    script, calls = _scripts(tokenizer)[0], [0]

    def scripted(logits, temperature):
        k = calls[0] % len(script)
        calls[0] += 1
        return torch.full((logits.shape[0],), script[k])

    agent.sample_actions = scripted  # type: ignore[method-assign]
    rollout = agent.collect()
    assert len(rollout) == 4 and rollout.turns.tolist() == [0, 1, 0, 1]
    assert rollout.env_token_mask.any(dim=1).all()  # every reply called the tool
    assert int(rollout.completion_mask.sum()) == agent.num_timesteps
    with torch.no_grad():
        logits = agent.policy.score(rollout, temperature=agent.config.temperature).logits
    scored = selective_log_softmax(logits, rollout.actions) * rollout.completion_mask
    torch.testing.assert_close(scored, rollout.logprobs, atol=1e-5, rtol=0)
    second = rollout.to_episodes()[1]
    assert "<tool_result>408</tool_result>" in tokenizer.decode(second.prompt_ids)  # the first reply, result included


def test_dqn_learns_past_tool_results(tool_lm, monkeypatch):
    """DQN puts no TD loss on env tokens, and the action that closes a call bootstraps from the Q-values of the state
    after the tool result (the next action's), not from the env token right after it (which is no action)."""
    import agents.dqn
    from agents import DQN

    agent, _ = _agent(DQN, tool_lm, learning_starts=0, gradient_steps=1)
    rollout = agent.collect()
    inserted = rollout.env_token_mask
    assert inserted[0].any()
    seen, bootstraps = [], []
    score, bootstrap = agent.policy.score, agents.dqn.next_action_values

    def recording(batch, **kwargs):
        out = score(batch, **kwargs)
        if out.logits.requires_grad:
            out.logits.retain_grad()
            seen.append((batch, out))
        return out

    def recording_bootstrap(values, mask):
        result = bootstrap(values, mask)
        bootstraps.append((values, mask, result))
        return result

    agent.policy.score = recording  # type: ignore[method-assign]
    monkeypatch.setattr(agents.dqn, "next_action_values", recording_bootstrap)
    agent.update(rollout)
    (batch, out), (values, mask, result) = seen[0], bootstraps[0]
    env_tokens = batch.env_token_mask
    assert out.logits.grad is not None and not out.logits.grad[env_tokens].any()
    assert out.logits.grad[batch.completion_mask].abs().sum() > 0
    row = int(env_tokens.any(dim=1).nonzero()[0])  # an episode that called the tool
    gap = env_tokens[row].nonzero().flatten()
    closing, resumed = int(gap[0]) - 1, int(gap[-1]) + 1  # the call's last action, the first action after the result
    assert mask[row, closing] and mask[row, resumed]
    assert float(result[row, closing]) == float(values[row, resumed]) != 0.0

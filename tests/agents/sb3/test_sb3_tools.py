"""The SB3 LM policy with tools: tool results appear in the observations only, never as actions, and the update's
whole-episode scoring gives the KV-cached rollout's log-probs (to 1e-5) on episodes with tool calls."""

from __future__ import annotations

import torch
from stable_baselines3 import PPO

from agents.sb3 import EpisodeRolloutBuffer, LMActorCriticPolicy, LMSource, make_sb3_env
from textgen_env.testing import tiny_tool_model_and_tokenizer
from textgen_env.tools import CALL_FORMATS


def test_tool_results_are_observations_and_the_update_scores_the_rollouts_log_probs():
    model, tokenizer = tiny_tool_model_and_tokenizer()
    call = CALL_FORMATS["tags"].call_text("calculator", {"expression": "6*7"})
    script = [*tokenizer(f"{call}ok", add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
    env = make_sb3_env(
        2,
        model=model,
        tokenizer=tokenizer,
        prompts=["Q: 6*7?"],
        tools=["calculator"],
        max_new_tokens=100,
        max_prompt_tokens=8,
        seed=0,
    )
    ppo = PPO(
        LMActorCriticPolicy,
        env,
        policy_kwargs={"model": LMSource(model)},
        rollout_buffer_class=EpisodeRolloutBuffer,
        n_steps=len(script),
        batch_size=2 * len(script),
        n_epochs=1,
        seed=0,
    )
    steps = [0]

    def scripted(logits, deterministic):
        k = steps[0] % len(script)
        steps[0] += 1
        return torch.full((logits.shape[0],), script[k], dtype=torch.long)

    ppo.policy._choose = scripted  # type: ignore[method-assign]
    _, callback = ppo._setup_learn(ppo.n_steps * ppo.n_envs)
    ppo.collect_rollouts(ppo.env, callback, ppo.rollout_buffer, ppo.n_steps)
    buffer = ppo.rollout_buffer
    actions = torch.as_tensor(buffer.actions).long().reshape(len(script), 2)
    assert actions[:, 0].tolist() == script  # every step's action is the policy's; no env token is an action
    lengths = buffer.observations["attention_mask"].sum(axis=-1)[:, 0]  # (n_steps,) tokens seen by env 0
    jumps = (lengths[1:] - lengths[:-1]).tolist()
    result = len(tokenizer("<tool_result>42</tool_result>", add_special_tokens=False)["input_ids"])
    assert sorted(set(jumps)) == [1, 1 + result]  # one step saw the action and the inserted result
    for batch in buffer.get(2 * len(script)):
        values, log_prob, _ = ppo.policy.evaluate_actions(batch.observations, batch.actions.long().flatten())
        torch.testing.assert_close(log_prob, batch.old_log_prob, atol=1e-5, rtol=0)
        torch.testing.assert_close(values.flatten(), batch.old_values, atol=1e-5, rtol=0)

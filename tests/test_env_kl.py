"""The env's KL term: kl_coef * log pi_ref(a_t | s_t) from the frozen env model, and the entropy identity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textgen_env.testing import tiny_model


def _reference_logprob(model, ids: list[int], token: int) -> float:
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, -1]  # plain forward on the unpadded text
    return torch.log_softmax(logits, dim=-1)[token].item()


def test_kl_term_equals_coef_times_reference_logprob(make_env, tiny):
    model, tokenizer = tiny
    env = make_env(kl_coef=0.2, reward="keyword", prompts=["the movie was"], max_new_tokens=4)
    env.reset(seed=0)
    ids = tokenizer("the movie was")["input_ids"]
    for word in ["great", "and", "fun", "!"]:
        token = tokenizer.convert_tokens_to_ids(word)
        expected = 0.2 * _reference_logprob(model, ids, token)
        _, reward, terminated, _, info = env.step(token)
        ids.append(token)
        assert info["reward_components"]["kl"] == pytest.approx(expected, abs=1e-5)
        assert info["reference_logprob"] == pytest.approx(expected / 0.2, abs=1e-5)
        assert reward == pytest.approx(sum(info["reward_components"].values()))
    assert terminated and info["reward_components"]["keyword"] == pytest.approx(1 / 3)


def test_kl_term_in_vector_env_matches_single_envs(make_env, make_vec_env):
    actions = np.random.default_rng(3).integers(0, 142, size=(9, 2))
    vec = make_vec_env(2, kl_coef=0.5, max_new_tokens=3)
    vec.reset(seed=4)
    singles = [make_env(kl_coef=0.5, max_new_tokens=3) for _ in range(2)]
    for i, env in enumerate(singles):
        env.reset(seed=4 + i)
    pending = [False, False]
    for row in actions:
        _, rewards, _, _, _ = vec.step(row)
        for i, env in enumerate(singles):
            if pending[i]:
                env.reset()
                expected, pending[i] = 0.0, False
            else:
                _, expected, term, _, _ = env.step(int(row[i]))
                pending[i] = term
            assert rewards[i] == pytest.approx(expected, abs=1e-5)


def test_entropy_bonus_plus_env_kl_term_is_the_kl_penalty(make_env, tiny):
    """E_{a~pi}[kl * log ref(a|s)] + kl * H(pi(.|s)) = -kl * KL(pi || ref), with the env computing log ref."""
    _, tokenizer = tiny
    kl_coef = 0.3
    policy = tiny_model(seed=1)  # a policy that differs from the env's reference model
    with torch.no_grad():
        policy_logits = policy(torch.tensor([tokenizer("the film")["input_ids"]])).logits[0, -1]
    p = torch.softmax(policy_logits.double(), dim=-1)
    env = make_env(kl_coef=kl_coef, prompts=["the film"])
    env_terms = torch.zeros(len(tokenizer), dtype=torch.float64)
    for action in range(len(tokenizer)):  # the env's KL reward for every possible action from the same state
        env.reset(seed=0)
        env_terms[action] = env.step(action)[4]["reward_components"]["kl"]
    entropy = -(p * p.log()).sum()
    log_q = env_terms / kl_coef
    exact_kl = (p * (p.log() - log_q)).sum()
    assert exact_kl > 0.01
    assert ((p * env_terms).sum() + kl_coef * entropy).item() == pytest.approx(-kl_coef * exact_kl.item(), abs=1e-6)


def test_set_kl_coef(make_env, make_vec_env):
    env = make_env(kl_coef=0.1, prompts=["the"])
    env.reset(seed=0)
    env.unwrapped.set_kl_coef(0.0)
    assert env.step(5)[1] == 0.0
    with pytest.raises(ValueError, match=r"Expected kl_coef to be a finite number >= 0, got -1"):
        env.unwrapped.set_kl_coef(-1)
    with pytest.raises(ValueError, match=r"Expected an env built with kl_coef > 0"):
        make_vec_env(2).set_kl_coef(0.1)
    with pytest.raises(ValueError, match=r"Expected kl_coef to be a finite number >= 0, got nan"):
        make_env(kl_coef=float("nan"))

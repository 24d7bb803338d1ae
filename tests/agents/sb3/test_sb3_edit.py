"""stable-baselines3 on TextEdit-v0: MaskablePPO in both action modes and the small candidate-feature policy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.sb3.edit import CandidateScorer, EditCandidateExtractor, EditCandidatePolicy

MaskablePPO = pytest.importorskip("sb3_contrib").MaskablePPO


def _parameters(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.policy.parameters()]


@pytest.mark.parametrize(
    ("mode", "policy", "policy_kwargs"),
    [
        ("candidates", EditCandidatePolicy, {}),
        ("candidates", "MultiInputPolicy", {"features_extractor_class": EditCandidateExtractor}),
        ("structured", "MultiInputPolicy", {}),
    ],
    ids=["candidates-shared-scorer", "candidates-extractor-mlp", "structured-multidiscrete-masks"],
)
def test_maskable_ppo_trains_and_respects_the_masks(make_edit_env, mode, policy, policy_kwargs):
    env = make_edit_env(action_mode=mode, max_edits=3, max_words=24, max_text_tokens=32)
    settings = {"n_steps": 32, "batch_size": 16, "n_epochs": 1, "seed": 0, "policy_kwargs": policy_kwargs}
    model = MaskablePPO(policy, env, **settings)
    before = _parameters(model)
    model.learn(64)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.policy.parameters()))
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        masks = env.action_masks()
        action, _ = model.predict(obs, action_masks=masks)
        if mode == "candidates":
            assert masks[int(action)]
        obs, _, terminated, _, info = env.step(action)
        assert "invalid_action" not in info or mode == "structured"  # a > b is allowed by per-dimension masks
        if terminated:
            break


def test_extractor_describes_each_candidate_by_its_change(make_edit_env):
    env = make_edit_env()
    obs, info = env.reset(options={"draft": "the film was good ."})
    extractor = EditCandidateExtractor(env.observation_space, embedding_dim=4)
    batch = {key: torch.as_tensor(np.asarray(value))[None].float() for key, value in obs.items()}
    ops = torch.nn.functional.one_hot(batch["candidate_ops"].long(), extractor.num_ops).float().flatten(1)
    batch["candidate_ops"] = ops
    batch["edits_left"] = torch.nn.functional.one_hot(batch["edits_left"].long(), env.config.max_edits + 1).float()
    features = extractor(batch)
    assert features.shape == (1, extractor.features_dim)
    rows = features[0, : extractor.rows * (4 + extractor.num_ops + 2)].reshape(extractor.rows, -1)
    embed = extractor.embedding.weight
    ids = [env.tokenizer(t, add_special_tokens=False)["input_ids"] for t in [info["text"], *info["candidate_texts"]]]
    for row, tokens in enumerate(ids):
        expected = embed[tokens].sum(0) - embed[ids[0]].sum(0)
        torch.testing.assert_close(rows[row, :4], expected)
    assert torch.all(rows[0, :4] == 0)


def test_candidate_scorer_is_permutation_equivariant():
    scorer = CandidateScorer(rows=4, per_row=3)
    features = torch.randn(2, 4 * 3 + 5)  # four rows, then other features (the edits left)
    order = torch.tensor([2, 0, 3, 1])
    permuted = torch.cat([features[:, :12].reshape(2, 4, 3)[:, order].flatten(1), features[:, 12:]], dim=1)
    torch.testing.assert_close(scorer(permuted), scorer(features)[:, order])


def test_extractor_rejects_other_observation_spaces(make_edit_env):
    env = make_edit_env(action_mode="structured")
    with pytest.raises(ValueError, match=r"Expected a TextEdit-v0 observation space with action_mode='candidates'"):
        EditCandidateExtractor(env.observation_space)


@pytest.mark.slow
def test_default_model_writes_edits_and_passes_the_checker():
    from gymnasium.utils.env_checker import check_env

    from textgen_env.edit import TextEditEnv

    env = TextEditEnv(reward="length", max_edits=2, num_candidates=4)  # the embedded SmolLM2-135M-Instruct
    check_env(env, skip_render_check=True)
    _, info = env.reset(seed=0)
    lm_edits = [c for c in info["candidates"] if c.startswith(("insert", "replace", "rewrite"))]
    assert lm_edits and all("''" not in c for c in lm_edits)
    _, _, _, _, info = env.step(1)
    assert info["text"] != info["draft"]

"""stable-baselines3 integration on the tiny model: the LM policy learns, KV-cached rollouts match full forwards,
classic agents steer the frozen LM, MaskablePPO obeys masks, the KL identity, logging, save/load and bad input."""

from __future__ import annotations

import json
import zipfile

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import A2C, DQN, PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import DummyVecEnv

from agents.sb3 import (
    GenerationLoggingCallback,
    LMActorCriticPolicy,
    LMSource,
    TokenBagExtractor,
    check_sb3_env,
    make_sb3_env,
    save_lm,
)
from agents.sb3.policy import TokenStreamCache
from textgen_env import TextGenEnv, TextGenVectorEnv, load_model
from textgen_env.testing import tiny_model, tiny_tokenizer

PROMPTS = ["the movie was", "i think it was"]


def lm_ppo(env, tokenizer, model, **kwargs) -> PPO:
    settings = dict(n_steps=16, batch_size=32, n_epochs=4, learning_rate=1e-2, seed=0)
    settings.update(kwargs)
    policy_kwargs = {"model": LMSource(model), "tokenizer": tokenizer, **settings.pop("policy_kwargs", {})}
    return PPO(LMActorCriticPolicy, env, policy_kwargs=policy_kwargs, **settings)


class RolloutRewards(BaseCallback):
    """Mean episode reward of each rollout (episodes that ended in it)."""

    def __init__(self) -> None:
        super().__init__()
        self.means: list[float] = []
        self._returns: list[float] = []

    def _on_step(self) -> bool:
        self._returns += [info["episode"]["r"] for info in self.locals["infos"] if "episode" in info]
        return True

    def _on_rollout_end(self) -> None:
        self.means.append(float(np.mean(self._returns)) if self._returns else 0.0)
        self._returns = []


# ------------------------------------------------------------------------------------------- the LM policy
def test_ppo_with_the_lm_policy_raises_reward_and_trains_a_copy_of_the_lm(sb3_env, tiny):
    model, tokenizer = tiny
    env_weights = [p.detach().clone() for p in model.parameters()]
    ppo = lm_ppo(sb3_env(), tokenizer, model)
    before = [p.detach().clone() for p in ppo.policy.lm.parameters()]
    rewards = RolloutRewards()
    ppo.learn(8 * 16 * 16, callback=rewards)
    assert np.mean(rewards.means[:2]) < 0.25, rewards.means
    assert np.mean(rewards.means[-3:]) > np.mean(rewards.means[:2]) + 0.5, rewards.means
    assert all(not torch.equal(b, p) for b, p in zip(before, ppo.policy.lm.parameters()))
    assert all(torch.equal(b, p) for b, p in zip(env_weights, model.parameters()))  # env's model untouched


def test_a2c_with_the_lm_policy_updates_the_lm_and_leaves_the_shared_reference_frozen(sb3_env, tiny):
    model, tokenizer = tiny
    env = sb3_env(4, kl_coef=0.1)  # the env holds `model` as its frozen KL reference
    reference = [p.detach().clone() for p in model.parameters()]
    a2c = A2C(LMActorCriticPolicy, env, n_steps=4, seed=0, policy_kwargs={"model": model, "tokenizer": tokenizer})
    assert a2c.policy.lm is not model
    a2c.learn(4 * 4 * 3)
    assert not torch.equal(a2c.policy.lm.transformer.wte.weight, model.transformer.wte.weight)
    assert all(torch.equal(b, p) for b, p in zip(reference, model.parameters()))


def _collect(algorithm: PPO) -> None:
    _, callback = algorithm._setup_learn(algorithm.n_steps * algorithm.n_envs)
    algorithm.collect_rollouts(algorithm.env, callback, algorithm.rollout_buffer, algorithm.n_steps)


def test_kv_cached_rollout_gives_the_distributions_of_full_forwards(sb3_env, tiny):
    model, tokenizer = tiny
    ppo = lm_ppo(sb3_env(4, max_new_tokens=5), tokenizer, model, n_steps=20, batch_size=16)
    restarts: list[bool] = []
    cache_advance = None

    def spy(tokens, reset):
        restarts.extend(reset)
        return cache_advance(tokens, reset)

    policy = ppo.policy
    torch.nn.init.normal_(policy.value_net.weight)  # values that depend on the hidden state
    _collect(ppo)  # a first rollout builds the cache
    cache_advance = policy.rollout_cache.kv.advance
    policy.rollout_cache.kv.advance = spy
    _collect(ppo)
    assert 0 < sum(restarts) < len(restarts) / 3  # most steps reuse the cache
    buffer = ppo.rollout_buffer
    observations = {key: torch.as_tensor(value) for key, value in buffer.observations.items()}
    with torch.no_grad():
        values, log_prob, _ = policy.evaluate_actions(
            {key: value.reshape(-1, value.shape[-1]) for key, value in observations.items()},
            torch.as_tensor(buffer.actions).reshape(-1),
        )
    torch.testing.assert_close(log_prob, torch.as_tensor(buffer.log_probs).reshape(-1), atol=1e-5, rtol=0)
    torch.testing.assert_close(values.flatten(), torch.as_tensor(buffer.values).reshape(-1), atol=1e-5, rtol=0)
    # the whole distributions, step by step, with a fresh cache fed the same observations in order
    cache = TokenStreamCache()
    with torch.no_grad():
        for step in range(buffer.buffer_size):
            obs = {key: value[step] for key, value in observations.items()}
            cached, _ = policy._logits_and_values(obs, cache)
            full, _ = policy._logits_and_values(obs)
            torch.testing.assert_close(cached.log_softmax(-1), full.log_softmax(-1), atol=1e-5, rtol=0)


def test_kv_cache_starts_over_when_the_weights_change(sb3_env, tiny):
    model, tokenizer = tiny
    env = sb3_env(2)
    policy = lm_ppo(env, tokenizer, model).policy
    obs = obs_as_tensor(env.reset(), policy.device)
    with torch.no_grad():
        policy._logits_and_values(obs, policy.rollout_cache)
        next_obs = obs_as_tensor(env.step(np.array([5, 6]))[0], policy.device)
        policy.lm.transformer.h[0].attn.c_attn.weight.mul_(1.5)  # in place, as optimizer.step updates weights
        cached, _ = policy._logits_and_values(next_obs, policy.rollout_cache)
        full, _ = policy._logits_and_values(next_obs)
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=0)


def test_kv_cache_starts_over_after_a_fused_optimizer_step(sb3_env, tiny):
    # a fused kernel updates the weights without bumping their _version; the optimizer's step hook is what tells
    model, tokenizer = tiny
    env = sb3_env(2)
    policy = lm_ppo(
        env, tokenizer, model, policy_kwargs={"optimizer_class": torch.optim.AdamW, "optimizer_kwargs": {"fused": True}}
    ).policy
    obs = obs_as_tensor(env.reset(), policy.device)
    with torch.no_grad():
        policy._logits_and_values(obs, policy.rollout_cache)
        next_obs = obs_as_tensor(env.step(np.array([5, 6]))[0], policy.device)
    versions = [p._version for p in policy.parameters()]
    policy.optimizer.zero_grad()
    policy._logits_and_values(obs)[0].logsumexp(-1).sum().backward()
    policy.optimizer.step()
    assert [p._version for p in policy.parameters()] == versions  # the fused step left the versions as they were
    with torch.no_grad():
        cached, _ = policy._logits_and_values(next_obs, policy.rollout_cache)
        full, _ = policy._logits_and_values(next_obs)
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=0)


def test_predict_has_its_own_cache_and_matches_full_forwards(sb3_env, tiny):
    model, tokenizer = tiny
    env = sb3_env(2, max_new_tokens=6)
    policy = lm_ppo(env, tokenizer, model).policy
    obs = env.reset()
    for _ in range(10):  # across an episode end
        actions, _ = policy.predict(obs, deterministic=True)
        with torch.no_grad():
            logits, _ = policy._logits_and_values(obs_as_tensor(obs, policy.device))
        np.testing.assert_array_equal(actions, logits.argmax(-1).numpy())
        obs, *_ = env.step(actions)
    assert policy.predict_cache.kv is not None and policy.rollout_cache.kv is None


def test_no_cache_flag_uses_full_forwards(sb3_env, tiny):
    model, tokenizer = tiny
    ppo = lm_ppo(sb3_env(2), tokenizer, model, n_steps=4, batch_size=8, policy_kwargs={"use_kv_cache": False})
    _collect(ppo)
    ppo.predict(ppo.env.reset())
    assert ppo.policy.rollout_cache.kv is None and ppo.policy.predict_cache.kv is None


def test_save_and_load_give_identical_predictions_offline(sb3_env, tiny, tmp_path):
    model, tokenizer = tiny
    env = sb3_env(2)
    ppo = lm_ppo(env, tokenizer, model, n_steps=8, batch_size=16)
    ppo.learn(32)
    ppo.save(tmp_path / "ppo.zip")
    with zipfile.ZipFile(tmp_path / "ppo.zip") as archive:
        assert len(archive.read("data")) < 100_000  # the config and tokenizer, not a second copy of the weights
    loaded = PPO.load(tmp_path / "ppo.zip", device="cpu")
    assert loaded.policy.lm is not ppo.policy.lm
    obs = env.reset()
    for _ in range(3):
        expected, _ = ppo.predict(obs, deterministic=True)
        actions, _ = loaded.predict(obs, deterministic=True)
        np.testing.assert_array_equal(actions, expected)
        tensor = obs_as_tensor(obs, "cpu")
        with torch.no_grad():
            torch.testing.assert_close(
                loaded.policy.get_distribution(tensor).distribution.logits,
                ppo.policy.get_distribution(tensor).distribution.logits,
            )
            torch.testing.assert_close(loaded.policy.predict_values(tensor), ppo.policy.predict_values(tensor))
        obs, *_ = env.step(actions)
    # the policy alone (SB3's BaseModel.save/load) and the LM in Hugging Face format
    ppo.policy.save(str(tmp_path / "policy.pt"))
    alone = LMActorCriticPolicy.load(str(tmp_path / "policy.pt"))
    folder = save_lm(ppo, tmp_path / "lm")
    hf_model, hf_tokenizer = load_model(folder)
    assert len(hf_tokenizer) == len(tokenizer) and (folder / "value_head.pt").is_file()
    ids = torch.tensor([tokenizer("the movie was great")["input_ids"]])
    for other in (alone.lm, hf_model):
        torch.testing.assert_close(other(ids).logits, ppo.policy.lm(ids).logits)


def test_a_bare_model_instance_in_policy_kwargs_also_round_trips(sb3_env, tiny, tmp_path):
    # its own instance: a bare instance is pickled whole, and other tests call the session's shared model with
    # output_hidden_states=True, after which transformers' hooks (closures over a ContextVar) make it unpicklable
    model, tokenizer = tiny_model(), tiny[1]
    env = sb3_env(2)
    ppo = PPO(LMActorCriticPolicy, env, n_steps=4, batch_size=8, policy_kwargs={"model": model, "tokenizer": tokenizer})
    ppo.learn(8)
    ppo.save(tmp_path / "ppo.zip")
    loaded = PPO.load(tmp_path / "ppo.zip")
    obs = obs_as_tensor(env.reset(), "cpu")
    with torch.no_grad():
        torch.testing.assert_close(loaded.policy.predict_values(obs), ppo.policy.predict_values(obs))


@pytest.mark.parametrize("form", ["path", "lm_source", "instance"], ids=str)
def test_every_model_form_saves_and_loads_after_the_env_used_the_same_instance(tmp_path, form):
    """The issue's reproduction: a hidden-mode env run on the user's model used to leave transformers' output hooks
    (closures over a ContextVar) on it, and ``ppo.save`` of a bare instance then raised "cannot pickle ContextVar"."""
    model, tokenizer = tiny_model(), tiny_tokenizer()  # its own instance: the session's shared one stays clean
    task = dict(model=model, tokenizer=tokenizer, max_prompt_tokens=8, max_new_tokens=4, prompts=PROMPTS, seed=0)
    hidden = make_sb3_env(1, **{**task, "observation_mode": "hidden", "action_mode": "top_k", "top_k": 4})
    PPO("MlpPolicy", hidden, n_steps=16, batch_size=16, seed=0).learn(16)
    model.save_pretrained(tmp_path / "lm")
    tokenizer.save_pretrained(tmp_path / "lm")
    given = {"path": str(tmp_path / "lm"), "lm_source": LMSource(model), "instance": model}[form]
    env = make_sb3_env(2, **task)
    ppo = PPO(LMActorCriticPolicy, env, n_steps=8, batch_size=16, seed=0, policy_kwargs={"model": given})
    ppo.learn(16)
    ppo.save(tmp_path / "ppo.zip")
    loaded = PPO.load(tmp_path / "ppo.zip", device="cpu")
    obs = env.reset()
    for _ in range(3):
        expected, _ = ppo.predict(obs, deterministic=True)
        np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], expected)
        tensor = obs_as_tensor(obs, "cpu")
        with torch.no_grad():
            torch.testing.assert_close(
                loaded.policy.get_distribution(tensor).distribution.logits,
                ppo.policy.get_distribution(tensor).distribution.logits,
                rtol=0,
                atol=0,
            )
        obs, *_ = env.step(expected)


def test_save_lm_never_replaces_a_folder_it_did_not_write(sb3_env, tiny, tmp_path):
    model, tokenizer = tiny
    ppo = lm_ppo(sb3_env(2), tokenizer, model, n_steps=4, batch_size=8)
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "notes.txt").write_text("my notes")
    with pytest.raises(FileExistsError, match=r"got a folder it did not write, holding notes.txt, src.*--overwrite"):
        save_lm(ppo, project)
    assert (project / "notes.txt").read_text() == "my notes" and sorted(p.name for p in tmp_path.iterdir()) == [
        "project"
    ]
    save_lm(ppo, tmp_path / "lm")
    save_lm(ppo, tmp_path / "lm")  # its own folder: replaced
    save_lm(ppo, project, overwrite=True)  # deliberately
    assert not (project / "notes.txt").exists() and load_model(project)[0] is not None


# ------------------------------------------------------------------------------------------------- KL
def test_env_kl_plus_entropy_bonus_equals_minus_kl(tiny):
    """E_{a~pi}[env reward] + ent_coef * H(pi) == -kl_coef * KL(pi || ref) for one state, with ent_coef = kl_coef."""
    model, tokenizer = tiny
    beta = 0.3
    settings = dict(model=model, tokenizer=tokenizer, reward=lambda prompt, completion, done: 0.0, kl_coef=beta)
    settings.update(max_new_tokens=4, max_prompt_tokens=8, prompts=["the movie was"])
    vec_env = make_sb3_env(1, **settings)
    policy_model = tiny_model(len(tokenizer), seed=1)  # a policy that differs from the env's reference
    ppo = PPO(
        LMActorCriticPolicy, vec_env, ent_coef=beta, policy_kwargs={"model": policy_model, "tokenizer": tokenizer}
    )
    env = TextGenEnv(**settings)
    obs, _ = env.reset(seed=0)
    tensor, _ = ppo.policy.obs_to_tensor(obs)
    with torch.no_grad():
        distribution = ppo.policy.get_distribution(tensor)
    probs, entropy = distribution.distribution.probs[0].double(), distribution.entropy()[0].double()
    rewards = []
    for action in range(len(tokenizer)):
        env.reset(seed=0)
        _, reward, *_ = env.step(action)
        rewards.append(reward)
    expected_reward = (probs * torch.tensor(rewards, dtype=torch.float64)).sum()
    ids = torch.tensor([tokenizer("the movie was")["input_ids"]])
    with torch.no_grad():
        reference = torch.log_softmax(model(ids).logits[0, -1].double(), dim=-1)
    kl = (probs * (probs.log() - reference)).sum()
    assert kl > 0.01
    torch.testing.assert_close(expected_reward + ppo.ent_coef * entropy, -beta * kl, atol=1e-5, rtol=0)


# -------------------------------------------------------------------------------------------- callback
def test_callback_logs_reward_components_and_samples(sb3_env, tiny, tmp_path):
    model, tokenizer = tiny
    ppo = lm_ppo(sb3_env(4, kl_coef=0.05), tokenizer, model, n_steps=8)
    ppo.set_logger(configure(str(tmp_path), ["json", "tensorboard"]))
    callback = GenerationLoggingCallback(n_samples=2)
    ppo.learn(4 * 8 * 2, callback=callback)
    rows = [json.loads(line) for line in (tmp_path / "progress.json").read_text().splitlines()]
    assert len(rows) == 2
    for row in rows:
        assert row["textgen/episodes"] >= 8  # 4 envs x 8 steps of 4-token episodes, or more with EOS
        assert 0.0 <= row["textgen/reward_keyword"] <= 1.0
        assert row["textgen/reward_kl"] < 0 and row["textgen/reward_kl_per_step"] < 0
        assert row["textgen/samples"].count("**prompt:**") == 2
        assert any(prompt in row["textgen/samples"] for prompt in PROMPTS)
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    events = event_accumulator.EventAccumulator(str(next(tmp_path.glob("events.out.tfevents.*"))))
    events.Reload()
    assert "textgen/reward_keyword" in events.Tags()["scalars"]
    assert "textgen/samples/text_summary" in events.Tags()["tensors"]


def test_kl_penalty_callback_subtracts_the_sampled_kl_before_the_update(sb3_env, tiny):
    from agents.sb3 import KLPenaltyCallback

    model, tokenizer = tiny
    ppo = lm_ppo(sb3_env(4, reference_logprobs=True), tokenizer, model, n_steps=8, ent_coef=0.0)
    seen = {}

    class Spy(KLPenaltyCallback):
        def _on_rollout_end(self) -> None:
            buffer = self.model.rollout_buffer
            seen["rewards"] = buffer.rewards.copy()
            super()._on_rollout_end()
            seen["penalised"] = buffer.rewards.copy()
            seen["log_ratio"] = buffer.log_probs - self._reference_logprobs
            seen["advantages"] = buffer.advantages.copy()
            buffer.compute_returns_and_advantage(self.locals["values"], self.locals["dones"])  # a second time
            seen["recomputed"] = buffer.advantages.copy()

    # a policy away from the reference, so that the penalty is not 0: train it a little first
    ppo.learn(4 * 8 * 2)
    ppo.learn(4 * 8, callback=Spy(kl_coef=0.3), reset_num_timesteps=False)
    log_ratio = np.where(np.abs(seen["log_ratio"]) < 1e-5, 0.0, seen["log_ratio"])
    assert np.abs(log_ratio).max() > 1e-3
    np.testing.assert_allclose(seen["penalised"], seen["rewards"] - 0.3 * log_ratio, atol=1e-6)
    np.testing.assert_allclose(seen["advantages"], seen["recomputed"], atol=1e-6)  # advantages of the new rewards


def test_kl_penalty_callback_adapts_toward_its_target(sb3_env, tiny, tmp_path):
    from agents.sb3 import KLPenaltyCallback

    model, tokenizer = tiny
    ppo = lm_ppo(sb3_env(4, reference_logprobs=True), tokenizer, model, n_steps=8, learning_rate=5e-2, ent_coef=0.0)
    ppo.set_logger(configure(str(tmp_path), ["json"]))
    callback = KLPenaltyCallback(kl_coef=0.05, target=1e-3, horizon=10)  # far below what training reaches
    ppo.learn(4 * 8 * 3, callback=callback)
    rows = [json.loads(line) for line in (tmp_path / "progress.json").read_text().splitlines()]
    kls = [row["textgen/kl_episode"] for row in rows]
    coefs = [row["textgen/kl_coef"] for row in rows]
    assert kls[0] == pytest.approx(0.0, abs=1e-5) and coefs[0] == 0.05  # the first rollout is penalised at 0.05
    assert all(kl > 1e-3 for kl in kls[1:]) and coefs[1] < coefs[2]  # above target: the coefficient rises
    assert ppo.ent_coef == 0.0
    with pytest.warns(UserWarning, match=r"KLPenaltyCallback with ent_coef=0.1"):
        lm_ppo(sb3_env(2, reference_logprobs=True), tokenizer, model, n_steps=4, ent_coef=0.1).learn(
            8, callback=KLPenaltyCallback(kl_coef=0.1)
        )


# ------------------------------------------------------------------ classic agents and MaskablePPO
class RankReward(gym.Wrapper):
    """Reward 1 for choosing candidate rank `target`: a task whose right choice is obvious in every state."""

    def __init__(self, env: gym.Env, target: int) -> None:
        super().__init__(env)
        self.target = target

    def step(self, action):
        obs, _, terminated, truncated, info = self.env.step(action)
        return obs, float(int(action) == self.target), terminated, truncated, info


CLASSIC = {  # algorithm, options, steps
    "ppo": (PPO, dict(n_steps=64, batch_size=64, learning_rate=3e-3), 1000),
    "a2c": (A2C, dict(learning_rate=3e-3), 1000),
    "dqn": (
        DQN,
        dict(learning_starts=64, exploration_fraction=0.2, target_update_interval=64, learning_rate=1e-3, train_freq=4),
        1500,
    ),
}


@pytest.mark.parametrize("name", list(CLASSIC), ids=list(CLASSIC))
def test_classic_agents_steer_the_frozen_lm_in_top_k_hidden_mode(tiny, name):
    model, tokenizer = tiny
    settings = dict(model=model, tokenizer=tokenizer, action_mode="top_k", top_k=4, observation_mode="hidden")
    settings.update(reward=lambda prompt, completion, done: 0.0, max_new_tokens=4, max_prompt_tokens=8, prompts=PROMPTS)
    env = DummyVecEnv([lambda: Monitor(RankReward(TextGenEnv(**settings), target=2))] * 4)
    cls, options, steps = CLASSIC[name]
    check_sb3_env(env, cls, "MlpPolicy")  # no warning: top_k suits every algorithm
    weights_before = [p.detach().clone() for p in model.parameters()]
    agent = cls("MlpPolicy", env, seed=0, **options)
    agent.learn(steps)
    obs = env.reset()
    chosen = []
    for _ in range(20):
        actions, _ = agent.predict(obs, deterministic=True)
        chosen.extend(actions.tolist())
        obs, *_ = env.step(actions)
    assert np.mean(np.array(chosen) == 2) > 0.9  # random: 0.25
    assert all(torch.equal(b, p) for b, p in zip(weights_before, model.parameters()))


def test_maskable_ppo_never_takes_a_masked_action(tiny):
    sb3_contrib = pytest.importorskip("sb3_contrib")
    model, tokenizer = tiny
    taken: list[bool] = []

    class AuditMasks(gym.Wrapper):
        def step(self, action):
            taken.append(bool(self.env.action_masks()[int(action)]))
            return self.env.step(action)

    settings = dict(model=model, tokenizer=tokenizer, mask_top_k=3, reward="keyword", max_new_tokens=4)
    settings.update(max_prompt_tokens=8, prompts=PROMPTS)
    env = DummyVecEnv([lambda: Monitor(AuditMasks(TextGenEnv(**settings)))] * 4)
    check_sb3_env(env, sb3_contrib.MaskablePPO, "MultiInputPolicy")
    agent = sb3_contrib.MaskablePPO(
        "MultiInputPolicy",
        env,
        n_steps=32,
        batch_size=64,
        seed=0,
        policy_kwargs={"features_extractor_class": TokenBagExtractor},
    )
    agent.learn(4 * 32 * 3)
    assert len(taken) >= 4 * 32 * 3 and all(taken)


def test_token_bag_extractor_features(make_env):
    env = make_env()
    extractor = TokenBagExtractor(env.observation_space, embedding_dim=8, last_tokens=2)
    obs, _ = env.reset(seed=0)
    features = extractor({key: torch.as_tensor(value)[None].float() for key, value in obs.items()})
    assert features.shape == (1, extractor.features_dim) == (1, 24)


# ---------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("modes", "match"),
    [
        ({"observation_mode": "hidden"}, 'observation_mode="tokens"'),
        ({"action_mode": "top_k", "top_k": 5}, 'action_mode="vocab"'),
    ],
    ids=["hidden-observations", "top-k-actions"],
)
def test_lm_policy_rejects_other_modes_at_construction(sb3_env, tiny, modes, match):
    model, tokenizer = tiny
    with pytest.raises(ValueError, match=match):
        PPO(LMActorCriticPolicy, sb3_env(1, **modes), policy_kwargs={"model": model, "tokenizer": tokenizer})
    with pytest.raises(ValueError, match="LMActorCriticPolicy needs"):
        check_sb3_env(sb3_env(1, **modes), PPO, LMActorCriticPolicy)


def test_lm_policy_rejects_an_env_with_another_vocabulary(sb3_env):
    tokenizer = tiny_tokenizer()
    tokenizer.add_tokens(["zebra"])
    model = tiny_model(len(tokenizer))
    with pytest.raises(ValueError, match=r"vocabulary matches the policy's tokenizer \(143 tokens\)"):
        PPO(LMActorCriticPolicy, sb3_env(1), policy_kwargs={"model": model, "tokenizer": tokenizer})


def test_lm_policy_bad_arguments(sb3_env, tiny):
    model, tokenizer = tiny
    with pytest.raises(TypeError, match="Expected policy_kwargs\\['tokenizer'\\]"):
        PPO(LMActorCriticPolicy, sb3_env(1), policy_kwargs={"model": model, "tokenizer": "gpt2"})
    with pytest.raises(ValueError, match="Expected use_sde=False"):
        LMActorCriticPolicy(*_spaces(sb3_env(1)), lambda _: 1e-3, model=model, tokenizer=tokenizer, use_sde=True)
    with pytest.raises(TypeError, match="Expected an actor-critic algorithm"):
        check_sb3_env(sb3_env(1), DQN, LMActorCriticPolicy)


def _spaces(env):
    return env.observation_space, env.action_space


def test_check_sb3_env_warns_dqn_on_the_full_vocabulary(sb3_env, tiny):
    model, tokenizer = tiny
    with pytest.warns(UserWarning, match=r'Discrete\(142\).*action_mode="top_k"'):
        check_sb3_env(sb3_env(1, observation_mode="hidden"), DQN)
    with pytest.warns(UserWarning, match='action_mode="top_k"'):
        make_sb3_env(1, algorithm="DQN", model=model, tokenizer=tokenizer, observation_mode="hidden")


def test_check_sb3_env_other_misuse(sb3_env, tiny):
    model, tokenizer = tiny
    with pytest.raises(ValueError, match='use observation_mode="hidden"'):
        check_sb3_env(sb3_env(1), PPO, "MlpPolicy")
    with pytest.warns(UserWarning, match="mask_top_k"):
        check_sb3_env(sb3_env(1), "MaskablePPO", "MultiInputPolicy")
    vector_env = TextGenVectorEnv(num_envs=2, model=model, tokenizer=tokenizer)
    with pytest.raises(TypeError, match="make_sb3_env"):
        check_sb3_env(vector_env, PPO)
    with pytest.raises(ValueError, match="Expected num_envs"):
        make_sb3_env(0, model=model, tokenizer=tokenizer)
    with pytest.raises(ValueError, match="Expected n_samples"):
        GenerationLoggingCallback(n_samples=-1)
    with pytest.raises(ValueError, match="Expected last_tokens"):
        TokenBagExtractor(sb3_env(1).observation_space, last_tokens=0)
    mlp = PPO("MultiInputPolicy", sb3_env(1), n_steps=4, batch_size=4)
    with pytest.raises(TypeError, match="Expected an SB3 model with an LMActorCriticPolicy"):
        save_lm(mlp, "unused")

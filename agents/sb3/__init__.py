"""stable-baselines3 integration: the LM as an SB3 policy, a token-bag extractor, env checks, callbacks, saving.

Two ways to use SB3 on a TextGen env, with SB3's classes unmodified:

* **Train the LM itself** with ``PPO``/``A2C`` and `LMActorCriticPolicy` (``observation_mode="tokens"``,
  ``action_mode="vocab"``)::

      env = make_sb3_env(4, model=model, tokenizer=tokenizer, reward="keyword", reward_kwargs={"keywords": ["great"]})
      ppo = PPO(LMActorCriticPolicy, env, policy_kwargs={"model": LMSource(model)},
                rollout_buffer_class=EpisodeRolloutBuffer, normalize_advantage=False,
                rollout_buffer_kwargs={"normalize_advantage": True})
      ppo.learn(2048, callback=GenerationLoggingCallback())
      save_lm(ppo, "trained-lm")   # Hugging Face format, beside ppo.save("ppo.zip")

* **Steer a frozen LM with a small policy**: ``action_mode="top_k"`` (action i = the env model's i-th most likely
  token) with ``observation_mode="hidden"`` (the env model's hidden state as a Box) suits stock ``PPO``, ``A2C`` and
  ``DQN`` with ``"MlpPolicy"``; in vocab mode with ``mask_top_k``/``mask_top_p``, sb3-contrib's ``MaskablePPO``
  with ``"MultiInputPolicy"`` and `TokenBagExtractor` only ever picks allowed tokens.

Rollout collection reuses a per-env KV cache (one cached token per step); with `EpisodeRolloutBuffer` each update
scores every episode with one forward (`agents.sb3.episodes` explains, ``benchmarks/sb3_rollout.py`` measures).

## KL penalty the SB3 way
Build the envs with ``reference_logprobs=True`` (each step's ``info`` then carries ``log pi_ref(a_t|s_t)`` of the
env's frozen model, at no extra forward: the env runs its KV-cached model anyway) and pass
``KLPenaltyCallback(kl_coef=beta)`` to ``learn`` with ``ent_coef=0``. Before each update the callback subtracts
``beta * (log pi(a_t|s_t) - log pi_ref(a_t|s_t))`` from the buffer's rewards and recomputes returns and advantages,
so PPO/A2C optimise the task reward minus ``beta`` times KL(pi || pi_ref) of whole completions (tested on the tiny
model in ``tests/agents/test_sb3.py``: the penalty alone brings a drifted policy back). With ``target=...`` the
coefficient adapts toward a KL per episode.

The env's own ``kl_coef`` only adds ``kl_coef * log pi_ref(a_t|s_t)`` to the reward. Paired with an entropy bonus
``ent_coef = kl_coef`` the two add up, per state, to ``-kl_coef * KL(pi(.|s) || pi_ref(.|s))``, but SB3 does not
optimise that sum: it normalises the advantages (which carry the reference term) per minibatch and not the
entropy bonus, which moves the optimum to ``pi ~ pi_ref^(1/sigma)``, and the reference term is summed into the
return of every earlier token, a per-token length penalty (measured with task reward 0 and beta 0.05: P(EOS) after
the prompt went from 0.007 to 0.53). Use `KLPenaltyCallback` instead.

## Saving
``ppo.save(path)`` stores the LM's weights in SB3's zip (the policy's state_dict); pass the model as
``LMSource(model)`` so that ``policy_kwargs`` store only its config (a bare model instance is pickled whole, a hub
name is looked up again on load). ``PPO.load(path)`` then rebuilds the LM from its config, offline. `save_lm` also
writes the LM (and tokenizer) in Hugging Face format for `textgen_env.load_model`.
"""

from agents.sb3.callbacks import GenerationLoggingCallback, KLPenaltyCallback
from agents.sb3.episodes import EpisodeRolloutBuffer
from agents.sb3.integration import ACTOR_CRITIC, VALUE_BASED, TokenBagExtractor, check_sb3_env, make_sb3_env, save_lm
from agents.sb3.policy import LMActorCriticPolicy, LMSource, TokenObservationExtractor, check_token_spaces

__all__ = [
    "ACTOR_CRITIC",
    "VALUE_BASED",
    "EpisodeRolloutBuffer",
    "GenerationLoggingCallback",
    "KLPenaltyCallback",
    "LMActorCriticPolicy",
    "LMSource",
    "TokenBagExtractor",
    "TokenObservationExtractor",
    "check_sb3_env",
    "check_token_spaces",
    "make_sb3_env",
    "save_lm",
]

"""`LMActorCriticPolicy`: a Hugging Face causal LM as a stable-baselines3 actor-critic policy (PPO, A2C).

The features are the env's token observation itself (left-padded ``input_ids`` and ``attention_mask``); the actor is
the LM's own next-token distribution (logits sliced to ``len(tokenizer)``) and the critic a linear head on the LM's
last hidden state, so stock ``PPO``/``A2C`` update the LM's own weights::

    PPO(LMActorCriticPolicy, env, policy_kwargs={"model": model}, rollout_buffer_class=EpisodeRolloutBuffer)

**Rollouts** (``forward`` and ``predict_values`` without grad, one observation per env) keep a `SlotKVCache` over the
envs (`TokenStreamCache`): an observation that extends the slot's previous one by exactly one token costs a single
cached token forward; any other observation (a new episode) restarts that slot with a prefill of its whole text.
The cache notices any in-place change of the weights (an optimizer step, ``load_state_dict``) and starts over, so it
never serves stale keys. ``predict`` (evaluation, generation loops) has its own cache, so evaluating between
rollouts does not evict them. ``use_kv_cache=False`` runs the whole sequence at every call instead (the reference
path; same log-probs).

**Updates** (``evaluate_actions``) score each episode once: with ``rollout_buffer_class=EpisodeRolloutBuffer`` a
minibatch holds whole episodes, each one's steps in order, and one forward (with grad) over an episode's last
observation gives the logits and values of all its steps (`agents.sb3.episodes`). SB3's stock buffer shuffles single
steps instead; each is then a forward over its own full sequence (about ``3 * n_epochs * L`` times the collection's
model FLOPs per sample). ``benchmarks/sb3_rollout.py`` prints both update costs side by side.

Left padding is handled with ``position_ids = cumsum(attention_mask) - 1``. SB3 turns Box observations into float32
(`preprocess_obs`); the ids are cast back to int64 (exact below 2**24 tokens). The LM stays in eval mode (no dropout)
so that rollout and update log-probs agree.
"""

from __future__ import annotations

import copy
import os
from typing import Any, cast

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.distributions import CategoricalDistribution, Distribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn
from transformers import AutoModelForCausalLM, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from agents.sampling import sample_tokens
from agents.sb3.episodes import token_chains
from textgen_env.kv import SlotKVCache, SlotStep
from textgen_env.models import check_vocabulary_rows, load_model, load_tokenizer

__all__ = ["LMActorCriticPolicy", "LMSource", "TokenObservationExtractor", "TokenStreamCache", "check_token_spaces"]

_FLOAT32_EXACT_IDS = 2**24  # SB3 stores observations as float32, which holds integers exactly up to here


class LMSource:
    """A causal LM for ``policy_kwargs`` that pickles as its architecture only (config, class and dtype).

    SB3 pickles ``policy_kwargs`` into the saved zip and rebuilds the policy from them on load; the weights travel
    separately in the policy's state_dict. Wrapping the model keeps the zip free of a second copy of the weights
    and of hub names: loading builds the LM from its config, offline, and the state_dict fills in the weights.

    Args:
        model: a ``PreTrainedModel``, a Hugging Face name or local folder (loaded now with
            `textgen_env.load_model`), or a ``PretrainedConfig`` (random weights, as on load).
        tokenizer: the model's tokenizer; loaded with the model when `model` is a name and this is None.
    """

    def __init__(
        self,
        model: PreTrainedModel | PretrainedConfig | str | os.PathLike[str] | None,
        tokenizer: PreTrainedTokenizerBase | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self._model: PreTrainedModel | None = None
        if isinstance(model, PretrainedConfig):
            self.model_class: type[PreTrainedModel] | None = None
            self.config = copy.deepcopy(model)
            self.dtype = getattr(model, "dtype", None) or torch.float32
            return
        if not isinstance(model, PreTrainedModel):
            model, self.tokenizer = load_model(model, tokenizer=tokenizer)
        self._model = model
        self.model_class = type(model)
        self.config = copy.deepcopy(model.config)
        self.dtype = model.dtype

    def build(self) -> PreTrainedModel:
        """A new model: a deep copy of the wrapped one (never trained in place), or built from the config."""
        if self._model is not None:
            return copy.deepcopy(self._model)
        config = copy.deepcopy(self.config)
        if self.model_class is None:
            return AutoModelForCausalLM.from_config(config, dtype=self.dtype)
        return self.model_class._from_config(config, dtype=self.dtype)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_model"] = None  # weights travel in the policy's state_dict
        return state

    def __repr__(self) -> str:
        name = self.model_class.__name__ if self.model_class else self.config.model_type
        return f"LMSource({name}, weights={'held' if self._model is not None else 'from state_dict'})"


class TokenObservationExtractor(BaseFeaturesExtractor):
    """Features = the token observation itself: ``(B, 2, L)`` stacking ``input_ids`` and ``attention_mask``."""

    def __init__(self, observation_space: spaces.Dict) -> None:
        length = int(cast(spaces.Box, observation_space["input_ids"]).shape[-1])
        super().__init__(observation_space, features_dim=2 * length)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.stack([observations["input_ids"], observations["attention_mask"]], dim=1)  # (B, 2, L)


def check_token_spaces(observation_space: spaces.Space, action_space: spaces.Space, vocab_size: int) -> None:
    """Raise ValueError unless the spaces are a TextGen env's token observation and full-vocabulary actions."""
    if not (
        isinstance(observation_space, spaces.Dict)
        and {"input_ids", "attention_mask"} <= set(observation_space.spaces)
        and isinstance(observation_space["input_ids"], spaces.Box)
    ):
        raise ValueError(
            "LMActorCriticPolicy reads token observations: expected a Dict observation space with 'input_ids' and "
            f"'attention_mask' (build the env with observation_mode=\"tokens\"), got {observation_space}"
        )
    env_vocab = int(np.max(observation_space["input_ids"].high)) + 1
    if env_vocab != vocab_size:
        raise ValueError(
            f"Expected an env whose vocabulary matches the policy's tokenizer ({vocab_size} tokens), got token "
            f"observations over {env_vocab} ids; pass the same model and tokenizer to the env and to policy_kwargs "
            '(with observation_mode="tokens", action_mode="vocab").'
        )
    if not isinstance(action_space, spaces.Discrete) or int(action_space.n) != vocab_size:
        raise ValueError(
            f"LMActorCriticPolicy's actions are token ids: expected the action space Discrete({vocab_size}) (build "
            f'the env with action_mode="vocab"; top_k mode\'s actions are ranks, not tokens), got {action_space}'
        )
    if vocab_size > _FLOAT32_EXACT_IDS:
        raise ValueError(
            f"Expected a vocabulary below {_FLOAT32_EXACT_IDS} tokens (SB3 stores float32), got {vocab_size}"
        )


class TokenStreamCache:
    """A `SlotKVCache` that follows a batch of token observations, one slot per row (env).

    Each call compares a row's unpadded tokens with what its slot holds: one new token at the end is appended with
    a single cached forward; anything else (a new episode, another env) restarts the slot with a prefill. A new
    batch size, device or weights version (`LMActorCriticPolicy._weights_version`) starts the whole cache over.
    """

    def __init__(self) -> None:
        self.kv: SlotKVCache | None = None
        self.held: list[np.ndarray | None] = []  # per slot, the unpadded tokens it holds
        self.weights_version = -1

    @torch.no_grad()
    def step(self, lm: PreTrainedModel, ids: torch.Tensor, mask: torch.Tensor, weights_version: int) -> SlotStep:
        """Next-token logits and hidden states of every row of (B, L) `ids` / `mask`."""
        slots = ids.shape[0]
        device = next(lm.parameters()).device
        if self.kv is None or self.kv.num_slots != slots or self.kv.device != device:
            self.weights_version = -1
        if weights_version != self.weights_version:
            self.kv = SlotKVCache(lm, slots, output_hidden=True)
            self.held = [None] * slots
            self.weights_version = weights_version
        ids_np, mask_np = ids.cpu().numpy(), mask.cpu().numpy().astype(bool)
        tokens, restart = [], []
        for slot in range(slots):
            current = ids_np[slot][mask_np[slot]]  # the unpadded text
            previous = self.held[slot]
            extends = (
                previous is not None and len(current) == len(previous) + 1 and np.array_equal(current[:-1], previous)
            )
            tokens.append(current[-1:].tolist() if extends else current.tolist())
            restart.append(not extends)
            self.held[slot] = current
        assert self.kv is not None  # made above: a new cache starts at weights version -1
        return self.kv.advance(tokens, restart)


def _saved_tokenizer(source: LMSource) -> PreTrainedTokenizerBase | None:
    """The tokenizer saved beside a model instance (its ``name_or_path`` is a local folder with one), else None."""
    folder = getattr(source.config, "_name_or_path", None)
    if not folder or not os.path.isdir(folder):
        return None
    try:
        return load_tokenizer(folder)
    except (OSError, ValueError):
        return None  # a model folder without tokenizer files: the env's spaces give the vocabulary


class LMActorCriticPolicy(ActorCriticPolicy):
    """A causal LM as SB3's actor-critic: LM logits are the policy, a value head shares the trunk.

    Args:
        observation_space: the env's token observation space (``observation_mode="tokens"``).
        action_space: ``Discrete(len(tokenizer))`` (``action_mode="vocab"``).
        lr_schedule: SB3's learning-rate schedule.
        model: a ``PreTrainedModel`` (the policy trains a deep copy, so the env may hold the same object as its
            frozen KL reference), a name or local folder, a ``PretrainedConfig``, or an `LMSource` (recommended for
            models of real size: ``save()`` then stores only the config).
        tokenizer: the model's tokenizer; optional: by default the one loaded with a name or path, an `LMSource`'s,
            or the one saved in a model instance's local folder; without any, the vocabulary size is the env's
            action space ``Discrete(V)`` (checked against the token observations and the model's embedding rows)
            and `save_lm` needs ``tokenizer=``.
        use_kv_cache: reuse a per-env KV cache during rollout collection (see the module docstring).
        **kwargs: other `ActorCriticPolicy` arguments (``optimizer_class``, ``optimizer_kwargs``, ...); the MLP
            arguments (``net_arch``, ``activation_fn``, ``ortho_init``) are accepted and unused.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        *,
        model: PreTrainedModel | PretrainedConfig | LMSource | str | os.PathLike[str],
        tokenizer: PreTrainedTokenizerBase | None = None,
        use_kv_cache: bool = True,
        **kwargs: Any,
    ) -> None:
        if kwargs.get("use_sde"):
            raise ValueError("Expected use_sde=False: LMActorCriticPolicy's actions are discrete tokens, got True")
        source = model if isinstance(model, LMSource) else LMSource(model, tokenizer)
        if tokenizer is None:
            tokenizer = source.tokenizer if source.tokenizer is not None else _saved_tokenizer(source)
        if tokenizer is not None and not isinstance(tokenizer, PreTrainedTokenizerBase):
            raise TypeError(
                "Expected policy_kwargs['tokenizer'] to be the model's PreTrainedTokenizerBase or None, got "
                f"{type(tokenizer).__name__}"
            )
        if tokenizer is None and not isinstance(action_space, spaces.Discrete):
            raise ValueError(f"Expected the token action space Discrete(vocabulary size), got {action_space}")
        vocab_size = len(tokenizer) if tokenizer is not None else int(cast(spaces.Discrete, action_space).n)
        check_token_spaces(observation_space, action_space, vocab_size)
        self.tokenizer = tokenizer
        self.vocab_size = vocab_size
        self.use_kv_cache = use_kv_cache
        self._source = [source]  # a list: nn.Module refuses module attributes before its __init__
        self.rollout_cache = TokenStreamCache()  # forward / predict_values during collect_rollouts
        self.predict_cache = TokenStreamCache()  # predict(), kept apart so evaluation never evicts rollouts
        kwargs.setdefault("features_extractor_class", TokenObservationExtractor)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        """Build the LM and its value head (in place of SB3's MLPs) and one optimizer over both."""
        self.lm = self._source.pop().build()
        rows = cast(int, self.lm.get_input_embeddings().num_embeddings)  # an nn.Embedding's row count
        if self.tokenizer is not None:
            check_vocabulary_rows(rows, self.tokenizer)
        elif not self.vocab_size <= rows <= 2 * self.vocab_size:
            raise ValueError(
                f"Expected a model whose {rows} embedding rows cover the env's {self.vocab_size} token actions (and "
                f"at most twice as many), got a model of another vocabulary; pass the env's model"
            )
        config = self.lm.config.get_text_config()
        limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
        input_ids = cast(spaces.Box, cast(spaces.Dict, self.observation_space)["input_ids"])  # checked in __init__
        length = int(input_ids.shape[-1])
        if limit is not None and limit < length:
            raise ValueError(f"Expected observations of at most the model's {limit} positions, got length {length}")
        self.lm.requires_grad_(True)
        self.lm.eval()
        self.value_net = nn.Linear(config.hidden_size, 1)
        nn.init.zeros_(self.value_net.weight)  # values start at 0 instead of disturbing the trunk
        nn.init.zeros_(self.value_net.bias)
        self._parameter_list = list(self.parameters())  # for the cheap weights-version check of the KV cache
        # SB3 types optimizer_class as the Optimizer base, whose constructor has no lr (SB3 ignores this too)
        self.optimizer = self.optimizer_class(  # type: ignore[call-arg]  # see above
            self._parameter_list, lr=lr_schedule(1), **self.optimizer_kwargs
        )
        # fused optimizers (AdamW(fused=True), ...) update the weights without bumping their _version: count steps too
        self._optimizer_steps = 0
        self.optimizer.register_step_post_hook(self._count_optimizer_step)

    def _count_optimizer_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self._optimizer_steps += 1

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(model=LMSource(self.lm), tokenizer=self.tokenizer, use_kv_cache=self.use_kv_cache)
        return data

    def set_training_mode(self, mode: bool) -> None:
        self.train(mode)
        self.lm.eval()  # no dropout, in training too: PPO's ratio compares rollout and update log-probs

    # ------------------------------------------------------------------------------------------------- forwards
    def _tokens(self, obs: PyTorchObs) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) int64 ids and mask from SB3's float observations."""
        features = cast(torch.Tensor, self.extract_features(obs))  # (B, 2, L) float32: one extractor, one tensor
        return features[:, 0].round().long(), features[:, 1].round().long()

    def _full_forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, V) next-token logits and (B, 1) values from one forward over the whole sequences."""
        logits, hidden = self._last_positions(ids, mask, keep=1)
        return logits[:, -1], self.value_net(hidden[:, -1])

    def _last_positions(self, ids: torch.Tensor, mask: torch.Tensor, keep: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, keep, V) logits and (B, keep, H) last hidden states at the last `keep` positions of each sequence."""
        used = mask.any(dim=0).nonzero()
        first = int(used[0]) if len(used) else 0
        ids, mask = ids[:, first:], mask[:, first:]  # drop the columns that are padding in every row
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)  # left padding must not shift positions
        outputs = self.lm(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            logits_to_keep=keep,
            output_hidden_states=True,
            use_cache=False,
        )
        logits = outputs.logits[:, -keep:, : self.vocab_size].float()
        return logits, outputs.hidden_states[-1][:, -keep:].float()

    def _episode_forward(
        self, ids: torch.Tensor, mask: torch.Tensor, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, V) logits and (B, 1) values of every row, with one forward per chain of steps of one episode.

        A row that continues the previous row (`token_chains`) is read off the forward of its chain's last row, at
        the position of its own last token: a causal LM's outputs there depend only on the tokens before it.
        """
        chains = token_chains(ids, mask, actions)
        keep = int(chains.offset.max()) + 1
        logits, hidden = self._last_positions(ids[chains.ends], mask[chains.ends], keep)  # (C, keep, .)
        column = keep - 1 - chains.offset
        return logits[chains.chain, column], self.value_net(hidden[chains.chain, column])

    def _weights_version(self) -> int:
        # _version is bumped by every in-place update but a fused optimizer kernel's; those are counted by the hook
        return sum(p._version for p in self._parameter_list) + getattr(self, "_optimizer_steps", 0)

    def _logits_and_values(
        self, obs: PyTorchObs, cache: TokenStreamCache | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, V) logits and (B, 1) values: through `cache` when allowed (no grad), else one full forward."""
        ids, mask = self._tokens(obs)
        if cache is None or not self.use_kv_cache or torch.is_grad_enabled():
            return self._full_forward(ids, mask)
        out = cache.step(self.lm, ids, mask, self._weights_version())
        return out.logits[:, : self.vocab_size], self.value_net(out.hidden)

    def _distribution(self, logits: torch.Tensor) -> CategoricalDistribution:
        distribution = self.action_dist.proba_distribution(action_logits=logits)
        return cast(CategoricalDistribution, distribution)  # SB3's distribution for a Discrete action space

    @staticmethod
    def _choose(logits: torch.Tensor, deterministic: bool) -> torch.Tensor:
        return logits.argmax(dim=-1) if deterministic else sample_tokens(logits)  # faster than multinomial

    def forward(self, obs: PyTorchObs, deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Actions, values and log-probs for a batch of observations (KV-cached during rollouts)."""
        logits, values = self._logits_and_values(obs, self.rollout_cache)
        actions = self._choose(logits, deterministic)
        log_prob = self._distribution(logits).log_prob(actions)
        return actions.reshape((-1, *(self.action_space.shape or ()))), values, log_prob

    def evaluate_actions(
        self, obs: PyTorchObs, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Values, log-probs of `actions` and entropies, with grad: one forward per episode's run of consecutive
        steps in the batch (`EpisodeRolloutBuffer` keeps them together; a shuffled step is one forward of its own)."""
        ids, mask = self._tokens(obs)
        logits, values = self._episode_forward(ids, mask, actions)
        distribution = self._distribution(logits)
        return values, distribution.log_prob(actions), distribution.entropy()

    def get_distribution(self, obs: PyTorchObs) -> Distribution:
        logits, _ = self._logits_and_values(obs)
        return self._distribution(logits)

    def predict_values(self, obs: PyTorchObs) -> torch.Tensor:
        return self._logits_and_values(obs, self.rollout_cache)[1]

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> torch.Tensor:
        logits, _ = self._logits_and_values(observation, self.predict_cache)  # generation loops reuse it too
        return self._choose(logits, deterministic)

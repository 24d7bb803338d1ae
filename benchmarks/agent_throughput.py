"""Agent speed and memory, measured side by side in one run.

* ``rollout tok/s / generate tok/s``: the PPO agent stepping the vector env (KV-cached policy forward, inverse-CDF
  sampling, log-probs and values recorded, env bookkeeping and reward) over ``model.generate`` sampling the same
  number of tokens for the same prompts (same model, batch and length).
* ``update / fwd+bwd``: one PPO update (its no-grad scoring pass for old log-probs, values and the exact KL, then
  ``epochs`` clipped updates with their AdamW steps) over ``epochs`` plain language-model training passes
  (forward, cross-entropy, backward; no optimizer step) of the same padded tokens, in steady state (after one
  warm-up update; best of two, alternated).
* ``memory``: bytes of policy + value head + reference weights over one copy of the model, full fine-tuning and
  LoRA; optimizer state reported separately.

Usage: ``python benchmarks/agent_throughput.py [--tokens 20] [--batches 1 8 32] [--skip-default]``
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from generate_baseline import generate_rate

from agents import PPO
from textgen_env import TextGenVectorEnv, load_model
from textgen_env.prompts import make_prompt_source
from textgen_env.testing import tiny_model_and_tokenizer


def _env(model, tokenizer, batch: int, tokens: int) -> TextGenVectorEnv:
    return TextGenVectorEnv(
        num_envs=batch,
        model=model,
        tokenizer=tokenizer,
        reward="length",
        max_new_tokens=tokens,
        stop_on_eos=False,
        prompts="movie_reviews:eval",
    )


def _rollout_rate(agent: PPO, batch: int) -> tuple[float, object]:
    start = time.perf_counter()
    rollout = agent.collect(batch)
    tokens = rollout.num_tokens
    return tokens / (time.perf_counter() - start), rollout


def _plain_training_passes(agent: PPO, rollout) -> float:
    """Seconds of `epochs` plain LM training passes over the update's minibatches of `rollout`."""
    model = agent.policy.model
    start = time.perf_counter()
    for _ in range(agent.config.epochs):
        for rows in agent.minibatches(len(rollout)):
            batch = rollout.select(rows).to(agent.policy.device)
            labels = batch.input_ids.masked_fill(batch.attention_mask == 0, -100)  # a plain LM training step
            loss = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=labels).loss
            loss.backward()
            model.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def _update_ratio(agent: PPO, rollout, repeats: int = 2) -> float:
    """Steady-state update time over plain training passes, the best of `repeats` of each, alternated. One update
    runs first as warm-up: the first AdamW step allocates its state (two model-sized buffers) and the allocator
    grows, a one-off cost of a run, not of an iteration."""
    agent.update(copy.deepcopy(rollout))
    _plain_training_passes(agent, rollout)
    updates, plain = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        agent.update(copy.deepcopy(rollout))  # each update reads the rollout as collected
        updates.append(time.perf_counter() - start)
        plain.append(_plain_training_passes(agent, rollout))
    return min(updates) / min(plain)


def _bytes(parameters) -> int:
    return sum(p.numel() * p.element_size() for p in parameters)


def _memory(model_factory, tokenizer, lora_rank: int) -> tuple[float, float]:
    model = model_factory()
    one_copy = _bytes(model.parameters())
    env = _env(model_factory(), tokenizer, 1, 4)  # the env does not hold a model in token mode
    agent = PPO(env, model=model, lora_rank=lora_rank, episodes_per_iteration=1, minibatch_size=1)
    held = {id(p): p for p in agent.policy.parameters()}
    if agent.policy._reference:
        held.update({id(p): p for p in agent.policy._reference[0].parameters()})
    trainable = _bytes(agent.policy.trainable_parameters())
    return _bytes(held.values()) / one_copy, 2 * trainable / one_copy  # AdamW keeps two moments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--skip-default", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    factories = {"tiny": lambda: tiny_model_and_tokenizer()[0]}
    tokenizers = {"tiny": tiny_model_and_tokenizer()[1]}
    if not args.skip_default:
        factories["SmolLM2-135M"] = lambda: load_model()[0]
        tokenizers["SmolLM2-135M"] = load_model()[1]
    prompts = [p.text for p in make_prompt_source("movie_reviews:eval").prompts]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.tokens} tokens per episode\n")
    print(f"{'model':<14}{'B':>4}{'generate tok/s':>16}{'rollout tok/s':>15}{'ratio':>8}{'update / fwd+bwd':>18}")
    for name, factory in factories.items():
        model, tokenizer = factory(), tokenizers[name]
        for batch in args.batches:
            env = _env(model, tokenizer, batch, args.tokens)
            agent = PPO(env, model=model, episodes_per_iteration=batch, minibatch_size=min(batch, 8), kl_coef=0.05)
            _rollout_rate(agent, batch)  # warm-up
            rate, rollout = max((_rollout_rate(agent, batch) for _ in range(2)), key=lambda r: r[0])
            batch_prompts = (prompts * (batch // len(prompts) + 1))[:batch]
            generate = generate_rate(model, tokenizer, batch_prompts, args.tokens)
            ratio = _update_ratio(agent, rollout)
            print(f"{name:<14}{batch:>4}{generate:>16.0f}{rate:>15.0f}{rate / generate:>8.2f}{ratio:>18.2f}")
    print(f"\n{'model':<14}{'mode':<16}{'weights / one copy':>20}{'optimizer state / one copy':>28}")
    for name, factory in factories.items():
        for label, rank in (("full fine-tune", 0), ("LoRA r=16", 16)):
            held, optimizer = _memory(factory, tokenizers[name], rank)
            print(f"{name:<14}{label:<16}{held:>20.2f}{optimizer:>28.2f}")


if __name__ == "__main__":
    main()

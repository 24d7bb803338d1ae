"""The untrained SmolLM2-135M-Instruct on 3-digit multiplication, with and without the calculator: accuracy, the
share of episodes that call the tool, and calls per episode, with standard errors (the "before" half of issue 26's
demonstration; the RL "after" half is not done).

    nice -n 10 python benchmarks/tools_baseline.py --episodes 48

Questions are drawn with a seeded generator (not yet the tasks library's `arithmetic` task, which lives on another
branch). A completion is correct when the last integer it writes outside tool results is the product. Episodes run
through TextGen-v0 with the agents' sampling (`agents.base.Agent.collect`, temperature 1), bounded by tokens.
"""

from __future__ import annotations

import argparse
import json
import math
import re

import gymnasium as gym
import numpy as np

import textgen_env  # noqa: F401  (registers TextGen-v0)
from agents import REINFORCE
from textgen_env import load_tokenizer
from textgen_env.models import default_model_path
from textgen_env.tools import CALL_FORMATS, make_registry


def _questions(n: int, seed: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    return [(int(a), int(b)) for a, b in rng.integers(100, 1000, size=(n, 2))]


def _prompt(tokenizer, a: int, b: int, tools: bool) -> str:
    system = "You are a careful assistant. End with 'Answer: <number>'."
    if tools:
        system += "\n" + CALL_FORMATS["tags"].describe(make_registry(["calculator"]))
    messages = [{"role": "system", "content": system}, {"role": "user", "content": f"What is {a} * {b}?"}]
    return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))


def _mean_se(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std(ddof=1) / math.sqrt(len(array))) if len(array) > 1 else 0.0


def measure(tools: bool, episodes: int, seed: int, max_new_tokens: int) -> dict[str, object]:
    tokenizer = load_tokenizer(default_model_path())
    questions = _questions(episodes, seed)
    prompts = [_prompt(tokenizer, a, b, tools) for a, b in questions]
    env = gym.make_vec(
        "TextGen-v0",
        num_envs=min(16, episodes),
        prompts=prompts,
        tools=["calculator"] if tools else [],
        max_new_tokens=max_new_tokens,
        max_prompt_tokens=400,
        reward="length",
    )
    agent = REINFORCE(env, episodes_per_iteration=episodes, minibatch_size=min(8, episodes), seed=seed)
    rollout = agent.collect(episodes, temperature=1.0)
    products = {p: a * b for p, (a, b) in zip(prompts, questions)}
    correct, called, calls = [], [], []
    for row, (prompt, text) in enumerate(zip(rollout.prompts, rollout.completions)):
        mine = re.sub(r"<tool_result>.*?</tool_result>", " ", text, flags=re.S)
        numbers = re.findall(r"-?\d[\d,]*", mine)
        answer = int(numbers[-1].replace(",", "")) if numbers and numbers[-1].replace(",", "").lstrip("-") else None
        correct.append(float(answer == products[prompt]))
        count = text.count("</tool_call>")
        called.append(float(bool(rollout.env_token_mask[row].any()) or count > 0))
        calls.append(float(count))
    out: dict[str, object] = {"tools": tools, "n": len(correct), "max_new_tokens": max_new_tokens, "seed": seed}
    for name, values in (("accuracy", correct), ("called_tool", called), ("calls_per_episode", calls)):
        mean, se = _mean_se(values)
        out[name] = {"mean": round(mean, 4), "se": round(se, 4)}
    out["example"] = rollout.completions[0][:300]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=48)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for tools in (True, False):
        print(json.dumps(measure(tools, args.episodes, args.seed, args.max_new_tokens)), flush=True)


if __name__ == "__main__":
    main()

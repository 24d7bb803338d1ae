"""Train SmolLM2 with TRL's GRPOTrainer on textgen-env's rewards and prompt sets.

`textgen_env.integrations.trl` turns any package reward or weighted mix into TRL reward functions and any prompt set
into a `datasets.Dataset`; TRL does the rest (sampling, group-relative advantages, its own KL with ``--beta``). With
``--split-rewards`` each term of a mix is its own TRL reward function, so TRL logs ``rewards/<term>/mean`` for each.

Runs offline: the embedded SmolLM2-135M-Instruct by default, ``--model tiny`` for the tiny test model (seconds), or
any local folder (``pip install -e ".[interop]"`` for trl and datasets)::

    python examples/trl_grpo.py --reward sentiment --max-steps 50                         # SmolLM2, minutes on CPU
    python examples/trl_grpo.py --reward '{"sentiment": 1.0, "length": 0.1}' --split-rewards --conversational
    python examples/trl_grpo.py --model tiny --reward keyword --reward-kwargs '{"keywords": ["great"]}' --max-steps 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections.abc import Sequence
from typing import Any

import torch

from textgen_env.integrations.trl import prompt_dataset, trl_reward_functions
from textgen_env.models import load_model
from textgen_env.testing import tiny_model_and_tokenizer


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="'default' (embedded SmolLM2-135M), 'tiny' or a folder")
    parser.add_argument("--reward", default="sentiment", help="a registered reward name or a JSON {name: weight} mix")
    parser.add_argument("--reward-kwargs", default=None, help="the reward's arguments as JSON")
    parser.add_argument("--split-rewards", action="store_true", help="one TRL reward function per term of a mix")
    parser.add_argument("--prompts", default="movie_reviews", help="a built-in prompt set, .txt or .jsonl file")
    parser.add_argument("--task", default=None, help="a checkable task instead of --reward and --prompts")
    parser.add_argument("--difficulty", type=int, default=1, help="with --task: its level")
    parser.add_argument("--task-items", type=int, default=256, help="with --task: training items (train split)")
    parser.add_argument("--conversational", action="store_true", help="chat prompts (the tokenizer's chat template)")
    parser.add_argument("--max-steps", type=int, default=50, help="optimizer steps")
    parser.add_argument("--num-generations", type=int, default=4, help="completions per prompt (the GRPO group)")
    parser.add_argument("--batch-size", type=int, default=8, help="completions per step (a multiple of the group)")
    parser.add_argument("--max-completion-length", type=int, default=24)
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    parser.add_argument("--beta", type=float, default=0.04, help="TRL's KL coefficient to the starting model")
    parser.add_argument("--output", default=None, help="TRL's output folder (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


PLAIN_CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)
"""A minimal chat template for the tiny test tokenizer (the real models bring their own)."""


def reward_spec(text: str) -> Any:
    """``--reward``: a name, or a JSON object of weights."""
    return json.loads(text) if text.strip().startswith("{") else text


def train(args: argparse.Namespace, output: str) -> list[dict[str, float]]:
    """Run GRPOTrainer; returns TRL's log history (one entry per logged step)."""
    from transformers import AutoModelForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    if args.model == "tiny":  # TRL loads the reference model (beta > 0) from the model's folder: save it first
        tiny, tokenizer = tiny_model_and_tokenizer(seed=args.seed)
        if tokenizer.chat_template is None:  # the test tokenizer has none; chat datasets (tasks) need one
            tokenizer.chat_template = PLAIN_CHAT_TEMPLATE
        tiny.save_pretrained(output + "/tiny")
        tokenizer.save_pretrained(output + "/tiny")
        model = AutoModelForCausalLM.from_pretrained(output + "/tiny")
    else:
        model, tokenizer = load_model(None if args.model == "default" else args.model)
    tokenizer.padding_side = "left"  # TRL generates from left-padded prompts
    kwargs = json.loads(args.reward_kwargs) if args.reward_kwargs else None
    config = GRPOConfig(
        output_dir=output,
        max_steps=args.max_steps,
        learning_rate=args.learning_rate,
        beta=args.beta,
        per_device_train_batch_size=args.batch_size,
        num_generations=args.num_generations,
        max_completion_length=args.max_completion_length,
        activation_checkpointing=False,
        use_cpu=not torch.cuda.is_available(),
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=args.seed,
    )
    if args.task:  # the task's train-split items as a chat dataset, its score parts as weighted reward functions
        from textgen_env.integrations.trl import TRLTask
        from textgen_env.tasks import TaskSampler, make_task

        task = make_task(args.task)
        sampler = TaskSampler(task, seed=args.seed, split="train", difficulty=args.difficulty)
        adapter = TRLTask(task, [sampler.next() for _ in range(args.task_items)])
        reward_funcs, dataset = adapter.reward_functions({"correct": 1.0, "format": 0.1}), adapter.dataset()
    else:
        reward_funcs = trl_reward_functions(reward_spec(args.reward), kwargs, split=args.split_rewards)
        dataset = prompt_dataset(args.prompts, conversational=args.conversational)
    trainer = GRPOTrainer(
        model=model, reward_funcs=reward_funcs, args=config, train_dataset=dataset, processing_class=tokenizer
    )
    trainer.train()
    return [entry for entry in trainer.state.log_history if "reward" in entry]


def main(argv: Sequence[str] | None = None) -> list[dict[str, float]]:
    args = parse_args(argv)
    if args.output is None:
        with tempfile.TemporaryDirectory() as folder:
            history = train(args, folder)
    else:
        history = train(args, args.output)
    for entry in history:
        parts = "  ".join(f"{k}={v:+.3f}" for k, v in entry.items() if k.startswith("rewards/") and k.endswith("/mean"))
        print(f"step {entry.get('step', '?')}: reward {entry['reward']:+.3f}  {parts}")
    return history


if __name__ == "__main__":
    main()

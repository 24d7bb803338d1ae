"""The generated blocks of the docs pages and the README: tables from the settings' field docstrings and from
``benchmarks/results/*.json``, so no argument, flag or measured number is typed by hand.

A block sits between two lines, the key naming what fills it::

    <!-- generated: vs-trl (python docs/generate.py --write) -->
    (filled in)
    <!-- end generated -->

``python docs/generate.py --write`` fills every block of ``README.md`` and ``docs/**/*.md``; ``--check`` prints the
stale ones and exits 1. mkdocs runs this file as a hook (``mkdocs.yml``), so a stale block fails ``mkdocs build``.
Keys: ``env-doc:ENV-ID`` (the env class's docstring), ``arguments:ENV-ID``, ``train-flags``, ``default-run``,
``default-run-output``, ``default-run-summary``, ``default-run-rescore``, ``default-run-seeds``,
``default-run-seeds-summary``, ``dialogue-run``, ``vs-trl``, ``rlhf-demo``, ``rlhf-demo-seeds``, ``rlhf-demo-minilm``,
``rlhf-demo-ppo``, ``rlhf-demo-smollm2``, ``rlhf-demo-smollm2-kl4``, ``table:NAME`` (a recorded table,
``benchmarks/results/NAME.json`` with ``columns`` and ``rows``; ``table:NAME:A,B`` keeps the rows labelled A and
B) and ``config:MODULE.CLASS`` (a settings dataclass's fields, defaults and docstrings).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
REGENERATE = "python docs/generate.py --write"
END = "<!-- end generated -->"
BLOCK = re.compile(r"^<!-- generated: (?P<key>\S+) [^\n]*-->\n.*?^<!-- end generated -->$", re.MULTILINE | re.DOTALL)


def start_marker(key: str) -> str:
    """The line that opens `key`'s block."""
    return f"<!-- generated: {key} ({REGENERATE}) -->"


def block(key: str, body: str) -> str:
    return f"{start_marker(key)}\n\n{body}\n\n{END}"


def results(name: str) -> dict[str, Any]:
    """``benchmarks/results/NAME.json``."""
    return json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    from textgen_env.config_docs import markdown_table

    return markdown_table([[str(cell) for cell in row] for row in rows], header)


def pm(mean: float, se: float, digits: int = 3, sign: bool = False) -> str:
    """``mean ± se`` with `digits` decimals (a leading + when `sign`)."""
    return f"{mean:{'+' if sign else ''}.{digits}f} ± {se:.{digits}f}"


def over_seeds(values: Sequence[float], digits: int = 3, sign: bool = False) -> str:
    """``mean ± SE`` over runs that differ (training seeds): the sample std over sqrt(n)."""
    import statistics

    return pm(statistics.mean(values), statistics.stdev(values) / len(values) ** 0.5, digits, sign)


def source_line(name: str, command: str = "") -> str:
    run = f" · `{command}`" if command else ""
    return f"*From `benchmarks/results/{name}.json`{run}.*"


# --- generators: key -> Markdown ------------------------------------------------------------------------------------


def arguments(env_id: str) -> str:
    from textgen_env.readme_tables import env_argument_tables

    return env_argument_tables((env_id,))[env_id]


def env_doc(env_id: str) -> str:
    """The docstring of the class `env_id` is registered with, in Gymnasium's env-page form (its Arguments table
    generated from the config's field docstrings at import)."""
    import inspect

    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    import textgen_env  # noqa: F401  # registers the envs

    entry_point = gym.spec(env_id).entry_point
    creator = load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
    return inspect.cleandoc(creator.__doc__ or "")


def train_flags() -> str:
    from agents.app.cli import train_flags_table

    return train_flags_table()


def default_run() -> str:
    run = results("default_run")
    r = run["report"]
    share = r["eval_distinct2_after"] / r["eval_distinct2_before"]
    rows = [
        ("mean VADER sentiment of the completion", pm(r["eval_reward_before"], r["eval_reward_before_se"]),
         pm(r["eval_reward_after"], r["eval_reward_after_se"])),
        ("paired gain", "", f"**{pm(r['eval_gain'], r['eval_gain_se'], sign=True)}**"),
        ("KL to the original model, nats per completion", f"{r['eval_kl_before']:g}",
         f"**{pm(r['eval_kl'], r['eval_kl_se'], 2)}**"),
        ("distinct bigrams over all completions", f"{r['eval_distinct2_before']:.3f}",
         f"{r['eval_distinct2_after']:.3f} ({share:.0%} of the start)"),
        ("mean completion length, tokens", f"{r['eval_length_before']:.2f}", f"{r['eval_length_after']:.2f}"),
    ]  # fmt: skip
    n = f"held-out movie-review prompts ({r['eval_prompts']} x {r['eval_samples_per_prompt']})"
    return table(rows, (n, "before", "after")) + "\n\n" + source_line("default_run", run["command"])


def default_run_output() -> str:
    """What ``textgen-env train --output runs/default`` printed at its end (`agents.app.cli.report_summary`)."""
    from agents.app.cli import report_summary

    return f"```text\n{report_summary(results('default_run')['report'], 'runs/default')}\n```"


def default_run_summary() -> str:
    r = results("default_run")["report"]
    return (
        f"{r['agent'].upper()} on {r['model']}, reward `{r['reward']}`: {r['iterations']} iterations, "
        f"{r['timesteps']:,} generated tokens, {r['train_seconds'] / 60:.1f} minutes of training and "
        f"{r['wall_seconds'] / 60:.1f} minutes in all, the evaluations included."
    )


def default_run_rescore() -> str:
    run = results("default_run")
    s, r = run["rescore"], run["report"]
    return (
        f"Re-scored from the run's saved `model/` with other seeds (`{run['rescore_command']}`: "
        f"{s['num_prompts']} prompts x {s['samples_per_prompt']}, {s['completions']} completions), the same model "
        f"gains {pm(s['gain'], s['gain_se'], sign=True)} ({pm(s['reward_before'], s['reward_before_se'])} -> "
        f"{pm(s['reward'], s['reward_se'])}) at {pm(s['kl'], s['kl_se'], 2)} nats, distinct-2 "
        f"{s['distinct2_before']:.3f} -> {s['distinct2']:.3f} ({s['distinct2'] / s['distinct2_before']:.0%}): "
        f"{abs(s['gain'] - r['eval_gain']):.3f} from the run's own evaluation."
    )


VARIANT_NAMES = {"ours": "ours", "trl": "TRL", "ours-k3": "ours, k3 in the loss", "ours-fixed-beta": "ours, fixed beta"}


def vs_trl() -> str:
    """One row per (variant, lr): mean ± SE over its training seeds (each run scored on the same 320 completions);
    one seed: the SE over completions. Throughput is the best seed's (the least disturbed by other work)."""
    data = results("vs_trl")
    points: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for row in data["rows"]:
        points.setdefault((row["variant"], row["lr"]), []).append(row)
    rows = []
    for (variant, lr), runs in points.items():
        gains, kls = [r["reward_gain"] for r in runs], [r["kl"] for r in runs]
        many = len(runs) > 1
        rows.append(
            (
                VARIANT_NAMES[variant],
                f"{lr:.0e}".replace("e-0", "e-"),
                ", ".join(str(r["seed"]) for r in runs),
                f"{sum(r['train_tokens'] for r in runs) / len(runs):,.0f}",
                f"{max(r['train_tokens_per_second'] for r in runs):.1f}",
                over_seeds(gains, sign=True) if many else pm(gains[0], runs[0]["reward_gain_se"], sign=True),
                over_seeds(kls, 2) if many else pm(kls[0], runs[0]["kl_se"], 2),
                f"{sum(gains) / sum(kls):.3f}",
                f"{sum(r['distinct2_after'] for r in runs) / len(runs):.3f}",
            )
        )
    start = data["rows"][0]["distinct2_before"]
    header = (
        "run",
        "lr",
        "seeds",
        "training tokens",
        "tokens/s (best seed)",
        "reward gain ± SE",
        "KL ± SE, nats",
        "gain per nat",
    )
    return table(rows, (*header, f"distinct-2 (start {start:.3f})")) + "\n\n" + source_line("vs_trl")


def vs_trl_task() -> str:
    """One row per framework: accuracy before -> after and the paired gains, mean ± SE over training seeds."""
    data = results("vs_trl_task")
    rows = []
    for framework in ("ours", "trl"):
        runs = [r for r in data["rows"] if r["variant"] == framework]
        if not runs:
            continue

        def spread(key: str, digits: int = 3, sign: bool = False, runs: list[dict[str, Any]] = runs) -> str:
            values = [r[key] for r in runs]
            if len(runs) > 1:
                return over_seeds(values, digits, sign)
            return pm(values[0], runs[0].get(f"{key}_se", float("nan")), digits, sign)

        before = runs[0]["accuracy_before"]
        rows.append(
            (
                "ours (task job)" if framework == "ours" else "TRL GRPOTrainer",
                ", ".join(str(r["seed"]) for r in runs),
                f"{sum(r['train_tokens'] for r in runs) / len(runs):,.0f}",
                f"{sum(r['train_tokens_per_second'] for r in runs) / len(runs):.1f}",
                f"{before:.3f} -> {sum(r['accuracy_after'] for r in runs) / len(runs):.3f}",
                spread("reward_gain", sign=True),
                spread("greedy_gain", sign=True),
                spread("kl", 2),
            )
        )
    first = data["rows"][0]
    header = (
        "framework",
        "seeds",
        "training tokens",
        "tokens/s",
        "accuracy T=1",
        "accuracy gain ± SE",
        "greedy gain ± SE",
        "KL ± SE, nats",
    )
    note = f"{first['items']} held-out items x {first['samples_per_item']} samples, shared evaluation seed"
    return table(rows, header) + f"\n\n{note}. " + source_line("vs_trl_task")


def task_job_summary() -> str:
    """The README's line on the task main job: our rows of `vs_trl_task.json` (its runs at the job's settings)."""
    data = results("vs_trl_task")
    ours = [r for r in data["rows"] if r["variant"] == "ours"]
    gains, greedy = [r["reward_gain"] for r in ours], [r["greedy_gain"] for r in ours]
    seeds = ", ".join(str(r["seed"]) for r in ours)
    seconds = [r["train_seconds"] for r in ours]
    return (
        f"`textgen-env train --task arithmetic` (GRPO, 3,000 tokens, {min(seconds):.0f}-{max(seconds):.0f} s of "
        f"training): held-out accuracy at T = 1 {ours[0]['accuracy_before']:.3f} -> "
        f"{sum(r['accuracy_after'] for r in ours) / len(ours):.3f}, paired gain {over_seeds(gains, sign=True)} "
        f"(mean ± SE over seeds {seeds}; {ours[0]['items']} items x {ours[0]['samples_per_item']} samples), greedy "
        f"{over_seeds(greedy, sign=True)}, at {over_seeds([r['kl'] for r in ours], 2)} nats; TRL's GRPOTrainer on "
        f"the same items and budget: [the side-by-side](docs/tasks_env.md#against-trl-on-the-task)."
    )


def tools_demo() -> str:
    """Issue 26's demonstration: the five rows of seed 0, then the calculator run over every training seed."""
    data = results("tools_demo")
    gained_from = {
        "warmed up, calculator": "untrained, calculator",
        "after RL, calculator": "warmed up, calculator",
        "after RL, no tools": "untrained, no tools",
    }
    rows = []
    for r in data["rows"]:
        gain = r.get("gain")
        rows.append(
            (
                r["row"],
                pm(r["accuracy"], r["accuracy_se"]),
                pm(r["greedy_accuracy"], r["greedy_accuracy_se"]),
                pm(r["tool_use"], r["tool_use_se"], 2) if "tool_use" in r else "-",
                f"{r['tool_calls']:.2f}" if "tool_calls" in r else "-",
                pm(r["kl"], r["kl_se"], 1),
                f"{pm(gain['accuracy'], gain['accuracy_se'], sign=True)} over {gained_from[r['row']]}" if gain else "-",
            )
        )
    header = ("row", "accuracy T=1", "greedy", "tool use", "calls", "KL to untrained, nats", "paired gain")
    settings = data["settings"]
    first = data["rows"][0]
    note = (
        f"Seed {settings['seed']}: level {settings['difficulty']}, {first['items']} held-out items x "
        f"{first['samples_per_item']} samples (SE over items), {settings['demos']} warm-up demonstrations x "
        f"{settings['warmup_epochs']} epoch, {settings['steps']:,} RL tokens, {settings['max_new_tokens']} new tokens."
    )
    runs = [(settings["seed"], data["rows"][2], data["rows"][3])]
    runs += [(extra["seed"], *extra["rows"]) for extra in data.get("more_seeds", [])]
    if len(runs) > 1:
        per_seed = table(
            [
                (
                    seed,
                    pm(warmed["accuracy"], warmed["accuracy_se"]),
                    pm(after["accuracy"], after["accuracy_se"]),
                    pm(after["gain"]["accuracy"], after["gain"]["accuracy_se"], sign=True),
                    pm(after["tool_use"], after["tool_use_se"], 2),
                )
                for seed, warmed, after in runs
            ],
            ("training seed", "warmed up", "after RL", "RL's gain over the warm-up", "tool use after RL"),
        )
        mean = over_seeds([after["accuracy"] for _, _, after in runs])
        gain = over_seeds([after["gain"]["accuracy"] for _, _, after in runs], sign=True)
        seeds = ", ".join(str(seed) for seed, _, _ in runs)
        note += (
            f"\n\nThe calculator run at every training seed (same items and evaluation seed):\n\n{per_seed}\n\n"
            f"Over seeds {seeds} (mean ± SE over seeds): after RL with the calculator {mean}, RL's gain over the "
            f"warm-up {gain}; the untrained model with the same tools: {pm(data['rows'][1]['accuracy'], 0)}."
        )
    return table(rows, header) + f"\n\n{note}\n\n" + source_line("tools_demo", "python benchmarks/tools_demo.py")


def tools_demo_summary() -> str:
    """The README's line on the tool demonstration (`tools_demo.json`)."""
    data = results("tools_demo")
    untrained, warmed, after = data["rows"][1], data["rows"][2], data["rows"][3]
    runs = [after] + [extra["rows"][1] for extra in data.get("more_seeds", [])]
    seeds = [data["settings"]["seed"]] + [extra["seed"] for extra in data.get("more_seeds", [])]
    if len(runs) > 1:
        accuracy = over_seeds([r["accuracy"] for r in runs])
        gain = over_seeds([r["gain"]["accuracy"] for r in runs], sign=True)
        spread = f"mean ± SE over training seeds {', '.join(map(str, seeds))}"
    else:
        accuracy = pm(after["accuracy"], after["accuracy_se"])
        gain = pm(after["gain"]["accuracy"], after["gain"]["accuracy_se"], sign=True)
        spread = f"one training seed, SE over {after['items']} items"
    return (
        f"With a calculator ([tools](docs/tools.md#the-demonstration-smollm2-135m-instruct-with-a-calculator)): on "
        f"three-term sums the untrained model scores {untrained['accuracy']:.3f} with or without the tool (it never "
        f"calls it); {data['settings']['demos']} scripted demonstrations make it call the calculator "
        f"({warmed['accuracy']:.3f} at T = 1), and GRPO with the tool for {data['settings']['steps']:,} tokens takes "
        f"held-out accuracy to {accuracy}, RL's paired gain over the warm-up {gain} ({spread}); the same RL without "
        f"tools gains {data['rows'][4]['gain']['accuracy']:+.3f}."
    )


def _rl_row(rl: dict[str, Any]) -> tuple[str, str, str]:
    before, after = pm(rl["hidden_before"], rl["hidden_before_se"]), pm(rl["hidden_after"], rl["hidden_after_se"])
    return (
        f"{before} -> {after}",
        f"**{pm(rl['hidden_gain'], rl['hidden_gain_se'], sign=True)}**",
        pm(rl["kl"], rl["kl_se"], 2),
    )


def rlhf_demo(name: str = "rlhf_demo") -> str:
    data = results(name)
    agent = data.get("agent", "grpo").upper()
    rows = []
    for answers, model in data["reward_models"].items():
        rl = data["rl"].get(f"reward model N={answers}")
        rows.append((answers, model["comparisons"], pm(model["accuracy"], model["accuracy_se"]),
                     *(_rl_row(rl) if rl else ("-", "-", "-"))))  # fmt: skip
    oracle = data["rl"].get("hidden reward itself (oracle)")
    if oracle:
        rows.append((f"({agent} on the hidden reward itself)", "-", "-", *_rl_row(oracle)))
    header = ("answers N", "comparisons", "reward-model accuracy, held-out pairs")
    rl_header = (f"{agent} on that model: hidden score before -> after", "paired gain", "KL, nats")
    return table(rows, (*header, *rl_header)) + "\n\n" + source_line(name)


def rlhf_demo_seeds() -> str:
    data = results("rlhf_demo_seeds")
    rows = []
    for key, row in data["summary"].items():
        label = "(the hidden reward itself)" if key == "oracle" else key
        accuracy = pm(*row["accuracy"]) if "accuracy" in row else "-"
        rows.append((label, accuracy, pm(*row["gain"], sign=True), pm(*row["kl"], 1)))
    header = ("answers N", "reward-model accuracy", "GRPO gain of the hidden score", "KL, nats")
    seeds = ", ".join(str(seed) for seed in data["seeds"])
    return table(rows, header) + f"\n\n*± over seeds {seeds}.* " + source_line("rlhf_demo_seeds")


def recorded_table(name: str, only: str = "") -> str:
    """A table recorded in ``benchmarks/results/NAME.json`` (``columns``, ``rows``, ``command``, ``source``); with
    `only` (``A,B,F``), the rows whose first cell starts with one of those labels."""
    data = results(name)
    rows = data["rows"]
    if only:
        labels = only.split(",")
        rows = [row for row in rows if any(row[0] == label or row[0].startswith(label + " ") for label in labels)]
    return table(rows, data["columns"]) + "\n\n" + source_line(name, data.get("command", ""))


def config_table(path: str) -> str:
    """The argument table of the settings dataclass at `path` (``agents.config.PPOConfig``), from its field docs."""
    import importlib

    from textgen_env.config_docs import argument_table

    module, _, name = path.rpartition(".")
    return argument_table(getattr(importlib.import_module(module), name))


def edit_lm() -> str:
    """The edit agents on the tiny model (``benchmarks/results/edit_lm_*.json``): one row per run, then the mean over
    the seeds of each agent with its SE across seeds."""
    import glob

    runs = [json.loads(Path(f).read_text()) for f in sorted(glob.glob(str(RESULTS / "edit_lm_*.json")))]
    rows, by_agent = [], {}
    for run in runs:
        paired = run["trained_minus_untrained"]
        by_agent.setdefault(run["agent"], []).append(paired[0])
        rows.append(
            (
                run["agent"],
                run.get("seed", 0),
                pm(*run["untrained_lm_gain"][:2], sign=True),
                pm(*run["trained_lm_gain"][:2], sign=True),
                pm(*paired[:2], sign=True),
                pm(*run["kl_trained"][:2]),
            )
        )
    for agent, values in by_agent.items():
        if len(values) > 1:
            rows.append((f"{agent}, mean of {len(values)} seeds", "", "", "", over_seeds(values, sign=True), ""))
    header = ("agent", "seed", "untrained gain", "trained gain", "paired gain", "KL to untrained (nats)")
    note = (
        f"Tiny model, VADER sentiment, {runs[0]['episodes']} training episodes, held-out `drafts:eval` (15 drafts x 4"
        " edits, SE over drafts) · `python examples/edit_lm_reinforce.py [--agent ppo] [--seed N]`."
    )
    return table(rows, header) + "\n\n*" + note + "*"


def default_run_seeds() -> str:
    """The default command with ``--seed 0, 1, 2``: each run's own paired gain and KL, and their spread."""
    seeds = results("default_run")["seeds"]
    rows = [
        (
            f"{run['seed']}",
            pm(run["eval_gain"], run["eval_gain_se"], sign=True),
            pm(run["eval_kl"], run["eval_kl_se"], 2),
            f"{run['eval_distinct2_after'] / run['eval_distinct2_before']:.0%}",
            f"{run['train_seconds']:.0f}",
        )
        for run in seeds
    ]
    gains, kls = [run["eval_gain"] for run in seeds], [run["eval_kl"] for run in seeds]
    n = len(seeds)
    rows.append((f"mean of {n} (± SE over seeds)", over_seeds(gains, sign=True), over_seeds(kls, 2), "", ""))
    header = ("seed", "paired gain (± SE over prompts)", "KL, nats", "distinct-2 / start", "train s")
    return table(rows, header) + "\n\n" + source_line("default_run", "textgen-env train --seed N --output runs/seedN")


def default_run_seeds_summary() -> str:
    """One sentence: the default command's gain and KL over training seeds."""
    seeds = results("default_run")["seeds"]
    gains, kls = [run["eval_gain"] for run in seeds], [run["eval_kl"] for run in seeds]
    n = len(seeds)
    names = ", ".join(str(run["seed"]) for run in seeds)
    return (
        f"Over training seeds {names} of the same command the paired gain is "
        f"{over_seeds(gains, sign=True)} (mean ± SE over the {n} seeds; "
        f"{min(gains):+.3f} to {max(gains):+.3f}) at {over_seeds(kls, 2)} "
        "nats ([per seed](docs/results.md#seeds-of-the-default-run))."
    )


def dialogue_run() -> str:
    """The dialogue run (configs/dialogue.toml): held-out mean rating before and after, overall and by scenario."""
    run = results("dialogue_run")
    r = run["report"]
    share = r["eval_distinct2_after"] / r["eval_distinct2_before"]
    rows = [
        (
            f"all held-out ({r['eval_completions']} conversations)",
            pm(r["eval_reward_before"], r["eval_reward_before_se"]),
            pm(r["eval_reward_after"], r["eval_reward_after_se"]),
            f"**{pm(r['eval_gain'], r['eval_gain_se'], sign=True)}**",
        )
    ]
    for name, s in r["eval_gain_by_scenario"].items():
        rows.append(
            (
                f"{name} ({s['conversations']} conversations)",
                f"{s['before']:.3f}",
                f"{s['after']:.3f}",
                pm(s["gain"], s["gain_se"], sign=True),
            )
        )
    header = ("mean rating per conversation", "before", "after", "paired gain (± SE over conversations)")
    agent = r["settings"]["agent_options"]
    return (
        table(rows, header)
        + f"\n\nKL to the original model {pm(r['eval_kl'], r['eval_kl_se'], 2)} nats per conversation; distinct-2 "
        f"{r['eval_distinct2_before']:.3f} -> {r['eval_distinct2_after']:.3f} ({share:.0%} of the start); reply length "
        f"{r['eval_length_before']:.1f} -> {r['eval_length_after']:.1f} tokens per conversation. "
        f"{r['agent'].upper()}, lr {agent['learning_rate']:g}, KL target {agent['kl_target']:g} nats per reply, "
        f"{r['timesteps']:,} tokens in {r['iterations']} iterations, {r['train_seconds'] / 60:.0f} minutes of training "
        f"and {r['wall_seconds'] / 60:.0f} in all on 2 CPU cores.\n\n"
        + dialogue_rescore(run)
        + source_line("dialogue_run", run["command"])
    )


def dialogue_rescore(run: dict[str, Any]) -> str:
    """One paragraph: the dialogue run's model re-scored on other held-out conversations (``--seed 1``)."""
    if "rescore" not in run:
        return ""
    s = run["rescore"]
    split = "; ".join(
        f"{name} {pm(x['gain'], x['gain_se'], sign=True)} ({x['conversations']})"
        for name, x in s["gain_by_scenario"].items()
    )
    return (
        f"Re-scored from the run's saved `model/` on {s['completions']} other held-out conversations "
        f"(`{run['rescore_command']}`): {pm(s['reward_before'], s['reward_before_se'])} -> "
        f"{pm(s['reward'], s['reward_se'])}, gain {pm(s['gain'], s['gain_se'], sign=True)} at "
        f"{pm(s['kl'], s['kl_se'], 2)} nats; {split}.\n\n"
    )


GENERATORS: dict[str, Callable[[], str]] = {
    "edit-lm": edit_lm,
    "train-flags": train_flags,
    "default-run": default_run,
    "default-run-output": default_run_output,
    "default-run-summary": default_run_summary,
    "default-run-rescore": default_run_rescore,
    "default-run-seeds": default_run_seeds,
    "default-run-seeds-summary": default_run_seeds_summary,
    "dialogue-run": dialogue_run,
    "vs-trl": vs_trl,
    "vs-trl-task": vs_trl_task,
    "task-job-summary": task_job_summary,
    "tools-demo": tools_demo,
    "tools-demo-summary": tools_demo_summary,
    "rlhf-demo": rlhf_demo,
    "rlhf-demo-minilm": lambda: rlhf_demo("rlhf_demo_minilm"),
    "rlhf-demo-ppo": lambda: rlhf_demo("rlhf_demo_ppo"),
    "rlhf-demo-smollm2": lambda: rlhf_demo("rlhf_demo_smollm2"),
    "rlhf-demo-smollm2-kl4": lambda: rlhf_demo("rlhf_demo_smollm2_kl4"),
    "rlhf-demo-seeds": rlhf_demo_seeds,
}


@cache
def generate(key: str) -> str:
    """The Markdown of `key`'s block (see the module docstring for the keys)."""
    if key.startswith("arguments:"):
        return arguments(key.split(":", 1)[1])
    if key.startswith("env-doc:"):
        return env_doc(key.split(":", 1)[1])
    if key.startswith("table:"):
        return recorded_table(*key.split(":")[1:3])
    if key.startswith("config:"):
        return config_table(key.split(":", 1)[1])
    if key not in GENERATORS:
        raise KeyError(f"Expected a generated-block key among {sorted(GENERATORS)} or a prefixed one, got {key!r}")
    return GENERATORS[key]()


def markdown_files() -> list[Path]:
    """The files whose generated blocks this module keeps: the README and the docs pages."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def fill(markdown: str, produce: Callable[[str], str] = generate) -> str:
    """`markdown` with every generated block rewritten (a block with an unknown key is left as it is: `stale`
    names it)."""

    def rewrite(match: re.Match[str]) -> str:
        try:
            return block(match.group("key"), produce(match.group("key")))
        except (KeyError, FileNotFoundError):
            return match.group(0)

    return BLOCK.sub(rewrite, markdown)


def stale(paths: Sequence[Path] | None = None) -> list[str]:
    """``path: key`` of each block that differs from what it would be generated as (empty when all are fresh)."""
    problems = []
    for path in markdown_files() if paths is None else paths:
        markdown = path.read_text(encoding="utf-8")
        for match in BLOCK.finditer(markdown):
            key = match.group("key")
            try:
                fresh = block(key, generate(key))
            except (KeyError, FileNotFoundError) as error:
                problems.append(f"{path.relative_to(ROOT)}: {key}: {error}")
                continue
            if match.group(0) != fresh:
                problems.append(f"{path.relative_to(ROOT)}: {key}: differs from its source")
    return problems


def write(paths: Sequence[Path] | None = None) -> list[Path]:
    """Rewrite every stale block; the files that changed."""
    changed = []
    for path in markdown_files() if paths is None else paths:
        markdown = path.read_text(encoding="utf-8")
        filled = fill(markdown)
        if filled != markdown:
            path.write_text(filled, encoding="utf-8")
            changed.append(path)
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    """``python docs/generate.py --check|--write``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args not in (["--check"], ["--write"]):
        print("usage: python docs/generate.py --check|--write", file=sys.stderr)
        return 2
    if args == ["--write"]:
        for path in write():
            print(f"updated {path.relative_to(ROOT)}")
    problems = stale()
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"Regenerate with: {REGENERATE}", file=sys.stderr)
    return 1 if problems else 0


def on_pre_build(config: Any) -> None:
    """mkdocs hook: a stale generated block fails the build."""
    problems = stale()
    if problems:
        from mkdocs.exceptions import PluginError

        raise PluginError(f"Stale generated blocks (regenerate with: {REGENERATE}): {problems}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())

"""The import rules of ARCHITECTURE.md, checked by an AST scan of every module: each failure names the import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ALGORITHMS = {"agents.ppo", "agents.grpo", "agents.reinforce", "agents.dqn", "agents.edit", "agents.warmup"}
FEATURES = (
    "textgen_env.dialogue",
    "textgen_env.edit",
    "textgen_env.feedback",
    "textgen_env.tasks",
    "textgen_env.tools",
)
# the task library sits beside the rewards, below the episode core: it may use the utilities only
TASKS_MAY_IMPORT = ("textgen_env.tasks", "textgen_env.validation", "textgen_env.storage")
SB3 = ("stable_baselines3", "sb3_contrib")
INTEGRATIONS = "textgen_env.integrations"
TRAINER_PACKAGES = ("trl", "datasets", "openenv")

# agents' layers, lowest first: a module may import its own layer or lower ones only
AGENT_LAYERS: list[tuple[str, ...]] = [
    ("agents.functional", "agents.sampling", "agents.kl_control", "agents._moved"),
    ("agents.rollout", "agents.config", "agents.checkpoint", "agents.distributed"),
    ("agents.policy",),
    ("agents.episode_loop",),
    ("agents.base",),
    tuple(sorted(ALGORITHMS)),
    ("agents.evaluation", "agents.reward_model"),
    ("agents.sb3",),
    ("agents.app",),
]


def _modules(package: str) -> dict[str, Path]:
    out = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path, package: str | None = None) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, relative ones resolved, those inside functions included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    if package is None:
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base]) if base else ".".join(parent)
            found.append((node.lineno, base))
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names if base == "agents")
    return found


def _within(module: str, prefixes: tuple[str, ...] | set[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _layer(module: str) -> int | None:
    for index, layer in enumerate(AGENT_LAYERS):
        if _within(module, layer):
            return index
    return None


def _violations(rule) -> list[str]:
    out = []
    for package in ("textgen_env", "agents"):
        for name, path in _modules(package).items():
            for line, imported in _imports(path):
                reason = rule(name, imported)
                if reason:
                    out.append(f"{path.relative_to(ROOT)}:{line} imports {imported}: {reason}")
    return out


def test_the_env_side_never_imports_the_learning_side_or_sb3():
    def rule(name, imported):
        if name.startswith("textgen_env") and _within(imported, ("agents", *SB3)):
            return "textgen_env is usable alone and never imports agents, stable-baselines3 or sb3-contrib"
        return None

    assert not _violations(rule)


def test_feature_packages_never_import_each_other():
    def rule(name, imported):
        mine = [f for f in FEATURES if _within(name, (f,))]
        if mine and _within(imported, FEATURES) and not _within(imported, tuple(mine)):
            return "feature packages share code through the layers below them, not each other"
        return None

    assert not _violations(rule)


def test_the_task_library_imports_only_the_utilities():
    def rule(name, imported):
        mine = _within(name, ("textgen_env.tasks",))
        if mine and _within(imported, ("textgen_env",)) and not _within(imported, TASKS_MAY_IMPORT):
            return "textgen_env/tasks/ uses only the utilities (validation, storage); the envs build on it"
        return None

    assert not _violations(rule)


def test_integrations_sit_on_top_and_alone_import_other_trainers():
    def rule(name, imported):
        if not name.startswith("textgen_env") or _within(name, (INTEGRATIONS,)):
            return None
        if _within(imported, (INTEGRATIONS,)):
            return "textgen_env.integrations (adapters for other trainers) is the top layer: nothing below imports it"
        if _within(imported, TRAINER_PACKAGES):
            return "only textgen_env.integrations imports trl, datasets and openenv (optional dependencies)"
        return None

    assert not _violations(rule)


def test_only_agents_sb3_imports_stable_baselines3():
    def rule(name, imported):
        if name.startswith("agents") and not _within(name, ("agents.sb3",)) and _within(imported, SB3):
            return "only agents/sb3/ imports stable-baselines3 and sb3-contrib"
        return None

    assert not _violations(rule)


def test_only_agents_app_parses_arguments():
    def rule(name, imported):
        if imported == "argparse" and not _within(name, ("agents.app",)):
            return "only agents/app/ parses arguments"
        return None

    assert not _violations(rule)


def test_algorithms_never_import_each_other_and_layers_only_import_down():
    def rule(name, imported):
        if not name.startswith("agents") or not _within(imported, ("agents",)) or name in ("agents",):
            return None
        if name.split(".")[1:2] == ["__init__"] or name == "agents":
            return None
        if _within(name, ALGORITHMS) and _within(imported, ALGORITHMS) and not _within(imported, (name,)):
            return "algorithms never import each other"
        mine, theirs = _layer(name), _layer(imported)
        if mine is None or theirs is None or imported == "agents":
            return None
        if theirs > mine:
            return f"layer {mine} ({name}) may not import layer {theirs} (a higher one)"
        return None

    assert not _violations(rule)


def test_every_agents_module_has_a_layer():
    loose = [name for name in _modules("agents") if name != "agents" and _layer(name) is None]
    # old module names of the 0.1 layout are aliases, not layers
    loose = [name for name in loose if name not in {"agents.cli", "agents.training", "agents.dialogue_eval"}]
    loose = [name for name in loose if name not in {"agents.sb3_edit", "agents.edit_lm"}]
    assert not loose, f"place these modules in AGENT_LAYERS (tests/test_layers.py): {loose}"


def test_agents_ask_the_env_through_its_public_api():
    offenders = []
    for path in _modules("agents").values():
        for line_number, line in enumerate(path.read_text().splitlines(), 1):
            if "env.batch" in line.replace(" ", ""):
                offenders.append(f"{path.relative_to(ROOT)}:{line_number}: {line.strip()}")
    assert not offenders, "agents/ reads env internals (env.batch); use the env's public API:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from agents.ppo import PPO\n", "agents.ppo"),
        ("import stable_baselines3\n", "stable_baselines3"),
        ("def f():\n    from agents import base\n", "agents.base"),
    ],
    ids=["from-import", "import", "inside-a-function"],
)
def test_the_scan_sees_every_kind_of_import(tmp_path, source, expected):
    path = tmp_path / "probe.py"
    path.write_text(source)
    assert expected in [module for _, module in _imports(path, package="textgen_env")]


def test_a_violation_names_the_file_line_and_import():
    def rule(name, imported):
        return "probe" if name == "agents.ppo" and imported == "agents.base" else None

    found = _violations(rule)
    assert found and all(v.startswith("agents/ppo.py:") and "imports agents.base: probe" in v for v in found)

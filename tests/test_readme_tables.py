"""The env argument tables the docs pages show: taken from the registered env classes, and shown unchanged."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import gymnasium as gym
import pytest

from textgen_env.readme_tables import DOCUMENTED_ENVS, env_argument_tables

ROOT = Path(__file__).resolve().parents[1]
ENV_PAGES = {
    "TextGen-v0": "docs/envs/text_gen.md",
    "TextDialogue-v0": "docs/envs/text_dialogue.md",
    "TextEdit-v0": "docs/envs/text_edit.md",
    "TextCompletion-v0": "docs/envs/text_completion.md",
}


def _generator():
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_env_argument_tables_come_from_the_registered_env_classes():
    from textgen_env import TextGenEnv
    from textgen_env.config_docs import documented_table

    tables = env_argument_tables()
    assert tuple(tables) == DOCUMENTED_ENVS == tuple(ENV_PAGES)
    assert tables["TextGen-v0"] == documented_table(TextGenEnv)
    with pytest.raises(gym.error.NameNotFound, match="Environment `NoSuchEnv` doesn't exist"):
        env_argument_tables(("NoSuchEnv-v0",))


@pytest.mark.parametrize("env_id", DOCUMENTED_ENVS, ids=str)
def test_each_env_page_shows_the_env_docstring_with_its_generated_table(env_id):
    generate = _generator()
    page = ROOT / ENV_PAGES[env_id]
    markdown = page.read_text(encoding="utf-8")
    assert generate.block(f"env-doc:{env_id}", generate.env_doc(env_id)) in markdown
    assert env_argument_tables((env_id,))[env_id] in markdown, f"regenerate with: {generate.REGENERATE}"
    assert "{arguments}" not in markdown

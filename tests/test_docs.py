"""The docs site builds in strict mode, its generated tables are fresh, and the README stays a short front door
whose numbers all come from the results files."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: tomli is a dependency there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _generator():
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = _generator()


def _outside_blocks(markdown: str) -> str:
    """`markdown` without its generated blocks, fenced code and inline code."""
    text = generate.BLOCK.sub("", markdown)
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"`[^`\n]*`", "", text)


def test_the_site_builds_in_strict_mode(tmp_path):
    mkdocs_config = pytest.importorskip("mkdocs.config", reason='the docs extra: pip install -e ".[docs]"')
    from mkdocs.commands.build import build

    config = mkdocs_config.load_config(str(ROOT / "mkdocs.yml"), strict=True, site_dir=str(tmp_path / "site"))
    build(config)  # raises mkdocs.exceptions.Abort on any warning (a broken link or anchor, a griffe warning)
    pages = {path.relative_to(tmp_path / "site").as_posix() for path in (tmp_path / "site").rglob("index.html")}
    for page in ("envs/text_gen/index.html", "algorithms/grpo/index.html", "results/index.html"):
        assert page in pages
    changelog = (tmp_path / "site" / "changelog" / "index.html").read_text(encoding="utf-8")
    assert "Unreleased" in changelog  # CHANGELOG.md is included, not copied


def test_every_generated_block_is_fresh():
    assert generate.stale() == [], f"regenerate with: {generate.REGENERATE}"


def test_a_stale_or_unknown_block_is_named(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n"
        + generate.block("table:distributed", "| old |")
        + "\n\n"
        + generate.block("no-such-key", "")
        + "\n\n"
        + generate.block("vs-trl", generate.generate("vs-trl"))
        + "\n",
        encoding="utf-8",
    )
    generate_root = generate.ROOT
    try:
        generate.ROOT = tmp_path  # names are relative to it
        problems = generate.stale([page])
        assert problems[0] == "page.md: table:distributed: differs from its source"
        assert problems[1].startswith("page.md: no-such-key: ") and "Expected a generated-block key" in problems[1]
        assert len(problems) == 2
        assert generate.write([page]) == [page]
        assert generate.stale([page])[0].startswith("page.md: no-such-key")  # an unknown key is never filled
    finally:
        generate.ROOT = generate_root
    assert generate.generate("table:distributed") in page.read_text(encoding="utf-8")


def test_generated_numbers_are_the_results_files():
    run = generate.results("default_run")["report"]
    table = generate.generate("default-run")
    assert f"+{run['eval_gain']:.3f} ± {run['eval_gain_se']:.3f}" in table
    trl = generate.results("vs_trl")["rows"]
    first = [row for row in trl if (row["variant"], row["lr"]) == (trl[0]["variant"], trl[0]["lr"])]
    gains = [row["reward_gain"] for row in first]
    expected = (
        generate.over_seeds(gains, sign=True)
        if len(first) > 1
        else generate.pm(gains[0], first[0]["reward_gain_se"], sign=True)
    )
    assert expected in generate.generate("vs-trl")
    only = generate.generate("table:main_job_tuning:A,F")
    assert only.count("\n| ") == 2 + 0 and "| A |" in only and "| F |" in only  # header row + 2 rows


def test_the_readme_is_a_short_front_door():
    markdown = README.read_text(encoding="utf-8")
    assert len(markdown) < 15_000, f"README.md has {len(markdown)} characters; move detail into docs/"
    for key in ("default-run", "default-run-summary"):
        assert generate.block(key, generate.generate(key)) in markdown
    assert "docs/default_run.png" in markdown


def test_every_measured_number_of_the_readme_is_generated():
    prose = _outside_blocks(README.read_text(encoding="utf-8"))
    typed = re.findall(r"±|\b\d+\.\d+\b", prose)
    assert typed == [], f"README.md types measured numbers by hand: {typed}; generate them from benchmarks/results"


def test_ci_runs_exactly_the_readmes_test_command():
    commands = re.findall(r"^```bash\n(.*?)\n```", README.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)
    test_command = next(command for command in commands if command.endswith("python -m pytest"))
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    assert ci == test_command
    assert any(command.endswith("textgen-env train --output runs/default") for command in commands)


def test_one_version_string():
    from textgen_env import __version__
    from textgen_env._version import __version__ as source

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" in pyproject["project"]["dynamic"] and "version" not in pyproject["project"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "textgen_env._version.__version__"}
    assert __version__ == source and re.fullmatch(r"\d+\.\d+\.\d+", __version__)
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in changelog and f"## [{__version__}] - " in changelog


def test_filling_a_fresh_page_changes_nothing():
    markdown = README.read_text(encoding="utf-8")
    assert generate.fill(markdown) == markdown

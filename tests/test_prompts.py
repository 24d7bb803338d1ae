"""Prompt sources: lists, files, callables, built-in sets with splits, and their errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from textgen_env.prompts import BUILTIN_PROMPT_SETS, Prompt, PromptSource, make_prompt_source


@pytest.mark.parametrize("name", sorted(BUILTIN_PROMPT_SETS), ids=sorted(BUILTIN_PROMPT_SETS))
def test_builtin_sets_have_disjoint_train_and_eval_splits(name):
    train = make_prompt_source(name)
    evaluation = make_prompt_source(f"{name}:eval")
    assert len(train) >= 80 and len(evaluation) >= 25
    assert train.name == f"{name}:train" and evaluation.name == f"{name}:eval"
    assert not {p.text for p in train.prompts} & {p.text for p in evaluation.prompts}
    assert all(p.text.strip() == p.text and p.text for p in train.prompts)


def test_facts_carry_references():
    source = make_prompt_source("facts:eval")
    assert all(p.references and all(isinstance(r, str) and r for r in p.references) for p in source.prompts)


def test_txt_and_jsonl_files(tmp_path):
    txt = tmp_path / "p.txt"
    txt.write_text("first prompt\n\nsecond prompt\n", encoding="utf-8")
    assert [p.text for p in make_prompt_source(txt).prompts] == ["first prompt", "second prompt"]
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text(json.dumps({"prompt": "a", "references": ["x", "y"]}) + "\n" + json.dumps({"prompt": "b"}) + "\n")
    assert make_prompt_source(str(jsonl)).prompts == (Prompt("a", ("x", "y")), Prompt("b"))


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("not json\n", r"Expected a JSON object on line 1 of .*bad.jsonl, got invalid JSON"),
        ('{"text": "x"}\n', r'Expected an object with a string "prompt" on line 1'),
        ("\n", r"Expected at least one prompt in .*bad.jsonl.*empty file"),
    ],
    ids=["invalid-json", "missing-prompt", "empty"],
)
def test_bad_jsonl(tmp_path, content, match):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(ValueError, match=match):
        make_prompt_source(path)


def test_unreadable_file(tmp_path):
    path = tmp_path / "binary.txt"
    path.write_bytes(b"\xff\xfe\xfa")
    with pytest.raises(ValueError, match=r"Expected a readable UTF-8 prompts file"):
        make_prompt_source(path)


def test_sampling_is_uniform_and_seeded():
    source = PromptSource([Prompt(str(i)) for i in range(4)])
    draws = [source.sample(np.random.default_rng(0)).text for _ in range(3)]
    assert len(set(draws)) == 1  # same generator state, same prompt
    rng = np.random.default_rng(1)
    counts = np.bincount([int(source.sample(rng).text) for _ in range(4000)], minlength=4)
    assert counts.min() > 850


def test_callable_must_return_str():
    source = make_prompt_source(lambda rng: 42)
    with pytest.raises(TypeError, match=r"Expected the prompts callable <lambda> to return a str, got int"):
        source.sample(np.random.default_rng(0))

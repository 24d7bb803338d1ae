"""The search tool: BM25 over the built-in facts, a JSONL file, a folder or strings; clear corpus errors."""

from __future__ import annotations

import json

import pytest

from textgen_env.tools import SearchIndex, ToolError, load_corpus, search_tool


def test_the_builtin_facts_answer_by_keyword():
    index = SearchIndex()
    assert len(index.passages) >= 40
    assert index.search("capital of Japan")[0].title == "Japan"
    assert "206 bones" in search_tool().call({"query": "bones in the human skeleton"})
    assert index("zzzz qqqq") == "no results"


def test_a_jsonl_file_a_folder_and_strings(tmp_path):
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text(
        "\n".join(json.dumps({"title": t, "text": x}) for t, x in [("a", "red apples"), ("b", "blue sky")])
    )
    assert SearchIndex(jsonl, top_k=1)("sky") == "[b] blue sky"
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notes.md").write_text("first paragraph about cats\n\nsecond paragraph about dogs\n")
    assert [p.text for p in load_corpus(folder)] == ["first paragraph about cats", "second paragraph about dogs"]
    assert SearchIndex(folder)("dogs").startswith("[notes] second paragraph")
    assert SearchIndex(["one fish", "two fish", "red fish"], top_k=3).search("red")[0].text == "red fish"


def test_corpus_and_query_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "x"}\n')
    with pytest.raises(ValueError, match="Expected an object with a non-empty 'text' on line 1"):
        load_corpus(bad)
    with pytest.raises(ValueError, match=r"Expected a corpus name in \('facts',\), a \.jsonl file or a folder"):
        load_corpus(tmp_path / "missing.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"Expected \.txt or \.md files with text"):
        load_corpus(tmp_path / "empty")
    with pytest.raises(ToolError, match="Expected a query with at least one word"):
        SearchIndex()("!!")

"""`check_chat_template_prefix`: passes a template that only appends, names what breaks in one that edits turns."""

from __future__ import annotations

import pytest

from textgen_env.testing import tiny_tokenizer
from textgen_env.tools import check_chat_template_prefix

APPENDING = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


def _tokenizer(template):
    tokenizer = tiny_tokenizer()
    tokenizer.chat_template = template
    return tokenizer


def test_a_template_that_only_appends_has_the_prefix_property():
    report = check_chat_template_prefix(_tokenizer(APPENDING))
    assert report.ok and "has the prefix property" in str(report)


def test_a_template_that_hides_earlier_replies_is_reported_with_the_seam():
    hides = APPENDING.replace(
        "{{ m['content'] }}", "{{ '...' if m['role'] == 'assistant' and not loop.last else m['content'] }}"
    )
    report = check_chat_template_prefix(_tokenizer(hides))
    assert not report.ok
    assert "adding message 3 (user) changes the text of the earlier ones" in report.problems[0]
    assert "first differ at character" in report.problems[0]


def test_a_generation_prompt_unlike_the_reply_is_reported():
    report = check_chat_template_prefix(_tokenizer(APPENDING.replace("assistant: {% endif %}", "bot: {% endif %}")))
    assert any(
        "the generation prompt after message 1 is not how the template writes reply 2" in p for p in report.problems
    )


def test_no_template_is_reported():
    assert "no chat template" in str(check_chat_template_prefix(tiny_tokenizer()))


@pytest.mark.slow
def test_the_embedded_models_template_has_the_prefix_property():
    from textgen_env.models import default_model_path, load_tokenizer

    assert check_chat_template_prefix(load_tokenizer(default_model_path())).ok

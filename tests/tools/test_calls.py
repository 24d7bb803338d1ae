"""Call formats: the chat template's tool format when it has one, the tag format otherwise; parsing and errors."""

from __future__ import annotations

import pytest

from textgen_env.testing import tiny_tokenizer
from textgen_env.tools import CALL_FORMATS, ToolError, call_format_for, make_registry

TAGS = CALL_FORMATS["tags"]


def test_the_format_follows_the_chat_template():
    tokenizer = tiny_tokenizer()
    assert call_format_for(tokenizer).name == "tags"
    tokenizer.chat_template = "{% for t in tools %}<tool_call>{{ t }}</tool_call>{% endfor %}"
    assert call_format_for(tokenizer).result_open == "<tool_response>"
    assert call_format_for(tokenizer, "tags").name == "tags"
    with pytest.raises(ValueError, match="Expected tool_format to be one of"):
        call_format_for(tokenizer, "xml")


def test_a_call_is_found_only_once_it_closes():
    text = 'I will add. <tool_call>{"name": "add", "arguments": {"a": 1}}'
    assert TAGS.find_call(text, 0) is None
    found = TAGS.find_call(text + "</tool_call> done", 0)
    assert found is not None and TAGS.parse(found.body) == ("add", {"a": 1})
    assert TAGS.find_call(text + "</tool_call> done", found.end) is None  # handled calls are not found again


@pytest.mark.parametrize(
    "body, message",
    [
        ("{not json}", "Expected a JSON object .* in the call"),
        ('{"arguments": {}}', 'Expected a JSON object with a "name" string'),
        ('{"name": "add", "arguments": [1]}', "Expected the arguments to be a JSON object"),
        ('{"name": "add", "arguments": "{bad"}', "Expected the arguments to be a JSON object"),
    ],
    ids=["json", "name", "arguments", "string-arguments"],
)
def test_malformed_calls_raise(body, message):
    with pytest.raises(ToolError, match=message):
        TAGS.parse(body)


def test_a_closing_tag_alone_is_malformed_and_string_arguments_are_read():
    found = TAGS.find_call("oops </tool_call>", 0)
    assert found is not None
    with pytest.raises(ToolError, match="Expected <tool_call> before </tool_call>"):
        TAGS.parse(found.body)
    assert TAGS.parse('{"name": "add", "arguments": "{\\"a\\": 2}"}') == ("add", {"a": 2})


def test_the_description_lists_tools_and_the_format():
    text = TAGS.describe(make_registry(["calculator"]))
    assert "- calculator: Exact arithmetic" in text and "<tool_result>...</tool_result>" in text

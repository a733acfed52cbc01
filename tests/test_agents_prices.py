"""The price table file and the XML tag protocol parser."""

from __future__ import annotations

import pytest

from stackgym.agents import xml_protocol
from stackgym.agents.prices import PRICES_ENV, load_prices
from stackgym.core import ConfigError
from toy_env import Lockbox


def test_packaged_price_table_prices_the_seed_panel():
    table = load_prices()
    grok = table.price("x-ai/grok-code-fast-1")
    assert (grok.prompt, grok.completion) == (0.20, 1.50)
    assert table.cost("x-ai/grok-code-fast-1", 1_000_000, 1_000_000) == pytest.approx(1.70)
    assert table.cost("nobody/unknown-model", 10, 10) is None


def test_a_user_table_overrides_and_extends_the_packaged_one(tmp_path, monkeypatch):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "version: 1\nmodels:\n"
        "  x-ai/grok-code-fast-1: {prompt: 9, completion: 9}\n"
        "  local/*: {prompt: 0, completion: 0}\n"
        "  local/big-*: {prompt: 1, completion: 1}\n"
    )
    monkeypatch.setenv(PRICES_ENV, str(path))
    table = load_prices()
    assert table.price("x-ai/grok-code-fast-1").prompt == 9
    assert table.price("minimax/minimax-m2.1").prompt == 0.30  # packaged entry kept
    assert table.price("local/small").prompt == 0  # wildcard
    assert table.price("local/big-70b").prompt == 1  # the longer pattern wins


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("models:\n  m: {prompt: -1, completion: 1}\n", "models.m.prompt"),
        ("models:\n  m: {prompt: 1}\n", "models.m.completion: Field required"),
        ("models: [1, 2\n", "not valid YAML"),
        ("modles: {}\n", "modles"),
    ],
)
def test_a_broken_price_table_is_named_with_what_is_wrong(tmp_path, text, fragment):
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_prices(path)
    assert str(path) in caught.value.message and fragment in caught.value.message


def test_a_missing_user_price_table_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_prices(tmp_path / "nope.yaml")


TOOLS = Lockbox().tools()
WRITE = [
    {
        "type": "function",
        "function": {
            "name": "write_file",
            "description": "Write a file.",
            "parameters": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "content": {"type": "string"},
                    "lines": {"type": "array"},
                    "force": {"type": "boolean"},
                },
                "required": ["path", "content"],
            },
        },
    }
]


@pytest.mark.parametrize(
    ("text", "tools", "action"),
    [
        ("<tool>reveal</tool><position>2</position>", TOOLS, {"type": "reveal", "position": 2}),
        (
            "thinking...\n<tool> guess </tool>\n<code>042</code>",
            TOOLS,
            {"type": "guess", "code": "042"},
        ),
        (
            "<tool>reveal</tool><position>two</position>",
            TOOLS,
            {"type": "reveal", "position": "two"},
        ),
        ("<tool>fly</tool><to>moon</to>", TOOLS, {"type": "fly"}),
        (
            "<tool>write_file</tool><path>a.sql</path>\n<content>\nselect 1\n  from t\n</content>"
            "<lines>[1, 2]</lines><force>true</force>",
            WRITE,
            {
                "type": "write_file",
                "path": "a.sql",
                "content": "select 1\n  from t",
                "lines": [1, 2],
                "force": True,
            },
        ),
        (
            "<tool>reveal</tool><position>0</position> then <tool>reveal</tool><position>1</position>",
            TOOLS,
            {"type": "reveal", "position": 0},
        ),
    ],
)
def test_tag_protocol_replies_parse_into_actions(text, tools, action):
    assert xml_protocol.parse_action(text, tools) == action


def test_a_reply_without_a_tool_tag_is_not_an_action():
    assert xml_protocol.parse_action("The code is 123.", TOOLS) is None


def test_tag_protocol_prompt_lists_every_tool_and_parameter():
    prompt = xml_protocol.tools_prompt(TOOLS)
    assert "- reveal: Reveal the digit at one position of the code." in prompt
    assert "<position> (integer) - 0, 1 or 2" in prompt
    assert "<code> (string) - three digits" in prompt
    assert "<tool>reveal</tool>\n<position>...</position>" in prompt

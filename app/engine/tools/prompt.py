"""Tools in the prompt: the definitions the model is shown, and earlier calls and results in the conversation.

Two paths, chosen by the model's tool format (`tool_formats.detect_tool_format`):

- the chat template renders tools (Qwen / Hermes, Llama 3, Mistral): it gets `tools=` and the messages in
  transformers' convention (assistant `tool_calls`, `role: "tool"` results), and writes them in its family's own
  syntax, which is also the syntax the grammar enforces and the parser reads;
- it does not (SmolLM2, Gemma 2, Phi-3): the tools and the call syntax are explained at the end of the system
  prompt (`generic_tool_instructions`), earlier calls are written into their assistant turn exactly as the model
  would write them (`render_tool_calls`), and results become user-turn text in `<tool_result>` tags, leading their
  turn, as the instructions say.
"""
from __future__ import annotations

import hashlib

from .formats import ToolCallFormat, generic_tool_instructions, render_tool_calls, to_template_tools

ERROR_PREFIX = "Error: "       # how a failed tool's result (is_error) reads to a template with no such flag


def template_options(request, fmt: ToolCallFormat) -> dict:
    """Extra `apply_chat_template` arguments: the tools, for templates that render them."""
    if request.tools and fmt.template_renders_tools:
        return {"tools": to_template_tools(request.tools)}
    return {}


def tool_instructions(request, fmt: ToolCallFormat) -> str:
    """Text for the end of the system prompt: the tools and how to call them, when the template cannot say it."""
    if request.tools and not fmt.template_renders_tools:
        return generic_tool_instructions(request.tools)
    return ""


def messages_with_tool_turns(messages: list[dict], fmt: ToolCallFormat) -> list[dict]:
    """The messages with earlier tool calls and results in the form the template (or the model) expects."""
    if fmt.template_renders_tools:
        # Mistral's templates refuse any call id that is not 9 letters or digits; Anthropic's are "toolu_" + 24.
        call_id = _nine_character_id if fmt.name == "mistral" else (lambda original: original)
        return [_for_template(message, call_id) for message in messages]
    return _flatten_tool_turns(messages, fmt)


def _for_template(message: dict, call_id) -> dict:
    if message.get("role") == "tool":
        message = dict(message)
        if message.pop("is_error", False):
            message["content"] = ERROR_PREFIX + (message.get("content") or "")
        message["tool_call_id"] = call_id(message.get("tool_call_id", ""))
    elif message.get("tool_calls"):
        message = {**message, "tool_calls": [{**call, "id": call_id(call.get("id", ""))}
                                             for call in message["tool_calls"]]}
    return message


def _nine_character_id(original: str) -> str:
    """A stable 9-character alphanumeric stand-in: a call and its result map to the same one."""
    return hashlib.sha1(original.encode()).hexdigest()[:9]


def _flatten_tool_turns(messages: list[dict], fmt: ToolCallFormat) -> list[dict]:
    """Calls into assistant text, results into user text; turns that then share a role are merged."""
    flat: list[dict] = []
    for message in messages:
        role = message.get("role")
        if role == "tool":
            message = {"role": "user", "content": tool_result_text(message)}
        elif message.get("tool_calls"):
            message = dict(message)
            calls = [(call["function"]["name"], call["function"]["arguments"]) for call in message.pop("tool_calls")]
            message["content"] = "\n\n".join(part for part in (message.get("content"), render_tool_calls(fmt, calls))
                                             if part)
        if flat and flat[-1]["role"] == message["role"] == "user":
            flat[-1] = {**flat[-1], "content": flat[-1]["content"] + "\n\n" + message["content"]}
        else:
            flat.append(message)
    return flat


def tool_result_text(message: dict) -> str:
    status = ' is_error="true"' if message.get("is_error") else ""
    return (f'<tool_result tool_use_id="{message.get("tool_call_id", "")}"{status}>\n'
            f'{message.get("content") or ""}\n</tool_result>')


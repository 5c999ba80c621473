"""How each model family writes a tool call, as plain data, and how to tell which one a model uses.

One `ToolCallFormat` describes a family's native call syntax in pieces, so the grammar (`tool_grammar`), the
output parser (`tool_parser`) and prompt rendering (`render_tool_call`) all read the same description:

    section_prefix  call_prefix NAME arguments_prefix ARGUMENTS call_suffix
                    [call_separator  call_prefix NAME ...]  section_suffix

Hermes / Qwen2.5 / Qwen3 wrap every call in its own tags; Mistral puts all calls of a turn in one list after a
marker; Llama 3 writes a bare JSON object. Templates that know nothing of tools (SmolLM2, Gemma 2, Phi-3) get the
`generic` format: Hermes' syntax, taught by a system-prompt text (`generic_tool_instructions`) instead of the
template, as llama.cpp's Generic handler does, so one parser serves both.

Tools are accepted in Anthropic's shape ({name, description, input_schema}) or in the chat-template shape
({"type": "function", "function": {name, description, parameters}}) that `app.api.convert` builds.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from ..model.profiles import template_text


@dataclass(frozen=True)
class ToolCallFormat:
    name: str
    trigger: str                 # the text that opens the call syntax inside free text
    call_prefix: str             # before the tool's name
    arguments_prefix: str        # between the name and the arguments object
    call_suffix: str             # after the arguments object
    call_separator: str          # between two calls of one turn
    arguments_key: str           # the key the arguments go under ("arguments", "parameters")
    template_renders_tools: bool  # the chat template lists the tools itself (tools=...); else the system prompt must
    section_prefix: str = ""     # opens the list of all calls of a turn (Mistral); "" when calls stand alone
    section_suffix: str = ""     # closes that list
    trigger_opens_json: bool = False  # the trigger is the start of the call's JSON itself (Llama 3's '{"name": ')

    @property
    def closing_tag(self) -> str:
        """Non-JSON text that follows the call's JSON ("</tool_call>"); "" when the JSON's end is the call's end.
        The suffix starts with the character that closes the JSON, then formatting whitespace, then the tag."""
        return (self.section_suffix if self.section_prefix else self.call_suffix)[1:].strip()


HERMES = ToolCallFormat(
    name="hermes", trigger="<tool_call>",
    call_prefix='<tool_call>\n{"name": "', arguments_prefix='", "arguments": ', call_suffix="}\n</tool_call>",
    call_separator="\n", arguments_key="arguments", template_renders_tools=True)

# Same syntax as Hermes (so the parser and the grammar are shared); only the way the model learns it differs.
GENERIC = ToolCallFormat(
    name="generic", trigger="<tool_call>",
    call_prefix='<tool_call>\n{"name": "', arguments_prefix='", "arguments": ', call_suffix="}\n</tool_call>",
    call_separator="\n", arguments_key="arguments", template_renders_tools=False)

# Llama 3.1-3.3 JSON tool calling. The model card defines one call per turn; "; " between several is what
# vLLM's llama3_json parser accepts.
LLAMA3 = ToolCallFormat(
    name="llama3", trigger='{"name": ',
    call_prefix='{"name": "', arguments_prefix='", "parameters": ', call_suffix="}",
    call_separator="; ", arguments_key="parameters", template_renders_tools=True, trigger_opens_json=True)

MISTRAL = ToolCallFormat(
    name="mistral", trigger="[TOOL_CALLS]",
    call_prefix='{"name": "', arguments_prefix='", "arguments": ', call_suffix="}",
    call_separator=", ", arguments_key="arguments", template_renders_tools=True,
    section_prefix="[TOOL_CALLS][", section_suffix="]")

FORMATS: dict[str, ToolCallFormat] = {f.name: f for f in (HERMES, GENERIC, LLAMA3, MISTRAL)}

# Template text that identifies a family, checked in order: Hermes-2-Pro-Llama-3 has Llama headers *and*
# <tool_call>, and its calls are Hermes calls.
_LLAMA3_HEADER = "<|start_header_id|>"


def get_tool_format(name: str) -> ToolCallFormat:
    """A format by name (the CLI override); ValueError names the known ones."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown tool-call format {name!r}; known: {', '.join(FORMATS)}") from None


def tool_format_for(tokenizer, config) -> ToolCallFormat:
    """The served model's format under the server's `tool_format` setting ("auto": detected)."""
    name = getattr(config, "tool_format", "auto")
    return detect_tool_format(tokenizer) if name == "auto" else get_tool_format(name)


def detect_tool_format(tokenizer) -> ToolCallFormat:
    """The family's format, read off the chat template text.

    A template that mentions tools but writes calls in a syntax not listed here also gets `generic`: the model is
    then taught our syntax in the system prompt, and the template must not be given the tools (its own
    instructions would contradict ours) — `template_renders_tools` is False for exactly that reason.
    """
    template = template_text(tokenizer)
    if "<tool_call>" in template:
        return HERMES
    if "[TOOL_CALLS]" in template:
        return MISTRAL
    if _LLAMA3_HEADER in template and '"parameters"' in template:
        return LLAMA3
    return GENERIC


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict


def tool_spec(tool: dict) -> ToolSpec:
    """One tool, from either accepted shape."""
    if tool.get("type") == "function" and isinstance(tool.get("function"), dict):
        function = tool["function"]
        return ToolSpec(function["name"], function.get("description") or "",
                        function.get("parameters") or {"type": "object"})
    return ToolSpec(tool["name"], tool.get("description") or "", tool.get("input_schema") or {"type": "object"})


def tool_specs(tools) -> list[ToolSpec]:
    specs = [tool_spec(tool) for tool in tools]
    names = [spec.name for spec in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"tool names must be unique; repeated: {', '.join(duplicates)}")
    return specs


def to_template_tools(tools) -> list[dict]:
    """Tools in the shape chat templates take (`apply_chat_template(..., tools=...)`)."""
    return [{"type": "function", "function": {"name": s.name, "description": s.description,
                                              "parameters": s.input_schema}} for s in tool_specs(tools)]


def render_tool_call(fmt: ToolCallFormat, name: str, arguments: dict) -> str:
    """One call, exactly as the format writes it (without the section markers): the text a replayed assistant
    turn shows the model, and the text the grammar lets it produce."""
    return (fmt.call_prefix + _json_string_body(name) + fmt.arguments_prefix
            + json.dumps(arguments, ensure_ascii=False) + fmt.call_suffix)


def render_tool_calls(fmt: ToolCallFormat, calls: list[tuple[str, dict]]) -> str:
    """All calls of one assistant turn, with the section markers the format needs."""
    body = fmt.call_separator.join(render_tool_call(fmt, name, arguments) for name, arguments in calls)
    return fmt.section_prefix + body + fmt.section_suffix


def _json_string_body(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)[1:-1]


def generic_tool_instructions(tools) -> str:
    """System-prompt text for a template without tool support: the tools, then exactly how to call one.

    The syntax shown is the generic format's, which the grammar enforces once the model opens a call.
    """
    listing = "\n".join(
        json.dumps({"name": s.name, "description": s.description, "input_schema": s.input_schema},
                   ensure_ascii=False)
        for s in tool_specs(tools))
    example = render_tool_call(GENERIC, "<tool name>", {"<argument>": "<value>"})
    return (
        "You can call tools to help answer. These are the tools, one JSON object per line, each with its name, "
        "what it does and the JSON schema of its input:\n"
        f"<tools>\n{listing}\n</tools>\n\n"
        "To call a tool, write exactly this, with the arguments as a JSON object that matches the tool's "
        f"input_schema:\n{example}\n"
        "Write one <tool_call> block per call, then stop: the results come back in the next message, inside "
        "<tool_result> tags. Call a tool only when it helps; otherwise answer directly.")

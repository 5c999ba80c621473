"""The one rendering function: messages → the exact prompt text and ids the model sees.

count_tokens, usage.input_tokens, the context check, the playground's prompt view and generation all go through
here, so they always agree. The model's own chat template is the source of truth; the thinking profile only says
how to switch thinking on or off around it:

- thinking on: the prompt ends inside an open thinking section ("<think>\\n"), so every generated token is thinking
  until the model (or the budget) closes it. Qwen3-like templates get `enable_thinking=True`; prompted models also
  get a short instruction in the system prompt;
- thinking off: Qwen3-like templates get `enable_thinking=False` (they write an empty, closed section); a template
  that opens the section by itself (DeepSeek-R1) has it closed again, empty, so the model answers at once;
- a budget too small to hold even the closing marker (a few tokens for prompted models) closes the section in the
  prompt, empty: zero thinking tokens is the only way to stay within such a budget.
"""
from __future__ import annotations

from jinja2 import TemplateError

from ..errors import PromptError
from ..prepared import split_at_image_markers
from .profiles import TEMPLATE_FLAG, ThinkingProfile, detect_profile, template_text
from ..request import GenerationRequest, ThinkingSettings
from ..thinking.close import minimum_thinking_budget
from ..tools.formats import ToolCallFormat, detect_tool_format
from ..tools.prompt import messages_with_tool_turns, template_options, tool_instructions

# Said to models without native thinking: the server opens the section, so the model only has to know how it ends.
THINKING_INSTRUCTION = ("Think before you answer. Your reply starts inside a {open} section: reason there step by "
                        "step, end it with {close}, then write your answer.")


def render_prompt(tokenizer, request: GenerationRequest, profile: ThinkingProfile | None = None,
                  tool_format: ToolCallFormat | None = None, vision: bool = False) -> str:
    """The chat template applied to the messages, the assistant turn opened (inside a thinking section when thinking
    is on), then the prefill. `profile` and `tool_format` default to the ones detected from the tokenizer.

    Raises PromptError if the template refuses the messages or the model has no template.
    """
    return render_prompt_with_images(tokenizer, request, profile, tool_format, vision)[0]


def render_prompt_with_images(tokenizer, request: GenerationRequest, profile: ThinkingProfile | None = None,
                              tool_format: ToolCallFormat | None = None,
                              vision: bool = False) -> tuple[str, list[int]]:
    """`render_prompt`, and the request's images in the order the prompt shows them (indices into request.images).

    With `vision`, every message's content goes to the template as a list of parts, as vision-language templates
    take it: text parts, and an image part wherever an image marker stood. Without it, a request with images is a
    PromptError: a text-only model must never silently lose an image."""
    if request.images and not vision:
        raise PromptError("the served model reads text only: it cannot see images")
    profile = profile or detect_profile(tokenizer)
    tool_format = tool_format or detect_tool_format(tokenizer)
    messages = messages_with_tool_turns(list(request.messages), tool_format)
    messages = messages_for_template(tokenizer, messages, profile)
    # Only templates written for tools get `tools=`: others would silently ignore them, or choke on the argument.
    options = template_options(request, tool_format)
    if profile.switch == TEMPLATE_FLAG:
        options["enable_thinking"] = request.thinking is not None
    messages = append_to_system_prompt(messages, tool_instructions(request, tool_format))
    if request.thinking is not None and profile.prompted:
        messages = append_to_system_prompt(messages, THINKING_INSTRUCTION.format(open=profile.open_marker,
                                                                                 close=profile.close_marker))
    image_order: list[int] = []
    if vision:
        messages = [with_content_parts(message, request.image_nonce, image_order) for message in messages]
        if sorted(image_order) != list(range(len(request.images))):
            raise PromptError("the request's images and their places in the messages do not match")
    try:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, **options)
    except (TemplateError, ValueError) as error:
        raise PromptError(f"the model's chat template could not render these messages: {error}") from error
    return place_thinking_section(text, tokenizer, profile, request.thinking) + request.prefill, image_order


def with_content_parts(message: dict, nonce: str, image_order: list[int]) -> dict:
    """The message with its content as [{"type": "text", "text"}, {"type": "image"}, ...]; appends the index of
    each image it shows to `image_order`."""
    content = message.get("content")
    if not isinstance(content, str):
        return message
    parts = []
    for piece in split_at_image_markers(content, nonce):
        if isinstance(piece, int):
            image_order.append(piece)
            parts.append({"type": "image"})
        else:
            parts.append({"type": "text", "text": piece})
    return {**message, "content": parts}


def prompt_ids(tokenizer, text: str) -> list[int]:
    """Token ids of a rendered prompt.

    No special tokens are added: the template already wrote the ones the model expects (BOS included where it
    wants one), and adding them again would double the BOS on models such as Llama.
    """
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def prompt_opens_thinking(tokenizer, profile: ThinkingProfile, thinking: ThinkingSettings | None) -> bool:
    """Whether the rendered prompt ends inside an open thinking section: thinking is on and its budget can hold the
    closing marker. Generation builds its parser and budget from this same answer."""
    return (thinking is not None and not thinking.prefill_closed
            and thinking.budget_tokens >= minimum_thinking_budget(tokenizer, profile.close_marker))


def place_thinking_section(text: str, tokenizer, profile: ThinkingProfile, thinking: ThinkingSettings | None) -> str:
    opened = text.rstrip(" \n").endswith(profile.open_marker)
    if thinking is None and not opened:
        return text
    if opened:
        text = text if text.endswith("\n") else text + "\n"
    else:
        text += profile.open_marker + "\n"
    prefill = thinking.prefill if thinking is not None else ""
    if prompt_opens_thinking(tokenizer, profile, thinking):
        return text + prefill            # the model goes on from the client's thinking text
    if prefill:                          # the client's thinking, closed: the model answers after it
        return text + prefill.rstrip("\n") + profile.empty_section
    return text + profile.empty_section  # thinking off, closed by the client, or no room in the budget: answer


def messages_for_template(tokenizer, messages, profile: ThinkingProfile) -> list[dict]:
    """The messages as the template can take them. An assistant turn's earlier reasoning (`reasoning_content`, sent
    back in a tool loop) goes to templates that render it themselves (Qwen3's); for the others it is written into
    that turn's content between the markers, the way the model produced it."""
    if "reasoning_content" in template_text(tokenizer):
        return list(messages)
    rendered = []
    for message in messages:
        if "reasoning_content" in message:
            message = dict(message)
            reasoning = (message.pop("reasoning_content") or "").strip("\n")
            if reasoning:
                message["content"] = (f"{profile.open_marker}\n{reasoning}\n{profile.close_marker}\n\n"
                                      + (message.get("content") or ""))
        rendered.append(message)
    return rendered


def append_to_system_prompt(messages: list[dict], text: str) -> list[dict]:
    """The messages with `text` at the end of the system prompt (one is added if there is none)."""
    if not text:
        return messages
    if messages and messages[0].get("role") == "system":
        system = dict(messages[0])
        system["content"] = "\n\n".join(part for part in (system.get("content") or "", text) if part)
        return [system, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]

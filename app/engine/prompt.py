"""The one rendering function: messages → the exact prompt text and ids the model sees.

count_tokens, usage.input_tokens, the context check, the playground's prompt view and generation all go through
here, so they always agree. The model's own chat template is the source of truth.
"""
from __future__ import annotations

from jinja2 import TemplateError

from .errors import PromptError
from .request import GenerationRequest


def render_prompt(tokenizer, request: GenerationRequest) -> str:
    """The chat template applied to the messages, with the assistant turn opened, then the prefill.

    Raises PromptError if the template refuses the messages or the model has no template.
    """
    options = {}
    # Only templates written for tools get them: others would silently ignore them, or choke on the argument.
    if request.tools and template_mentions_tools(tokenizer):
        options["tools"] = list(request.tools)
    try:
        text = tokenizer.apply_chat_template(list(request.messages), add_generation_prompt=True, tokenize=False,
                                             **options)
    except (TemplateError, ValueError) as error:
        raise PromptError(f"the model's chat template could not render these messages: {error}") from error
    return text + request.prefill


def prompt_ids(tokenizer, text: str) -> list[int]:
    """Token ids of a rendered prompt.

    No special tokens are added: the template already wrote the ones the model expects (BOS included where it
    wants one), and adding them again would double the BOS on models such as Llama.
    """
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def template_mentions_tools(tokenizer) -> bool:
    template = getattr(tokenizer, "chat_template", None) or ""
    return "tools" in (" ".join(template.values()) if isinstance(template, dict) else template)

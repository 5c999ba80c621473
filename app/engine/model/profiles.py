"""What a model family needs beyond its chat template: its thinking markers and how thinking is switched on or off.

Detected from the tokenizer and the chat template, overridable from the CLI (`--thinking-profile`):

- `template_flag` (Qwen3): the template takes `enable_thinking`; with it False the template writes an empty, closed
  thinking section itself.
- `template_opens` (DeepSeek-R1, QwQ, Qwen3 "thinking" checkpoints): the template's generation prompt already ends
  with `<think>\\n`, so the model always thinks unless the server closes that section.
- `prompted` (every other model, the default SmolLM2 included): the model has no native thinking. The server opens
  the section itself and explains the markers in the system prompt, so budgets work on every model; the markers
  are then plain text, several tokens each.

Nothing here imports torch: the api layer may read a profile.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from jinja2 import TemplateError

TEMPLATE_FLAG = "template_flag"
TEMPLATE_OPENS = "template_opens"
PROMPTED = "prompted"

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

# Qwen3's own stop-thinking phrase (technical report §4.3; Qwen docs "Thinking Budget"), forced before the closing
# marker when a budget runs out: Qwen3 was trained to go on to answer after it.
DEFAULT_TRANSITION = ("\n\nConsidering the limited time by the user, I have to give the solution based on the "
                      "thinking directly now.\n")

# A minimal conversation, rendered once to see how the template ends the generation prompt.
_PROBE_MESSAGES = [{"role": "user", "content": "Hi"}]


@dataclass(frozen=True)
class ThinkingProfile:
    """How one model family thinks.

    Attributes:
        name: "qwen3", "deepseek-r1" or "prompted".
        open_marker / close_marker: the text around a thinking section.
        switch: TEMPLATE_FLAG, TEMPLATE_OPENS or PROMPTED (see the module docstring).
        transition: forced before `close_marker` when a thinking budget runs out ("" for none).
        tool_call_format: the model's native tool-call syntax (Hermes `<tool_call>`, Mistral `[TOOL_CALLS]`, ...);
            None until tool-call detection is added, which reads it from the same template and tokenizer.
    """
    name: str
    open_marker: str
    close_marker: str
    switch: str
    transition: str = DEFAULT_TRANSITION
    tool_call_format: str | None = None

    @property
    def prompted(self) -> bool:
        return self.switch == PROMPTED

    @property
    def empty_section(self) -> str:
        """What closes a thinking section the prompt left open, with nothing in it (Qwen3's non-thinking shape)."""
        return "\n" + self.close_marker + "\n\n"


KNOWN_PROFILES = {
    "qwen3": ThinkingProfile("qwen3", THINK_OPEN, THINK_CLOSE, TEMPLATE_FLAG),
    "deepseek-r1": ThinkingProfile("deepseek-r1", THINK_OPEN, THINK_CLOSE, TEMPLATE_OPENS),
    "prompted": ThinkingProfile("prompted", THINK_OPEN, THINK_CLOSE, PROMPTED),
}
PROFILE_CHOICES = ("auto", *KNOWN_PROFILES)


def detect_profile(tokenizer, override: str = "auto") -> ThinkingProfile:
    """The profile named by `override`, or for "auto" the one the chat template implies. Raises ValueError for an
    unknown name.

    A template that mentions `enable_thinking` is Qwen3-like; one whose generation prompt ends with `<think>` opens
    thinking itself (DeepSeek-R1-like); anything else, templates without thinking such as SmolLM2's ChatML, gets
    prompted thinking. The markers are `<think>` / `</think>` in every case.
    """
    if override != "auto":
        if override not in KNOWN_PROFILES:
            raise ValueError(f"unknown thinking profile {override!r}: expected one of {', '.join(PROFILE_CHOICES)}")
        return KNOWN_PROFILES[override]
    if "enable_thinking" in template_text(tokenizer):
        return KNOWN_PROFILES["qwen3"]
    if generation_prompt_opens_thinking(tokenizer, THINK_OPEN):
        return KNOWN_PROFILES["deepseek-r1"]
    return KNOWN_PROFILES["prompted"]


def profile_for(tokenizer, config) -> ThinkingProfile:
    """The served model's profile under the server's settings (`thinking_profile`, `thinking_transition`)."""
    profile = detect_profile(tokenizer, getattr(config, "thinking_profile", "auto"))
    transition = getattr(config, "thinking_transition", None)
    if transition is not None and transition != profile.transition:
        profile = dataclasses.replace(profile, transition=transition)
    return profile


def template_text(tokenizer) -> str:
    """The chat template source ("" if none); a dict of named templates is searched as one text."""
    template = getattr(tokenizer, "chat_template", None) or ""
    return " ".join(template.values()) if isinstance(template, dict) else template


def generation_prompt_opens_thinking(tokenizer, open_marker: str) -> bool:
    if not template_text(tokenizer):
        return False
    try:
        text = tokenizer.apply_chat_template(_PROBE_MESSAGES, add_generation_prompt=True, tokenize=False)
    except (TemplateError, ValueError):
        return False                     # a template that refuses the probe cannot be read this way
    return text.rstrip().endswith(open_marker)


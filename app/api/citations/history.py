"""An earlier cited answer, sent back as it came (`messages.append(response.content)`), is one text again.

A cited answer arrives as several text blocks, split where its citations were ("The grass is green" · ". The sky
is blue" · "."). Joined as separate blocks are ("\\n\\n" between them) the model would read its own answer broken
into paragraphs mid-sentence; so in an assistant turn where any text block carries citations, each run of text
blocks is joined as written, with nothing between them. The citations themselves are not shown again.
"""
from __future__ import annotations

from ..schema import TextBlock


def _cited(block) -> bool:
    return block.type == "text" and bool((block.model_extra or {}).get("citations"))


def joined_cited_answers(request):
    """The request with each cited assistant turn's text runs joined; the request itself when there is none."""
    if not any(message.role == "assistant" and any(_cited(block) for block in message.content)
               for message in request.messages):
        return request
    messages = []
    for message in request.messages:
        if message.role != "assistant" or not any(_cited(block) for block in message.content):
            messages.append(message)
            continue
        content = []
        for block in message.content:
            if block.type == "text" and content and content[-1].type == "text":
                extra = {key: value for key, value in (block.model_extra or {}).items() if key == "cache_control"}
                content[-1] = TextBlock(type="text", text=content[-1].text + block.text, **extra)
            else:
                content.append(block)
        messages.append(message.model_copy(update={"content": content}))
    return request.model_copy(update={"messages": messages})

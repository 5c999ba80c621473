"""A request → its `PreparedPrompt`: rendered once and tokenized once (images through the model's processor)."""
from __future__ import annotations

from ..errors import PromptError
from ..prepared import PreparedPrompt
from ..request import GenerationRequest
from ..tools.formats import ToolCallFormat
from .loader import LoadedModel
from .profiles import ThinkingProfile
from .prompt import prompt_ids, render_prompt_with_images
from .vision import image_cache_key, process_images


def prepare_prompt(loaded: LoadedModel, request: GenerationRequest, profile: ThinkingProfile,
                   tool_format: ToolCallFormat) -> PreparedPrompt:
    """Raises PromptError (the template or processor refused, or images for a model that cannot see them)."""
    if request.images and loaded.processor is None:
        raise PromptError(f"the served model {loaded.model_id} reads text only: it cannot see images")
    text, order = render_prompt_with_images(loaded.tokenizer, request, profile, tool_format,
                                            vision=loaded.processor is not None)
    if not order:
        ids = prompt_ids(loaded.tokenizer, text)
        return PreparedPrompt(text=text, ids=ids, cache_key=ids)
    images = [request.images[index] for index in order]
    ids, image_inputs = process_images(loaded.processor, text, images)
    return PreparedPrompt(text=text, ids=ids, cache_key=image_cache_key(ids, loaded.image_token_id, images),
                          image_inputs=image_inputs, image_token_id=loaded.image_token_id)

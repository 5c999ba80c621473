"""Errors the engine raises to its callers. The api layer maps each to an HTTP status."""


class EngineError(Exception):
    """Base class."""


class NotReadyError(EngineError):
    """The model is still loading."""


class QueueFullError(EngineError):
    """The bounded generation queue is full; the caller should retry later."""


class ModelLoadError(EngineError):
    """The model could not be loaded (bad path, quantization without CUDA, ...)."""


class PromptError(EngineError):
    """The model's chat template refused the messages (e.g. roles that do not alternate), or it has none."""


class PromptTooLongError(EngineError):
    """The rendered prompt alone is longer than the model's context window."""


class ToolGrammarError(EngineError):
    """The tools or tool_choice cannot be turned into a grammar (an unknown tool named, a schema xgrammar refuses)."""

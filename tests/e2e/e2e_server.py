"""Shared by the end-to-end tests: the key the test server requires and the model it serves."""
API_KEY = "e2e-key"
MODEL = "SmolLM2-135M-Instruct"


def prompt_tokens(usage) -> int:
    """The whole prompt, as count_tokens counts it: the part read afresh, the part read from the prefix cache, and
    the part written to it at a cache_control breakpoint."""
    return usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens

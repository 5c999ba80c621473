"""Tokens and tensors: loading, prompt rendering, the step loop. Knows nothing of HTTP or Anthropic JSON.

Importing this package does not import torch; `app.engine.runtime` does.
"""

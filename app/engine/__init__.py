"""Tokens and tensors: loading, prompt rendering, the generation worker. Knows nothing of HTTP or Anthropic JSON.

Importing this package does not import torch; `app.engine.runtime` does.
"""

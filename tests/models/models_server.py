"""Shared by the real-model layer: the key its server requires and the model it serves."""
API_KEY = "models-key"
MODEL = "qwen2.5-coder-0.5b-instruct"

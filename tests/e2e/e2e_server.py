"""Shared by the end-to-end tests: where server logs go, and the key the test server requires."""
from pathlib import Path

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"
API_KEY = "e2e-key"
MODEL = "SmolLM2-135M-Instruct"

"""Claude Code's tool loop against a running thinkserve: does the model call Bash, does Claude Code run it, and does
the final answer report what the command printed?

Each run gets a fresh HOME and project folder holding notes.txt with a random secret, then runs
    claude --bare -p "Run the shell command: cat notes.txt and tell me what it printed." --allowedTools Bash
with thinking off, offline (clients.md 1.2). From `--output-format stream-json --verbose`, a run counts as
- called:   an assistant message with a Bash tool_use;
- ran:      a tool result for it holding the secret (Claude Code ran the command);
- reported: the final result text holding the secret.

Run: python bench/claude_code_loop.py --base-url http://127.0.0.1:8000 [--runs 10] [--claude PATH]
The claude binary: `npm install @anthropic-ai/claude-code` in a scratch folder, then
node_modules/@anthropic-ai/claude-code-linux-x64/claude (the wrapper's install script may not have run).
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

PROMPT = "Run the shell command: cat notes.txt and tell me what it printed."


def served_model(base_url: str) -> str:
    with urllib.request.urlopen(base_url + "/v1/models", timeout=10) as response:
        return json.load(response)["data"][0]["id"]


def one_run(claude: str, base_url: str, model: str, timeout_s: float, api_key: str = "local",
            max_turns: int = 4) -> dict:
    secret = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(8))
    with tempfile.TemporaryDirectory() as home:
        project = Path(home) / "proj"
        project.mkdir()
        (project / "notes.txt").write_text(f"The code word is {secret}.\n")
        env = {"PATH": os.environ["PATH"], "HOME": home, "TERM": "dumb", "ANTHROPIC_BASE_URL": base_url,
               "ANTHROPIC_AUTH_TOKEN": api_key, "ANTHROPIC_MODEL": model,
               "ANTHROPIC_DEFAULT_HAIKU_MODEL": model, "CLAUDE_CODE_DISABLE_THINKING": "1",
               "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
               "DISABLE_ERROR_REPORTING": "1", "DISABLE_AUTOUPDATER": "1"}
        started = time.monotonic()
        try:
            done = subprocess.run([claude, "--bare", "-p", PROMPT, "--allowedTools", "Bash",
                                   "--max-turns", str(max_turns), "--output-format", "stream-json", "--verbose"],
                                  cwd=project, env=env,
                                  capture_output=True, text=True, timeout=timeout_s)
            lines = done.stdout.splitlines()
        except subprocess.TimeoutExpired:
            lines = []
    events = [json.loads(line) for line in lines if line.startswith("{")]
    called = ran = reported = False
    answer = ""
    calls = []
    for event in events:
        message = event.get("message")
        content = (message.get("content") or []) if isinstance(message, dict) else []
        for block in content if isinstance(content, list) else []:
            if event.get("type") == "assistant" and block.get("type") == "tool_use":
                calls.append({"name": block.get("name"), "input": block.get("input")})
                called = called or block.get("name") == "Bash"
            if event.get("type") == "user" and block.get("type") == "tool_result":
                ran = ran or secret in json.dumps(block.get("content"))
        if event.get("type") == "result":
            answer = event.get("result") or ""
            reported = secret in answer
    return {"called": called, "ran": ran, "reported": reported, "calls": calls, "answer": answer[:160],
            "seconds": round(time.monotonic() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--claude", default="claude")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--api-key", default="local", help="the server's --api-key, if it has one")
    parser.add_argument("--max-turns", type=int, default=4)
    args = parser.parse_args()
    model = served_model(args.base_url)
    results = []
    for index in range(args.runs):
        result = one_run(args.claude, args.base_url, model, args.timeout, args.api_key, args.max_turns)
        results.append(result)
        print(f"run {index + 1}: {json.dumps(result)}", flush=True)
    for key in ("called", "ran", "reported"):
        print(f"{key}: {sum(r[key] for r in results)}/{len(results)}")


if __name__ == "__main__":
    main()

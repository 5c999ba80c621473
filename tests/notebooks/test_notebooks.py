"""The research notebooks in notebooks/, executed end to end at small sizes on the default model.

Each notebook reads its parameters from environment variables; here they are small, and the kernel gets them
through its own environment. Two notebooks share one server (THINKSERVE_BASE_URL); protocol_tour runs without it,
to prove that a notebook starts its own server and stops it again, and a notebook cut off after its connect cell
proves that the atexit hook stops the server when the kernel goes away. Executed notebooks, their PNGs and server
logs go to test-output/notebooks/.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (make setup-dev)")
nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (make setup-dev)")
pytest.importorskip("ipykernel", reason="ipykernel is not installed (make setup-dev)")
pytest.importorskip("matplotlib", reason="matplotlib is not installed (make setup-dev)")

from app.launcher import ROOT  # noqa: E402
from real_server import real_server_fixture  # noqa: E402

NOTEBOOKS = ROOT / "notebooks"
OUTPUT = ROOT / "test-output" / "notebooks"
API_KEY = "nb-key"
SMALL = {
    "thinking_budgets": {"NB_PROBLEMS": "2", "NB_BUDGETS": "16,32", "NB_ANSWER_TOKENS": "24"},
    "protocol_tour": {"NB_MAX_TOKENS": "16"},
    "tool_choice": {"NB_SAMPLES": "2", "NB_MAX_TOKENS": "96"},
}


def kernel_env(name: str, **extra: str) -> dict:
    # Nothing from the caller's shell decides which server is used or how big the run is.
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("NB_") and key != "THINKSERVE_BASE_URL"}
    return {**env, "MPLBACKEND": "Agg", "THINKSERVE_API_KEY": API_KEY, "NB_OUTPUT_DIR": str(OUTPUT / name),
            **SMALL[name], **extra}


def execute(name: str, env: dict, *, cells: slice = slice(None)) -> nbformat.NotebookNode:
    """Runs the notebook (or some of its cells) in a fresh python3 kernel; saves what ran, outputs included."""
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    notebook.cells = notebook.cells[cells]
    OUTPUT.mkdir(parents=True, exist_ok=True)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS)}})
    try:
        client.execute(env=env)
    finally:
        nbformat.write(notebook, OUTPUT / f"{name}{'' if cells == slice(None) else '-partial'}.ipynb")
    return notebook


def outputs(notebook) -> str:
    return "".join(out.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", []) if out.get("output_type") == "stream")


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def serving_processes(port: int) -> list[int]:
    """Pids of live `python -m app serve --port PORT` processes (Linux /proc)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"app" in argv and b"serve" in argv and str(port).encode() in argv:
            pids.append(int(proc.name))
    return pids


def assert_server_gone(name: str, timeout_s: float = 20) -> None:
    server = json.loads((OUTPUT / name / "server.json").read_text())
    assert server["started_here"] is True
    port = urlsplit(server["base_url"]).port
    deadline = time.monotonic() + timeout_s
    while (answers(port) or serving_processes(port)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not answers(port), f"{server['base_url']} still answers after the notebook ended"
    assert not serving_processes(port), f"the server on port {port} is still running"


@pytest.fixture(scope="module", autouse=True)
def kernel_available():
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        pytest.skip("no python3 Jupyter kernel spec (ipykernel installs one; make setup-dev)")


# First in the file: it runs before the shared server below exists, so only one server uses the cores at a time.
def test_protocol_tour_starts_and_stops_its_own_server():
    notebook = execute("protocol_tour", kernel_env("protocol_tour"))
    assert "stopped" in outputs(notebook)
    assert_server_gone("protocol_tour")


def test_a_kernel_that_dies_after_connecting_leaves_no_server():
    # Parameters and connect cell only, then the kernel shuts down: the atexit hook must stop the server.
    name = "protocol_tour"
    env = kernel_env(name, NB_OUTPUT_DIR=str(OUTPUT / "atexit"))
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    connect = next(i for i, cell in enumerate(notebook.cells) if "connect_or_start(" in cell.source)
    execute(name, env, cells=slice(0, connect + 1))
    assert_server_gone("atexit")


server = real_server_fixture("notebooks/server.log", "--api-key", API_KEY, "--min-thinking-budget", "16",
                             scope="module")


def test_thinking_budgets_never_exceeded(server):
    # Run as one Message Batch, as a sweep that must survive a crashed kernel would be (NB_SWEEP=batch).
    notebook = execute("thinking_budgets", kernel_env("thinking_budgets", THINKSERVE_BASE_URL=server.base_url,
                                                      NB_SWEEP="batch"))
    assert "every response stayed within its budget" in outputs(notebook)
    assert "4/4 succeeded" in outputs(notebook)
    assert (OUTPUT / "thinking_budgets" / "thinking_budgets.png").stat().st_size > 10_000
    summary = json.loads((OUTPUT / "thinking_budgets" / "summary.json").read_text())
    assert [s["budget"] for s in summary] == [16, 32] and all(s["n"] == 2 for s in summary)
    # budget_sweep, one trace per problem: the same answers (seeded), for fewer generated tokens.
    saving = json.loads((OUTPUT / "thinking_budgets" / "sweep_saving.json").read_text())
    assert saving["same_answers"] == saving["compared"] == 4
    assert saving["tokens_budget_sweep"] < saving["tokens_one_request_per_budget"]
    assert server.process.poll() is None          # a given server is left running


def test_tool_choice_constraint_gives_valid_inputs(server):
    notebook = execute("tool_choice", kernel_env("tool_choice", THINKSERVE_BASE_URL=server.base_url))
    assert "enforced: 2/2 valid tool_use inputs" in outputs(notebook)
    assert (OUTPUT / "tool_choice" / "tool_choice_validity.png").stat().st_size > 5_000

"""notebooks/budget_study.ipynb at a small size on the study model (Qwen2.5-Coder-0.5B), against the layer's
server: every arm runs, the figures are written, and the sweep's answers add up. `make study` runs it at full size."""
from __future__ import annotations

import json
import os

import pytest

from app.launcher import ROOT
from models_server import API_KEY
from real_server import OUTPUT

nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed (make setup-dev)")
nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed (make setup-dev)")

SMALL = {"NB_PROBLEMS": "4", "NB_BUDGETS": "0,16,48", "NB_ANSWER_TOKENS": "16", "NB_WAIT_BUDGET": "48",
         "NB_WAIT_MIN": "32", "NB_SC_N": "2", "NB_SC_BUDGET": "16", "NB_SC_SINGLE_BUDGET": "32",
         "NB_BOOTSTRAP": "200"}


def test_the_budget_study_runs_small(qwen_server):
    output = OUTPUT / "notebooks" / "budget_study-small"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("NB_")}, **SMALL, "MPLBACKEND": "Agg",
           "THINKSERVE_BASE_URL": qwen_server.base_url, "THINKSERVE_API_KEY": API_KEY, "NB_OUTPUT_DIR": str(output)}
    notebook = nbformat.read(ROOT / "notebooks" / "budget_study.ipynb", as_version=4)
    for cell in notebook.cells:             # the shipped copy holds the full run's outputs
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    try:
        nbclient.NotebookClient(notebook, timeout=1200, kernel_name="python3",
                                resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute(env=env)
    finally:
        output.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, output / "budget_study.ipynb")      # what ran, outputs included
    results = json.loads((output / "results.json").read_text())
    assert results["problems"] == 4 and list(results["accuracy_vs_budget"]) == ["0", "16", "48"]
    for mean, low, high in (results["accuracy_vs_budget"][b]["accuracy"] for b in ("0", "16", "48")):
        assert 0 <= low <= mean <= high <= 1
    assert results["sweep"]["generated_tokens"] < results["sweep"]["separate_tokens"]
    assert (output / "accuracy_vs_budget.png").stat().st_size > 10_000 and (output / "arms.png").exists()

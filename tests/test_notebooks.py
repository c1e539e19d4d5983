"""The notebooks under ``notebooks/`` run top to bottom: a failing cell fails the test.

Each notebook is executed with ``nbclient`` in a fresh kernel whose working
directory is ``notebooks/`` (so its relative paths resolve as in Jupyter),
with ``MMZOO_DATA`` pointing at the shared data folder. The kernel is the
``python3`` kernel of this interpreter's environment (jupyter_client starts
a ``python`` kernel spec with ``sys.executable``); a first injected cell
checks that, so a kernel from another environment fails loudly instead of
testing the wrong installation.
"""

import sys
from pathlib import Path

import nbclient
import nbformat
import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = ["01_quickstart.ipynb", "02_compose_your_own.ipynb", "03_finetune_on_tpu.ipynb", "04_your_own_data.ipynb"]
CELL_TIMEOUT_S = 300


def _read(name):
    return nbformat.read(NOTEBOOKS_DIR / name, as_version=4)


def test_every_notebook_is_tested():
    assert sorted(p.name for p in NOTEBOOKS_DIR.glob("*.ipynb")) == NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_stripped_with_parameters_first(name):
    nb = _read(name)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), f"{name}: strip the outputs"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), f"{name}: title cell first"
    assert "parameters" in code[0].metadata.get("tags", []), f"{name}: the first code cell holds the parameters"


# 04 (your own data) runs with every test run, with FUSION="concat" (its "auto" trains four fusions) and 24 px images
# (under the pretrained encoder's 32 px, so the CNN: through the encoder at 32 px it took 133 s against 102 s alone
# on 2 cores; test_fit.py covers that path); 01-03 (1-4 min each) and 04 as written are `slow`.
RUN_BY_DEFAULT = {"04_your_own_data.ipynb": 'FUSION = "concat"\nIMAGE_SIZE = 24'}


@pytest.mark.parametrize(
    "name, overrides",
    [pytest.param(n, None, marks=[pytest.mark.slow]) for n in NOTEBOOKS]
    + [pytest.param(n, o, id=f"{n}-quick") for n, o in RUN_BY_DEFAULT.items()],
)
def test_notebook_runs(name, overrides, shared_data, monkeypatch):
    monkeypatch.setenv("MMZOO_DATA", str(shared_data))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    nb = _read(name)
    check = nbformat.v4.new_code_cell(
        f"import sys\nassert sys.prefix == {sys.prefix!r}, f'kernel runs {{sys.executable}}, not {sys.executable}'"
    )
    if overrides:  # papermill-style: a cell right after the parameters cell
        parameters = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
        nb.cells.insert(parameters + 1, nbformat.v4.new_code_cell(overrides))
    nb.cells.insert(0, check)
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=CELL_TIMEOUT_S, resources={"metadata": {"path": str(NOTEBOOKS_DIR)}}
    )
    client.execute()  # raises CellExecutionError (with the cell and its traceback) on a failing cell
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors

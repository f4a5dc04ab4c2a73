"""Test-session settings, and the fixtures more than one test file uses.

How tests are filed, one rule:
- unit tests by module: tests/test_MODULE.py tests hardbatch/MODULE.py through its own functions (test_batches,
  test_ledger, test_selection, test_budget, test_arms, test_files, test_record, test_report, test_plots, ...;
  test_methods_contract and test_selective for methods/);
- command-line and end-to-end tests by concern: what they guard, whichever modules it takes (test_cli,
  test_resume, test_divergence, test_no_sync, test_sweep_report, test_cluster, test_bad_inputs, test_cli_fuzz,
  test_reproducibility, test_reliability_*: paths, records, checkpoints, training, signals);
- repository checks apart: the repository as a whole, not one module (test_layers: the import graph;
  test_release, test_env_sync: packaging and the ways in; test_notebooks_clean, test_chapters_sentences,
  test_book, test_browser: the chapters; test_results: the committed results).
A fixture two files need lives here; a helper function or constant two files need lives in helpers.py.

One torch thread per process: the suite runs several processes at once (pytest, notebook kernels,
JupyterLab, CLI subprocesses) on a 2-core machine, and torch's default of one thread per core made
small runs 10x slower there through oversubscription. Results do not depend on the thread count.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by subprocesses and notebook kernels

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits (1297 training, 500 test images of 8x8), loaded once: no download, a second to load.
    A file that wants fewer training images overrides it: `def digits(digits): return digits.subset(n)`."""
    import hardbatch as hb

    return hb.load_dataset("digits")

"""Test-session settings.

One torch thread per process: the suite runs several processes at once (pytest, notebook kernels,
JupyterLab, CLI subprocesses) on a 2-core machine, and torch's default of one thread per core made
small runs 10x slower there through oversubscription. Results do not depend on the thread count.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by subprocesses and notebook kernels

import torch  # noqa: E402

torch.set_num_threads(1)

"""Shared pytest settings: headless plotting, one compute thread per test process, and the notebook flags option."""
import os

os.environ.setdefault("MPLBACKEND", "Agg")
# `make test` runs two pytest workers on two cores, and tests start more processes (the demo, torchrun, notebook
# kernels). PyTorch, OpenMP and BLAS default to a thread per core in each of them, and threads that outnumber the
# cores spin against each other: measured here, a quick demo took 30 s alone and 150 s beside a busy worker. One
# thread per process (inherited by every process a test starts) keeps the two cores busy without that.
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"): os.environ.setdefault(var, "1")


def pytest_addoption(parser):
    parser.addoption("--nb-flags", default="", help="notebook test flags to run, e.g. 'slow' or 'slow gpu' (skipped by default)")

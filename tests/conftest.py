"""Shared pytest settings: headless plotting and the notebook flags option."""
import os

os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_addoption(parser):
    parser.addoption("--nb-flags", default="", help="notebook test flags to run, e.g. 'slow' or 'slow gpu' (skipped by default)")

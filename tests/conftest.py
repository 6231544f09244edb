"""Fixtures, and the markers' behaviour: `gpu` tests skip without a CUDA GPU."""
from __future__ import annotations

import signal
from fractions import Fraction
from pathlib import Path

import pytest

from helpers import make_clip

# A test run started in the background by a script inherits Ctrl-C ignored, and so would
# every run the tests start (they respect an ignored signal, as they should); the tests
# that send Ctrl-C need it delivered.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items) -> None:
    if any("gpu" in item.keywords for item in items) and not cuda_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU (marker gpu)")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def clip(tmp_path_factory) -> tuple[Path, list[Fraction]]:
    path = tmp_path_factory.mktemp("media") / "clip.mp4"
    return path, make_clip(path)

"""Fixtures, and the markers' behaviour: `gpu` tests skip without a CUDA GPU."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from helpers import make_clip


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

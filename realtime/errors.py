"""Errors that are not a source's, a sink's or a checkpoint's: a missing optional package,
and a run that finished with failures. Their messages are one line, meant for the user."""
from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse


class MissingDependency(RuntimeError):
    """An optional package that the asked-for path needs is not installed."""

    def __init__(self, what: str, extra: str) -> None:
        super().__init__(f"{what}: {install_hint(extra)}")


class RunError(RuntimeError):
    """The run ended, but some of its inputs could not be enhanced (each was reported)."""


def import_torch(what: str, extra: str = "torch"):
    """PyTorch, imported for a path that needs it; a MissingDependency saying what to install
    (the extra that brings it) where it is absent. The default model runs without it."""
    try:
        import torch
    except ImportError:
        raise MissingDependency(f"{what} needs PyTorch", extra) from None
    return torch


def install_hint(extra: str) -> str:
    """`pip install ...` for one of the package's extras, in the form that works where this
    copy came from: the source checkout it runs from, the folder or wheel it was installed
    from (PEP 610's direct_url.json), else the package index."""
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "setup.cfg").is_file():
        return f'pip install "{checkout}[{extra}]"'
    origin = "realtime-enhance"
    try:
        direct = json.loads(metadata.distribution("realtime-enhance").read_text("direct_url.json") or "{}")
    except (metadata.PackageNotFoundError, ValueError):
        direct = {}
    url = direct.get("url", "")
    if url.startswith("file://"):
        origin = unquote(urlparse(url).path)
    return f'pip install "{origin}[{extra}]"'

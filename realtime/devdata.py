"""Where the project's development data lives: ../shared beside the checkout (training
images, LOL pairs, test photos and clips, the official checkpoints), or the folder named
by $REALTIME_ENHANCE_DATA. Benchmarks, training and tests read it; the product never does."""
from __future__ import annotations

import os
from pathlib import Path

SHARED = Path(os.environ.get("REALTIME_ENHANCE_DATA") or Path(__file__).resolve().parents[2] / "shared")

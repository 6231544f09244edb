"""The training script and the benchmark run, and write what they promise."""
from __future__ import annotations

import pytest
import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from realtime.model import load_checkpoint, load_weights

ROOT = Path(__file__).resolve().parents[1]


def random_images(folder: Path, count: int, shape: tuple[int, int, int], high: int = 255, seed: int = 0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, high, shape, dtype=np.uint8))


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def random_pairs(folder: Path, count: int, shape: tuple[int, int, int]) -> None:
    random_images(folder / "low", count, shape, high=60, seed=1)
    random_images(folder / "high", count, shape, seed=2)


@pytest.mark.slow
def test_training_runs_logs_plots_and_resumes(tmp_path):
    pairs, val = tmp_path / "pairs", tmp_path / "val"
    random_pairs(pairs, 3, (40, 60, 3))
    random_pairs(val, 2, (48, 64, 3))
    out = tmp_path / "run"
    common = ["train/train.py", "--pairs", str(pairs), "--val", str(val), "--out", str(out), "--width", "4",
              "--pair-batch", "2", "--pair-crop", "24", "--long-side", "16", "--eval-every", "2", "--threads", "1"]
    result = run(*common, "--steps", "4")
    assert "train config:" in result.stdout and "synthetic = 0.5" in result.stdout
    rows = list(csv.DictReader((out / "losses.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert all(np.isfinite(float(r[k])) for r in rows for k in ("total", "l1", "ssim", "mse", "tv"))
    assert all(float(r["l1"]) > 0 and float(r["spa"]) == 0 for r in rows)  # paired only: no zero-reference terms
    for name in ("total", "l1", "ssim", "mse", "tv"):
        assert (out / f"loss_{name}.png").stat().st_size > 1000
    net = load_checkpoint(out / "model.safetensors")
    assert (net.config.width, net.config.long_side, net.config.tone, net.config.attenuate_good_light) == (4, 16, True, True)
    assert load_checkpoint(out / "best.safetensors").config == net.config
    meta = load_weights(out / "model.safetensors").meta
    assert meta["data"]["pairs"] == str(pairs) and meta["train_config"]["steps"] == 4 and "train_seconds" in meta

    result = run(*common, "--steps", "6", "--resume")
    assert "resumed at step 4" in result.stdout
    rows = list(csv.DictReader((out / "losses.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_zero_reference_training_as_published(tmp_path):
    data = tmp_path / "data"
    random_images(data, 4, (96, 128, 3))
    out = tmp_path / "run"
    result = run("train/train.py", "--pairs", "", "--data", str(data), "--val", "", "--out", str(out), "--width", "4",
                 "--batch", "2", "--crop", "64", "--long-side", "16", "--steps", "3", "--threads", "1", "--no-tone")
    assert "w_tv = 16000.0" in result.stdout
    rows = list(csv.DictReader((out / "losses.csv").open()))
    assert all(float(r[k]) > 0 for r in rows for k in ("spa", "exp", "col")) and all(float(r["l1"]) == 0 for r in rows)
    assert not load_checkpoint(out / "model.safetensors").config.tone


@pytest.mark.slow
def test_training_is_seedable(tmp_path):
    pairs = tmp_path / "pairs"
    random_pairs(pairs, 3, (40, 60, 3))
    losses = []
    for name in ("a", "b"):
        run("train/train.py", "--pairs", str(pairs), "--val", "", "--out", str(tmp_path / name), "--width", "4",
            "--pair-batch", "2", "--pair-crop", "24", "--long-side", "16", "--steps", "3", "--threads", "1")
        losses.append([r["total"] for r in csv.DictReader((tmp_path / name / "losses.csv").open())])
    assert losses[0] == losses[1]


@pytest.mark.slow
def test_benchmark_quick_run_writes_every_field(tmp_path):
    out = tmp_path / "bench.json"
    result = run("benchmarks/latency.py", "--quick", "--json", str(out))
    assert "Per-frame latency" in result.stdout and "Machine:" in result.stdout
    data = json.loads(out.read_text())
    for key in ("cpu", "cores", "torch", "av", "opencv"):
        assert key in data["machine"]
    assert "cpu" in data["backends"]
    row = data["per_frame"]["rows"][0]
    for key in ("file", "size_mb", "resolution", "zero_dce_ms", "zero_dce_pp_ms", "engine_cpu_ms",
                "speedup_vs_zero_dce_cpu", "speedup_vs_zero_dce_pp_cpu"):
        assert key in row
    assert any(r["file"] == "720p" for r in data["per_frame"]["rows"])
    for key in ("clip", "frames", "reference", "reference_wall_s", "reference_peak_mb", "enhanced_wall_s",
                "enhanced_cpu_s", "enhanced_peak_mb", "wall_ratio"):
        assert key in data["file_throughput"][0]
    assert data["file_throughput"][0]["enhanced_peak_mb"] > 10
    for key in ("engine_ms", "engine_temporal_ms", "temporal_extra_ms", "rgb_engine_temporal_ms"):
        assert key in data["video_path"]
    assert [(r["camera_fps"], r["viewers"], r["stalled_viewers"], r["denoise"]) for r in data["live"]] == \
        [(30, 0, 0, "auto"), (30, 3, 0, "auto"), (30, 3, 50, "auto"), (60, 0, 0, "auto"), (30, 0, 0, "1"), (30, 3, 0, "1")]
    assert len(data["live"][1]["viewer_fps"]) == 3 and min(data["live"][1]["viewer_fps"]) > 0
    for key in ("p50_ms", "p95_ms", "p99_ms", "achieved_fps", "dropped", "backlog_growth_ms"):
        assert key in data["live"][0]

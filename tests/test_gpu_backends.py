"""GPU backends: what can be checked without a GPU runs everywhere; the rest needs CUDA."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from realtime import Enhancer
from realtime.backends import BackendUnavailable, select_backend
from realtime.backends.gpu import FrameProgram, engine_cache_key, export_program
from realtime.engine import default_weights_path
from realtime.model import DCENet, ModelConfig, from_checkpoint, load_weights, to_checkpoint

from helpers import cli

@pytest.fixture(scope="module")
def checkpoint():
    return load_weights(default_weights_path())


@pytest.fixture(scope="module")
def net(checkpoint):
    return from_checkpoint(checkpoint)


def test_frame_program_matches_the_cpu_engine(net, checkpoint):
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 90, (181, 323, 3), dtype=np.uint8)
    program = FrameProgram(net).eval()
    with torch.inference_mode():
        out = program(torch.from_numpy(frame)).numpy()
    with Enhancer(checkpoint, backend="cpu") as enhancer:
        ref = enhancer(frame)
    assert np.abs(out.astype(int) - ref).max() <= 2


@pytest.mark.parametrize("light", ["dark", "dim", "well lit"])
def test_frame_program_with_tone_and_attenuation_matches_the_cpu_engine(light):
    config = ModelConfig(width=6, shared_curves=True, long_side=32, denoise_below=64, tone=True,
                         attenuate_good_light=True)
    torch.manual_seed(3)
    tone_net = DCENet(config).eval()
    with torch.no_grad():
        for p in tone_net.parameters():
            p.normal_(0, 0.1)
    low, high = {"dark": (0, 60), "dim": (20, 140), "well lit": (60, 255)}[light]  # weights 1, between, 0
    frame = np.random.default_rng(5).integers(low, high, (181, 323, 3), dtype=np.uint8)
    with torch.inference_mode():
        out = FrameProgram(tone_net).eval()(torch.from_numpy(frame)).numpy()
    with Enhancer(to_checkpoint(tone_net), backend="cpu") as enhancer:
        ref = enhancer(frame)
    assert np.abs(out.astype(int) - ref).max() <= 2
    if light == "well lit":
        assert (ref == frame).all()


def test_frame_program_exports_with_dynamic_height_and_width(net):
    program = FrameProgram(net).eval()
    exported = export_program(program, 96, 160)
    frame = torch.randint(0, 80, (120, 200, 3), dtype=torch.uint8)  # another size than traced
    with torch.inference_mode():
        np.testing.assert_array_equal(exported.module()(frame).numpy(), program(frame).numpy())


def test_engine_cache_key_changes_with_everything_it_depends_on(checkpoint):
    base = dict(precision="fp16", shape_range=(64, 1080, 4096), gpu="NVIDIA H100", tensorrt_version="10.0",
                torch_tensorrt_version="2.5")
    key = engine_cache_key(checkpoint, **base)
    assert key == engine_cache_key(checkpoint, **base)
    for field, value in [("precision", "fp32"), ("shape_range", (64, 720, 4096)), ("gpu", "NVIDIA H200"),
                         ("tensorrt_version", "10.1"), ("torch_tensorrt_version", "2.6")]:
        assert engine_cache_key(checkpoint, **{**base, field: value}) != key
    other = to_checkpoint(DCENet(checkpoint.config))
    assert engine_cache_key(other, **base) != key  # other weights


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the messages on a machine without CUDA")
def test_selection_falls_back_to_cpu_and_says_why(checkpoint, caplog):
    with caplog.at_level(logging.INFO, logger="realtime"):
        backend = select_backend("auto", checkpoint)
    assert backend.name == "cpu"
    assert "backend cpu (auto; " in caplog.text and "no CUDA device" in caplog.text
    for name in ("cuda", "tensorrt"):
        with pytest.raises(BackendUnavailable, match=f"{name}: no CUDA device"):
            select_backend(name, checkpoint)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the messages on a machine without CUDA")
def test_cli_asking_for_an_unavailable_backend_exits_2(tmp_path):
    result = cli("--demo", "-o", str(tmp_path / "d.mp4"), "--backend", "cuda")
    assert result.returncode == 2
    assert "cuda: no CUDA device" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["cuda", "tensorrt"])
def test_gpu_backend_matches_cpu_engine(backend):
    rng = np.random.default_rng(3)
    frame = rng.integers(0, 90, (720, 1280, 3), dtype=np.uint8)
    try:
        gpu = Enhancer(backend=backend)
    except BackendUnavailable as why:
        pytest.skip(str(why))
    with gpu, Enhancer(backend="cpu") as cpu:
        assert np.abs(gpu(frame).astype(int) - cpu(frame)).max() <= 2

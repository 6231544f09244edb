"""The engine: model family, checkpoints, fast curve paths, the Enhancer API."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import cli, need_shared
from realtime import Enhancer, ModelConfig
from realtime.curves import CurveApplier, Curves, linear_taps
from realtime.engine import default_weights_path
from realtime.model import (
    REFERENCE_CONFIGS, CheckpointError, DCENet, denoise_dark, enhance, flush_denormals, from_checkpoint, infer_config,
    load_checkpoint, save_checkpoint,
)
from realtime.sources import read_image


def random_net(config: ModelConfig, seed: int = 0) -> DCENet:
    torch.manual_seed(seed)
    net = DCENet(config).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.2)
    return net


# --- the curve pass -------------------------------------------------------------------


def test_linear_taps_have_no_offset_and_handle_odd_sizes():
    for src, dst in [(1, 7), (5, 17), (64, 1919), (36, 1081), (7, 7)]:
        taps = linear_taps(src, dst)
        ramp = np.arange(src, dtype=np.float64)
        resampled = ramp[taps.i0] * (1 - taps.w) + ramp[taps.i1] * taps.w
        # Same grid as F.interpolate(align_corners=False): compare against it directly.
        ref = F.interpolate(torch.tensor(ramp)[None, None, None], size=(1, dst), mode="bilinear",
                            align_corners=False)[0, 0, 0].numpy()
        np.testing.assert_allclose(resampled, ref, atol=1e-5)


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("grid", ["half_pixel", "corners"])
@pytest.mark.parametrize("denoise", [0, 64])
@pytest.mark.parametrize("toned", [False, True])
def test_fused_kernel_matches_float64_upsample_and_curves(shared, grid, denoise, toned):
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)  # odd sizes
    frame[:10] //= 4  # a dark band, where the denoising acts
    channels = 3 if shared else 24
    maps = rng.uniform(-1, 1, (5, 7, channels)).astype(np.float32)
    black, gain = (np.array([0.02, -0.01, 0.0], np.float32), np.array([3.0, 2.5, 0.8], np.float32)) if toned \
        else (np.zeros(3, np.float32), np.ones(3, np.float32))
    out = CurveApplier(8, shared, grid, denoise).apply(frame, Curves(maps, black, gain))
    up = F.interpolate(torch.tensor(maps, dtype=torch.float64).permute(2, 0, 1)[None], size=(37, 53),
                       mode="bilinear", align_corners=grid == "corners")[0].permute(1, 2, 0).numpy()
    levels = denoise_dark(torch.from_numpy(frame).permute(2, 0, 1)[None], denoise)[0].permute(1, 2, 0).numpy()
    x = np.clip((levels / 255.0 - black) * gain, 0, 1)
    for i in range(8):
        a = up if shared else up[..., 3 * i : 3 * i + 3]
        x = x + a * x * (1 - x)
    assert np.abs(out.astype(np.float64) - x * 255).max() <= 1.0


def test_dark_denoising_smooths_shadows_and_leaves_the_rest_alone():
    rng = np.random.default_rng(4)
    noisy = np.clip(rng.normal(12, 4, (1, 3, 40, 40)), 0, 255).round()
    flat = torch.full((1, 3, 9, 9), 20.0)
    bright = torch.tensor(rng.integers(64, 256, (1, 3, 9, 9)), dtype=torch.float64)
    out = denoise_dark(torch.tensor(noisy), 64).numpy()
    assert out.std() < 0.6 * noisy.std()
    assert abs(out.mean() - noisy.mean()) < 0.5
    assert (denoise_dark(flat, 64) == 20).all()
    assert (denoise_dark(bright, 64) == bright).all()
    assert (denoise_dark(torch.tensor(noisy), 0).numpy() == noisy).all()


def test_constant_maps_give_a_seamless_result():
    frame = np.full((101, 203, 3), 40, np.uint8)
    maps = np.full((9, 17, 3), 0.5, np.float32)
    out = CurveApplier(8, True).apply(frame, maps)
    assert len(np.unique(out)) == 1


# --- the model family and checkpoints ---------------------------------------------------


def test_estimation_size_is_bounded_and_keeps_aspect():
    config = ModelConfig(long_side=64)
    assert config.estimation_size(2160, 3840) == config.estimation_size(1080, 1920) == (36, 64)
    assert config.estimation_size(40, 30) == (40, 30)  # never upscaled
    assert ModelConfig(scale=12).estimation_size(900, 1200) == (75, 100)


@pytest.mark.parametrize("name", sorted(REFERENCE_CONFIGS))
def test_reference_checkpoints_load_with_inferred_config(name):
    net = load_checkpoint(need_shared("reference-weights", f"{name}.pth"))
    assert net.config == REFERENCE_CONFIGS[name]
    tiny = [p for p in net.state_dict().values() if ((p.abs() < 1.2e-38) & (p != 0)).any()]
    assert not tiny, "denormal weights must be flushed at load"


def test_zero_dce_checkpoint_has_denormals_that_get_flushed():
    state = torch.load(need_shared("reference-weights", "zero_dce.pth"), map_location="cpu", weights_only=True)
    assert flush_denormals({k: v.numpy() for k, v in state.items()}) > 1000


def _official_float64(state: dict, image: np.ndarray, plus_plus: bool) -> np.ndarray:
    """The published forward passes, recomputed in float64 from the raw state dict."""
    sd = {k: v.double() for k, v in state.items()}

    def conv(name, x):
        if plus_plus:
            x = F.conv2d(x, sd[f"{name}.depth_conv.weight"], sd[f"{name}.depth_conv.bias"], padding=1,
                         groups=x.shape[1])
            return F.conv2d(x, sd[f"{name}.point_conv.weight"], sd[f"{name}.point_conv.bias"])
        return F.conv2d(x, sd[f"{name}.weight"], sd[f"{name}.bias"], padding=1)

    x = torch.tensor(image, dtype=torch.float64).permute(2, 0, 1)[None] / 255
    x_in = F.interpolate(x, scale_factor=1 / 12, mode="bilinear") if plus_plus else x
    x1 = F.relu(conv("e_conv1", x_in))
    x2 = F.relu(conv("e_conv2", x1))
    x3 = F.relu(conv("e_conv3", x2))
    x4 = F.relu(conv("e_conv4", x3))
    x5 = F.relu(conv("e_conv5", torch.cat([x3, x4], 1)))
    x6 = F.relu(conv("e_conv6", torch.cat([x2, x5], 1)))
    r = torch.tanh(conv("e_conv7", torch.cat([x1, x6], 1)))
    if plus_plus:
        r = torch.nn.UpsamplingBilinear2d(scale_factor=12)(r)
    for i in range(8):
        ri = r if plus_plus else r[:, 3 * i : 3 * i + 3]
        x = x + ri * (x**2 - x)
    return (x[0].permute(1, 2, 0).numpy() * 255)


@pytest.mark.parametrize("picture", ["1.bmp", "3.bmp"])  # dark; brighter (the good-light attenuation must not touch it)
@pytest.mark.parametrize("name,plus_plus", [("zero_dce", False), ("zero_dce_pp", True)])
@pytest.mark.slow
def test_reference_checkpoints_reproduce_the_published_computation(name, plus_plus, picture, tmp_path):
    path = need_shared("reference-weights", f"{name}.pth")
    image = read_image(need_shared("data", "LIME", picture))[:240, :360]  # multiples of 12
    state = torch.load(path, map_location="cpu", weights_only=True)
    flush_denormals({k: v.numpy() for k, v in state.items()})  # in place; bit-identical output, per ../shared/README.md
    reference = _official_float64(state, image, plus_plus)
    with Enhancer(path, backend="cpu") as enhancer:
        out = enhancer(image)
    assert np.abs(out.astype(np.float64) - reference).max() <= 1.0
    if picture == "3.bmp":  # and through the command line, by default
        cv2.imwrite(str(tmp_path / "in.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        result = cli(str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--weights", str(path), "-q")
        assert result.returncode == 0, result.stderr
        assert np.abs(read_image(tmp_path / "out.png").astype(np.float64) - reference).max() <= 1.0


def test_own_checkpoint_round_trip_and_bad_checkpoints(tmp_path):
    net = random_net(ModelConfig(width=4, shared_curves=True, long_side=16))
    save_checkpoint(tmp_path / "m.pt", net, note="test")
    loaded = load_checkpoint(tmp_path / "m.pt")
    assert loaded.config == net.config
    x = torch.rand(1, 3, 20, 30)
    with torch.no_grad():
        torch.testing.assert_close(enhance(loaded, x)[0], enhance(net, x)[0])

    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    state = net.state_dict()
    state.pop("e_conv3.weight")
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match=r"partial\.pt.*missing keys \['e_conv3.weight'\].*unexpected keys \['extra.weight'\]"):
        load_checkpoint(tmp_path / "partial.pt")
    torch.save({"foo": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="other.pt.*not a DCE-Net"):
        load_checkpoint(tmp_path / "other.pt")


def test_a_checkpoint_whose_header_length_starts_like_a_pickle_keeps_its_config(tmp_path):
    """A safetensors header 128 mod 256 bytes long makes the file's first byte 0x80, a
    pickle's opcode: the config and metadata in the header must still be read."""
    import struct

    from realtime.checkpoint import Checkpoint, expected_shapes, load_weights, save_weights

    config = ModelConfig(width=4, shared_curves=True, long_side=16, tone=True)
    state = {k: np.ones(s, np.float32) for k, s in expected_shapes(config).items()}
    path = tmp_path / "m.safetensors"
    for pad in range(256):
        save_weights(path, Checkpoint(config, state, {"note": "x" * pad}))
        if path.read_bytes()[0] == 0x80:
            break
    assert struct.unpack("<Q", path.read_bytes()[:8])[0] % 256 == 128
    loaded = load_weights(path)
    assert loaded.config == config and loaded.meta["note"].startswith("x")


def test_infer_config_for_an_unknown_width():
    state = DCENet(ModelConfig(width=6, conv="dwsep")).state_dict()
    config = infer_config(state)
    assert (config.width, config.conv, config.shared_curves) == (6, "dwsep", False)


# --- the Enhancer API ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def enhancer():
    with Enhancer(backend="cpu") as e:
        yield e


def test_default_weights_are_small_and_self_describing():
    import json

    from safetensors import safe_open

    path = default_weights_path()
    assert path.exists() and path.stat().st_size <= 100_000
    with safe_open(str(path), framework="numpy") as f:
        header = f.metadata()
    assert ModelConfig(**json.loads(header["config"])) == load_checkpoint(path).config
    assert "train_config" in json.loads(header["meta"])


def test_enhancer_brightens_any_size_and_matches_the_torch_reference(enhancer):
    rng = np.random.default_rng(0)
    for h, w in [(1, 1), (3, 1), (17, 29), (360, 641)]:
        frame = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
        out = enhancer(frame)
        assert out.shape == frame.shape and out.dtype == np.uint8 and out is not frame
        with torch.no_grad():
            ref = enhance(from_checkpoint(enhancer.checkpoint), torch.tensor(frame).permute(2, 0, 1)[None].float() / 255)[0]
        ref = ref[0].permute(1, 2, 0).numpy() * 255
        # The engine downsamples in uint8 (OpenCV): allow 2 levels against the float path.
        assert np.abs(out.astype(np.float64) - ref).max() <= 2.0
    assert enhancer(np.full((64, 64, 3), 20, np.uint8)).mean() > 40


def test_a_tone_head_reading_the_floor_is_the_same_in_the_engine_and_the_reference(tmp_path):
    from realtime.checkpoint import load_weights
    from realtime.netcpu import NumpyDCENet

    net = random_net(ModelConfig(width=4, long_side=16, tone=True, tone_reads_floor=True))
    assert net.tone.weight.shape[1] == DCENet(ModelConfig(width=4, tone=True)).tone.weight.shape[1] + 3
    save_checkpoint(tmp_path / "floor.safetensors", net)
    rng = np.random.default_rng(1)
    small = rng.uniform(0.0, 0.3, (12, 16, 3)).astype(np.float32)
    for floor in (0.0, 0.05):  # the black the small copy's minimum shows
        small[:4] = floor
        curves = NumpyDCENet(load_weights(tmp_path / "floor.safetensors"))(small)
        with torch.no_grad():
            alpha, black, gain = net.estimate(torch.from_numpy(small).permute(2, 0, 1)[None])
        np.testing.assert_allclose(curves.black, black[0].numpy(), atol=1e-5)
        np.testing.assert_allclose(curves.gain, gain[0].numpy(), rtol=1e-4)
        np.testing.assert_allclose(curves.maps, alpha[0].permute(1, 2, 0).numpy(), atol=1e-4)


def test_the_default_model_keeps_the_noise_floor_black_and_stays_monotone(enhancer):
    """A dark gradient over a black margin, with sensor-like noise: the margin (pure noise
    floor) stays near black, and brightness rises along the gradient."""
    rng = np.random.default_rng(11)
    clean = np.zeros((200, 360, 3), np.float32)
    clean[:, 60:] = np.linspace(1, 40, 300)[None, :, None]  # levels 1..40 of a dark frame
    noisy = np.clip(clean + rng.normal(0, 1.5, clean.shape) * np.sqrt(1 + clean / 4), 0, 255).round().astype(np.uint8)
    out = enhancer(noisy).astype(np.float64).mean(axis=(0, 2))  # mean per column
    # Near black: no higher than the black of the pictures it was trained towards (LOL's
    # normal-light references keep their darkest 1 % at a median of 25 levels; the first
    # default lifted the noise floor of real dark footage by 51-69 levels).
    assert out[:50].mean() < 30, "the noise floor is lifted to grey"
    columns = out[60:].reshape(-1, 20).mean(axis=1)  # 15 steps of 20 columns along the gradient
    assert (np.diff(columns) > 0).all(), "not monotone along the gradient"
    assert columns[-1] - columns[0] > 100, "the gradient is not brightened"
    assert columns[-1] - columns[7] > 40, "the upper half of the gradient is flattened (contrast lost)"


def test_photos_are_denoised_where_the_curves_lift_them_and_good_light_is_left_alone(enhancer):
    rng = np.random.default_rng(7)
    dark = np.clip(rng.normal(14, 4, (120, 160, 3)), 0, 255).astype(np.uint8)
    frame, photo = enhancer(dark), enhancer.enhance_photo(dark)
    assert abs(float(photo.mean()) - float(frame.mean())) < 2  # the same tone
    assert photo.std() < 0.8 * frame.std()  # less of the lifted noise
    bright = rng.integers(90, 250, (120, 160, 3), dtype=np.uint8)
    np.testing.assert_array_equal(enhancer.enhance_photo(bright), enhancer(bright))


def test_enhancer_accepts_views_and_grayscale(enhancer):
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 80, (50, 80, 3), dtype=np.uint8)
    view = frame[::2, ::-1]  # not contiguous
    np.testing.assert_array_equal(enhancer(view), enhancer(np.ascontiguousarray(view)))
    gray = frame[..., 0]
    out = enhancer(gray)
    assert out.shape == (50, 80, 3)
    np.testing.assert_array_equal(out, enhancer(np.repeat(gray[..., None], 3, axis=2)))


def test_enhancer_out_buffer_and_curves(enhancer):
    frame = np.full((90, 160, 3), 30, np.uint8)
    out = np.empty_like(frame)
    assert enhancer(frame, out=out) is out
    curves = enhancer.curves(frame)
    maps = curves.maps
    h, w = enhancer.config.estimation_size(90, 160)
    assert maps.shape == (h, w, enhancer.config.curve_maps) and maps.dtype == np.float32
    assert np.abs(maps).max() <= 1
    assert curves.black.shape == curves.gain.shape == (3,) and (curves.gain > 0).all()


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.zeros((8, 8, 3), np.float32), "dtype uint8"),
        (np.zeros((8, 8, 4), np.uint8), r"shape \(H, W, 3\)"),
        (np.zeros((8, 8, 3, 1), np.uint8), r"shape \(H, W, 3\)"),
        (np.zeros((0, 8, 3), np.uint8), "non-empty"),
        ([[1, 2, 3]], "NumPy array"),
    ],
)
def test_enhancer_rejects_bad_frames_with_clear_errors(enhancer, bad, match):
    with pytest.raises(ValueError, match=match):
        enhancer(bad)


def test_unknown_backend_is_a_clear_error():
    from realtime.backends import BackendUnavailable

    with pytest.raises(BackendUnavailable, match="unknown backend 'tpu'"):
        Enhancer(backend="tpu")


def test_default_weights_are_found_from_any_directory(tmp_path):
    # From another directory `realtime` is the installed package (site-packages after a
    # plain `pip install .`), whose weights are package data.
    import subprocess
    import sys

    code = ("import numpy as np; from realtime import Enhancer; e = Enhancer(backend='cpu'); "
            "print(e(np.full((8, 8, 3), 20, np.uint8)).mean() > 30)")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"

"""Video across time: temporal denoising, motion, cuts, smoothed curves, state per stream."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import cli
from realtime import Enhancer
from realtime.colour import interpret, rgb_to_yuv
from realtime.curves import Curves
from realtime.frame import YUVPlanes
from realtime.pipeline import Pipeline
from realtime.sources import Frame
from realtime.temporal import SCALE, CurveSmoother, GlobalMotion, TemporalDenoiser, VideoEnhancer

COLOUR = interpret(1, 1, 1, 1, 320, 240)


def scene(height: int = 240, width: int = 320, seed: int = 0, detail: int = 16) -> np.ndarray:
    """A dark, smooth picture with `detail` blobs across."""
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.integers(5, 70, (max(2, detail * height // width), detail, 3), np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def noisy(clean: np.ndarray, rng: np.random.Generator, sigma: float = 4.0) -> np.ndarray:
    return np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 255).astype(np.uint8)


def planes(rgb: np.ndarray) -> YUVPlanes:
    return YUVPlanes(*rgb_to_yuv(rgb, COLOUR), COLOUR)


def luma_codes(picture) -> np.ndarray:
    """Luma in codes as float (denoised planes are in scaled codes)."""
    if isinstance(picture, YUVPlanes):
        return picture.y.astype(np.float32) / picture.scale
    return rgb_to_yuv(picture, COLOUR)[0].astype(np.float32)


@pytest.mark.parametrize("kind", ["planes", "rgb"])
def test_noise_is_averaged_away_on_a_still_scene(kind):
    rng, clean = np.random.default_rng(1), scene()
    reference = luma_codes(clean)
    denoiser = TemporalDenoiser()  # automatic strength
    errors_in, errors_out = [], []
    for _ in range(20):
        frame = noisy(clean, rng)
        out = denoiser(planes(frame) if kind == "planes" else frame)
        errors_in.append(np.abs(luma_codes(frame) - reference).mean())
        errors_out.append(np.abs(luma_codes(out) - reference).mean())
    assert denoiser.current_strength == 1.0, "σ 4 noise is well above the automatic threshold"
    assert np.mean(errors_out[-5:]) < 0.5 * np.mean(errors_in[-5:]), (errors_in[-1], errors_out[-1])


def test_clean_video_is_left_alone_by_auto():
    denoiser, clean = TemporalDenoiser(), scene()
    for shift in range(6):  # a clean scene sliding by: no noise to remove
        frame = np.roll(clean, 3 * shift, axis=1)
        out = denoiser(planes(frame))
    assert denoiser.current_strength == 0.0
    assert out.scale == 1 and np.array_equal(out.y, planes(frame).y)


def test_a_moving_edge_leaves_no_ghost():
    rng = np.random.default_rng(2)
    background = np.full((240, 320, 3), 20, np.uint8)
    denoiser = TemporalDenoiser(1.0)
    for t in range(16):
        clean = background.copy()
        left = 40 + 12 * t  # a bright bar moving right, 12 px a frame
        clean[60:180, left:left + 40] = 200
        out = denoiser(planes(noisy(clean, rng, 3)))
    reference = luma_codes(clean)
    luma = luma_codes(out)
    trail = (slice(70, 170), slice(left - 24, left - 4))  # where the bar was in the last two frames
    bar = (slice(70, 170), slice(left + 4, left + 36))
    assert abs(luma[trail].mean() - reference[trail].mean()) < 3, "the bar leaves a trail (ghost)"
    assert abs(luma[bar].mean() - reference[bar].mean()) < 3, "the bar is not where it is"


def test_a_change_of_colour_at_the_same_brightness_leaves_no_trail():
    """The demo clip's stripe: a colour moving over another of the same brightness (RGB, as
    cameras and the demo give it). A motion test on the channels' mean sees nothing there."""
    rng = np.random.default_rng(3)
    denoiser = TemporalDenoiser(1.0)
    for t in range(14):
        clean = np.zeros((120, 200, 3), np.uint8)
        clean[...] = (60, 20, 20)
        left = 20 + 10 * t
        clean[30:90, left:left + 30] = (20, 20, 60)
        out = denoiser(np.clip(clean + rng.normal(0, 2, clean.shape), 0, 255).round().astype(np.uint8))
    trail = (slice(40, 80), slice(left - 20, left - 2))  # where the square was in the last two frames
    assert np.abs(out[trail].astype(float) - clean[trail]).mean(axis=(0, 1)).max() < 4, "a colour trail"
    still = (slice(95, 120), slice(0, 200))
    assert out[still].std(axis=(0, 1)).max() < 1.6, "the still background is no longer denoised"


def test_a_panning_camera_is_followed():
    rng, wide = np.random.default_rng(3), scene(240, 480, seed=4, detail=96)
    motion, denoiser = GlobalMotion(), TemporalDenoiser(1.0)
    reference_errors, errors = [], []
    for t in range(12):
        clean = wide[:, 100 - 3 * t: 420 - 3 * t]  # the picture moves 3 px right each frame
        frame = noisy(clean, rng)
        assert motion(planes(frame).y) == ((0, 0) if t == 0 else (0, 3))
        out = denoiser(planes(frame))
        reference_errors.append(np.abs(luma_codes(frame) - luma_codes(clean))[:, 40:-40].mean())
        errors.append(np.abs(luma_codes(out) - luma_codes(clean))[:, 40:-40].mean())
    assert denoiser.shift == (0, 3)
    assert np.mean(errors[-4:]) < 0.6 * np.mean(reference_errors[-4:])


def test_a_cut_starts_over():
    rng = np.random.default_rng(5)
    video = VideoEnhancer(Enhancer(backend="cpu"), denoise=1.0)
    first, second = scene(seed=6), scene(seed=7) + 60
    for _ in range(10):
        video(planes(noisy(first, rng)))
    cut_frame = planes(noisy(second, rng))
    after_cut = video(cut_frame)
    fresh = VideoEnhancer(Enhancer(backend="cpu"), denoise=1.0)(cut_frame)
    assert video.smoother.cuts == 1
    np.testing.assert_array_equal(after_cut.y, fresh.y)


def test_curves_follow_a_light_switched_on_within_a_few_frames():
    enhancer = Enhancer(backend="cpu")
    video = VideoEnhancer(enhancer, denoise="off")
    dark, lit = scene(seed=8) // 3, scene(seed=8)
    means = [video(planes(dark)).y.mean() for _ in range(10)]
    means += [video(planes(lit)).y.mean() for _ in range(10)]
    steady = enhancer(planes(lit)).y.mean()
    assert abs(means[10] - steady) < 0.1 * steady, "a big change of light is taken at once"
    # A lamp switched on in the same scene: not a cut (the denoiser keeps its average), yet
    # the new curves are taken at once rather than drifting in over a third of a second.
    video.reset()
    brighter_light = scene(seed=8) * 16 // 30
    for _ in range(10):
        video(planes(scene(seed=8) // 3))
    cuts = video.smoother.cuts
    first = video(planes(brighter_light)).y.mean()
    assert video.smoother.cuts == cuts and video.smoother.light_changes == 1
    assert abs(first - enhancer(planes(brighter_light)).y.mean()) < 1.0
    # A modest change (not a cut) is followed smoothly: within 8 frames.
    video.reset()
    brighter = np.clip(scene(seed=8).astype(np.int16) * 12 // 10, 0, 255).astype(np.uint8)
    for _ in range(10):
        video(planes(scene(seed=8)))
    follow = [video(planes(brighter)).y.mean() for _ in range(10)]
    target = enhancer(planes(brighter)).y.mean()
    assert abs(follow[7] - target) <= 0.1 * abs(follow[0] - target) + 0.5


def test_curve_smoother_averages_and_resets():
    smoother = CurveSmoother(follow=0.25)
    a = Curves(np.zeros((2, 2, 3), np.float32), np.zeros(3, np.float32), np.ones(3, np.float32))
    b = Curves(np.ones((2, 2, 3), np.float32), np.full(3, 0.1, np.float32), np.full(3, 5, np.float32))
    assert smoother(a, at_once=True) is not None
    mixed = smoother(b, at_once=False)
    assert mixed.maps.mean() == pytest.approx(0.25)
    assert mixed.black == pytest.approx([0.025] * 3) and mixed.gain == pytest.approx([2.0] * 3)
    assert smoother(b, at_once=True).maps.mean() == 1.0


def test_state_does_not_leak_between_streams():
    class Clip:
        live, error = False, None

        def __init__(self, seed):
            self.rng, self.clean = np.random.default_rng(seed), scene(seed=seed)

        def __iter__(self):
            for i in range(6):
                yield Frame(planes(noisy(self.clean, self.rng)), i, i)

        def close(self):
            pass

    class Keep:
        def __init__(self):
            self.frames = []

        def write(self, frame):
            self.frames.append(frame.enhanced.y.copy())
            return True

        def close(self, complete=True):
            pass

    video = VideoEnhancer(Enhancer(backend="cpu"))
    first, second, alone = Keep(), Keep(), Keep()
    Pipeline(Clip(10), video, [first]).run()
    Pipeline(Clip(11), video, [second]).run()
    Pipeline(Clip(11), VideoEnhancer(Enhancer(backend="cpu")), [alone]).run()
    for a, b in zip(second.frames, alone.frames):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_denoise_option_is_checked_and_off_is_per_frame(tmp_path, clip):
    src, _ = clip
    for bad in ("2", "-0.5", "strong"):
        result = cli(str(src), "-o", str(tmp_path / "o.mp4"), "--denoise", bad)
        assert result.returncode == 2 and "--denoise" in result.stderr
    for value in ("off", "0.5", "auto"):
        result = cli(str(src), "-o", str(tmp_path / f"o{value}.mp4"), "--denoise", value, "--preset", "ultrafast")
        assert result.returncode == 0, result.stderr


def test_denoiser_output_keeps_fractions_of_a_code():
    denoiser, rng, clean = TemporalDenoiser(1.0), np.random.default_rng(9), scene()
    for _ in range(8):
        out = denoiser(planes(noisy(clean, rng)))
    assert out.scale == SCALE and out.y.dtype == np.uint16
    assert len(np.unique(out.y % SCALE)) > 4, "the average is finer than a code"


# --- the black point of an averaged stream ---------------------------------------------------------


def bar_and_ramp() -> np.ndarray:
    """A black bar (a letterbox, a night sky) beside a grey ramp, uint8 RGB (128, 192, 3)."""
    picture = np.tile(np.linspace(60, 230, 192, dtype=np.float32), (128, 1))
    picture[:, :48] = 0
    return np.repeat(picture[..., None], 3, axis=2).astype(np.uint8)


def test_black_stays_black_once_a_dark_stream_is_averaged():
    """A sensor clips its noise at black; averaged over frames, that clipped noise is a grey
    floor, which the tone used to lift to grey (the bar came out at 34 % of the ramp)."""
    from realtime.metrics import darken

    rng, clean = np.random.default_rng(1), bar_and_ramp()
    video = VideoEnhancer()
    for _ in range(30):
        out = video(darken(clean, 0.05, 300, 2.35, rng))
    bar, ramp = out[:, 4:44].mean(), out[:, 60:].mean()
    assert bar < 0.30 * ramp, (bar, ramp)  # 0.26 now
    assert ramp > 0.85 * clean[:, 60:].mean(), "the picture keeps its brightness"


def test_black_at_floor_tones_the_floor_and_keeps_the_mean():
    from realtime.controls import LUMA
    from realtime.temporal import black_at_floor

    small = np.full((4, 4, 3), 0.1, np.float32)
    curves = Curves(np.zeros((4, 4, 3), np.float32), np.full(3, -0.01, np.float32), np.full(3, 3.0, np.float32))
    raised = black_at_floor(curves, small, floor=0.03, toned_floor=0.01, max_lift=2.0)
    toned = lambda x, c: float(((x - c.black) * c.gain) @ LUMA)  # noqa: E731
    assert toned(0.03, raised) == pytest.approx(0.01, abs=1e-4)
    assert toned(0.1, raised) == pytest.approx(toned(0.1, curves), abs=1e-4)
    assert black_at_floor(curves, small, floor=-0.02) is curves, "a floor below the black point: nothing to raise"
    capped = black_at_floor(curves, small, floor=0.095, max_lift=1.5)  # almost no black in it (fog)
    assert capped.gain == pytest.approx(1.5 * curves.gain), "the gain grows at most max_lift-fold"


def test_the_floor_rule_needs_averaged_frames():
    """Frame by frame (denoise off) the floor is noise, and the frame keeps the net's tone."""
    from realtime.metrics import darken
    from realtime.temporal import picture_floor

    rng, clean = np.random.default_rng(2), bar_and_ramp()
    frames = [darken(clean, 0.05, 300, 2.35, rng) for _ in range(12)]
    per_frame, off = Enhancer(), VideoEnhancer(denoise="off", smooth_curves=False)
    for frame in frames:
        assert np.array_equal(off(frame), per_frame(frame))
    assert picture_floor(planes(clean)) == pytest.approx(0.0, abs=0.01)
    assert picture_floor(clean) == pytest.approx(0.0, abs=0.01)
    assert picture_floor(np.full((64, 64, 3), 255, np.uint8)) == pytest.approx(1.0)


# --- colour noise ---------------------------------------------------------------------------------


def test_chroma_is_smoothed_and_brightness_kept():
    from realtime.temporal import smooth_chroma

    rng = np.random.default_rng(3)
    speckle = planes(np.clip(60 + rng.normal(0, 6, (64, 96, 3)), 0, 255).astype(np.uint8))  # colour noise
    out = smooth_chroma(speckle, 1.0)
    assert out.y is speckle.y, "brightness (and its detail) is untouched"
    assert out.u.std() < 0.5 * speckle.u.std() and out.v.std() < 0.5 * speckle.v.std()
    assert abs(float(out.u.mean()) - float(speckle.u.mean())) < 0.5, "the colour itself stays"
    half = smooth_chroma(speckle, 0.5)
    assert out.u.std() < half.u.std() < speckle.u.std()
    assert smooth_chroma(speckle, 0.0) is speckle
    flat = planes(np.full((32, 32, 3), (200, 30, 90), np.uint8))
    assert np.array_equal(smooth_chroma(flat, 1.0).u, flat.u)


def test_the_denoiser_returns_smooth_colour():
    """Three frames are too few for the average to remove the colour speckle; the chroma filter does."""
    from realtime.metrics import darken

    rng, clean = np.random.default_rng(4), np.full((96, 128, 3), 90, np.uint8)
    denoiser = TemporalDenoiser(1.0)
    for _ in range(3):
        frame = darken(clean, 0.05, 300, 2.35, rng)
        out = denoiser(planes(frame))
    assert out.u.std() / SCALE < 0.4 * planes(frame).u.std()


def test_where_the_picture_moves_noise_is_averaged_in_space_and_edges_stay():
    """A scene that changes every frame leaves the recursive average nothing to average: the
    moving pixels are taken towards their 5x5 mean, except across an edge."""
    rng, denoiser = np.random.default_rng(5), TemporalDenoiser(1.0)
    for i in range(8):
        clean = np.full((96, 128, 3), 40 if i % 2 else 120, np.uint8)  # a flash every frame: all moving
        clean[:, 64:] = 200
        frame = noisy(clean, rng, sigma=4.0)
        out = denoiser(planes(frame))
    flat_in, flat_out = luma_codes(planes(frame))[8:88, 8:56], luma_codes(out)[8:88, 8:56]
    assert flat_out.std() < 0.6 * flat_in.std(), (flat_out.std(), flat_in.std())
    edge = luma_codes(out)[8:88, 60:68].mean(axis=0)
    reference = luma_codes(planes(clean))[8:88, 60:68].mean(axis=0)
    assert np.abs(edge - reference).max() < 4, "the edge is not blurred"


def test_dark_rgb_frames_get_the_colour_filter_of_video_files():
    """Camera frames are enhanced as planes (i420_picture), and so are RGB frames given to
    VideoEnhancer through the API: the colour speckle of a dark webcam, or of frames a user
    decoded to RGB, is filtered as a dark video file's is (RGB frames were averaged as RGB,
    without it, and kept 1.5 times the camera's speckle)."""
    import cv2

    from realtime.frame import as_rgb, i420_picture
    from realtime.metrics import darken

    clean = scene(96, 128, seed=6)
    speckle = {}
    for kind, denoise in (("camera", 1.0), ("rgb", 1.0), ("per frame", "off")):
        rng, video = np.random.default_rng(6), VideoEnhancer(denoise=denoise)
        for i in range(6):
            rgb = darken(np.roll(clean, 9 * i, axis=1), 0.3, 300, 2.35, rng)  # moving: little to average
            picture = i420_picture(rgb, cv2.COLOR_RGB2YUV_I420) if kind == "camera" else rgb
            out = as_rgb(video(picture)).astype(np.float32)
        # colour noise: how far each pixel's colour differs from its neighbourhood's
        colour = out - out.mean(axis=2, keepdims=True)
        speckle[kind] = float(np.abs(colour - cv2.blur(colour, (9, 9))).mean())
    assert speckle["rgb"] < 1.1 * speckle["camera"] and speckle["camera"] < 0.7 * speckle["per frame"], speckle


def test_a_clean_rgb_stream_keeps_its_exact_colour():
    """RGB frames are averaged as 4:2:0 planes, but only while there may be noise to
    average: once `auto` has found a stream clean (from its second frame), it is enhanced as
    it came, its colour detail whole, as with the denoiser off."""
    frames = [np.roll(scene(64, 96, seed=3), 4 * i, axis=1) for i in range(5)]
    auto, off = VideoEnhancer(Enhancer(backend="cpu")), VideoEnhancer(Enhancer(backend="cpu"), denoise="off")
    auto(frames[0]), off(frames[0])  # the first, before anything is known, as planes
    for frame in frames[1:]:
        assert np.array_equal(auto(frame), off(frame))


def test_planes_enhanced_into_rgb_show_what_the_enhanced_planes_show():
    """Enhancer.apply(planes, curves, rgb) writes the enhanced R'G'B' in the same pass (what
    VideoEnhancer does with the RGB frames it averages as planes), without encoding planes
    and decoding them again: the picture is the one the enhanced planes show, to within
    their own 4:2:0 colour (each 2x2 block's chroma), the same however many bands."""
    import cv2

    from realtime.frame import i420_picture

    engine = Enhancer(backend="cpu")
    picture = i420_picture(scene(96, 128, seed=4, detail=4), cv2.COLOR_RGB2YUV_I420)
    small = engine.small(picture)
    curves = engine.curves_for(small)
    strength = engine.strength_for(small, curves)
    shown = engine.apply(picture, curves, None, strength).to_rgb().astype(np.int16)
    rgb = engine.apply(picture, curves, np.zeros((96, 128, 3), np.uint8), strength)
    difference = np.abs(rgb.astype(np.int16) - shown)
    assert difference.mean() < 1.0 and np.percentile(difference, 99) <= 4, (difference.mean(), difference.max())
    large = i420_picture(scene(720, 1280, seed=4, detail=8), cv2.COLOR_RGB2YUV_I420)
    one, two = Enhancer(backend="cpu", threads=1), Enhancer(backend="cpu", threads=2)
    curves = one.curves_for(one.small(large))
    banded = [e.apply(large, curves, np.zeros((720, 1280, 3), np.uint8)) for e in (one, two)]
    assert np.array_equal(*banded) and banded[0].max(axis=2).min() > 0


def test_video_enhancer_checks_where_its_output_goes():
    """`out` is checked as Enhancer checks it: the kernels write whole rows of it, so a
    smaller or strided buffer would be written past its end (RGB frames averaged as planes
    write their R'G'B' straight into it)."""
    rng, clean = np.random.default_rng(3), scene(64, 96, seed=3)
    video = VideoEnhancer(denoise=1.0)
    for bad in (np.zeros((32, 96, 3), np.uint8), np.zeros((64, 192, 3), np.uint8)[:, ::2],
                np.zeros((64, 96, 3), np.uint16), planes(clean)):
        with pytest.raises(ValueError, match="out must be"):
            video(noisy(clean, rng), bad)
    with pytest.raises(ValueError, match="out must be"):
        video(planes(clean), np.zeros((64, 96, 3), np.uint8))
    out = np.zeros((64, 96, 3), np.uint8)
    assert video(noisy(clean, rng), out) is out and out.any()


def test_planes_are_shown_as_the_reference_decode_shows_them():
    """YUVPlanes.to_rgb (the fused kernel behind every preview, browser frame and virtual
    camera) against colour.yuv_to_rgb, odd sizes, depths, ranges and fixed point."""
    from realtime.colour import to_uint8_rgb, yuv_to_rgb

    rng = np.random.default_rng(7)
    for bits, scale, (h, w), full in [(8, 1, (64, 96), False), (8, 1, (7, 9), True), (10, 1, (12, 20), False),
                                      (8, SCALE, (10, 14), True)]:
        colour = interpret(6 if full else 1, 2 if full else 1, 1, 1, w, h)
        top, dtype = (1 << bits) * scale, np.uint8 if bits == 8 and scale == 1 else np.uint16
        y, u, v = (rng.integers(0, top, shape).astype(dtype) for shape in ((h, w),) + (((h + 1) // 2, (w + 1) // 2),) * 2)
        shown = YUVPlanes(y, u, v, colour, bits, scale=scale).to_rgb()
        reference = to_uint8_rgb(yuv_to_rgb(y, u, v, colour, bits, scale))
        assert shown.shape == (h, w, 3) and np.abs(shown.astype(int) - reference).max() <= 1
        assert (shown != reference).mean() < 1e-3  # float rounding at a half level, nothing more


def test_the_toe_takes_the_floor_down_and_leaves_the_rest():
    from realtime.temporal import luma_range, toe

    colour = interpret(1, 1, 1, 1, 64, 64)
    y = np.arange(16 * SCALE, 16 * SCALE + 64 * 64, dtype=np.uint16).reshape(64, 64)  # every code near black
    chroma = np.full((32, 32), 128 * SCALE, np.uint16)
    averaged = YUVPlanes(y, chroma, chroma.copy(), colour, scale=SCALE)
    floor, step = 0.05, 0.02
    toed = toe(averaged, floor, step)
    black, span = luma_range(averaged)
    level = (y.astype(np.float64) - black) / span  # 0..1 from black to white
    after = (toed.y.astype(np.float64) - black) / span
    held = level <= floor + step / 2
    assert np.allclose(after[held], np.maximum(level[held] - step, 0), atol=1 / span)
    assert np.array_equal(toed.y[level >= floor + step / 2 + 2 * step], y[level >= floor + step / 2 + 2 * step])
    assert np.all(np.diff(toed.y.ravel().astype(int)) >= 0), "monotone"
    assert toed.u is averaged.u and toed.v is averaged.v, "colour kept: R', G', B' move together"


def test_the_toe_step_puts_the_floor_where_the_curves_leave_it_at_the_target():
    from realtime.curves import curve_float64
    from realtime.temporal import toe_step

    small = np.full((4, 4, 3), 0.1, np.float32)
    black, gain = np.full(3, 0.01, np.float32), np.full(3, 3.0, np.float32)
    identity = Curves(np.zeros((4, 4, 3), np.float32), black, gain)
    assert toe_step(identity, small, 0.03, 8, target=0.03) == pytest.approx(0.03 - 0.01 - 0.03 / 3, abs=1e-4)
    lifting = Curves(np.full((4, 4, 3), 0.5, np.float32), black, gain)
    step = toe_step(lifting, small, 0.02, 8, target=0.06)
    assert 0 < step < 0.012 and curve_float64((0.02 - step - 0.01) * 3.0, 0.5) == pytest.approx(0.06, abs=1e-3)
    assert toe_step(lifting, small, 0.0101, 8) == 0.0, "a floor the curves already leave dark enough"
    assert toe_step(lifting, small, 0.3, 8) == 0.012, "a high floor is picture (fog): a few codes at most"


def test_the_floor_the_toe_reads_is_that_of_the_3x3_means():
    """Noise left in an average spreads single pixels below the floor it shows, and the
    curves' dark denoise sees each dark pixel's 3x3 mean: the toe must read that mean's floor."""
    import cv2

    from realtime.temporal import luma_range, picture_floor

    rng = np.random.default_rng(5)
    y = np.clip(rng.normal(20 * SCALE, 1.5 * SCALE, (240, 320)), 0, None).astype(np.uint16)  # an averaged dark wall
    chroma = np.full((120, 160), 128 * SCALE, np.uint16)
    wall = YUVPlanes(y, chroma, chroma.copy(), COLOUR, scale=SCALE)
    black, span = luma_range(wall)
    means = cv2.blur(y.astype(np.float32), (3, 3))[1:-1, 1:-1]
    wanted = (np.quantile(means, 0.01) - black) / span
    assert picture_floor(wall, box=3) == pytest.approx(wanted, abs=0.3 / 219)
    assert picture_floor(wall) < wanted - 1.5 / 219, "single pixels sit below it"
    rgb = np.clip(rng.normal(20, 1.5, (240, 320, 3)), 0, 255).astype(np.uint8)
    assert picture_floor(rgb) < picture_floor(rgb, box=3) < 20 / 255
    assert picture_floor(np.zeros((2, 2, 3), np.uint8), box=3) == 0.0, "smaller than the box"


def test_the_toe_keeps_the_toned_mean():
    from realtime.temporal import luma_range, toe, toe_mean_kept

    rng = np.random.default_rng(6)
    y = (16 * SCALE + rng.uniform(0, 0.15, (120, 160)) * 219 * SCALE).astype(np.uint16)  # mostly near black
    chroma = np.full((60, 80), 128 * SCALE, np.uint16)
    dark = YUVPlanes(y, chroma, chroma.copy(), COLOUR, scale=SCALE)
    black, span = luma_range(dark)
    small = np.full((4, 4, 3), float(((y.astype(np.float64) - black) / span).mean()), np.float32)
    curves = Curves(np.zeros((4, 4, 3), np.float32), np.full(3, 0.005, np.float32), np.full(3, 4.0, np.float32))
    floor, step = 0.03, 0.01
    toed = toe(dark, floor, step)
    kept = toe_mean_kept(curves, small, dark, toed)
    before = ((y.astype(np.float64) - black) / span - 0.005).mean() * 4.0
    after = ((toed.y.astype(np.float64) - black) / span - 0.005).mean() * float(kept.gain[0])
    assert float(kept.gain[0]) > 4.0 and after == pytest.approx(before, rel=0.01)
    assert np.array_equal(kept.black, curves.black) and kept.maps is curves.maps


def averaged_file_of_bar_and_ramp(factor: float) -> tuple[VideoEnhancer, np.ndarray, np.ndarray]:
    """30 frames of bar_and_ramp made dark (300 photons) through the planes path: (the video
    engine, its last output as RGB, the clean picture)."""
    from realtime.metrics import darken

    rng, clean = np.random.default_rng(1), bar_and_ramp()
    colour = interpret(1, 1, 1, 1, 192, 128)
    video = VideoEnhancer()
    for _ in range(30):
        out = video(YUVPlanes(*rgb_to_yuv(darken(clean, factor, 300, 2.35, rng), colour), colour)).to_rgb()
    return video, out, clean


def test_a_very_dark_video_file_gets_its_black_bar_near_black():
    """At 3 % of the light the toe used to read the floor below what the curves see, and the
    bar stayed grey (its darkest 1 % at 29 levels, the bar at 27 % of the ramp)."""
    from realtime.metrics import black_point

    video, out, clean = averaged_file_of_bar_and_ramp(0.03)
    bar, ramp = out[:, 4:44].mean(), out[:, 60:].mean()
    assert black_point(out) < 19, black_point(out)  # 16 now
    assert bar < 0.22 * ramp, (bar, ramp)  # 0.20 now
    assert ramp > 0.85 * clean[:, 60:].mean(), "the picture keeps its brightness"


def test_a_dark_video_file_keeps_its_black_bar_dark():
    """The planes path (files, cameras): the floor rule and the toe, once the frames are averaged."""
    video, out, clean = averaged_file_of_bar_and_ramp(0.05)
    bar, ramp = out[:, 4:44].mean(), out[:, 60:].mean()
    assert video.step > 0, "the floor is taken down"
    assert bar < 0.19 * ramp, (bar, ramp)  # 0.17 now (0.21 before the toe read the 3x3 means)
    assert ramp > 0.85 * clean[:, 60:].mean(), "the picture keeps its brightness"
    profile = out[:, 60:].astype(np.float32).mean(axis=(0, 2))
    assert np.all(np.diff(profile) > -1.0), "the ramp stays a ramp"

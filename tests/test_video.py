"""The video path: frames stay in their planes and colour description from input to output."""
from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from helpers import as_player_shows, cli, identity_weights, make_tagged_clip, need_shared, tags
from realtime import Enhancer
from realtime.colour import interpret, rgb_to_yuv, to_uint8_rgb, yuv_to_rgb
from realtime.frame import YUVPlanes
from realtime.sources import VideoFileSource, read_image


def differences(a: list[np.ndarray], b: list[np.ndarray]) -> tuple[float, float]:
    assert len(a) == len(b) and a
    diff = np.abs(np.stack(a).astype(np.int16) - np.stack(b).astype(np.int16))
    return float(diff.mean()), float(np.percentile(diff, 99.9))


# (size, pix_fmt, colorspace, full range, label): the cases, and an untagged one.
IDENTITY_CASES = [
    ((1920, 1080), "yuv420p", 1, False, "BT.709 limited 1080p"),
    ((1280, 720), "yuv420p", 6, False, "BT.601 limited 720p"),
    ((1280, 720), "yuvj420p", 1, True, "full-range yuvj420p 720p"),
    ((640, 360), "yuv420p10le", 1, False, "10-bit BT.709"),
    ((640, 480), "yuv420p", 9, False, "BT.2020 limited"),
]


@pytest.mark.parametrize("size,pix_fmt,space,full,label", IDENTITY_CASES, ids=[c[-1] for c in IDENTITY_CASES])
def test_identity_weights_change_no_colour_and_keep_the_tags(tmp_path, size, pix_fmt, space, full, label):
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    make_tagged_clip(src, size, pix_fmt, space, full, primaries=space, transfer=1)
    result = cli(str(src), "-o", str(dst), "--weights", str(identity_weights(tmp_path / "id.safetensors")),
                 "--crf", "0", "--preset", "ultrafast", "-q")
    assert result.returncode == 0, result.stderr
    mean, p999 = differences(as_player_shows(src), as_player_shows(dst))
    assert mean <= 1.0 and p999 <= 3, f"{label}: {mean:.2f} levels on average, {p999:.0f} at the 99.9th percentile"
    assert tags(dst) == tags(src), f"{label}: the output's colour tags differ from the input's"


@pytest.mark.slow
def test_untagged_input_is_read_as_players_read_it_and_tagged_so(tmp_path):
    for size, expected in (((1280, 720), (1, 1, 1, 1)), ((720, 480), (6, 1, 6, 1)), ((720, 576), (5, 1, 5, 1))):
        src, dst = tmp_path / f"in{size[1]}.mp4", tmp_path / f"out{size[1]}.mp4"
        make_tagged_clip(src, size, space=None, primaries=None, transfer=None, frames=2)
        assert tags(src)[:4] == (2, 0, 2, 2), "the input is untagged"
        result = cli(str(src), "-o", str(dst), "--weights", str(identity_weights(tmp_path / "id.safetensors")),
                     "--crf", "0", "--preset", "ultrafast", "-q")
        assert result.returncode == 0, result.stderr
        assert tags(dst)[:4] == expected
        mean, p999 = differences(as_player_shows(src), as_player_shows(dst))
        assert mean <= 1.0 and p999 <= 3


def test_ten_bit_input_stays_ten_bit_or_says_why(tmp_path):
    src = tmp_path / "in10.mp4"
    make_tagged_clip(src, (320, 240), "yuv420p10le", frames=2)
    weights = str(identity_weights(tmp_path / "id.safetensors"))
    result = cli(str(src), "-o", str(tmp_path / "o.mp4"), "--weights", weights, "--preset", "ultrafast")
    assert result.returncode == 0 and tags(tmp_path / "o.mp4")[4] == "yuv420p10le"
    result = cli(str(src), "-o", str(tmp_path / "o.mp4"), "--weights", weights, "--codec", "mpeg4", "--crf", "6")
    assert result.returncode == 0, result.stderr
    assert "cannot encode 10-bit video; writing 8-bit" in result.stderr
    assert tags(tmp_path / "o.mp4")[4] == "yuv420p"
    mean, _ = differences(as_player_shows(src), as_player_shows(tmp_path / "o.mp4"))
    assert mean < 1.5  # MPEG-4 part 2 at q 1, 8-bit


@pytest.mark.parametrize("codec,suffix", [("mpeg4", ".avi"), ("mjpeg", ".avi"), ("ffv1", ".avi")])
def test_outputs_that_cannot_carry_tags_are_converted_to_what_players_assume(tmp_path, codec, suffix):
    src, dst = tmp_path / "in.mp4", tmp_path / f"out{suffix}"
    make_tagged_clip(src, (640, 360), space=1, frames=2)  # BT.709 at a size players read as BT.601
    result = cli(str(src), "-o", str(dst), "--weights", str(identity_weights(tmp_path / "id.safetensors")),
                 "--codec", codec, "--crf", "6")
    assert result.returncode == 0, result.stderr
    mean, _ = differences(as_player_shows(src), as_player_shows(dst))
    assert mean < 1.5, f"{codec} in {suffix}: {mean:.2f} levels"


def test_file_mode_makes_no_rgb_frame(tmp_path, monkeypatch):
    src = tmp_path / "in.mp4"
    make_tagged_clip(src, (320, 240), frames=3)
    import av

    def refuse(*args, **kwargs):
        raise AssertionError("a full-frame RGB conversion happened in file mode")

    monkeypatch.setattr(av.VideoFrame, "to_ndarray", refuse)
    source = VideoFileSource(src)
    frames = list(source)
    assert len(frames) == 3 and all(isinstance(f.image, YUVPlanes) for f in frames)
    with Enhancer(backend="cpu") as enhancer:
        out = enhancer(frames[0].image)
    assert isinstance(out, YUVPlanes) and out.shape == (240, 320) and out.colour == frames[0].image.colour


def matrix_cases():
    return [interpret(space, rng, 2, 2, 1280, 720) for space in (1, 6, 9) for rng in (1, 2)]


def yuv_and_rgb_paths(enhancer: Enhancer, rgb: np.ndarray, colour) -> tuple[np.ndarray, np.ndarray]:
    """The same frame through both paths, both as a player shows the 4:2:0 result."""
    y, u, v = rgb_to_yuv(rgb, colour)
    planes = YUVPlanes(y, u, v, colour)
    decoded = to_uint8_rgb(yuv_to_rgb(y, u, v, colour))  # the frame decoded to RGB with its matrix
    via_rgb = rgb_to_yuv(enhancer(decoded), colour)  # what the RGB path writes into a 4:2:0 file
    via_yuv = enhancer(planes)
    show = lambda p: to_uint8_rgb(yuv_to_rgb(*p, colour))  # noqa: E731
    return show((via_yuv.y, via_yuv.u, via_yuv.v)), show(via_rgb)


@pytest.mark.parametrize("colour", matrix_cases(), ids=str)
def test_yuv_path_computes_the_rgb_paths_curves(colour):
    rng = np.random.default_rng(0)
    import cv2

    rgb = cv2.resize(rng.integers(0, 90, (12, 20, 3), np.uint8), (320, 180), interpolation=cv2.INTER_CUBIC)
    from realtime.controls import Controls

    with Enhancer(backend="cpu", controls=Controls(attenuate=False)) as enhancer:
        yuv, via_rgb = yuv_and_rgb_paths(enhancer, rgb, colour)
    per_channel = np.abs(yuv.astype(int) - via_rgb).reshape(-1, 3).mean(axis=0)
    assert per_channel.max() <= 1.0, per_channel
    assert yuv.mean() > 1.5 * rgb.mean()


@pytest.mark.slow
def test_yuv_path_agrees_with_the_rgb_path_on_lime():
    from realtime.controls import Controls

    folder = need_shared("data", "LIME")
    images = [read_image(p) for p in sorted(folder.glob("*.bmp"))]
    # The same curves: the good-light attenuation (a policy on each path's own small copy) is off.
    with Enhancer(backend="cpu", controls=Controls(attenuate=False)) as enhancer:
        for colour in matrix_cases():
            for image in images:
                image = image[: image.shape[0] & ~1, : image.shape[1] & ~1]
                yuv, via_rgb = yuv_and_rgb_paths(enhancer, image, colour)
                per_channel = np.abs(yuv.astype(int) - via_rgb).reshape(-1, 3).mean(axis=0)
                assert per_channel.max() <= 2.0, (str(colour), per_channel)


@pytest.mark.parametrize("pix_fmt", ["yuv422p", "yuv444p", "gray", "yuvj422p"])
def test_other_pixel_formats_are_converted_once_keeping_their_colours(tmp_path, pix_fmt):
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    make_tagged_clip(src, (320, 240), pix_fmt, space=1, full_range=pix_fmt.startswith("yuvj"), frames=2)
    result = cli(str(src), "-o", str(dst), "--weights", str(identity_weights(tmp_path / "id.safetensors")),
                 "--crf", "0", "--preset", "ultrafast", "-q")
    assert result.returncode == 0, result.stderr
    mean, _ = differences(as_player_shows(src), as_player_shows(dst))
    # 4:2:0 keeps a quarter of 4:4:4's chroma samples: testsrc2's sharp colour edges show it.
    assert mean <= (3.5 if pix_fmt == "yuv444p" else 2.0), f"{pix_fmt}: {mean:.2f} levels"
    if pix_fmt == "gray":
        out = np.stack(as_player_shows(dst)).astype(int)
        assert np.abs(out[..., 0] - out[..., 1]).max() <= 1 and np.abs(out[..., 0] - out[..., 2]).max() <= 1


def test_nv12_frames_are_read_as_planes_without_conversion(tmp_path):
    import av

    src = tmp_path / "in.mp4"
    make_tagged_clip(src, (64, 48), frames=1)
    source = VideoFileSource(src)
    decoded = next(iter(source)).image
    nv12 = av.VideoFrame(64, 48, "nv12")
    from realtime.frame import plane_view

    plane_view(nv12.planes[0], np.uint8)[...] = decoded.y
    uv = plane_view(nv12.planes[1], np.uint8, 64)
    uv[:, 0::2], uv[:, 1::2] = decoded.u, decoded.v
    planes = source._planes(nv12)
    assert planes.owner is nv12, "views of the frame's own buffers"
    np.testing.assert_array_equal(planes.u, decoded.u)
    np.testing.assert_array_equal(planes.v, decoded.v)
    with Enhancer(identity_weights(tmp_path / "id.safetensors"), backend="cpu") as identity:
        out = identity(planes)
    np.testing.assert_array_equal(out.y, decoded.y)
    np.testing.assert_array_equal(out.u, decoded.u)


@pytest.mark.parametrize("pix_fmt,full,bits", [("yuvj420p", True, 8), ("yuv420p10le", False, 10)])
def test_a_pyav_frame_is_enhanced_as_planes_without_conversion(tmp_path, pix_fmt, full, bits):
    """The documented planar entry point: YUVPlanes.from_video_frame wraps a decoded frame
    (its colour description read from the frame) and Enhancer takes it, identity exact."""
    src = tmp_path / "in.mp4"
    make_tagged_clip(src, (320, 240), pix_fmt, space=1, full_range=full, frames=1)
    with av.open(str(src)) as container:
        vf = next(container.decode(video=0))
        planes = YUVPlanes.from_video_frame(vf)
        assert (planes.colour.space, planes.colour.full_range, planes.bits) == (1, full, bits)
        out = Enhancer(identity_weights(tmp_path / "identity.safetensors"), backend="cpu")(planes)
        for got, want in zip((out.y, out.u, out.v), (planes.y, planes.u, planes.v)):
            np.testing.assert_array_equal(got, want)


def test_images_are_read_from_a_name_given_as_str_or_path(tmp_path):
    from realtime.sources import read_picture

    rgb = np.random.default_rng(0).integers(0, 256, (8, 12, 3), dtype=np.uint8)
    path = tmp_path / "picture.png"
    cv2.imwrite(str(path), rgb[..., ::-1])
    for name in (path, str(path)):
        assert np.array_equal(read_image(name), rgb)
        picture, alpha = read_picture(name)
        assert np.array_equal(picture, rgb) and alpha is None


def test_a_colour_description_that_changes_mid_stream_is_read_frame_by_frame(tmp_path):
    """Limited-range BT.601 joined with full-range BT.709: each part as a player shows it."""
    from helpers import make_tagged_clip

    a, b = tmp_path / "a.ts", tmp_path / "b.ts"
    make_tagged_clip(a, (320, 240), "yuv420p", space=6, primaries=6, transfer=6, frames=12)
    make_tagged_clip(b, (320, 240), "yuvj420p", space=1, full_range=True, frames=12)
    joined = tmp_path / "joined.ts"
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    out = tmp_path / "out.mkv"
    result = cli(str(joined), "-o", str(out), "--weights", str(identity_weights(tmp_path / "id.safetensors")),
                 "--denoise", "off", "--crf", "0")
    assert result.returncode == 0, result.stderr
    assert "colour description changes" in result.stderr
    shown = as_player_shows(out)
    assert len(shown) == 24
    for got, want in zip(shown, as_player_shows(a) + as_player_shows(b)):
        error = np.abs(got.astype(int) - want)
        # the converted part goes through one more 4:2:0 chroma resampling: a few levels at
        # sharp colour edges (measured: mean 1.3, 99 % within 4, edges up to 15)
        assert error.mean() <= 1.5 and np.percentile(error, 99) <= 4


def test_pq_video_is_refused_in_one_line(tmp_path):
    src = tmp_path / "hdr10.mkv"
    make_tagged_clip(src, (320, 240), "yuv420p10le", space=9, primaries=9, transfer=16, frames=2, dark=0.3)
    result = cli(str(src), "-o", str(tmp_path / "o.mkv"))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert "HDR10 (PQ)" in lines[-1] and "Traceback" not in result.stderr
    assert not (tmp_path / "o.mkv").exists()


def test_hlg_is_enhanced_as_its_sdr_compatible_signal_and_stays_hlg(tmp_path):
    """HLG shown on an SDR BT.2020 display is its codes as they are: the HLG output, shown
    that way, is the SDR path's output for the same codes."""
    hlg, sdr = tmp_path / "hlg.mkv", tmp_path / "sdr.mkv"
    for path, transfer in ((hlg, 18), (sdr, 14)):
        make_tagged_clip(path, (320, 240), "yuv420p10le", space=9, primaries=9, transfer=transfer, frames=3, dark=0.3)
    outputs = []
    for path in (hlg, sdr):
        out = path.with_name(f"{path.stem}_out.mkv")
        result = cli(str(path), "-o", str(out), "--crf", "0", "--denoise", "off")
        assert result.returncode == 0, result.stderr
        outputs.append(out)
    assert tags(outputs[0])[3] == 18, "still tagged HLG"
    with av.open(str(outputs[0])) as a, av.open(str(outputs[1])) as b:
        for fa, fb in zip(a.decode(video=0), b.decode(video=0)):
            ya, yb = (np.frombuffer(f.planes[0], np.uint16) for f in (fa, fb))
            assert np.abs(ya.astype(int) - yb).max() <= 3 * 4  # 3 levels of 8 bits, in 10-bit codes
    with av.open(str(hlg)) as before, av.open(str(outputs[0])) as after:
        lift = [np.frombuffer(f.planes[0], np.uint16).mean() for f in (next(before.decode(video=0)),
                                                                        next(after.decode(video=0)))]
    assert lift[1] > 1.3 * lift[0], "brightened"


def test_hevc_in_mp4_is_hvc1_and_untrue_tags_are_not_copied(tmp_path):
    src = tmp_path / "tagged.mkv"
    make_tagged_clip(src, (160, 96), frames=3)
    with av.open(str(src)) as original, av.open(str(tmp_path / "lying.mkv"), "w") as out:
        stream = out.add_stream_from_template(original.streams.video[0])
        stream.metadata.update({"encoder": "Lavc61.3.100 libx265", "ALPHA_MODE": "1", "title": "kept"})
        for packet in original.demux(original.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    result = cli(str(tmp_path / "lying.mkv"), "-o", str(tmp_path / "out.mkv"), "-q")
    assert result.returncode == 0, result.stderr
    with av.open(str(tmp_path / "out.mkv")) as container:
        metadata = {k.lower(): v for k, v in container.streams.video[0].metadata.items()}
    assert "libx265" not in metadata.get("encoder", "") and "alpha_mode" not in metadata
    assert metadata.get("title") == "kept"
    result = cli(str(src), "-o", str(tmp_path / "hevc.mp4"), "--codec", "libx265", "-q")
    assert result.returncode == 0, result.stderr
    with av.open(str(tmp_path / "hevc.mp4")) as container:
        assert container.streams.video[0].codec_context.codec_tag == "hvc1"


#: The container / codec table the README states, each pair tried.
CONTAINER_CODECS = {".mp4": ["libx264", "libx265"], ".mkv": ["libx264", "libx265", "libvpx-vp9"],
                    ".mov": ["libx264", "libx265", "prores_ks"], ".webm": ["libvpx-vp9"], ".ts": ["libx264", "libx265", "mpeg2video"],
                    ".mpg": ["mpeg2video", "mpeg1video"], ".avi": ["libx264", "mpeg4"],
                    ".wmv": ["wmv2", "msmpeg4"]}


@pytest.mark.slow
@pytest.mark.parametrize("suffix", sorted(CONTAINER_CODECS))
def test_every_container_and_codec_in_the_table_writes_every_frame_and_the_sound(tmp_path, suffix):
    from helpers import make_clip, video_times

    src = tmp_path / "in.mp4"
    make_clip(src, frames=24, size=(160, 96), audio=True)
    for codec in CONTAINER_CODECS[suffix]:
        out = tmp_path / f"out_{codec}{suffix}"
        result = cli(str(src), "-o", str(out), "--codec", codec, "-q")
        assert result.returncode == 0, (codec, result.stderr)
        assert len(video_times(out)) == 24, codec
        with av.open(str(out)) as container:
            assert len(container.streams.audio) == 1, (codec, "the sound is kept")


def test_avi_declares_the_frame_rate_and_no_empty_frames(tmp_path):
    from helpers import make_clip

    src = tmp_path / "in.mp4"
    make_clip(src, frames=48, size=(160, 96), audio=True)
    out = tmp_path / "out.avi"
    result = cli(str(src), "-o", str(out), "-q")
    assert result.returncode == 0, result.stderr
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == 24 and stream.frames <= 49  # was 600 fps and 1213 slots, most of them empty
        assert sum(1 for _ in container.decode(stream)) == 48

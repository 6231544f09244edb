"""Nothing lost: damaged files, pipes, kills and odd inputs keep every frame that can be kept.

Each test builds its own hostile case; the numbers refer to the classes of issue 10.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from helpers import (
    audio_packets, cli, damage, decodable, frame_pattern, make_clip, remux, video_indices, video_times,
)
from realtime import Enhancer


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if "error:" in line or "damaged input" in line]


# --- 1. damaged packets -------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".ts"])
def test_damaged_files_keep_every_frame_a_tolerant_decoder_gets(tmp_path, suffix):
    src = tmp_path / f"clip{suffix}"
    made = make_clip(tmp_path / "whole.mp4", frames=120, size=(160, 96), audio=True)
    remux(tmp_path / "whole.mp4", src) if suffix != ".mp4" else (tmp_path / "whole.mp4").rename(src)
    damage(src, [0.3, 0.5, 0.7])
    expected_times, expected_audio = decodable(src)
    dst = tmp_path / "out.mkv"
    result = cli(str(src), "-o", str(dst), "--preset", "ultrafast", "--denoise", "off")
    written = video_times(dst)
    assert len(written) >= len(expected_times), f"{len(written)} written, a tolerant decoder gets {len(expected_times)}"
    if max(expected_times) < max(made) - 0.5:  # the demuxer could not read past the damage: the rest is lost
        assert result.returncode == 1 and "could not be read" in result.stderr, result.stderr
        return
    assert result.returncode == 0, result.stderr
    def relative_ms(times):  # Matroska keeps milliseconds (and 90 kHz times round to them either way)
        first = min(times)
        return [float(t - first) * 1000 for t in times]

    expected_ms = np.array(relative_ms(expected_times))
    assert all(np.abs(expected_ms - t).min() <= 1.0 for t in relative_ms(written)), "timestamps are the input's"
    assert len(audio_packets(dst)) >= expected_audio - 2, "audio kept"
    if len(written) < len(made):
        assert "damaged input" in result.stderr and len(error_lines(result)) == 1


# --- 2. pipes, FIFOs, stdin ---------------------------------------------------------------------------


@pytest.fixture
def ts_clip(tmp_path) -> tuple[Path, list[Fraction]]:
    times = make_clip(tmp_path / "clip.mp4", frames=120, size=(128, 72), audio=True)
    return remux(tmp_path / "clip.mp4", tmp_path / "clip.ts"), times


def test_stdin_reads_every_frame_and_audio_packet_once(tmp_path, ts_clip):
    src, times = ts_clip
    dst = tmp_path / "out.mkv"
    with src.open("rb") as stdin:
        result = subprocess.run([sys.executable, "-m", "realtime", "-", "-o", str(dst), "--preset", "ultrafast"],
                                stdin=stdin, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert video_indices(dst) == list(range(len(times)))
    assert len(audio_packets(dst)) == len(audio_packets(src))


@pytest.mark.parametrize("audio", [True, False])
def test_a_fifo_is_read_once(tmp_path, audio):
    times = make_clip(tmp_path / "clip.mp4", frames=90, size=(128, 72), audio=audio)
    src = remux(tmp_path / "clip.mp4", tmp_path / "clip.ts")
    fifo = tmp_path / "pipe.ts"
    os.mkfifo(fifo)
    dst = tmp_path / "out.mkv"
    proc = subprocess.Popen([sys.executable, "-m", "realtime", str(fifo), "-o", str(dst), "--preset", "ultrafast"],
                            stderr=subprocess.PIPE, text=True)
    with fifo.open("wb") as writer:
        writer.write(src.read_bytes())
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert video_indices(dst) == list(range(len(times)))
    assert len(audio_packets(dst)) == len(audio_packets(src))


# --- 3. truncated files --------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_truncated_files_with_audio_write_what_decodes_and_fail(tmp_path, suffix):
    whole = tmp_path / f"whole{suffix}"
    make_clip(tmp_path / "made.mp4", frames=96, size=(128, 72), audio=True)
    if suffix == ".mp4":  # the index first (faststart), so that the first half still opens
        remux(tmp_path / "made.mp4", whole, options={"movflags": "faststart"})
    else:
        remux(tmp_path / "made.mp4", whole)
    half = tmp_path / f"half{suffix}"
    half.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    expected, _ = decodable(half)
    dst = tmp_path / "out.mkv"
    result = cli(str(half), "-o", str(dst), "--preset", "ultrafast")
    assert result.returncode == 1, result.stderr
    assert "truncated" in result.stderr
    assert len(video_indices(dst)) >= len(expected) > 0

    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    half.rename(folder / half.name)
    result = cli(str(folder), "-o", str(out), "--preset", "ultrafast")
    assert result.returncode == 1 and "could not be enhanced" in result.stderr


# --- 4. the video stream a player would choose -------------------------------------------------------


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_a_still_or_cover_art_is_not_taken_for_the_video(tmp_path, suffix):
    """Matroska: a one-frame MJPEG still as the first video stream; MP4: real cover art
    (an attached picture), which is also kept in the output."""
    made = make_clip(tmp_path / "video.mp4", frames=30, size=(128, 72), audio=False)
    src = tmp_path / f"with_still{suffix}"
    cover = cv2.imencode(".jpg", np.full((64, 64, 3), 200, np.uint8))[1].tobytes()
    with av.open(str(tmp_path / "video.mp4")) as inp, av.open(str(src), "w") as out:
        art = out.add_stream("mjpeg", rate=1)
        art.width, art.height, art.pix_fmt = 64, 64, "yuvj420p"
        art.disposition = av.stream.Disposition.attached_pic
        video = out.add_stream_from_template(inp.streams.video[0])
        packet = av.Packet(cover)
        packet.stream, packet.pts, packet.dts = art, 0, 0
        out.mux(packet)
        for p in inp.demux(video=0):
            if p.dts is not None:
                p.stream = video
                out.mux(p)
    dst = tmp_path / f"out{suffix}"
    result = cli(str(src), "-o", str(dst), "--preset", "ultrafast")
    assert result.returncode == 0, result.stderr
    assert video_indices(dst) == list(range(len(made)))
    if suffix == ".mp4":
        with av.open(str(dst)) as c:
            assert any(s.disposition & av.stream.Disposition.attached_pic for s in c.streams.video), "cover art kept"


# --- 5. a hard kill of a Matroska recording ------------------------------------------------------------

#: The recording that is killed (shared with benchmarks/kill_loss.py).
RECORDING = Path(__file__).resolve().parents[1] / "benchmarks" / "recording_child.py"


@pytest.mark.slow
def test_a_hard_kill_loses_at_most_about_a_second_of_matroska(tmp_path):
    src = tmp_path / "long.mp4"
    make_clip(src, frames=400, size=(320, 180), fps=24, audio=True)
    for seconds in (1.5, 3.0):
        dst = tmp_path / f"rec{seconds}.mkv"
        proc = subprocess.Popen([sys.executable, str(RECORDING), str(src), str(dst), "ultrafast", "48"], stdout=subprocess.PIPE,
                                text=True)
        start, last = None, -1
        for line in proc.stdout:
            last = int(line)
            start = start or time.monotonic()
            if time.monotonic() - start > seconds:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        partial = dst.with_name(f"{dst.stem}.partial.mkv")
        assert not dst.exists() and partial.exists(), "a killed run leaves NAME.partial.mkv, never the final name"
        kept = video_times(partial)  # relative: Matroska shifts every stream by the audio's priming delay
        assert np.allclose([float(t - kept[0]) for t in kept], [i / 24 for i in range(len(kept))], atol=0.001)
        lost = last + 1 - len(kept)
        assert lost <= 24 * 1.2, f"{lost} frames handed to the encoder were lost ({last + 1} written, {len(kept)} kept)"


# --- 6. never destroy the input; finished outputs only --------------------------------------------------


@pytest.mark.parametrize("spelling", ["hardlink", "symlink", "dot"])
def test_the_input_under_another_name_is_refused_as_output(tmp_path, clip, spelling):
    src = tmp_path / "in.mp4"
    src.write_bytes(clip[0].read_bytes())
    before = src.read_bytes()
    alias = {"hardlink": tmp_path / "link.mp4", "symlink": tmp_path / "sym.mp4", "dot": Path(f"{tmp_path}/./in.mp4")}[spelling]
    if spelling == "hardlink":
        os.link(src, alias)
    elif spelling == "symlink":
        alias.symlink_to(src)
    result = cli(str(src), "-o", str(alias))
    assert result.returncode == 2 and "would overwrite the input" in result.stderr
    assert src.read_bytes() == before


def test_a_failed_run_leaves_the_existing_output_alone(tmp_path):
    whole = tmp_path / "whole.mp4"
    make_clip(whole, frames=48, audio=False)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(whole.read_bytes()[:2000])  # no index: nothing decodes
    dst = tmp_path / "out.mp4"
    dst.write_bytes(b"an earlier result")
    result = cli(str(broken), "-o", str(dst))
    assert result.returncode == 1
    assert dst.read_bytes() == b"an earlier result", "the output was replaced by a failed run"
    assert not list(tmp_path.glob("*.partial.*"))


def test_an_existing_output_is_replaced_only_when_the_new_one_is_finished(tmp_path, clip):
    dst = tmp_path / "out.mp4"
    dst.write_bytes(b"an earlier result")
    proc = subprocess.Popen([sys.executable, "-m", "realtime", str(clip[0]), "-o", str(dst), "--preset", "ultrafast"],
                            stderr=subprocess.PIPE, text=True)
    seen_old_while_running = False
    while proc.poll() is None:
        seen_old_while_running |= dst.exists() and dst.read_bytes() == b"an earlier result"
        time.sleep(0.01)
    assert proc.returncode == 0 and seen_old_while_running
    assert len(video_times(dst)) == len(clip[1])


# --- 7. in-place enhancement through the API -------------------------------------------------------------


def test_out_may_be_the_input_itself():
    rng = np.random.default_rng(0)
    with Enhancer(backend="cpu") as enhancer:
        frame = rng.integers(0, 60, (90, 160, 3), dtype=np.uint8)
        expected = enhancer(frame)
        assert enhancer(frame, out=frame) is frame
        np.testing.assert_array_equal(frame, expected)
        view = rng.integers(0, 60, (90, 160, 3), dtype=np.uint8)
        with pytest.raises(ValueError, match="C-contiguous"):
            enhancer(view, out=view[:, ::-1])


# --- 8. images keep alpha, depth and grey -------------------------------------------------------------------


def test_images_keep_alpha_16_bit_and_grey(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "shots"
    folder.mkdir()
    alpha = np.tile((np.arange(60) * 4).astype(np.uint8), (40, 1))
    cv2.imwrite(str(folder / "rgba.png"), np.dstack([rng.integers(0, 60, (40, 60, 3)).astype(np.uint8), alpha]))
    cv2.imwrite(str(folder / "deep.png"), (rng.integers(0, 60, (40, 60, 3)) * 257).astype(np.uint16))
    cv2.imwrite(str(folder / "grey.png"), rng.integers(0, 60, (40, 60)).astype(np.uint8))
    cv2.imwrite(str(folder / "grey_rgb.png"), np.repeat(rng.integers(0, 60, (40, 60, 1)), 3, axis=2).astype(np.uint8))
    result = cli(str(folder), "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    out = {p.stem: cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in (tmp_path / "out").iterdir()}
    assert out["rgba"].shape == (40, 60, 4) and np.array_equal(out["rgba"][..., 3], alpha)
    assert out["deep"].dtype == np.uint16 and out["deep"].max() > 255
    for name in ("grey", "grey_rgb"):
        image = out[name] if out[name].ndim == 3 else out[name][..., None].repeat(3, axis=2)
        means = image.reshape(-1, 3).mean(axis=0)
        assert means.max() - means.min() <= 1.0, f"{name}: channel means {means}"
    with Enhancer(backend="cpu") as enhancer:
        grey = rng.integers(0, 60, (40, 60)).astype(np.uint8)
        means = enhancer(grey).reshape(-1, 3).mean(axis=0)
        assert means.max() - means.min() <= 1.0
    result = cli(str(folder / "rgba.png"), "-o", str(tmp_path / "flat.jpg"))
    assert result.returncode == 0 and "no alpha" in result.stderr


# --- 9, 10. signals -----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_works_when_sigint_is_ignored(tmp_path):
    src = tmp_path / "long.mp4"
    make_clip(src, frames=600, size=(640, 480), audio=True)
    dst = tmp_path / "o.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "realtime", str(src), "-o", str(dst)], stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    partial, deadline = tmp_path / "o.partial.mp4", time.monotonic() + 60
    while time.monotonic() < deadline and (not partial.exists() or partial.stat().st_size < 2000):
        time.sleep(0.05)
    proc.terminate()
    sent = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 2.0
    assert proc.returncode == 130, err
    frames = video_indices(dst)
    assert 0 < len(frames) < 600 and frames == list(range(len(frames)))


def handles(pid: int, signum: int) -> bool:
    """Whether a process has installed a handler for a signal (Linux: SigCgt in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc to see when a handler is set")
@pytest.mark.slow
def test_ctrl_c_while_starting_is_quiet_and_truthful(tmp_path, clip):
    # The interpreter's own first milliseconds are out of any program's reach: the signal
    # is sent once the program has set its first handler, then at several points after.
    for delay in (0.0, 0.005, 0.01, 0.02, 0.035, 0.05, 0.1, 0.15, 0.3, 0.5):
        proc = subprocess.Popen([sys.executable, "-m", "realtime", str(clip[0]), "-o", str(tmp_path / "o.mp4")],
                                stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while not handles(proc.pid, signal.SIGTERM) and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert "Traceback" not in err and "ImportError" not in err, err
        assert proc.returncode in (0, 130), err  # 0: it finished before the signal came
        if proc.returncode == 130 and not (tmp_path / "o.mp4").exists():
            assert "nothing was written" in err and "plays" not in err


# --- 11. folders ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_folder_runs_resume_handle_every_kind_and_say_what_they_skip(tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    (folder / "x").mkdir(parents=True)  # a subfolder called x once broke the second run
    cv2.imwrite(str(folder / "x" / "a.png"), np.full((30, 40, 3), 20, np.uint8))
    make_clip(folder / "c.mp4", frames=6, audio=False)
    with av.open("testsrc2=size=64x48:rate=10:duration=0.5", format="lavfi") as src, \
            av.open(str(folder / "e.webm"), "w") as webm, av.open(str(folder / "f.gif"), "w") as gif:
        vp9, animated = webm.add_stream("libvpx-vp9", rate=10), gif.add_stream("gif", rate=10)
        vp9.width, vp9.height, vp9.pix_fmt = 64, 48, "yuv420p"
        animated.width, animated.height, animated.pix_fmt = 64, 48, "rgb8"
        for vf in src.decode(video=0):
            webm.mux(vp9.encode(vf.reformat(format="yuv420p")))
            gif.mux(animated.encode(vf.reformat(format="rgb8")))
        webm.mux(vp9.encode(None))
        gif.mux(animated.encode(None))
    (folder / "notes.txt").write_text("not a picture")
    result = cli(str(folder), "-o", str(out), "--preset", "ultrafast")
    assert result.returncode == 0, result.stderr
    assert "notes.txt" in result.stderr
    assert len(video_times(out / "e.webm")) == 5, "WebM gets a WebM codec (VP9)"
    assert len(video_times(out / "f.mp4")) == 5, "an animated GIF is a video"
    made = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    result = cli(str(folder), "-o", str(out), "--preset", "ultrafast")
    assert result.returncode == 0, result.stderr
    assert "already finished" in result.stderr
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == made, "a re-run redid finished files"
    result = cli(str(folder), "-o", str(out), "--preset", "ultrafast", "--overwrite")
    assert result.returncode == 0
    assert (out / "c.mp4").stat().st_mtime_ns != made[out / "c.mp4"]


@pytest.mark.slow
def test_an_interrupted_folder_run_does_not_pass_for_finished(tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    make_clip(folder / "long.mp4", frames=600, size=(640, 480), audio=False)
    proc = subprocess.Popen([sys.executable, "-m", "realtime", str(folder), "-o", str(out)], stderr=subprocess.PIPE,
                            text=True)
    partial, deadline = out / "long.partial.mp4", time.monotonic() + 60
    while time.monotonic() < deadline and (not partial.exists() or partial.stat().st_size < 2000):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert not (out / "long.mp4").exists(), "half a file under the final name would be skipped as finished"


# --- 12. containers: AVI order, interlacing -----------------------------------------------------------------------


def test_avi_output_plays_in_order(tmp_path, clip):
    dst = tmp_path / "out.avi"
    result = cli(str(clip[0]), "-o", str(dst), "--preset", "ultrafast")
    assert result.returncode == 0, result.stderr
    with av.open(str(dst)) as c:
        assert c.streams.video[0].codec_context.has_b_frames == 0
    assert video_indices(dst) == list(range(len(clip[1])))


def test_interlaced_field_order_is_kept(tmp_path):
    src = tmp_path / "interlaced.mkv"
    with av.open("testsrc2=size=128x96:rate=25:duration=0.4", format="lavfi") as lavfi, av.open(str(src), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"preset": "ultrafast", "x264-params": "tff=1"})
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        stream.codec_context.field_order = 2  # top field first
        stream.codec_context.flags |= av.codec.context.Flags.interlaced_dct | av.codec.context.Flags.interlaced_me
        for vf in lavfi.decode(video=0):
            out.mux(stream.encode(vf.reformat(format="yuv420p")))
        out.mux(stream.encode(None))
    with av.open(str(src)) as c:
        assert c.streams.video[0].codec_context.field_order > 1, "the test clip is interlaced"
    dst = tmp_path / "out.mkv"
    result = cli(str(src), "-o", str(dst), "--preset", "ultrafast")
    assert result.returncode == 0, result.stderr
    with av.open(str(dst)) as c:
        assert c.streams.video[0].codec_context.field_order > 1


# --- 13. usage errors, one line each ------------------------------------------------------------------------------


@pytest.mark.parametrize("args,message", [
    (["--crf", "99"], "--crf must be between 0 and 51"),
    (["--crf", "-1"], "--crf must be between 0 and 51"),
    (["--fps", "0"], "--fps must be positive"),
    (["--fps", "-1"], "--fps must be positive"),
    (["--preset", "nonsense"], "--preset must be one of"),
])
def test_bad_settings_are_one_line_usage_errors(tmp_path, clip, args, message):
    result = cli(str(clip[0]), "-o", str(tmp_path / "o.mp4"), *args)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr


def test_more_mistakes_are_one_clear_line(tmp_path):
    cv2.imwrite(str(tmp_path / "photo.png"), np.full((20, 30, 3), 20, np.uint8))
    result = cli(str(tmp_path / "photo.png"), "-o", str(tmp_path / "photo.mp4"))
    assert result.returncode == 2 and "an image needs an image output" in result.stderr
    start = time.monotonic()
    result = cli("rtsp://127.0.0.1:9/stream", "--no-preview", "-o", str(tmp_path / "r.mkv"), timeout=60)
    assert result.returncode == 1 and time.monotonic() - start < 20
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot be opened" in lines[0], result.stderr
    enhancer = Enhancer(backend="cpu")
    enhancer.close()
    with pytest.raises(ValueError, match="closed"):
        enhancer(np.zeros((8, 8, 3), np.uint8))


# --- 12. a file behind a URL is a file; --webcam FILE too ----------------------------------------------------


@pytest.fixture()
def http_folder(tmp_path):
    """A plain HTTP file server (with range requests, as FFmpeg seeks) over tmp_path."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.log_message = lambda *args: None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_file_behind_a_url_and_a_file_given_to_webcam_are_read_as_files(http_folder):
    folder, base = http_folder
    make_clip(folder / "la.ts", frames=50, size=(160, 96), audio=True)
    want = len(video_times(folder / "la.ts"))
    result = cli(f"{base}/la.ts", "-o", str(folder / "o.mkv"), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "read as a file" in result.stderr and "dropped" not in result.stderr
    assert len(video_times(folder / "o.mkv")) == want
    assert len(audio_packets(folder / "o.mkv")) == len(audio_packets(folder / "la.ts"))
    result = cli("--webcam", str(folder / "la.ts"), "--no-preview", "-o", str(folder / "w.mkv"), timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(video_times(folder / "w.mkv")) == want


# --- 13. raw elementary streams (what a Raspberry Pi camera or a DVR records) ----------------------------------


def raw_stream(path: Path, fmt: str, codec: str, frames: int = 60) -> Path:
    """An elementary stream without a container: packets carry no timestamps."""
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=25, options={"preset": "ultrafast", "x265-params": "log-level=error"}
                                if codec == "libx265" else {"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        for i in range(frames):
            vf = av.VideoFrame.from_ndarray(frame_pattern(i, 160, 96), format="rgb24")
            vf.pts = i
            out.mux(stream.encode(vf))
        out.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("fmt,codec", [("h264", "libx264"), ("hevc", "libx265")])
def test_raw_elementary_streams_keep_every_frame_timed_by_their_rate(tmp_path, fmt, codec):
    raw = raw_stream(tmp_path / f"cam.{fmt}", fmt, codec)
    for name, run in (("file", lambda out: cli(str(raw), "-o", str(out), "-q")),
                      ("stdin", lambda out: subprocess.run([sys.executable, "-m", "realtime", "-", "-o", str(out), "-q"],
                                                           stdin=raw.open("rb"), capture_output=True, text=True,
                                                           timeout=120))):
        out = tmp_path / f"{name}.mkv"
        result = run(out)
        assert result.returncode == 0, result.stderr
        assert video_indices(out) == list(range(60)), name
        times = [float(t) for t in video_times(out)]
        assert np.allclose(np.diff(times), 1 / 25, atol=0.002), name


# --- 14. two runs, one output name ---------------------------------------------------------------------------


def test_two_runs_on_one_output_lose_nothing_and_the_second_says_where_its_file_is(tmp_path):
    src = tmp_path / "in.mp4"
    make_clip(src, frames=240, size=(320, 240), audio=True)
    out = tmp_path / "same.mkv"
    runs = [subprocess.Popen([sys.executable, "-m", "realtime", str(src), "-o", str(out), "-q"],
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errors = [run.communicate(timeout=300)[1] for run in runs]
    codes = sorted(run.returncode for run in runs)
    assert "Traceback" not in "".join(errors)
    assert len(video_times(out)) == 240, "the final name holds one whole run's output"
    if codes == [0, 1]:  # they overlapped: the second to finish kept its own file and said so
        refused = next(e for run, e in zip(runs, errors) if run.returncode == 1).strip().splitlines()
        assert len(refused) == 1 and "written by another run meanwhile" in refused[0]
        kept = Path(refused[0].rsplit(" kept as ", 1)[1])
        assert kept != out and len(video_times(kept)) == 240
    else:
        assert codes == [0, 0]  # one finished before the other started writing


# --- 15. the picture size changes mid-stream (a camera switching resolution, recordings joined) ---------------


def ts_part(path: Path, size: tuple[int, int], first: int, frames: int, level: int | None) -> bytes:
    """An MPEG-TS recording of `frames` frames from pts `first` (25 fps): the numbered
    pattern, or a flat picture at `level`."""
    width, height = size
    with av.open(str(path), "w", format="mpegts") as out:
        stream = out.add_stream("libx264", rate=25, options={"preset": "ultrafast", "crf": "10", "bf": "0"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = stream.time_base = Fraction(1, 25)
        for i in range(first, first + frames):
            image = frame_pattern(i, width, height) if level is None else np.full((height, width, 3), level, np.uint8)
            vf = av.VideoFrame.from_ndarray(image, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, 25)
            out.mux(stream.encode(vf))
        out.mux(stream.encode(None))
    return path.read_bytes()


@pytest.mark.parametrize("first,second", [((640, 360), (320, 240)), ((320, 240), (640, 360))])
def test_a_new_picture_size_mid_stream_keeps_every_frame_and_the_whole_picture(tmp_path, first, second):
    joined = tmp_path / "joined.ts"
    joined.write_bytes(ts_part(tmp_path / "a.ts", first, 0, 50, None) + ts_part(tmp_path / "b.ts", second, 50, 50, 60))
    out = tmp_path / "out.mkv"
    result = cli(str(joined), "-o", str(out), "--denoise", "off")
    assert result.returncode == 0, result.stderr
    assert "picture size changes" in result.stderr
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 100 and all(f.shape[:2] == (first[1], first[0]) for f in frames)
    last = frames[-1].mean(axis=2)
    width, height = first
    scale = min(width / second[0], height / second[1])
    w, h = second[0] * scale, second[1] * scale
    top, left = int((height - h) / 2), int((width - w) / 2)
    inside = last[top + 4: top + int(h) - 4, left + 4: left + int(w) - 4]
    assert inside.std() < 8, "the second part fills its place evenly: the whole picture, not a corner"
    bars = np.concatenate([last[:, : max(left - 2, 0)].ravel(), last[: max(top - 2, 0)].ravel()])
    assert bars.size and bars.mean() < inside.mean() - 20


# --- 16. timestamps that jump back: MPEG-TS recordings joined (as DVRs and `cat` make) -----------------------


def ts_with_audio(path: Path, frames: int = 50) -> Path:
    """An MPEG-TS recording: the numbered pattern at 25 fps (no B-frames) and AAC audio."""
    with av.open(str(path), "w", format="mpegts") as out:
        video = out.add_stream("libx264", rate=25, options={"preset": "ultrafast", "crf": "10", "bf": "0"})
        video.width, video.height, video.pix_fmt = 160, 96, "yuv420p"
        video.codec_context.time_base = Fraction(1, 25)
        sound = out.add_stream("aac", rate=48000)
        sound.layout = "stereo"
        for i in range(frames):
            vf = av.VideoFrame.from_ndarray(frame_pattern(i, 160, 96), format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, 25)
            out.mux(video.encode(vf))
        out.mux(video.encode(None))
        samples = np.sin(np.arange(48000 * frames // 25) / 20).astype(np.float32)
        for start in range(0, len(samples), 1024):
            chunk = samples[start: start + 1024]
            af = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="fltp", layout="stereo")
            af.sample_rate, af.pts = 48000, start
            out.mux(sound.encode(af))
        out.mux(sound.encode(None))
    return path


def test_recordings_joined_continue_the_timeline_and_keep_their_audio(tmp_path):
    one = ts_with_audio(tmp_path / "s1.ts")
    joined = tmp_path / "bw.ts"
    joined.write_bytes(one.read_bytes() * 2)
    out = tmp_path / "out.mkv"
    result = cli(str(joined), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "damaged" not in result.stderr
    times = [float(t) for t in video_times(out)]
    assert len(times) == 100
    steps = np.diff(times)
    assert steps.min() > 0.03 and steps.max() < 0.1, "the second recording continues the timeline (audio sets the join)"
    assert len(audio_packets(out)) == 2 * len(audio_packets(one)), "no audio packet is dropped"


def test_audio_that_leads_the_video_keeps_its_place_across_the_join():
    """ffmpeg's MPEG-TS recordings start their audio a packet before the video, and write the
    video first: the second recording's first audio packet used to land on the first
    one's last (an MP4 then refused it as 'damaged'). Packets as a demuxer gives them."""
    from types import SimpleNamespace

    from realtime.sources import Timeline

    def recording(start: float) -> list:
        video = [(0, start + 0.0232 + i * 0.04, 0.04) for i in range(50)]
        audio = [(1, start + i * 0.0232, 0.0232) for i in range(87)]
        return [video[0]] + sorted(video[1:] + audio, key=lambda p: p[1])

    timeline, placed = Timeline(), {0: [], 1: []}
    for index, when, length in recording(1.4) + recording(1.4):
        ticks = round(when * 90000)
        packet = SimpleNamespace(pts=ticks, dts=ticks, duration=round(length * 90000),
                                 time_base=Fraction(1, 90000), stream=SimpleNamespace(index=index))
        timeline.place(packet)
        placed[index].append((packet.dts, packet.dts + packet.duration))
    for index, spans in placed.items():
        assert all(start >= end_before for (_, end_before), (start, _) in zip(spans, spans[1:])), index
    audio_to_video = placed[0][50][0] - placed[1][87][0]
    assert abs(audio_to_video - 0.0232 * 90000) < 2, "the second recording keeps its own sync"


def test_a_negative_start_is_shifted_to_zero_so_players_show_every_frame(tmp_path):
    wrapped = tmp_path / "wrap.ts"  # timestamps just below the 33-bit wrap: the stream starts before zero
    with av.open(str(wrapped), "w", format="mpegts", container_options={"output_ts_offset": "95442"}) as out:
        video = out.add_stream("libx264", rate=25, options={"preset": "ultrafast", "bf": "0"})
        video.width, video.height, video.pix_fmt = 160, 96, "yuv420p"
        video.codec_context.time_base = Fraction(1, 25)
        for i in range(50):
            vf = av.VideoFrame.from_ndarray(frame_pattern(i, 160, 96), format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, 25)
            out.mux(video.encode(vf))
        out.mux(video.encode(None))
    with av.open(str(wrapped)) as container:
        assert container.streams.video[0].start_time < 0
    out = tmp_path / "out.mp4"
    result = cli(str(wrapped), "-o", str(out))
    assert result.returncode == 0, result.stderr
    times = [float(t) for t in video_times(out)]
    assert len(times) == 50 and times[0] >= 0 and np.allclose(np.diff(times), 0.04, atol=0.002)


def test_a_raw_stream_takes_the_frame_rate_the_user_gives(tmp_path):
    raw = raw_stream(tmp_path / "cam.h264", "h264", "libx264", frames=30)
    out = tmp_path / "out.mkv"
    result = cli(str(raw), "-o", str(out), "--fps", "50", "-q")
    assert result.returncode == 0, result.stderr
    assert video_indices(out) == list(range(30))
    assert np.allclose(np.diff([float(t) for t in video_times(out)]), 1 / 50, atol=0.002)


# --- 17. images and folders: float TIFFs, names that would collide ------------------------------------------


def test_a_float_tiff_is_enhanced_and_never_stops_a_folder(tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f"p{i}.png"), np.full((30, 40, 3), 20 + i, np.uint8))
    cv2.imwrite(str(folder / "float.tif"), np.full((30, 40, 3), 0.08, np.float32))
    result = cli(str(folder), "-o", str(out), "--jobs", "1")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["float.tif", "p0.png", "p1.png", "p2.png", "p3.png"]
    enhanced = cv2.imread(str(out / "float.tif"), cv2.IMREAD_UNCHANGED)
    assert enhanced.dtype == np.uint16 and enhanced.mean() > 0.08 * 65535


def test_a_gif_and_a_video_with_one_stem_get_two_outputs(tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    make_clip(folder / "clip.mp4", frames=6, audio=False)
    with av.open("testsrc2=size=64x48:rate=10:duration=0.5", format="lavfi") as src, \
            av.open(str(folder / "clip.gif"), "w") as gif:
        stream = gif.add_stream("gif", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "rgb8"
        for vf in src.decode(video=0):
            gif.mux(stream.encode(vf.reformat(format="rgb8")))
        gif.mux(stream.encode(None))
    result = cli(str(folder), "-o", str(out), "--jobs", "1")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["clip.gif.mp4", "clip.mp4"]
    assert len(video_times(out / "clip.mp4")) == 6 and len(video_times(out / "clip.gif.mp4")) == 5


def test_an_output_name_at_the_filesystems_limit_still_gets_its_partial(tmp_path, clip):
    out = tmp_path / ("n" * 250 + ".mkv")
    result = cli(str(clip[0]), "-o", str(out), "-q")
    assert result.returncode == 0, result.stderr
    assert len(video_times(out)) == len(clip[1])


def test_export_mistakes_are_one_line(tmp_path):
    folder = tmp_path / "model.onnx"
    folder.mkdir()
    for args, code in ((["export", str(folder)], 1), (["export", str(tmp_path / "m.onnx"), "--bogus"], 2)):
        result = cli(*args)
        assert result.returncode == code and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert list(tmp_path.iterdir()) == [folder], "nothing left behind"


@pytest.mark.parametrize("suffix", [".ppm", ".jfif"])
def test_more_image_names_are_images(tmp_path, suffix):
    src = tmp_path / f"dark{suffix}"
    ok, data = cv2.imencode(".ppm" if suffix == ".ppm" else ".jpg", np.full((30, 40, 3), 25, np.uint8))
    data.tofile(str(src))
    out = tmp_path / f"bright{suffix}"
    result = cli(str(src), "-o", str(out), "-q")
    assert result.returncode == 0, result.stderr
    assert cv2.imdecode(np.fromfile(str(out), np.uint8), cv2.IMREAD_COLOR).mean() > 40


# --- 18. audio the output container cannot hold is re-encoded, not dropped ---------------------------------


def test_aac_into_webm_is_re_encoded_not_dropped(tmp_path):
    src = tmp_path / "in.mp4"
    make_clip(src, frames=48, size=(160, 96), audio=True)
    out = tmp_path / "out.webm"
    result = cli(str(src), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "re-encoded as libopus" in result.stderr

    def seconds(path: Path) -> float:
        with av.open(str(path)) as container:
            return sum(f.samples / f.sample_rate for f in container.decode(audio=0))

    with av.open(str(out)) as container:
        assert [s.codec_context.name for s in container.streams.audio] == ["opus"]
    assert abs(seconds(out) - seconds(src)) < 0.1


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_chapters_survive(tmp_path, suffix):
    src = tmp_path / "chapters.mkv"
    with av.open(str(src), "w") as out:
        video = out.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = 160, 96, "yuv420p"
        out.set_chapters([{"id": i + 1, "start": i * 1000, "end": (i + 1) * 1000, "time_base": Fraction(1, 1000),
                           "metadata": {"title": title}} for i, title in enumerate(("One", "Two"))])
        for i in range(50):
            vf = av.VideoFrame.from_ndarray(frame_pattern(i, 160, 96), format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, 25)
            out.mux(video.encode(vf))
        out.mux(video.encode(None))
    dst = tmp_path / f"out{suffix}"
    result = cli(str(src), "-o", str(dst), "-q")
    assert result.returncode == 0, result.stderr
    with av.open(str(dst)) as container:
        chapters = container.chapters()
    assert [c["metadata"].get("title") for c in chapters] == ["One", "Two"]
    assert [float(c["start"] * c["time_base"]) for c in chapters] == [0.0, 1.0]


# --- 19. phone photos: EXIF orientation, EXIF and ICC -------------------------------------------------------


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_phone_photos_come_out_upright_with_their_exif_and_icc(tmp_path, orientation):
    from PIL import Image, ImageCms, ImageOps

    from helpers import identity_weights

    pixels = np.zeros((48, 64, 3), np.uint8)
    pixels[:12, :20] = (220, 40, 40)  # a mark in one corner says which way is up
    pixels[24:] = (30, 30, 90)
    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = orientation, "TestCam"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "phone.jpg"
    Image.fromarray(pixels).save(src, exif=exif.tobytes(), icc_profile=icc, quality=95)
    weights = identity_weights(tmp_path / "id.safetensors")
    for suffix in (".jpg", ".png"):
        out = tmp_path / f"out{suffix}"
        result = cli(str(src), "-o", str(out), "--weights", str(weights), "-q")
        assert result.returncode == 0, result.stderr
        with Image.open(src) as before, Image.open(out) as after:
            want = np.asarray(ImageOps.exif_transpose(before).convert("RGB"), dtype=int)
            got = np.asarray(after.convert("RGB"), dtype=int)
            assert got.shape == want.shape and np.abs(got - want).mean() < 4, suffix
            tags = after.getexif()
            assert tags.get(0x0112, 1) == 1 and tags.get(0x010F) == "TestCam", suffix
            assert after.info.get("icc_profile") == icc, suffix


def test_images_holding_many_pictures_are_refused_in_one_line_never_cut_to_one(tmp_path):
    from PIL import Image

    frames = [Image.fromarray(np.full((24, 32, 3), 10 * i, np.uint8)) for i in range(20)]
    apng, tiff = tmp_path / "anim.png", tmp_path / "pages.tif"
    frames[0].save(apng, save_all=True, append_images=frames[1:], duration=50)
    frames[0].save(tiff, save_all=True, append_images=frames[1:3])
    for src, count in ((apng, 20), (tiff, 3)):
        result = cli(str(src), "-o", str(tmp_path / f"out{src.suffix}"))
        assert result.returncode == 1
        lines = [line for line in result.stderr.strip().splitlines() if "backend" not in line and "frames at" not in line]
        assert len(lines) == 1 and f"holds {count} pictures" in lines[0], result.stderr
        assert not (tmp_path / f"out{src.suffix}").exists()


def test_a_plain_run_carries_no_native_library_chatter(tmp_path, clip):
    import av as pyav

    if "libsvtav1" not in pyav.codecs_available:
        pytest.skip("this FFmpeg build has no SVT-AV1")
    result = cli(str(clip[0]), "-o", str(tmp_path / "o.mkv"), "--codec", "libsvtav1", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


# --- 21. what travels with a file: streams, tags, timing, names -------------------------------------------


def _clip_with(path: Path, video: str = "libx264", audio: str | None = None, frames: int = 25,
               size: tuple[int, int] = (96, 64), options: dict | None = None) -> None:
    """A clip of `frames` pattern frames at 25 fps in any container, with `audio` (an encoder
    name) of one second of a 440 Hz tone."""
    with av.open(str(path), "w", **(options or {})) as out:
        v = out.add_stream(video, rate=25)
        v.width, v.height, v.pix_fmt = *size, "yuv420p"
        a = out.add_stream(audio, rate=48000) if audio else None
        if a is not None:
            a.bit_rate = 128_000  # WMA takes no default
        for i in range(frames):
            vf = av.VideoFrame.from_ndarray(frame_pattern(i, *size), format="rgb24")
            vf.pts = i
            out.mux(v.encode(vf))
        out.mux(v.encode(None))
        if a is not None:
            resampler = av.AudioResampler(format=a.format.name, layout="stereo", rate=48000, frame_size=a.frame_size or None)
            tone = np.sin(2 * np.pi * 440 * np.arange(48000) / 48000).astype(np.float32)
            af = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
            af.sample_rate, af.pts = 48000, 0
            for chunk in [*resampler.resample(af), *resampler.resample(None)]:
                out.mux(a.encode(chunk))
            out.mux(a.encode(None))


def _audio_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        return sum(f.samples / f.sample_rate for f in container.decode(audio=0))


def test_windows_media_keeps_its_sound_and_plays_in_order(tmp_path):
    src = tmp_path / "in.wmv"
    _clip_with(src, "wmv2", "wmav2")
    out = tmp_path / "out.mkv"  # WMA cannot go into Matroska as it is: it is re-encoded
    result = cli(str(src), "-o", str(out), "-q")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert abs(_audio_seconds(out) - _audio_seconds(src)) < 0.1
    wmv = tmp_path / "out.wmv"
    assert cli(str(src), "-o", str(wmv), "-q").returncode == 0
    with av.open(str(wmv)) as container:
        times = [f.pts for f in container.decode(video=0)]
    assert len(times) == 25 and None not in times and times == sorted(set(times)), times


def test_opus_into_quicktime_is_re_encoded_not_refused(tmp_path):
    src = tmp_path / "in.mkv"
    _clip_with(src, audio="libopus")
    out = tmp_path / "out.mov"
    result = cli(str(src), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "re-encoded as aac" in result.stderr
    with av.open(str(out)) as container:
        assert [s.codec_context.name for s in container.streams.audio] == ["aac"]
    refused = cli(str(src), "-o", str(tmp_path / "vp9.mov"), "--codec", "libvpx-vp9")
    assert refused.returncode == 1 and "cannot hold libvpx-vp9" in refused.stderr, refused.stderr


def _rich_mkv(tmp_path: Path) -> Path:
    """H.264 + AAC (German) + SRT subtitles (French) + a second video stream + a font."""
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,200 --> 00:00:00,600\nHello\n\n2\n00:00:00,700 --> 00:00:00,900\nWorld\n")
    main, second = tmp_path / "main.mp4", tmp_path / "second.mp4"  # MP4: every packet has its decode time
    _clip_with(main, audio="aac")
    _clip_with(second, size=(48, 32))
    src = tmp_path / "rich.mkv"
    with av.open(str(main)) as a, av.open(str(second)) as b, av.open(str(srt)) as s, av.open(str(src), "w") as out:
        inputs = [a.streams.video[0], a.streams.audio[0], s.streams[0], b.streams.video[0]]
        targets = {id(st): out.add_stream_from_template(st) for st in inputs}
        targets[id(inputs[1])].metadata["language"], targets[id(inputs[2])].metadata["language"] = "ger", "fre"
        out.add_attachment("font.ttf", "font/ttf", b"not really a font")
        packets = [p for container in (a, s, b) for p in container.demux() if p.dts is not None]
        for packet in sorted(packets, key=lambda p: p.dts * p.time_base):
            packet.stream = targets[id(packet.stream)]
            out.mux(packet)
    return src


def _streams(path: Path) -> list[tuple[str, str, str | None]]:
    with av.open(str(path)) as container:
        return [(s.type, s.codec_context.name if s.type != "attachment" else s.name, s.metadata.get("language"))
                for s in container.streams]


def test_subtitles_languages_attachments_and_a_second_video_travel(tmp_path):
    src = _rich_mkv(tmp_path)
    out = tmp_path / "out.mkv"
    result = cli(str(src), "-o", str(out), "-q")
    assert result.returncode == 0, result.stderr
    assert _streams(out)[1:] == [("audio", "aac", "ger"), ("subtitle", "srt", "fre"), ("video", "h264", None),
                                 ("attachment", "font.ttf", None)]
    with av.open(str(out)) as container:
        assert len(list(container.decode(video=1))) == 25, "the second video stream is whole"
    mp4 = tmp_path / "out.mp4"
    result = cli(str(src), "-o", str(mp4))
    assert result.returncode == 0, result.stderr
    assert "converted to mov_text" in result.stderr and "font.ttf" in result.stderr  # the attachment is named
    assert [(t, c, lang) for t, c, lang in _streams(mp4)][1:3] == [("audio", "aac", "ger"), ("subtitle", "mov_text", "fre")]
    with av.open(str(mp4)) as container:
        texts = [bytes(p)[2:] for p in container.demux(subtitles=0) if p.size > 2]  # gaps are empty samples
    assert texts == [b"Hello", b"World"]


def _psi_packet(pid: int, section: bytes) -> bytes:
    """One transport stream packet carrying a PSI section (CRC left as zeros)."""
    body = bytes([0]) + section  # the pointer field
    return bytes([0x47, 0x40 | pid >> 8, pid & 0xFF, 0x10]) + body + b"\xff" * (184 - len(body))


def _section(table: int, number: int, body: bytes) -> bytes:
    length = 5 + len(body) + 4
    return bytes([table, 0xB0 | length >> 8, length & 0xFF, number >> 8, number & 0xFF, 0xC1, 0, 0]) + body + bytes(4)


def test_the_programs_of_a_transport_stream_are_read_from_its_tables(tmp_path):
    from realtime.mpegts import programs

    pat = _section(0, 1, bytes([0, 0, 0xE0, 0x10]) + bytes([0, 1, 0xE1, 0x00]) + bytes([0, 2, 0xE2, 0x00]))

    def pmt(number: int, pids: list[int]) -> bytes:
        streams = b"".join(bytes([0x1B, 0xE0 | p >> 8, p & 0xFF, 0xF0, 0]) for p in pids)
        return _section(2, number, bytes([0xE0 | pids[0] >> 8, pids[0] & 0xFF, 0xF0, 0]) + streams)

    ts = tmp_path / "two.ts"
    ts.write_bytes(_psi_packet(0, pat) + _psi_packet(0x100, pmt(1, [0x101, 0x102])) +
                   _psi_packet(0x200, pmt(2, [0x201, 0x202])) + _psi_packet(0x1FFF, b""))
    assert programs(ts) == {1: {0x101, 0x102}, 2: {0x201, 0x202}}
    m2ts = tmp_path / "two.m2ts"  # Blu-ray's 192-byte packets
    m2ts.write_bytes(b"".join(bytes(4) + ts.read_bytes()[k : k + 188] for k in range(0, 4 * 188, 188)))
    assert programs(m2ts) == programs(ts)
    assert programs(tmp_path / "missing.ts") == {} and programs(_rich_mkv(tmp_path)) == {}


@pytest.mark.skipif(not __import__("shutil").which("ffmpeg"), reason="needs the ffmpeg command to make two programs")
def test_one_program_of_a_multi_program_stream_with_its_own_audio(tmp_path):
    src = tmp_path / "two.ts"
    lavfi = ["-f", "lavfi", "-i"]
    subprocess.run(["ffmpeg", "-v", "error", *lavfi, "testsrc2=s=96x64:r=25:d=1", *lavfi, "sine=f=440:d=1",
                    *lavfi, "testsrc=s=96x64:r=25:d=1", *lavfi, "sine=f=880:d=1", "-map", "0", "-map", "1",
                    "-map", "2", "-map", "3", "-c:v", "libx264", "-c:a", "aac", "-program", "title=A:st=0:st=1",
                    "-program", "title=B:st=2:st=3", str(src)], check=True)
    out = tmp_path / "out.mkv"
    assert cli(str(src), "-o", str(out), "-q").returncode == 0
    assert [t for t, _, _ in _streams(out)] == ["video", "audio"]


def test_an_edit_list_is_not_called_damage(tmp_path):
    made = tmp_path / "made.mp4"
    make_clip(made, frames=48, audio=False)
    src = tmp_path / "cut.mp4"  # what `ffmpeg -ss ... -c copy` makes: packets before 0, hidden by an edit list
    with av.open(str(made)) as inp, av.open(str(src), "w") as out:
        video = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(video=0):
            if packet.dts is not None:
                packet.pts, packet.dts, packet.stream = packet.pts - 20, packet.dts - 20, video
                out.mux(packet)
    with av.open(str(src)) as container:
        assert any(p.is_discard for p in container.demux(video=0)), "the case: a packet the edit list hides"
    result = cli(str(src), "-o", str(tmp_path / "out.mp4"))
    assert result.returncode == 0 and "damaged" not in result.stderr, result.stderr


def test_stdin_mp4_with_its_index_at_the_end_says_so(tmp_path):
    src = tmp_path / "in.mp4"  # noise: larger than what FFmpeg's input buffer holds, so the pipe cannot seek
    rng = np.random.default_rng(0)
    with av.open(str(src), "w") as out:
        v = out.add_stream("libx264", rate=25, options={"preset": "ultrafast", "crf": "0"})
        v.width, v.height, v.pix_fmt = 320, 240, "yuv420p"
        for i in range(25):
            vf = av.VideoFrame.from_ndarray(rng.integers(0, 256, (240, 320, 3), np.uint8), format="rgb24")
            vf.pts = i
            out.mux(v.encode(vf))
        out.mux(v.encode(None))
    assert src.stat().st_size > 2 << 20
    result = cli("-", "-o", str(tmp_path / "out.mkv"), stdin=src.open("rb"))
    assert result.returncode == 1
    assert error_lines(result) == [l for l in result.stderr.splitlines() if "index at its end" in l], result.stderr
    assert len(error_lines(result)) == 1


def test_mp4_into_a_fifo_is_fragmented_and_plays(tmp_path, clip):
    fifo = tmp_path / "out.mp4"
    os.mkfifo(fifo)
    run = subprocess.Popen([sys.executable, "-m", "realtime", str(clip[0]), "-o", str(fifo), "-q"],
                           stderr=subprocess.PIPE, text=True)
    data = fifo.read_bytes()
    assert run.wait(60) == 0, run.stderr.read()
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(data)
    assert video_indices(copy) == list(range(len(clip[1])))


def test_a_folder_in_the_partials_place_is_stepped_around(tmp_path, clip):
    out = tmp_path / "out.mp4"
    (tmp_path / "out.partial.mp4").mkdir()
    result = cli(str(clip[0]), "-o", str(out), "-q")
    assert result.returncode == 0, result.stderr
    assert video_indices(out) == list(range(len(clip[1]))) and (tmp_path / "out.partial.mp4").is_dir()


def test_tga_images_are_read_and_written(tmp_path):
    from PIL import Image

    src = tmp_path / "dark.tga"
    Image.fromarray(np.full((30, 40, 4), (25, 20, 15, 200), np.uint8)).save(src)
    for out in (tmp_path / "bright.tga", tmp_path / "bright.png"):
        result = cli(str(src), "-o", str(out), "-q")
        assert result.returncode == 0, result.stderr
        with Image.open(out) as image:
            assert image.mode == "RGBA" and np.asarray(image)[..., :3].mean() > 40
            assert (np.asarray(image)[..., 3] == 200).all(), "alpha kept"

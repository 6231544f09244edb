"""The command line as a user meets it: exit codes, one-line errors, real outputs."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers import audio_packets, cli, make_clip, video_indices, video_means, video_times


def one_line_error(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("usage:")]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_video_file_end_to_end(clip, tmp_path):
    src, times = clip
    dst = tmp_path / "bright.mp4"
    result = cli(str(src), "-o", str(dst), "--preset", "ultrafast")
    assert result.returncode == 0, result.stderr
    assert video_times(dst) == times
    assert video_indices(dst) == list(range(len(times)))
    assert audio_packets(dst) == audio_packets(src)
    assert np.mean(video_means(dst)) > 1.5 * np.mean(video_means(src))


def test_default_output_name_and_side_by_side(clip, tmp_path):
    src, times = clip
    copy = tmp_path / "night.mp4"
    copy.write_bytes(src.read_bytes())
    result = cli(str(copy), "--side-by-side", "-q")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "night_enhanced.mp4"
    import av

    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.width == 2 * 96


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["missing.mp4"], 1, "no such file"),
        (["--no-such-option"], 2, "unrecognized arguments"),
        ([], 2, "give an input"),
        (["--backend", "tpu", "x.mp4"], 2, "invalid choice"),
        (["--size", "big", "--webcam", "0"], 2, "WIDTHxHEIGHT"),
        (["--weights", "nope.pt", "--demo", "-o", "d.mp4"], 1, "nope.pt: no such checkpoint"),
        (["--demo", "-o", "d.mp4", "--codec", "nope"], 1, "encoder 'nope' is not available"),
        (["--demo", "-o", "d.xyz"], 1, "cannot write this kind of file"),
    ],
)
def test_usage_and_input_errors(args, code, message, tmp_path):
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == code
    assert message in one_line_error(result)


def test_text_file_named_mp4(tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video\n" * 10)
    result = cli(str(fake), "-o", str(tmp_path / "o.mp4"))
    assert result.returncode == 1
    assert "not a readable video" in one_line_error(result)


def test_truncated_file_writes_what_decodes_and_reports_it(tmp_path):
    src = tmp_path / "whole.mkv"  # Matroska streams: its first half still opens
    make_clip(src, frames=48, audio=False)
    half = tmp_path / "half.mkv"
    half.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    dst = tmp_path / "o.mp4"
    result = cli(str(half), "-o", str(dst))
    assert result.returncode == 1
    assert "error: " in result.stderr and "(truncated)" in result.stderr
    assert "Traceback" not in result.stderr
    written = video_indices(dst)
    assert 0 < len(written) < 48 and written == list(range(len(written)))


def test_truncated_mp4_is_a_one_line_error(tmp_path):
    src = tmp_path / "whole.mp4"  # the index (moov) is written at the end
    make_clip(src, frames=48, audio=False)
    half = tmp_path / "half.mp4"
    half.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    result = cli(str(half), "-o", str(tmp_path / "o.mp4"))
    assert result.returncode == 1
    assert "truncated MP4/MOV" in one_line_error(result)


def test_output_in_missing_directory(clip, tmp_path):
    result = cli(str(clip[0]), "-o", str(tmp_path / "nope" / "o.mp4"))
    assert result.returncode == 1
    assert "does not exist" in one_line_error(result)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write to read-only directories")
def test_output_in_read_only_directory(clip, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    result = cli(str(clip[0]), "-o", str(locked / "o.mp4"))
    assert result.returncode == 1
    assert "not writable" in one_line_error(result)


def test_read_only_output_file_is_one_line_error(clip, tmp_path):
    # Works as root too: a directory where the output file should be.
    target = tmp_path / "o.mp4"
    target.mkdir()
    result = cli(str(clip[0]), "-o", str(target))
    assert result.returncode == 1
    assert "is a directory" in one_line_error(result)


def test_missing_webcam_fails_fast():
    start = time.monotonic()
    result = cli("--webcam", "7", "--no-preview", "-o", "x.mp4", timeout=30)
    assert time.monotonic() - start < 5 + 5  # process start-up included
    assert result.returncode == 1
    assert "camera 7" in one_line_error(result)


def interrupt_halfway(tmp_path, send) -> tuple[subprocess.Popen, str, float]:
    """Start a long run, wait until output is being written, call send(proc); return the
    finished process, its stderr and the seconds from the signal to its exit."""
    src = tmp_path / "long.mp4"
    make_clip(src, frames=600, size=(640, 480), audio=True)
    proc = subprocess.Popen([sys.executable, "-m", "realtime", str(src), "-o", str(tmp_path / "o.mp4")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, partial = time.monotonic() + 60, tmp_path / "o.partial.mp4"  # written there until finished
    while time.monotonic() < deadline and (not partial.exists() or partial.stat().st_size < 2000):
        time.sleep(0.05)
    send(proc)
    sent = time.monotonic()
    _, err = proc.communicate(timeout=30)
    return proc, err, time.monotonic() - sent


@pytest.mark.slow
def test_sigint_halfway_leaves_a_playable_file(tmp_path):
    proc, err, seconds = interrupt_halfway(tmp_path, lambda p: p.send_signal(signal.SIGINT))
    assert seconds < 2.0
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    reported = int(re.search(r"interrupted after (\d+) frames", err).group(1))
    frames = video_indices(tmp_path / "o.mp4")
    assert 0 < reported <= len(frames) < 600 and frames == list(range(len(frames)))


@pytest.mark.slow
def test_sigterm_also_stops_cleanly(tmp_path):
    proc, err, seconds = interrupt_halfway(tmp_path, lambda p: p.terminate())
    assert proc.returncode == 130, err
    assert seconds < 2.0 and len(video_times(tmp_path / "o.mp4")) > 0


@pytest.mark.slow
def test_sighup_closing_the_terminal_stops_cleanly_with_129(tmp_path):
    proc, err, seconds = interrupt_halfway(tmp_path, lambda p: p.send_signal(signal.SIGHUP))
    assert proc.returncode == 129, err
    assert "Traceback" not in err
    frames = video_indices(tmp_path / "o.mp4")
    assert seconds < 2.0 and 0 < len(frames) < 600 and frames == list(range(len(frames)))


def test_sighup_while_starting_also_exits_129(tmp_path):
    """A terminal closed while the heavy imports run (the signal is held until they end)."""
    src = tmp_path / "in.mp4"
    make_clip(src, frames=10, size=(160, 96), audio=False)
    proc = subprocess.Popen([sys.executable, "-m", "realtime", str(src), "-o", str(tmp_path / "o.mp4")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)  # past the interpreter's start (our handlers are set), inside the imports
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 129, err
    assert "Traceback" not in err


def test_a_run_started_with_nohup_outlives_its_terminal(tmp_path):
    """nohup starts a run with SIGHUP ignored so that closing the terminal does not stop it:
    a hang-up while it starts and one while it writes change nothing."""
    src = tmp_path / "in.mp4"
    make_clip(src, frames=120, size=(640, 480), audio=False)
    proc = subprocess.Popen([sys.executable, "-m", "realtime", str(src), "-o", str(tmp_path / "o.mp4")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    time.sleep(0.3)  # inside the imports, where stop signals are held
    proc.send_signal(signal.SIGHUP)
    partial, deadline = tmp_path / "o.partial.mp4", time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and not partial.exists():
        time.sleep(0.02)
    proc.send_signal(signal.SIGHUP)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert video_indices(tmp_path / "o.mp4") == list(range(120))


def start_folder_run(tmp_path, *extra: str) -> tuple[subprocess.Popen, Path]:
    """A folder of eight clips run with two workers; returns once the first output is finished."""
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for i in range(8):
        make_clip(folder / f"c{i}.mp4", frames=150 if i else 20, size=(320, 240), audio=False)
    proc = subprocess.Popen([sys.executable, "-m", "realtime", str(folder), "-o", str(out), "--jobs", "2", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not finished_outputs(out) and proc.poll() is None:
        time.sleep(0.05)
    return proc, out


def finished_outputs(out: Path) -> list[Path]:
    return sorted(p for p in out.glob("c*.mp4") if ".partial" not in p.name)


def children(pid: int) -> list[int]:
    """Every process whose parent is `pid` (Linux /proc)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.append(int(status.parent.name))
    return found


@pytest.mark.slow
def test_ctrl_c_in_a_folder_run_says_what_was_finished(tmp_path):
    proc, out = start_folder_run(tmp_path)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    finished = finished_outputs(out)
    assert finished and "nothing was written" not in err and "Traceback" not in err and "Exception" not in err, err
    assert str(finished[0].name) in err or f"{len(finished)} files were finished" in err


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
@pytest.mark.slow
def test_workers_end_with_their_parent_even_on_sigkill(tmp_path):
    proc, _ = start_folder_run(tmp_path)
    workers = children(proc.pid)
    assert workers, "the run has worker processes"
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 2
    alive = workers
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [pid for pid in workers if Path(f"/proc/{pid}").exists()
                 and "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()]
    assert not alive, f"still running 2 s after their parent was killed: {alive}"


@pytest.mark.slow
def test_image_and_folder_modes(tmp_path):
    shots = tmp_path / "shots"
    (shots / "sub").mkdir(parents=True)
    dark = np.full((40, 60, 3), 20, np.uint8)
    cv2.imwrite(str(shots / "a.png"), dark)
    cv2.imwrite(str(shots / "sub" / "b.jpg"), dark)
    (shots / "broken.jpg").write_bytes(b"not an image")
    make_clip(shots / "sub" / "c.mp4", frames=6, audio=False)

    result = cli(str(shots / "a.png"), "-o", str(tmp_path / "a_out.png"))
    assert result.returncode == 0, result.stderr
    assert cv2.imread(str(tmp_path / "a_out.png")).mean() > 40

    out = tmp_path / "out"
    result = cli(str(shots), "-o", str(out))
    assert result.returncode == 1, "an unreadable file makes the run fail at the end"
    assert "broken.jpg" in result.stderr and "Traceback" not in result.stderr
    assert cv2.imread(str(out / "a.png")).mean() > 40
    assert cv2.imread(str(out / "sub" / "b.jpg")).mean() > 40
    assert len(video_times(out / "sub" / "c.mp4")) == 6


@pytest.mark.slow
def test_demo_needs_no_media(tmp_path):
    result = cli("--demo", "-o", str(tmp_path / "demo.mp4"), "-q")
    assert result.returncode == 0, result.stderr
    times = video_times(tmp_path / "demo.mp4")
    assert len(times) == 120


def test_help_shows_examples():
    result = cli("--help")
    assert result.returncode == 0
    assert "--webcam" in result.stdout and "examples:" in result.stdout


def test_a_video_file_named_like_a_camera_index_is_a_file(tmp_path, clip):
    named = tmp_path / "2024"
    named.write_bytes(clip[0].read_bytes())
    result = cli("2024", "-o", str(tmp_path / "o.mp4"), "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(video_times(tmp_path / "o.mp4")) == len(clip[1])

"""Beyond one pipeline: folders in worker processes (--jobs) and on Ray (--ray)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from helpers import audio_packets, cli, make_clip, video_times


def decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray() for f in container.decode(video=0)]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clips")
    for i in range(8):
        make_clip(root / f"clip{i}.mp4", frames=24 + 4 * i, size=(128, 72), audio=True)
    (root / "broken.mp4").write_bytes(b"not a video at all")
    return root


@pytest.mark.slow
def test_jobs_write_what_a_serial_run_writes_and_report_failures(folder, tmp_path):
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    for out, jobs in ((serial, "1"), (parallel, "2")):
        result = cli(str(folder), "-o", str(out), "--jobs", jobs, "--crf", "0", "--preset", "ultrafast", timeout=300)
        assert result.returncode == 1, result.stderr  # the broken file
        assert "broken.mp4" in result.stderr and "Traceback" not in result.stderr
    for i in range(8):
        name = f"clip{i}.mp4"
        assert video_times(parallel / name) == video_times(serial / name)
        assert audio_packets(parallel / name) == audio_packets(folder / name)
        for a, b in zip(decoded(parallel / name), decoded(serial / name)):
            np.testing.assert_array_equal(a, b)
    assert not (parallel / "broken.mp4").exists()


def need_ray() -> None:
    pytest.importorskip("ray", reason='needs the ray extra (pip install ".[ray]" in the checkout)')


#: Made importable in Ray's workers through PYTHONPATH: the first attempt of chunk 1's
#: part file fails, once (the marker file says it happened), so the test sees Ray retry it.
FAIL_ONCE = """
import os
import subprocess
import sys
from pathlib import Path

marker = os.environ.get("TEST_FAIL_CHUNK_ONCE")
if marker:
    import realtime.sinks as sinks

    opened = sinks.VideoFileSink.__init__

    def failing_once(self, path, *args, **kwargs):
        if ".part0001." in str(path) and not Path(marker).exists():
            Path(marker).touch()
            raise RuntimeError("a simulated failure of chunk 1's first attempt")
        opened(self, path, *args, **kwargs)

    sinks.VideoFileSink.__init__ = failing_once
"""


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("long") / "three_minutes.mp4"
    make_clip(path, frames=1800, size=(128, 72), fps=10, audio=True)  # 180 s, keyframes every 25 s
    return path


def test_recordings_joined_end_to_end_are_one_task_not_chunks(long_clip, tmp_path):
    """`cat a.ts a.ts`: times repeat, so time-based chunks would take the second half's
    frames for the first's (and drop half the audio); such a file is one task."""
    from helpers import remux
    from realtime.distributed import chunk_starts

    once = remux(long_clip, tmp_path / "once.ts")
    joined = tmp_path / "joined.ts"
    joined.write_bytes(once.read_bytes() * 2)
    assert len(chunk_starts(str(once))) >= 3
    assert len(chunk_starts(str(joined))) == 1


@pytest.mark.slow
def test_a_long_file_on_ray_is_chunked_retried_and_joined_exactly(long_clip, tmp_path):
    need_ray()
    from realtime.distributed import chunk_starts

    assert len(chunk_starts(str(long_clip))) >= 3
    single, joined = tmp_path / "single.mp4", tmp_path / "joined.mp4"
    result = cli(str(long_clip), "-o", str(single), "--crf", "0", "--preset", "ultrafast", "-q", timeout=300)
    assert result.returncode == 0, result.stderr
    marker = tmp_path / "chunk1-failed-once"
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(FAIL_ONCE)
    pythonpath = os.pathsep.join(filter(None, [str(hook), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "TEST_FAIL_CHUNK_ONCE": str(marker), "PYTHONPATH": pythonpath}
    result = cli(str(long_clip), "-o", str(joined), "--ray", "--crf", "0", "--preset", "ultrafast", timeout=600,
                 env=env)
    assert result.returncode == 0, result.stderr
    assert marker.exists(), "the first attempt of chunk 1 failed, and was retried"
    assert video_times(joined) == video_times(long_clip)
    assert audio_packets(joined) == audio_packets(long_clip)
    worst = max(int(np.abs(a.astype(int) - b).max()) for a, b in zip(decoded(joined), decoded(single)))
    assert worst <= 1
    assert not list(tmp_path.glob(".joined.part*")), "the parts are removed after the join"


@pytest.mark.slow
def test_a_folder_on_ray(folder, tmp_path):
    need_ray()
    out = tmp_path / "out"
    result = cli(str(folder), "-o", str(out), "--ray", "--preset", "ultrafast", timeout=600)
    assert result.returncode == 1 and "broken.mp4" in result.stderr  # reported, the others written
    for i in range(8):
        assert video_times(out / f"clip{i}.mp4") == video_times(folder / f"clip{i}.mp4")


def test_ray_missing_is_a_clear_error(tmp_path, folder):
    result = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['ray'] = None; from realtime.__main__ import run; sys.exit(run())",
         str(folder), "-o", str(tmp_path / "out"), "--ray"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("realtime-enhance: error: --ray needs Ray: pip install") and "[ray]" in lines[-1]
    assert "Traceback" not in result.stderr

"""The house rules that keep the code easy to change: no import circle among the package's
modules (function-local imports included), nothing but `__main__` imports the command
line, the command line stays thin."""
from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "realtime"
#: The command line in a Python where PyTorch cannot be imported (as after a plain `pip install .`).
WITHOUT_TORCH = "import sys; sys.modules['torch'] = None; from realtime.__main__ import run; sys.exit(run())"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """module -> the package's modules it imports, anywhere in its body."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                target = f"{base}.{node.module}" if node.level and node.module else base if node.level else node.module
                found.add(target)
                found.update(f"{target}.{alias.name}" for alias in node.names)  # `from . import x`
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = found
    modules = set(graph)
    return {name: {t for t in targets if t in modules and t != name} for name, targets in graph.items()}


def test_no_import_circle():
    graph = imports()
    # a package's __init__ and its own submodules may import each other
    edges = {a: {b for b in targets if not (b.startswith(a + ".") or a.startswith(b + "."))}
             for a, targets in graph.items()}
    seen, stack, cycles = set(), [], []

    def visit(node: str) -> None:
        if node in stack:
            cycles.append(stack[stack.index(node):] + [node])
            return
        if node in seen:
            return
        seen.add(node)
        stack.append(node)
        for target in sorted(edges[node]):
            visit(target)
        stack.pop()

    for module in sorted(edges):
        visit(module)
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_only_main_imports_the_command_line():
    importers = sorted(name for name, targets in imports().items() if "realtime.cli" in targets)
    assert importers == ["realtime.__main__"]


def test_the_command_line_is_thin():
    assert len((PACKAGE / "cli.py").read_text().splitlines()) <= 300


@pytest.mark.slow
def test_the_default_paths_run_without_pytorch(tmp_path):
    demo = tmp_path / "demo.mp4"
    result = subprocess.run([sys.executable, "-c", WITHOUT_TORCH, "--demo", "-o", str(demo), "-q"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    video = subprocess.run([sys.executable, "-c", WITHOUT_TORCH, str(demo), "-o", str(tmp_path / "again.mkv"), "-q"],
                           capture_output=True, text=True, timeout=300)
    assert video.returncode == 0, video.stderr


def test_a_pytorch_checkpoint_without_pytorch_says_what_to_install(tmp_path):
    torch = pytest.importorskip("torch")
    from realtime.model import DCENet, REFERENCE_CONFIGS

    weights = tmp_path / "zero_dce.pth"
    torch.save(DCENet(REFERENCE_CONFIGS["zero_dce"]).state_dict(), weights)
    image = tmp_path / "dark.png"
    import cv2
    import numpy as np

    cv2.imwrite(str(image), np.full((48, 64, 3), 20, np.uint8))
    result = subprocess.run([sys.executable, "-c", WITHOUT_TORCH, str(image), "-o", str(tmp_path / "o.png"),
                             "--weights", str(weights)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f'realtime-enhance: error: zero_dce.pth: reading a PyTorch checkpoint needs PyTorch: '
        f'pip install "{ROOT}[torch]"']


@pytest.mark.slow
def test_the_wheel_holds_the_default_weights_and_the_licence(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("realtime_enhance-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "realtime/weights/default.safetensors" in names
    assert any(n.endswith("licenses/LICENSE") or n.endswith("/LICENSE") for n in names)
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist: torch")]
    assert requires and all("extra ==" in line for line in requires), "PyTorch is an extra, never required"


def test_one_copy_of_the_package(tmp_path):
    """Tests, their subprocesses and the scripts import the same files."""
    import realtime

    elsewhere = subprocess.run([sys.executable, "-c", "import realtime; print(realtime.__file__)"], cwd=tmp_path,
                               capture_output=True, text=True, timeout=60)
    assert Path(elsewhere.stdout.strip()) == Path(realtime.__file__)

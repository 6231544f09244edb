"""Export the per-frame computation for inference servers: `realtime-enhance export`.

    realtime-enhance export model.onnx [--weights W]            # ONNX (onnxruntime, TensorRT, Triton)
    realtime-enhance export model.pt2 --format torch-export     # a torch.export program

The exported graph is backends.gpu.FrameProgram: (H, W, 3) uint8 RGB in, (H, W, 3)
uint8 RGB out, H and W dynamic (64 to 4096), at strength 1 (the model's curves; the
good-light attenuation and the temporal processing are the engine's, around it). The
ONNX file is checked with onnxruntime against the engine before it is kept.
"""
from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

import numpy as np

from .checkpoint import CheckpointError, load_weights
from .errors import MissingDependency, import_torch

log = logging.getLogger("realtime")
FORMATS = ("onnx", "torch-export")


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not the whole usage block
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="realtime-enhance export",
                                description="Write the per-frame computation as an ONNX graph or a torch.export program.")
    p.add_argument("output", type=Path, help="the file to write (model.onnx, model.pt2)")
    p.add_argument("--weights", type=Path, help="checkpoint (default: the bundled weights)")
    p.add_argument("--format", choices=FORMATS, help="default: from the suffix (.onnx: onnx, else torch-export)")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default: 18)")
    return p


def program(weights: Path | None):
    from .backends.gpu import FrameProgram
    from .engine import default_weights_path
    from .model import from_checkpoint

    return FrameProgram(from_checkpoint(load_weights(weights or default_weights_path()))).eval()


def export_onnx(module, path: Path, opset: int = 18) -> None:
    """Write `module` as ONNX with dynamic height and width, then check it with onnxruntime."""
    import torch

    from .backends.gpu import dynamic_shapes

    example = module.example_input(720, 1280)
    # The exporter's notes (torchvision absent, deprecations inside torch) are not the user's business.
    quiet = not log.isEnabledFor(logging.DEBUG)
    if quiet:
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore", FutureWarning)
        exported = torch.onnx.export(module, (example,), dynamic_shapes=dynamic_shapes(), dynamo=True,
                                     opset_version=opset, input_names=["frame"], output_names=["enhanced"],
                                     verbose=False)
    partial = path.with_name(f".{path.name}.partial")
    exported.save(str(partial))
    check_onnx(partial, module)
    partial.replace(path)


def check_onnx(path: Path, module) -> None:
    """onnxruntime on the file against the PyTorch program, at a size other than the traced one."""
    import torch

    try:
        import onnxruntime
    except ImportError:
        log.warning("onnxruntime is not installed: the exported file was not checked")
        return
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    frame = np.random.default_rng(0).integers(0, 90, (241, 403, 3), dtype=np.uint8)
    got = session.run(None, {session.get_inputs()[0].name: frame})[0]
    with torch.inference_mode():
        want = module(torch.from_numpy(frame)).numpy()
    if np.abs(got.astype(int) - want).max() > 1:
        raise RuntimeError("the ONNX graph does not compute what the program computes")


def export_torch(module, path: Path) -> None:
    import torch

    from .backends.gpu import export_program

    partial = path.with_name(f".{path.name}.partial")
    torch.export.save(export_program(module), str(partial))
    partial.replace(path)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    kind = args.format or ("onnx" if args.output.suffix.lower() == ".onnx" else "torch-export")
    if not args.output.parent.is_dir():
        print(f"realtime-enhance: error: {args.output.parent}: no such folder", file=sys.stderr)
        return 1
    if args.output.is_dir():
        print(f"realtime-enhance: error: {args.output}: is a directory; give a file name (model.onnx)",
              file=sys.stderr)
        return 1
    try:
        import_torch("the export", "onnx" if kind == "onnx" else "torch")
        module = program(args.weights)
        if kind == "onnx":
            try:
                import onnx  # noqa: F401
                import onnxscript  # noqa: F401
            except ImportError:
                raise MissingDependency("ONNX export needs onnx and onnxscript", "onnx") from None
            export_onnx(module, args.output, args.opset)
        else:
            export_torch(module, args.output)
    except (CheckpointError, MissingDependency) as exc:
        print(f"realtime-enhance: error: {exc}", file=sys.stderr)
        return 1
    print(f"realtime-enhance: wrote {args.output} ({kind}: (H, W, 3) uint8 RGB in and out, H and W from 64 to 4096)",
          file=sys.stderr)
    return 0

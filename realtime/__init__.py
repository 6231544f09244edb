"""realtime-enhance: real-time low-light enhancement for video files and live cameras.

The data flow is the architecture: Source -> queue -> Enhance -> queue -> Sink.
`Enhancer` is the engine, `VideoEnhancer` the engine for streams; `realtime.pipeline`
links them to sources and sinks. Names are loaded on first use, so that `import realtime`
is quick (the command line answers Ctrl-C at once) and never imports PyTorch unless a
PyTorch name (`DCENet`, ...) is asked for.
"""
from importlib import import_module

__version__ = "0.3.0"

_WHERE = {
    "Checkpoint": "checkpoint", "ModelConfig": "checkpoint", "load_weights": "checkpoint", "save_weights": "checkpoint",
    "ColourDescription": "colour", "Enhancer": "engine", "as_rgb_frame": "engine", "Frame": "frame",
    "YUVPlanes": "frame", "VideoEnhancer": "temporal", "DCENet": "model", "apply_curves": "model",
    "load_checkpoint": "model", "save_checkpoint": "model",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> object:
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'realtime' has no attribute {name!r}")

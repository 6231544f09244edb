"""realtime-enhance: real-time low-light enhancement for video files and live cameras.

The data flow is the architecture: Source -> queue -> Enhance -> queue -> Sink.
`Enhancer` is the engine; `realtime.pipeline` links it to sources and sinks.
Importing the package does not import PyTorch: the engine runs the default model
without it, and the PyTorch model (`DCENet`, ...) loads on first use.
"""
from .checkpoint import Checkpoint, ModelConfig, load_weights, save_weights
from .colour import ColourDescription
from .engine import Enhancer, as_rgb_frame
from .frame import Frame, YUVPlanes

_TORCH_NAMES = {"DCENet", "apply_curves", "load_checkpoint", "save_checkpoint"}

__all__ = ["Checkpoint", "ColourDescription", "DCENet", "Enhancer", "Frame", "ModelConfig", "YUVPlanes",
           "apply_curves", "as_rgb_frame", "load_checkpoint", "load_weights", "save_checkpoint", "save_weights"]
__version__ = "0.2.0"


def __getattr__(name: str) -> object:
    if name in _TORCH_NAMES:
        from . import model

        return getattr(model, name)
    raise AttributeError(f"module 'realtime' has no attribute {name!r}")

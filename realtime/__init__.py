"""realtime-enhance: real-time low-light enhancement for video files and live cameras.

The data flow is the architecture: Source -> queue -> Enhance -> queue -> Sink.
`Enhancer` is the engine; `realtime.pipeline` links it to sources and sinks.
"""
from .engine import Enhancer, as_rgb_frame
from .model import DCENet, ModelConfig, apply_curves, load_checkpoint, save_checkpoint

__all__ = ["DCENet", "Enhancer", "ModelConfig", "apply_curves", "as_rgb_frame", "load_checkpoint", "save_checkpoint"]
__version__ = "0.1.0"

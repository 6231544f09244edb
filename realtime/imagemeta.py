"""What travels with a photo besides its pixels: the EXIF orientation (applied to the
pixels, so the picture comes out upright, and reset in the tags), the EXIF tags and the ICC
colour profile (written back into JPEG and PNG outputs). Read with Pillow; the pixels
themselves are decoded and encoded by OpenCV.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ORIENTATION = 0x0112  # the EXIF tag


@dataclass(frozen=True)
class PhotoTags:
    """orientation: EXIF 1..8 (1 = upright); exif: the EXIF block as JPEG carries it
    ("Exif\\0\\0" + TIFF data), its orientation reset to 1; icc: the ICC profile;
    pictures: how many the file holds (an animation's frames, a TIFF's pages)."""

    orientation: int = 1
    exif: bytes | None = None
    icc: bytes | None = None
    pictures: int = 1


def read_tags(path: Path) -> PhotoTags:
    """A photo's orientation, EXIF and ICC profile; empty tags where Pillow cannot read them."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:  # Pillow is a dependency; without it the pixels still work
        return PhotoTags()
    try:
        with Image.open(path) as image:
            exif = image.getexif()
            icc = image.info.get("icc_profile") or None
            pictures = int(getattr(image, "n_frames", 1) or 1)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return PhotoTags()
    orientation = int(exif.get(ORIENTATION, 1) or 1)
    if ORIENTATION in exif:
        exif[ORIENTATION] = 1
    data = exif.tobytes() if len(exif) else None
    if data is not None and not data.startswith(b"Exif\x00\x00"):
        data = b"Exif\x00\x00" + data
    return PhotoTags(orientation if 1 <= orientation <= 8 else 1, data, icc, pictures)


def upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """(H, W, ...) pixels turned as EXIF `orientation` says a viewer shows them."""
    turns = {1: lambda a: a, 2: np.fliplr, 3: lambda a: np.rot90(a, 2), 4: np.flipud,
             5: lambda a: np.swapaxes(a, 0, 1), 6: lambda a: np.rot90(a, -1),
             7: lambda a: np.rot90(np.swapaxes(a, 0, 1), 2), 8: lambda a: np.rot90(a, 1)}
    return np.ascontiguousarray(turns.get(orientation, turns[1])(image))


def with_tags(data: bytes, suffix: str, tags: PhotoTags) -> bytes:
    """An encoded JPEG or PNG with the EXIF and ICC profile put back; other formats as they are."""
    if suffix in (".jpg", ".jpeg", ".jpe", ".jfif") and data[:2] == b"\xff\xd8":
        segments = []
        if tags.exif and len(tags.exif) <= 65533:
            segments.append(b"\xff\xe1" + struct.pack(">H", len(tags.exif) + 2) + tags.exif)
        if tags.icc:
            chunks = [tags.icc[i:i + 65519] for i in range(0, len(tags.icc), 65519)]
            for n, chunk in enumerate(chunks, 1):
                body = b"ICC_PROFILE\x00" + bytes([n, len(chunks)]) + chunk
                segments.append(b"\xff\xe2" + struct.pack(">H", len(body) + 2) + body)
        return data[:2] + b"".join(segments) + data[2:]
    if suffix == ".png" and data[:8] == b"\x89PNG\r\n\x1a\n":
        chunks = []
        if tags.icc:
            chunks.append(_png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(tags.icc)))
        if tags.exif:
            chunks.append(_png_chunk(b"eXIf", tags.exif[6:]))  # PNG holds the TIFF data alone
        end_of_header = 8 + 8 + struct.unpack(">I", data[8:12])[0] + 4  # signature, then IHDR
        return data[:end_of_header] + b"".join(chunks) + data[end_of_header:]
    return data


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


#: Image formats OpenCV's codecs lack and Pillow reads and writes (suffix: Pillow's name).
PILLOW_FORMATS = {".tga": "TGA"}


def decode_with_pillow(path: Path) -> np.ndarray | None:
    """A picture OpenCV cannot decode, as OpenCV would give it (IMREAD_UNCHANGED: grey
    (H, W), BGR (H, W, 3) or BGRA (H, W, 4) uint8); None when Pillow cannot either."""
    try:
        from PIL import Image
        with Image.open(path) as image:
            mode = {"L": "L", "LA": "RGBA", "RGBA": "RGBA", "PA": "RGBA"}.get(image.mode, "RGB")
            if image.mode == "P" and "transparency" in image.info:
                mode = "RGBA"
            pixels = np.asarray(image.convert(mode))
    except Exception:  # noqa: BLE001 - anything Pillow cannot read is "not decodable"
        return None
    if pixels.ndim == 2:
        return pixels
    return pixels[..., [2, 1, 0, 3][: pixels.shape[2]]].copy()


def encode_with_pillow(pixels: np.ndarray, suffix: str) -> bytes:
    """Grey (H, W), BGR (H, W, 3) or BGRA (H, W, 4) uint8 pixels in a PILLOW_FORMATS format."""
    import io

    from PIL import Image

    if pixels.ndim == 3:
        pixels = pixels[..., [2, 1, 0, 3][: pixels.shape[2]]]
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format=PILLOW_FORMATS[suffix])
    return buffer.getvalue()

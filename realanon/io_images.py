"""Reading and writing still images: RGB uint8, EXIF orientation honoured, atomic writes."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from realanon.atomic import atomic_write
from realanon.errors import InputError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
_PIL_FORMATS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP",
    ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
}
# Refuse absurd sizes before decoding (decompression bombs): 40k x 40k pixels.
Image.MAX_IMAGE_PIXELS = 1_600_000_000


def read_image(path: str | Path) -> np.ndarray:
    """Reads an image file as ``(H, W, 3)`` uint8 RGB, rotated per its EXIF orientation.

    Raises:
        InputError: missing, unreadable, truncated or corrupt file, with a short reason.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "no such file")
    if not path.is_file():
        raise InputError(path, "not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
                rgb = ImageOps.exif_transpose(img).convert("RGB")
    except UnidentifiedImageError:
        raise InputError(path, "not a readable image (unknown or corrupt format)") from None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as err:
        raise InputError(path, f"corrupt or truncated image ({_short(err)})") from None
    array = np.asarray(rgb, dtype=np.uint8)
    if array.ndim != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError(path, f"image has no pixels (shape {array.shape})")
    return array


def write_image_atomic(path: str | Path, image: np.ndarray, quality: int = 95) -> None:
    """Writes an RGB uint8 image, format from the extension, via a temporary file and a rename.

    An interrupted write never leaves a partial file under ``path``.
    """
    path = Path(path)
    fmt = _PIL_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(path, f"unsupported output image extension {path.suffix!r}")
    with atomic_write(path) as f:
        options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
        Image.fromarray(image).save(f, format=fmt, **options)


def _short(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text if len(text) <= 120 else text[:117] + "..."

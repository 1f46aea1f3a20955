from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from realanon.errors import InputError
from realanon.io_images import read_image, write_image_atomic


def _encoded(image: np.ndarray, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp", ".bmp", ".tiff"])
def test_round_trip_every_format(tmp_path: Path, ext: str, rng: np.random.Generator) -> None:
    image = rng.integers(0, 256, (31, 47, 3), dtype=np.uint8)
    path = tmp_path / f"x{ext}"
    write_image_atomic(path, image)
    back = read_image(path)
    assert back.shape == image.shape and back.dtype == np.uint8
    if ext in (".png", ".bmp", ".tiff"):
        np.testing.assert_array_equal(back, image)
    assert not list(tmp_path.glob(".*part*"))


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, :20] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    Image.fromarray(image).save(tmp_path / "r.jpg", exif=exif.tobytes())
    back = read_image(tmp_path / "r.jpg")
    assert back.shape == (40, 20, 3)
    assert back[:15].mean() > 200 and back[25:].mean() < 50  # white half now on top


def test_grey_and_rgba_become_rgb(tmp_path: Path) -> None:
    Image.fromarray(np.full((5, 6), 9, np.uint8)).save(tmp_path / "g.png")
    Image.fromarray(np.full((5, 6, 4), 9, np.uint8)).save(tmp_path / "a.png")
    assert read_image(tmp_path / "g.png").shape == (5, 6, 3)
    assert read_image(tmp_path / "a.png").shape == (5, 6, 3)


@pytest.mark.parametrize("content, message", [(None, "no such file"), (b"", "not a readable image"),
                                              (b"hello world", "not a readable image")])
def test_clear_errors_name_the_file(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "bad.jpg"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        read_image(path)
    assert str(path) in str(info.value)


def test_truncated_jpeg_is_an_error(tmp_path: Path, rng: np.random.Generator) -> None:
    data = _encoded(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), "JPEG")
    (tmp_path / "t.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="corrupt or truncated"):
        read_image(tmp_path / "t.jpg")


def test_interrupted_write_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(TypeError):  # PIL cannot encode a 7-channel float image
        write_image_atomic(tmp_path / "o.png", np.zeros((4, 4, 7), np.float64))
    assert list(tmp_path.iterdir()) == []


_SOURCES = {fmt: _encoded(np.random.default_rng(1).integers(0, 256, (24, 32, 3), dtype=np.uint8), fmt)
            for fmt in ("JPEG", "PNG", "WEBP", "BMP", "TIFF")}


@st.composite
def damaged_image_bytes(draw: st.DrawFn) -> bytes:
    data = bytearray(_SOURCES[draw(st.sampled_from(sorted(_SOURCES)))])
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    for _ in range(draw(st.integers(0, 8))):
        if data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
    return bytes(data)


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=damaged_image_bytes())
def test_damaged_bytes_give_image_or_clear_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.img"
    path.write_bytes(data)
    try:
        image = read_image(path)
    except InputError as err:
        assert str(path) in str(err) and len(str(err)) < 300
    else:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.size > 0


def test_outputs_get_normal_file_permissions(tmp_path: Path) -> None:
    from realanon.atomic import _UMASK

    write_image_atomic(tmp_path / "p.png", np.zeros((2, 2, 3), np.uint8))
    # mkstemp alone would leave 0o600, unreadable to the other users of an output folder.
    assert (tmp_path / "p.png").stat().st_mode & 0o777 == 0o666 & ~_UMASK

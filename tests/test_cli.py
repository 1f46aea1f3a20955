from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from realanon.cli import main
from realanon.io_images import read_image, write_image_atomic


@pytest.fixture()
def photo(tmp_path: Path, astronaut: np.ndarray) -> Path:
    path = tmp_path / "in" / "astronaut.jpg"
    write_image_atomic(path, astronaut)
    return path


def test_anonymize_image_default_output_and_audit(photo: Path, tmp_path: Path, capsys) -> None:
    audit = tmp_path / "audit.json"
    before = photo.read_bytes()
    assert main(["anonymize", str(photo), "--method", "pixelate", "--save-detections", str(audit)]) == 0
    out = photo.with_name("astronaut_anonymized.jpg")
    assert out.exists() and photo.read_bytes() == before
    original, anonymized = read_image(photo), read_image(out)
    assert anonymized.shape == original.shape
    record = json.loads(audit.read_text())
    assert record["format"] == "realanon.detections/1"
    regions = record["files"][0]["frames"][0]["regions"]
    assert len(regions) == 1 and regions[0]["kind"] == "face" and regions[0]["method"] == "pixelate"
    x1, y1, x2, y2 = (int(v) for v in regions[0]["box_xyxy"])
    assert np.abs(anonymized[y1:y2, x1:x2].astype(int) - original[y1:y2, x1:x2]).mean() > 10
    assert "1 of 1 input(s) anonymized" in capsys.readouterr().err


def test_saved_detections_feed_back_without_detector(photo: Path, tmp_path: Path) -> None:
    audit = tmp_path / "audit.json"
    assert main(["anonymize", str(photo), "-o", str(tmp_path / "a.png"), "--method", "mask",
                 "--save-detections", str(audit)]) == 0
    assert main(["anonymize", str(photo), "-o", str(tmp_path / "b.png"), "--method", "mask",
                 "--detections", str(audit)]) == 0
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), read_image(tmp_path / "b.png"))


def test_directory_tree_is_mirrored_and_bad_files_reported(photo: Path, tmp_path: Path, capsys) -> None:
    tree = photo.parent
    (tree / "sub").mkdir()
    shutil.copy(photo, tree / "sub" / "copy.png")
    (tree / "sub" / "broken.jpg").write_bytes(b"not an image")
    (tree / "notes.txt").write_text("ignored: not media")
    out = tmp_path / "out"
    code = main(["anonymize", str(tree), str(tmp_path / "missing.jpg"), str(tmp_path / "x.gif"), "-o", str(out),
                 "--method", "blur", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert (out / "in" / "astronaut.jpg").exists() and (out / "in" / "sub" / "copy.png").exists()
    assert not (out / "in" / "sub" / "broken.jpg").exists()
    assert "broken.jpg: not a readable image" in err
    assert "missing.jpg: no such file" in err
    assert "x.gif: unsupported file type" in err or "x.gif: no such file" in err
    assert "Traceback" not in err


def test_refuses_to_overwrite_input(photo: Path, capsys) -> None:
    before = photo.read_bytes()
    assert main(["anonymize", str(photo), "-o", str(photo)]) == 1
    assert photo.read_bytes() == before
    assert "refusing to overwrite" in capsys.readouterr().err


def test_config_errors_are_one_line(photo: Path, capsys) -> None:
    assert main(["anonymize", str(photo), "--method", "nope"]) == 2
    assert main(["anonymize", str(photo), "--set", "regions.bogus=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown generator 'nope'" in err and "unknown regions key" in err and "Traceback" not in err


def test_models_lists_registries(capsys) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "generators:" in out and "blur" in out and "mediapipe_face" in out and "face_blur" in out


def test_photos_are_searched_more_thoroughly_than_video_frames(tmp_path: Path) -> None:
    # openpeople's emotion sheet: 16 faces of about 40 px on a 768 px group-photo-like image.
    import cv2

    from realanon.media import openpeople_images

    path = next(p for p in openpeople_images()["P001"] if p.name == "emotions_sheet.jpg")
    sheet = cv2.imread(str(path))
    sheet = cv2.resize(sheet, None, fx=768 / max(sheet.shape[:2]), fy=768 / max(sheet.shape[:2]),
                       interpolation=cv2.INTER_AREA)
    photo = tmp_path / "sheet.png"
    cv2.imwrite(str(photo), sheet)
    counts = {}
    mediapipe = ["--set", "detector=mediapipe_face"]
    for label, extra in {"default": [], "mediapipe photo": mediapipe,
                         "mediapipe video settings": [*mediapipe, "--set", "photo_detector_options={}"]}.items():
        audit = tmp_path / f"{label}.json"
        assert main(["anonymize", str(photo), "-o", str(tmp_path / f"{label}.png"), "--method", "mask",
                     "--save-detections", str(audit), *extra]) == 0
        counts[label] = len(json.loads(audit.read_text())["files"][0]["frames"][0]["regions"])
    assert counts["default"] == 16  # yunet searches a photo whole at full resolution
    assert counts["mediapipe photo"] == 16
    assert counts["mediapipe video settings"] < 16


def test_photo_search_keeps_one_face_on_the_astronaut(photo: Path, tmp_path: Path) -> None:
    audit = tmp_path / "audit.json"
    assert main(["anonymize", str(photo), "-o", str(tmp_path / "a.png"), "--method", "mask",
                 "--save-detections", str(audit)]) == 0
    assert len(json.loads(audit.read_text())["files"][0]["frames"][0]["regions"]) == 1

"""Detections from annotation files: realanon JSON, COCO, Cityscapes; clear errors otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from realanon.annotations import load_detections_file
from realanon.audit import AuditLog, encode_mask
from realanon.errors import InputError
from realanon.media import labelme_coco_dir
from realanon.structures import Detection, Detections


def _coco(tmp_path: Path) -> Path:
    rle_mask = np.zeros((40, 60), dtype=bool)
    rle_mask[10:30, 40:50] = True
    kps = [0.0] * 51
    kps[0:3] = [20, 8, 2]  # nose visible
    kps[15:18] = [15, 14, 1]  # left shoulder labelled, hidden
    data = {
        "images": [{"id": 7, "file_name": "dir/a.jpg", "height": 40, "width": 60},
                   {"id": 8, "file_name": "b.jpg", "height": 40, "width": 60}],
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}, {"id": 3, "name": "face"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 1, "bbox": [10, 5, 20, 30],
             "segmentation": [[10, 5, 30, 5, 30, 35, 10, 35]], "keypoints": kps, "num_keypoints": 2},
            {"id": 2, "image_id": 7, "category_id": 1, "bbox": [40, 10, 10, 20], "iscrowd": 1,
             "segmentation": encode_mask(rle_mask)},
            {"id": 3, "image_id": 7, "category_id": 2, "bbox": [0, 0, 5, 5], "segmentation": []},
            {"id": 4, "image_id": 7, "category_id": 3, "bbox": [15, 5, 8, 8]},
        ],
    }
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(data))
    return path


def test_coco_persons_with_polygon_rle_and_keypoints(tmp_path: Path) -> None:
    file = load_detections_file(_coco(tmp_path))
    dets = file.get("a.jpg", 0, (1, 1))  # found by file name alone
    assert dets.image_size == (40, 60)
    bodies = dets.of_kind("body").items
    assert len(bodies) == 2 and len(dets.of_kind("face")) == 1  # the car is ignored
    poly, rle = bodies
    assert poly.box_xyxy == (10, 5, 30, 35)
    assert poly.mask is not None and poly.mask[20, 20] and not poly.mask[20, 35]
    assert poly.keypoint_layout == "coco17" and poly.keypoints.shape == (17, 3)
    assert poly.keypoints[0].tolist() == [20, 8, 1.0] and poly.keypoints[5, 2] == 0.5 and poly.keypoints[1, 2] == 0
    assert rle.mask is not None and rle.mask.sum() == 200 and rle.mask[15, 45]
    assert len(file.get("b.jpg", 0, (1, 1))) == 0  # listed, nobody in it
    with pytest.raises(InputError):
        file.get("c.jpg", 0, (40, 60))


def _cityscapes(path: Path) -> Path:
    data = {"imgHeight": 50, "imgWidth": 80, "objects": [
        {"label": "person", "polygon": [[10, 10], [20, 10], [20, 40], [10, 40]]},
        {"label": "rider", "polygon": [[50, 5], [70, 5], [70, 45], [50, 45]]},
        {"label": "car", "polygon": [[0, 0], [5, 0], [5, 5]]},
        {"label": "persongroup", "polygon": [[30, 30], [40, 30], [40, 49]]},
    ]}
    path.write_text(json.dumps(data))
    return path


def test_cityscapes_file_and_directory(tmp_path: Path) -> None:
    one = _cityscapes(tmp_path / "aachen_000000_000019_gtFine_polygons.json")
    dets = load_detections_file(one).get("aachen_000000_000019_leftImg8bit.png", 0, (1, 1))
    assert dets.image_size == (50, 80) and len(dets) == 3
    assert all(d.kind == "body" and d.mask is not None for d in dets)
    assert dets.items[0].mask[25, 15] and not dets.items[0].mask[25, 30]
    sub = tmp_path / "city" / "bremen"
    sub.mkdir(parents=True)
    _cityscapes(sub / "bremen_000001_000019_gtFine_polygons.json")
    folder = load_detections_file(tmp_path)
    assert sorted(folder.files()) == ["aachen_000000_000019_leftImg8bit.png", "bremen_000001_000019_leftImg8bit.png"]


def test_realanon_json_round_trip(tmp_path: Path) -> None:
    mask = np.zeros((30, 40), dtype=bool)
    mask[5:20, 5:15] = True
    det = Detection((5, 5, 15, 20), 0.7, "body", mask=mask)
    log = AuditLog()
    log.add_frame("clip.mp4", 3, Detections((det,), (30, 40)), "mask")
    log.save(tmp_path / "d.json")
    got = load_detections_file(tmp_path / "d.json").get("clip.mp4", 3, (30, 40)).items[0]
    assert got.box_xyxy == det.box_xyxy and (got.mask == mask).all()


@pytest.mark.parametrize(("content", "problem"), [
    ("{not json", "not valid JSON"),
    ('{"hello": 1}', "unknown detections format"),
    ('[1, 2]', "unknown detections format"),
    ('{"images": [{"id": 1}], "annotations": [{"image_id": 1, "category_id": 1}]}', "malformed"),
])
def test_broken_files_raise_input_error(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(InputError, match=problem):
        load_detections_file(path)
    with pytest.raises(InputError, match="no such file"):
        load_detections_file(tmp_path / "missing.json")
    with pytest.raises(InputError, match="Cityscapes"):
        load_detections_file(tmp_path)


def test_labelme_coco_example_persons_match_their_polygons() -> None:
    root = labelme_coco_dir()
    file = load_detections_file(root / "annotations.json")
    data = json.loads((root / "annotations.json").read_text())
    person_id = next(c["id"] for c in data["categories"] if c["name"] == "person")
    n_persons = sum(a["category_id"] == person_id for a in data["annotations"])
    found = 0
    for name in file.files():
        image = cv2.imread(str(root / name))
        dets = file.get(name, 0, image.shape[:2])
        assert dets.image_size == image.shape[:2]
        for d in dets:
            assert d.kind == "body" and d.mask is not None
            ys, xs = np.nonzero(d.mask)
            x1, y1, x2, y2 = d.box_xyxy
            assert xs.min() >= x1 - 1 and xs.max() <= x2 + 1 and ys.min() >= y1 - 1 and ys.max() <= y2 + 1
            found += 1
    assert found == n_persons > 0


def test_coco_annotations_feed_the_pipeline_without_a_detector() -> None:
    from realanon.config import RegionOptions
    from realanon.generators.mask import MaskOut
    from realanon.pipeline import Anonymizer

    root = labelme_coco_dir()
    name = "JPEGImages/2011_000003.jpg"
    image = cv2.cvtColor(cv2.imread(str(root / name)), cv2.COLOR_BGR2RGB)
    dets = load_detections_file(root / "annotations.json").get(name, 0, image.shape[:2])
    anonymizer = Anonymizer(None, MaskOut((255, 0, 255)), target="body",
                            regions=RegionOptions(body_margin=0.0, feather=0.0))
    out = anonymizer(image, dets)
    assert out.failed is None and len(out.regions) == len(dets) == 2
    union = np.zeros(image.shape[:2], dtype=bool)
    for d in dets:
        union |= d.mask
    assert (out.image[union] == (255, 0, 255)).all()  # every annotated person pixel replaced
    assert (out.image[~union] == image[~union]).all()  # nothing else touched

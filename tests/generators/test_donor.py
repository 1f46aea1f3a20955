"""The ``donor`` generator: real faces swapped in from the openpeople donor bank."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest

from realanon.config import AnonymizerConfig
from realanon.generators.donor import DEFAULT_BANK, DonorBank, DonorFaceSwap
from realanon.generators.donor_bank import rank_donors
from realanon.media import openpeople_images
from realanon.pipeline import build_anonymizer
from realanon.regions import union_mask
from realanon.registry import GENERATORS


@pytest.fixture(scope="module")
def generator() -> DonorFaceSwap:
    return DonorFaceSwap()


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    """P003's studio portrait, 512 px."""
    path = next(p for p in openpeople_images()["P003"] if p.stem == "studio_portrait")
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    return cv2.resize(image, (512, 512), interpolation=cv2.INTER_AREA)


def _face_crop(anonymizer, image: np.ndarray):  # type: ignore[no-untyped-def]
    """The first face region's crop, replace-mask and seed, as the pipeline builds them."""
    from realanon.regions import build_regions

    regions = build_regions(anonymizer.detect(image), anonymizer.region_options)
    assert regions, "the test image should contain a detectable face"
    batch = anonymizer.make_batch(image, regions)
    return batch.crops[0], batch.replace_masks[0], batch.seeds[0]


def test_registered_and_bank_matches_manifest() -> None:
    assert "donor" in GENERATORS.names()
    manifest = json.loads((DEFAULT_BANK.parent / "manifest.json").read_text())
    assert hashlib.sha256(DEFAULT_BANK.read_bytes()).hexdigest() == manifest["sha256"]
    bank = DonorBank.load(DEFAULT_BANK)
    assert len(bank) == manifest["count"] and set(bank.person) == {f"P{i:03d}" for i in range(1, 11)}
    assert bank.landmarks.shape == (len(bank), 478, 3)
    assert bank.image(0).dtype == np.uint8 and bank.image(0).shape == (manifest["crop_size"],) * 2 + (3,)


def test_astronaut_changes_inside_mask_only(astronaut: np.ndarray) -> None:
    config = AnonymizerConfig(method="donor", method_options={"mode": "head"}, fail_closed=False)
    anonymizer = build_anonymizer(config)
    result = anonymizer(astronaut)
    assert len(result.regions) == 1
    inside = union_mask(result.regions, result.detections.image_size)
    np.testing.assert_array_equal(result.image[~inside], astronaut[~inside])
    diff = np.abs(result.image.astype(np.int16) - astronaut.astype(np.int16)).sum(axis=2)
    # The whole face is new: most masked pixels move by more than JPEG-level noise.
    assert (diff[inside] > 12).mean() > 0.5


def test_same_seed_same_output(generator: DonorFaceSwap, astronaut: np.ndarray) -> None:
    anonymizer = build_anonymizer(AnonymizerConfig(method="donor"))
    crop, mask, seed = _face_crop(anonymizer, astronaut)
    first = generator.swap(crop, mask, None, seed)
    np.testing.assert_array_equal(first, generator.swap(crop, mask, None, seed))
    landmarks = generator.mesher.nearest_face(crop, (crop.shape[1] / 2, crop.shape[0] / 2))
    assert landmarks is not None, "the astronaut's face should be meshed"
    assert generator.choose(crop, landmarks, seed) == generator.choose(crop, landmarks, seed)
    donors = {generator.choose(crop, landmarks, s) for s in range(12)}
    assert len({generator.person_of(d) for d in donors}) > 1, "different seeds should reach different people"


def test_excluded_person_never_chosen(portrait: np.ndarray) -> None:
    swap = DonorFaceSwap(exclude_persons=("P003", "P004"))
    anonymizer = build_anonymizer(AnonymizerConfig(method="donor"))
    crop, mask, _ = _face_crop(anonymizer, portrait)
    landmarks = swap.mesher.nearest_face(crop, (crop.shape[1] / 2, crop.shape[0] / 2))
    assert landmarks is not None
    chosen = {swap.person_of(swap.choose(crop, landmarks, s)) for s in range(40)}
    assert chosen.isdisjoint({"P003", "P004"}) and len(chosen) > 1
    only = DonorFaceSwap(exclude_persons=tuple(f"P{i:03d}" for i in range(1, 10)))
    assert {only.person_of(only.choose(crop, landmarks, s)) for s in range(10)} == {"P010"}


def test_excluding_everyone_is_an_error(generator: DonorFaceSwap) -> None:
    with pytest.raises(ValueError, match="excluded"):
        rank_donors(generator.donors, None, None, None, tuple(f"P{i:03d}" for i in range(1, 11)))


def test_openpeople_face_is_replaced(portrait: np.ndarray) -> None:
    config = AnonymizerConfig(method="donor", method_options={"exclude_persons": ["P003"], "mode": "head"},
                              fail_closed=False)
    result = build_anonymizer(config)(portrait)
    assert len(result.regions) == 1
    inside = union_mask(result.regions, result.detections.image_size)
    np.testing.assert_array_equal(result.image[~inside], portrait[~inside])
    diff = np.abs(result.image.astype(np.int16) - portrait.astype(np.int16)).sum(axis=2)
    assert (diff[inside] > 12).mean() > 0.5


@pytest.mark.parametrize("size", [10, 24, 96])
def test_fallback_without_mesh_replaces_masked_pixels(generator: DonorFaceSwap, size: int) -> None:
    crop = np.full((size, size, 3), 128, dtype=np.uint8)
    mask = np.zeros((size, size), dtype=bool)
    cv2.ellipse(mask.view(np.uint8), (size // 2, size // 2), (size // 3, size * 2 // 5), 0, 0, 360, (1,), -1)
    assert generator.mesher.nearest_face(crop, (size / 2, size / 2)) is None
    out = generator.swap(crop, mask, None, seed=3)
    assert out.shape == crop.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[~mask], crop[~mask])
    assert np.abs(out[mask].astype(np.int16) - 128).max() > 10, "the donor's features must show"


@pytest.mark.parametrize("mode", ["face", "head"])
@pytest.mark.parametrize("points", [6, 3])
def test_fallback_uses_face6_keypoints(mode: str, points: int) -> None:
    generator = DonorFaceSwap(mode=mode)
    crop = np.full((64, 64, 3), 90, dtype=np.uint8)
    mask = np.ones((64, 64), dtype=bool)
    face6 = np.array([[24, 28, 1], [40, 28, 1], [32, 36, 1], [32, 44, 1], [16, 32, 1], [48, 32, 1]], np.float32)
    with_kp = generator.swap(crop, mask, face6[:points], seed=0)
    without = generator.swap(crop, mask, None, seed=0)
    assert not np.array_equal(with_kp, without)
    assert np.abs(with_kp.astype(np.int16) - 90).max() > 10


def test_identity_follows_the_seed_not_the_pose(generator: DonorFaceSwap, astronaut: np.ndarray) -> None:
    anonymizer = build_anonymizer(AnonymizerConfig(method="donor"))
    crop, _, _ = _face_crop(anonymizer, astronaut)
    landmarks = generator.mesher.nearest_face(crop, (crop.shape[1] / 2, crop.shape[0] / 2))
    assert landmarks is not None
    turned = landmarks.copy()
    turned[:, 0] = crop.shape[1] - turned[:, 0]  # mirrored: the head turns the other way
    for seed in range(6):
        frontal, mirrored = generator.choose(crop, landmarks, seed), generator.choose(crop[:, ::-1], turned, seed)
        assert generator.person_of(frontal) == generator.person_of(mirrored)


def test_rejects_bodies_and_bad_options() -> None:
    with pytest.raises(ValueError, match="faces only"):
        DonorFaceSwap(target="body")
    with pytest.raises(FileNotFoundError, match="build_donor_bank"):
        DonorBank.load("/nonexistent/bank.npz")


def test_ranking_follows_head_pose(generator: DonorFaceSwap) -> None:
    bank = generator.donors
    for yaw in (-60.0, 0.0, 60.0):
        best = rank_donors(bank, np.array([yaw, -5.0, 0.0], np.float32), None, None, ())[:3]
        assert np.all(np.abs(bank.pose[best, 0] - yaw) < 20), (yaw, bank.pose[best, 0])

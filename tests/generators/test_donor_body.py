"""The body donor generator (``--target body --method donor``) and its pure warp functions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from realanon.cli import main
from realanon.errors import ConfigError
from realanon.generators.body_clothes import CLOTH, SKIN, Identity, draw_identity, recolour_clothes, thicken_clothes
from realanon.generators.body_fill import inpaint_background, mirror_fill
from realanon.generators.body_warp import (
    bone_affine,
    keypoints_after,
    mirror_coco17,
    part_labels,
    part_transforms,
    view_of,
)
from realanon.generators.donor import DonorFaceSwap
from realanon.generators.donor_body import DEFAULT_BODY_BANK, DonorBody
from realanon.io_images import write_image_atomic
from realanon.pipeline import Anonymizer
from realanon.regions import union_mask
from realanon.registry import GENERATORS
from realanon.structures import Detection, GenerationBatch
from tests.helpers import FixedDetector, assert_replaces_only_masked

pytestmark = pytest.mark.skipif(not DEFAULT_BODY_BANK.exists(), reason="weights/body-donors/bank.npz not built")


@pytest.fixture(scope="module")
def generator() -> DonorBody:
    return DonorBody()


def _front(scale: float = 1.0, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
    """A standing person facing the camera, about 100 px tall (COCO-17, visible)."""
    xy = np.array([[50, 10], [53, 8], [47, 8], [56, 10], [44, 10], [62, 25], [38, 25], [66, 42], [34, 42],
                   [68, 58], [32, 58], [58, 58], [42, 58], [58, 78], [42, 78], [58, 98], [42, 98]], np.float32)
    kp = np.ones((17, 3), np.float32)
    kp[:, :2] = xy * scale + (dx, dy)
    return kp


def _scene(astronaut: np.ndarray, h: int, w: int) -> np.ndarray:
    assert h <= 400 and w <= 480
    return np.ascontiguousarray(np.concatenate([astronaut, astronaut])[300:300 + h, 20:20 + w])


def test_view_from_keypoints() -> None:
    front = _front()
    assert view_of(front) == "front"
    back = mirror_coco17(front)  # left shoulder on the image's left: seen from behind
    back[0:3, 2] = 0.0
    assert view_of(back) == "back"
    side = front.copy()
    side[[5, 11, 13, 15], 0] = side[[6, 12, 14, 16], 0] = 50.0
    side[0, 0] = 58.0
    assert view_of(side) == "left"
    side[0, 0] = 42.0
    assert view_of(side) == "right"
    assert view_of(None) == "front"
    hidden = front.copy()
    hidden[5:7, 2] = 0.0
    assert view_of(hidden) == "front"


def test_bone_affine_maps_the_bone_onto_the_target_bone() -> None:
    a, b = np.array([10.0, 10.0]), np.array([10.0, 50.0])
    a2, b2 = np.array([100.0, 20.0]), np.array([130.0, 40.0])
    m = bone_affine(a, b, a2, b2, 0.5)
    np.testing.assert_allclose(m[:, :2] @ a + m[:, 2], a2, atol=1e-9)
    np.testing.assert_allclose(m[:, :2] @ b + m[:, 2], b2, atol=1e-9)
    # Across the bone the limb keeps the body scale, not the bone's length ratio.
    across = m[:, :2] @ np.array([1.0, 0.0])
    assert np.linalg.norm(across) == pytest.approx(0.5)


def test_limb_warp_maps_donor_keypoints_onto_target_keypoints(generator: DonorBody) -> None:
    donor = generator.donors.keypoints[0]
    target = _front(1.4, 30, 20)
    target[[9, 10], 1] -= 40  # forearms raised
    target[15, 0] += 12  # a step
    transforms = part_transforms(donor, target)
    assert transforms is not None
    landed = keypoints_after(transforms, donor)
    limbs = [7, 8, 9, 10, 13, 14, 15, 16]
    np.testing.assert_allclose(landed[limbs], target[limbs, :2], atol=1e-3)  # each bone exactly
    torso_len = float(np.linalg.norm(target[[5, 6], :2].mean(0) - target[[11, 12], :2].mean(0)))
    torso = [5, 6, 11, 12]  # four points, one affine: least squares
    assert np.abs(landed[torso] - target[torso, :2]).max() < 0.05 * torso_len
    np.testing.assert_allclose(landed[0], target[0, :2], atol=1e-3)  # the head follows the nose


def test_missing_limb_follows_its_parent_and_no_torso_gives_none() -> None:
    donor, target = _front(), _front(2.0)
    target[9, 2] = 0.0
    transforms = part_transforms(donor, target)
    assert transforms is not None
    np.testing.assert_array_equal(transforms["l_lower_arm"], transforms["l_upper_arm"])
    target[11, 2] = 0.0
    assert part_transforms(donor, target) is None
    upside_down = _front()
    upside_down[:, 1] = 110 - upside_down[:, 1]  # a pose model's failure: the head at the feet
    assert part_transforms(donor, upside_down) is None


def test_side_view_torso_is_a_similarity_not_a_shear() -> None:
    donor, target = _front(), _front(1.5, 10, 5)
    target[[5, 11], 0] = target[[6, 12], 0] = 60.0  # seen from the side: shoulders and hips on one line
    transforms = part_transforms(donor, target)
    assert transforms is not None
    linear = transforms["torso"][:, :2]
    np.testing.assert_allclose(linear @ linear.T, np.eye(2) * float(linear[0] @ linear[0]), atol=1e-9)


def test_part_labels_cover_the_mask_only() -> None:
    mask = np.zeros((110, 100), bool)
    mask[5:105, 25:75] = True
    labels = part_labels(_front(), mask)
    assert (labels[~mask] == -1).all() and (labels[mask] >= 0).all()
    assert len(np.unique(labels[mask])) >= 8


def test_identity_is_seeded_and_varies(generator: DonorBody) -> None:
    persons = np.array(["P001", "P002", "P003"])
    assert draw_identity(5, persons) == draw_identity(5, persons)
    many = [draw_identity(s, persons) for s in range(30)]
    assert len({i.person for i in many}) == 3
    assert len({round(i.top_hsv[0]) for i in many}) > 20
    assert generator.identity(7).person not in DonorBody(exclude_persons=(generator.identity(7).person,)).identity(7).person


def test_clothes_are_mostly_dark_and_long_yet_varied() -> None:
    many = [draw_identity(s, np.array(["P001"])) for s in range(400)]
    value = np.array([i.top_hsv[2] for i in many] + [i.bottom_hsv[2] for i in many])
    tops = np.array([i.top_hsv for i in many])
    assert np.median(value) < 0.25 and value.max() > 0.7 and value.min() < 0.1
    assert np.median(tops[:, 2]) < 0.2  # dark coats are the common case
    vivid = (tops[:, 1] >= 0.5) & (tops[:, 2] >= 0.3)
    assert 0.1 < vivid.mean() < 0.3  # and a red jacket or a yellow coat now and then
    assert len({round(h / 30) for h in tops[vivid, 0]}) >= 6  # in every hue
    sleeves, trousers = np.mean([i.sleeves for i in many]), np.mean([i.trousers for i in many])
    assert 0.75 < sleeves < 0.95 and 0.8 < trousers < 0.97


def test_recolour_sets_the_garments_brightness_and_dresses_bare_legs() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(150, 230, (60, 20, 3)).astype(np.uint8)  # pale studio clothes and skin
    labels = np.full((60, 20), CLOTH, np.uint8)
    labels[:10] = SKIN  # face
    labels[40:] = SKIN  # bare legs below the shorts
    parts = np.full((60, 20), 4, np.int8)  # torso
    parts[:10] = 9  # head
    parts[30:] = 0  # a thigh, then the bare leg
    top, bottom = (100.0, 0.3, 0.2), (10.0, 0.2, 0.15)
    dressed = recolour_clothes(rgb, labels, 30.0, Identity("P001", top, bottom, True, True), parts)
    bare = recolour_clothes(rgb, labels, 30.0, Identity("P001", top, bottom, True, False), parts)
    value = dressed.max(axis=2).astype(float)  # HSV value
    np.testing.assert_allclose(value[10:30].mean(), 255 * 0.2, atol=3)
    np.testing.assert_allclose(value[30:].mean(), 255 * 0.15, atol=3)  # shorts and legs: one garment
    np.testing.assert_array_equal(dressed[:10], rgb[:10])  # the face is never touched
    np.testing.assert_array_equal(bare[40:], rgb[40:])  # no trousers: the legs stay bare
    assert value[40:].mean() < 0.5 * rgb[40:].max(axis=2).mean()


def test_thicken_clothes_grows_the_matte_from_the_clothes_only() -> None:
    rgb = np.zeros((21, 21, 3), np.uint8)
    alpha = np.zeros((21, 21), np.uint8)
    parts = np.full((21, 21), -1, np.int8)
    alpha[8:13, 4:17] = 255
    rgb[8:13, 4:10], parts[8:13, 4:10] = (200, 10, 10), 5  # a sleeve (dressed)
    rgb[8:13, 10:17], parts[8:13, 10:17] = (10, 200, 10), 9  # bare skin (not dressed)
    dressed = np.zeros((21, 21), bool)
    dressed[8:13, 4:10] = True
    same = thicken_clothes(rgb, alpha, parts, dressed, 0.0)
    assert all(a is b for a, b in zip(same, (rgb, alpha, parts)))
    rgb2, alpha2, parts2 = thicken_clothes(rgb, alpha, parts, dressed, 2.0)
    grown = (alpha2 > 127) & (alpha < 128)
    assert grown[6:8, 5:9].all() and grown[13:15, 5:9].all() and grown[9:12, 2:4].all()
    assert not grown[:, 13:].any() and alpha2[:6].max() == 0  # skin does not grow; 2 px, not more
    assert (rgb2[grown] == (200, 10, 10)).all() and (parts2[grown] == 5).all()
    np.testing.assert_array_equal(rgb2[alpha > 127], rgb[alpha > 127])


def test_excluding_every_person_is_a_config_error() -> None:
    everyone = tuple(f"P{i:03d}" for i in range(1, 11))
    with pytest.raises(ConfigError):
        DonorBody(exclude_persons=everyone).identity(0)


def _body(kp: np.ndarray, mask: np.ndarray | None = None) -> Detection:
    x1, y1 = kp[:, :2].min(0) - 6
    x2, y2 = kp[:, :2].max(0) + 6
    return Detection((x1, y1, x2, y2), 0.9, "body", keypoints=kp, keypoint_layout="coco17", mask=mask)


def test_contract_same_seed_and_tracks(generator: DonorBody, astronaut: np.ndarray) -> None:
    scene = _scene(astronaut, 180, 200)
    dets = FixedDetector((_body(_front(1.3, 20, 20)).with_track(1), _body(_front(1.3, 100, 20)).with_track(2)))
    anonymizer = Anonymizer(dets, generator, target="body", seed=3, fail_closed=False)
    first, second = anonymizer(scene), anonymizer(scene)
    union = union_mask(first.regions, scene.shape[:2])
    np.testing.assert_array_equal(first.image[~union], scene[~union])
    np.testing.assert_array_equal(first.image, second.image)
    assert np.abs(first.image[union].astype(int) - scene[union]).mean() > 10
    batch = anonymizer.make_batch(scene, first.regions)
    a, b = (generator.identity(s) for s in batch.seeds)
    assert a != b  # two tracks, two identities (person or clothes)


def test_output_never_uses_the_targets_own_pixels(generator: DonorBody, astronaut: np.ndarray) -> None:
    crop = _scene(astronaut, 130, 100).copy()
    mask = np.zeros(crop.shape[:2], bool)
    mask[10:120, 20:80] = True
    other = crop.copy()
    other[mask] = np.random.default_rng(0).integers(0, 256, (int(mask.sum()), 3))
    np.testing.assert_array_equal(inpaint_background(crop, mask), inpaint_background(other, mask))
    kp = _front(1.0, 0, 12)
    np.testing.assert_array_equal(generator.replace(crop, mask, kp, 4), generator.replace(other, mask, kp, 4))


def test_mirror_fill_continues_the_scene_from_both_sides() -> None:
    crop = np.zeros((4, 10, 3), np.uint8)
    crop[:, :, 0] = np.arange(10, dtype=np.uint8)[None, :] * 10  # a horizontal ramp
    mask = np.zeros((4, 10), bool)
    mask[:, 4:6] = True
    filled, done = mirror_fill(crop, mask)
    assert done[mask].all()
    # Column 4 mirrors column 3 from the left and 7 from the right, cross-faded; column 5 mirrors 2 and 6.
    np.testing.assert_allclose(filled[0, 4, 0], 0.75 * 30 + 0.25 * 70)
    np.testing.assert_allclose(filled[0, 5, 0], 0.25 * 20 + 0.75 * 60)
    edge = np.zeros((4, 10), bool)
    edge[:, :3] = True  # touching the crop's edge: one side only
    filled, done = mirror_fill(crop, edge)
    assert done[edge].all()
    np.testing.assert_array_equal(filled[0, :3, 0], [50, 40, 30])


@pytest.mark.parametrize("height", [12, 24, 50, 300])
def test_any_size_without_keypoints_falls_back_to_the_box(generator: DonorBody, astronaut: np.ndarray,
                                                          height: int) -> None:
    width = max(6, height // 2)
    crop = _scene(astronaut, height + 8, width + 8)
    mask = np.zeros(crop.shape[:2], bool)
    mask[4:-4, 4:-4] = True
    batch_out = generator.replace(crop, mask, None, 1)
    batch = GenerationBatch((crop,), (mask,), (None,), (None,), ("body",), (1,))
    out = generator(batch)
    np.testing.assert_array_equal(out[0], batch_out)
    assert_replaces_only_masked(batch, out)


@pytest.mark.parametrize("scale", [0.12, 0.3, 2.5])
def test_posed_person_of_any_size(generator: DonorBody, astronaut: np.ndarray, scale: float) -> None:
    kp = _front(scale, 4, 4)  # about 100 * scale px tall
    h, w = int(kp[:, 1].max()) + 6, int(kp[:, 0].max()) + 6
    crop = _scene(astronaut, h, w)
    mask = np.zeros((h, w), bool)
    x1, y1 = np.floor(kp[:, :2].min(0) - 2).astype(int)
    x2, y2 = np.ceil(kp[:, :2].max(0) + 2).astype(int)
    mask[max(y1, 0):y2, max(x1, 0):x2] = True
    batch = GenerationBatch((crop,), (mask,), (kp,), ("coco17",), ("body",), (5,))
    assert_replaces_only_masked(batch, generator(batch))


def test_donor_dispatches_on_target() -> None:
    assert isinstance(GENERATORS.build("donor"), DonorFaceSwap)
    assert isinstance(GENERATORS.build("donor", target="body", exclude_persons=["P001"]), DonorBody)
    with pytest.raises(ConfigError):
        GENERATORS.build("donor", target="car")


@pytest.mark.slow
def test_cli_body_donor_runs(tmp_path: Path, astronaut: np.ndarray) -> None:
    photo = tmp_path / "a.jpg"
    write_image_atomic(photo, astronaut)
    assert main(["anonymize", str(photo), "-o", str(tmp_path / "out.png"), "--target", "body", "--method", "donor"]) == 0
    assert (tmp_path / "out.png").exists()


def test_cli_bad_method_target_pairs_are_one_line(tmp_path: Path, astronaut: np.ndarray, capsys) -> None:
    photo = tmp_path / "a.jpg"
    write_image_atomic(photo, astronaut)
    face_option = ["--set", "method_options.keep_shape=0.5"]
    assert main(["anonymize", str(photo), "--target", "body", "--method", "donor", *face_option]) == 2
    face_gan = ["--set", "method_options.model=" + str(Path("weights/gan-face-64").resolve())]
    assert main(["anonymize", str(photo), "--target", "body", "--method", "gan", *face_gan]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 2 and "Traceback" not in err
    assert "keep_shape" in err and "synthesises faces" in err

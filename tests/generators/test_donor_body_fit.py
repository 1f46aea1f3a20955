"""How donor bodies fit the people they replace: box-only poses, far limbs of side views, scene colour."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from realanon.generators._util import mask_bbox
from realanon.generators.body_clothes import draw_identity
from realanon.generators.body_light import footage_colourfulness, light_cast, scene_colourfulness
from realanon.generators.body_warp import (
    LIMBS,
    apply_affine,
    borrowed_limbs,
    box_affine,
    box_pose,
    fit_outline,
    part_transforms,
    person_outline,
    target_box,
)
from realanon.generators.donor_body import DEFAULT_BODY_BANK, DonorBody, bleed_colour
from realanon.regions import RegionOptions, rasterize_body_mask
from realanon.structures import Detection


def _front() -> np.ndarray:
    """A standing person facing the camera, 90 px tall, arms down (COCO-17, visible)."""
    xy = np.array([[50, 10], [53, 8], [47, 8], [56, 10], [44, 10], [62, 25], [38, 25], [64, 42], [36, 42],
                   [65, 58], [35, 58], [58, 58], [42, 58], [57, 78], [43, 78], [56, 98], [44, 98]], np.float32)
    return np.hstack([xy, np.ones((17, 1), np.float32)])


def _silhouette(kp: np.ndarray) -> np.ndarray:
    """``(110, 100)`` bool: a thin figure through the keypoints (as wide as the donor's arms)."""
    mask = np.zeros((110, 100), bool)
    mask[4:100, int(kp[:, 0].min()) - 2:int(kp[:, 0].max()) + 3] = True
    return mask


def test_box_pose_spreads_feet_and_hands_to_a_wide_box_only() -> None:
    donor = _front()
    mask = _silhouette(donor)  # 35 px wide, 96 tall
    narrow_box = (0.0, 0.0, 20.0, 96.0)  # no wider than the donor's feet: only fitted
    narrow = box_pose(donor, mask, narrow_box)
    src = tuple(float(v) for v in mask_bbox(mask))
    np.testing.assert_allclose(narrow[:, :2], apply_affine(box_affine(src, narrow_box), donor[:, :2]), atol=1e-4)
    standing = box_pose(donor, mask, (0.0, 0.0, 35.0, 96.0))
    wide = box_pose(donor, mask, (0.0, 0.0, 60.0, 96.0))
    feet = float(wide[15, 0] - wide[16, 0])
    assert feet + 2 * 0.04 * 96 == pytest.approx(0.85 * 60)  # the feet's outer edges span 85 % of the box
    def span(kp: np.ndarray, i: int, j: int) -> float:
        return float(kp[i, 0] - kp[j, 0])

    # Hands move out half as far as the feet (arms swing less than legs stride).
    assert span(wide, 9, 10) - span(standing, 9, 10) == pytest.approx(0.5 * (span(wide, 15, 16) - span(standing, 15, 16)))
    np.testing.assert_allclose(wide[[0, 5, 6, 11, 12], :2], standing[[0, 5, 6, 11, 12], :2] + (12.5, 0), atol=1e-4)
    np.testing.assert_array_equal(wide[:, 1], standing[:, 1])  # nobody is lifted off the ground
    huge = box_pose(donor, mask, (0.0, 0.0, 400.0, 96.0))  # a rock's box: the spread is capped
    assert float(huge[15, 0] - huge[16, 0]) == pytest.approx(float(donor[15, 0] - donor[16, 0]) + 2 * 0.2 * 96)


def test_side_view_donor_lends_its_near_leg_to_the_targets_far_leg() -> None:
    donor = _front()
    donor[[5, 11, 13, 15], 0] = donor[[6, 12, 14, 16], 0] = 50.0  # seen from the side
    donor[[8, 10, 14, 16], 2] = 0.0  # the far arm and leg are hidden
    target = donor.copy()
    target[[14, 16], 2] = 1.0
    target[16, 0], target[15, 0] = 35.0, 65.0  # walking: feet apart
    sources = borrowed_limbs(donor, target)
    assert sources == {"r_thigh": "l_thigh", "r_shin": "l_shin"}  # the arm stays hidden in the target too
    transforms = part_transforms(donor, target)
    assert transforms is not None
    for name in ("r_shin", "l_shin"):
        i, j, _ = LIMBS[name]
        si, sj, _ = LIMBS[sources.get(name, name)]
        np.testing.assert_allclose(apply_affine(transforms[name], donor[[si, sj], :2]), target[[i, j], :2], atol=1e-3)


def test_only_a_grey_scene_mutes_the_donor() -> None:
    rng = np.random.default_rng(0)
    film = np.full((500, 3), 128.0, np.float32)
    film[:, 0] = rng.uniform(20, 240, 500)
    film[:, 1:] += rng.normal(0, 1.0, (500, 2))  # a grey film's JPEG noise
    assert scene_colourfulness(film) == 0.0
    road = film.copy()
    road[:, 1:] = 128.0 + rng.normal(0, 2.0, (500, 2))
    road[:60, 1:] = (110.0, 150.0)  # a little grass at the edge of a grey road in colour footage
    assert scene_colourfulness(road) == 1.0


def test_colour_footage_of_a_grey_backdrop_keeps_the_donors_colour() -> None:
    rng = np.random.default_rng(0)
    crop = np.full((80, 40, 3), 128, np.uint8)
    crop += rng.integers(0, 3, crop.shape, dtype=np.uint8)  # a grey studio backdrop or road
    person = np.zeros((80, 40), bool)
    person[10:75, 14:26] = True
    grey_person = crop.copy()
    grey_person[person] = 60  # a grey film's person: no colour anywhere
    assert footage_colourfulness(grey_person, grey_person[~person]) == 0.0
    skin = grey_person.copy()
    skin[10:20, 14:26] = (200, 150, 120)  # a colour camera shows the person's skin in colour
    assert footage_colourfulness(skin, skin[~person]) == 1.0


@pytest.mark.skipif(not DEFAULT_BODY_BANK.exists(), reason="weights/body-donors/bank.npz not built")
def test_a_donor_before_a_grey_backdrop_is_grey_only_in_grey_footage() -> None:
    generator = DonorBody()
    grey = np.full((160, 100, 3), 128, np.uint8)  # a studio's grey backdrop, or a grey film
    mask = np.zeros((160, 100), bool)
    mask[10:150, 30:70] = True
    colour = grey.copy()
    colour[mask] = (190, 140, 110)  # in colour footage the person shows colour

    def chroma(image: np.ndarray) -> float:
        lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)[mask]
        return float(np.percentile(np.hypot(lab[:, 1] - 128.0, lab[:, 2] - 128.0), 90))

    # An identity in a coloured top (most wear dark, muted coats that show little colour anyway).
    seed = next(s for s in range(100) if generator.identity(s).top_hsv[1] >= 0.5 and generator.identity(s).top_hsv[2] >= 0.3)
    assert chroma(generator.replace(grey, mask, None, seed)) < 3.0
    assert chroma(generator.replace(colour, mask, None, seed)) > 10.0


def test_light_cast_ignores_coloured_surfaces_and_keeps_a_tinted_light() -> None:
    lab = np.full((400, 3), 128.0, np.float32)
    lab[:, 0] = 150.0
    lab[:200, 1:] = (100.0, 160.0)  # grass around a person on a grey road
    np.testing.assert_allclose(light_cast(lab), (0.0, 0.0), atol=1e-6)
    tinted = lab.copy()
    tinted[:, 2] += 12.0  # a yellow light tints the road too
    assert light_cast(tinted)[1] == pytest.approx(12.0)


@pytest.mark.skipif(not DEFAULT_BODY_BANK.exists(), reason="weights/body-donors/bank.npz not built")
def test_a_box_only_walker_is_filled_by_the_donor() -> None:
    generator = DonorBody()
    mask = np.zeros((140, 100), bool)
    mask[10:130, 20:80] = True  # a box half as wide as tall, no keypoints
    index = generator.choose_view(generator.identity(3).person, None)
    _, cover = generator.donor_layer(mask.shape, mask, None, index, generator.identity(3))
    xs = np.flatnonzero((cover > 0.5).any(axis=0))
    assert xs.max() - xs.min() + 1 >= 0.7 * 60 * 0.9  # the box inside the mask's 5 % margin, about filled


def test_a_narrowing_mask_puts_the_head_where_one_fits() -> None:
    mask = np.zeros((60, 60), bool)
    for y in range(5, 55):  # a cone: a point at the top, 40 px wide at the bottom
        half = (y - 5) * 20 // 50
        mask[y, 30 - half:30 + half + 1] = True
    x1, y1, x2, y2 = target_box(mask, None, 0.0)
    assert (x1, x2, y2) == (11.0, 50.0, 55.0)
    assert y1 == 10.0  # rows 5-9, narrower than a head (a tenth of the height), are left out
    box = np.zeros((60, 60), bool)
    box[5:55, 20:40] = True
    assert target_box(box, None, 0.0) == (20.0, 5.0, 40.0, 55.0)  # a box mask keeps its top


@pytest.mark.skipif(not DEFAULT_BODY_BANK.exists(), reason="weights/body-donors/bank.npz not built")
def test_a_narrow_box_without_keypoints_gets_a_side_view() -> None:
    generator = DonorBody()
    views = {str(generator.donors.view[generator.choose_view("P001", None, (12.0, 70.0), seed)]) for seed in (0, 1)}
    assert views == {"left", "right"}
    assert generator.donors.view[generator.choose_view("P001", None, (30.0, 70.0), 0)] == "front"


def test_street_clothes_are_mostly_dark_and_a_third_of_the_trousers_jeans() -> None:
    many = [draw_identity(s, np.array(["P001"])) for s in range(600)]
    tops = np.array([i.top_hsv for i in many])
    assert np.median(tops[:, 2]) < 0.2  # dark coats are the common case
    bottoms = np.array([i.bottom_hsv for i in many])
    jeans = (bottoms[:, 0] >= 100) & (bottoms[:, 0] <= 118) & (bottoms[:, 1] >= 0.3) & (bottoms[:, 2] >= 0.15)
    assert 0.3 < jeans.mean() < 0.45


def _walker(height: int = 40) -> np.ndarray:
    """``(h, w)`` bool silhouette of a person ``height`` px tall in a coat, legs apart (the mask a detector gives)."""
    h, w = height + 20, height
    mask = np.zeros((h, w), np.uint8)
    cx, top = w // 2, 10
    cv2.ellipse(mask, (cx, top + height // 10), (height // 14 + 1, height // 10), 0, 0, 360, (1,), -1)  # head
    cv2.rectangle(mask, (cx - height // 7, top + height // 6), (cx + height // 7, top + height // 2), (1,), -1)  # coat
    for side in (-1, 1):  # legs apart
        foot = (cx + side * height // 6, top + height)
        cv2.line(mask, (cx + side * height // 16, top + height // 2), foot, (1,), max(2, height // 12))
    return mask > 0


def test_person_outline_undoes_the_regions_margin() -> None:
    person = np.zeros((120, 80), bool)
    person[10:110, 25:55] = True
    det = Detection((25.0, 10.0, 55.0, 110.0), 0.9, "body", mask=person)
    replace = rasterize_body_mask(det, (0, 0, 80, 120), RegionOptions())
    assert replace.sum() > 1.2 * person.sum()  # grown by 5 px
    outline = person_outline(replace, RegionOptions().body_margin)
    assert (outline ^ person).sum() < 0.03 * person.sum()  # only the rounded corners differ


def test_fit_outline_dresses_the_outline_near_the_donor_only() -> None:
    outline = np.zeros((100, 60), bool)
    outline[30:70, 10:50] = True  # a coat 40 px wide
    outline[70:, 18:42] = True  # legs
    outline[:30, 24:36] = True  # a head
    cover = np.zeros((100, 60), np.float32)
    cover[:, 24:36] = 1.0  # a slim donor
    cover[:, 23] = cover[:, 36] = 0.4  # its soft edge
    colour = np.zeros((100, 60, 3), np.float32)
    colour[:, 24:30] = (200.0, 0.0, 0.0)
    colour[:, 30:36] = (0.0, 0.0, 200.0)
    new_colour, new_cover = fit_outline(colour, cover, outline)
    # 6 % of 100 px is 6 px, capped at 4: within 4 px of the donor the outline is opaque donor.
    assert (new_cover[30:, 20:40] == 1.0).all()
    np.testing.assert_array_equal(new_cover[:, :20], cover[:, :20])  # further: the scene (a bag, a bicycle)
    np.testing.assert_array_equal(new_cover[:, 40:], cover[:, 40:])
    assert (new_colour[30:, 20:24] == (200.0, 0.0, 0.0)).all() and (new_colour[30:, 36:40] == (0.0, 0.0, 200.0)).all()
    np.testing.assert_array_equal(new_colour[:, 24:36], colour[:, 24:36])  # the donor keeps its own pixels
    np.testing.assert_array_equal(new_cover[:30, 20:24], cover[:30, 20:24])  # beside the head: not the outline
    outside = np.zeros_like(outline)
    outside[:, :5] = True  # a donor limb outside the target's outline is left as it is
    np.testing.assert_array_equal(fit_outline(colour, cover, outside)[1], cover)
    box = np.zeros_like(outline)
    box[:, 10:50] = True  # a box-shaped mask (a small person, a box-only detector) is no outline
    np.testing.assert_array_equal(fit_outline(colour, cover, box)[1], cover)


def test_bleeding_keeps_a_grey_backdrop_out_of_a_shrunk_donor() -> None:
    rgb = np.full((80, 40, 3), 120, np.uint8)  # the bank's grey studio
    solid = np.zeros((80, 40), bool)
    solid[:, 17:23] = True  # a dark limb 6 px wide
    rgb[solid] = 20
    bled = bleed_colour(rgb, solid)
    np.testing.assert_array_equal(bled[solid], rgb[solid])
    assert (bled == 20).all()  # every pixel a filter may mix in is the limb's
    small = cv2.resize(bled, (10, 20), interpolation=cv2.INTER_AREA)  # the limb shrunk to 1.5 px
    assert small.max() == 20  # the edge pixels are not washed out to grey


@pytest.mark.skipif(not DEFAULT_BODY_BANK.exists(), reason="weights/body-donors/bank.npz not built")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_small_donor_fills_the_person_it_replaces(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    import realanon.generators.donor_body as donor_body

    person = _walker(40)
    ys, xs = np.nonzero(person)
    det = Detection((float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)), 0.9, "body",
                    mask=person)
    replace = rasterize_body_mask(det, (0, 0, person.shape[1], person.shape[0]), RegionOptions())
    crop = np.full(person.shape + (3,), 170, np.uint8)  # a light road
    layers = []
    for value in (0.0, 255.0):  # the donor over black and over white: their difference is its coverage
        monkeypatch.setattr(donor_body, "fill_background", lambda c, m, s, sd, v=value: np.full(c.shape, v, np.float32))
        layers.append(DonorBody().replace(crop, replace, None, seed).astype(np.float32))
    cover = 1.0 - (layers[1] - layers[0]).mean(axis=2) / 255.0
    assert (cover[person] > 0.5).mean() > 0.9  # the scene no longer shows through the person

"""The tone fit of the inner face: the donor's features in proportion to the target's skin."""

from __future__ import annotations

import cv2
import numpy as np

from realanon.generators.face_inner import donor_details, tone_details


def lab_image(skin: tuple[float, float, float], patch: tuple[float, float, float]) -> np.ndarray:
    """``(64, 64, 3)`` uint8 RGB: a flat skin with a 16-px patch (a feature) in the middle, given in CIELAB."""
    lab = np.empty((64, 64, 3), np.float32)
    lab[:] = skin
    lab[24:40, 24:40] = patch
    rgb = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
    return np.asarray(np.clip(np.rint(rgb * 255), 0, 255), dtype=np.uint8)


def to_lab(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB))


SKIN = np.ones((64, 64), bool)
SKIN[20:44, 20:44] = False  # the feature is not skin (as the mesh's eyes and brows are not)


def test_a_dark_feature_keeps_its_share_of_a_darker_targets_lightness() -> None:
    donor = lab_image((80.0, 12.0, 18.0), (56.0, 8.0, 12.0))  # an eyelid 0.7 as light as the skin
    target = lab_image((40.0, 14.0, 22.0), (40.0, 14.0, 22.0))
    out = to_lab(tone_details(donor_details(donor, SKIN, 8.0), target, SKIN, 8.0))
    centre, skin = out[28:36, 28:36, 0].mean(), out[4:12, 4:12, 0].mean()
    assert abs(skin - 40.0) < 2.0
    # The flat target's contrast scales the details by 1 / 1.6: the ratio gives 40 * 0.7 ** 0.625
    # = 32, where subtracting the donor's 24 levels (as much scaled) would give 25.
    assert 29.0 < centre < 35.0, centre


def test_a_feature_less_red_than_a_ruddy_donors_skin_does_not_turn_green() -> None:
    donor = lab_image((60.0, 26.0, 26.0), (35.0, 6.0, 8.0))  # a dark brow on ruddy skin
    target = lab_image((75.0, 10.0, 16.0), (75.0, 10.0, 16.0))  # a pale target
    out = to_lab(tone_details(donor_details(donor, SKIN, 8.0), target, SKIN, 8.0))
    brow = out[28:36, 28:36].reshape(-1, 3).mean(axis=0)
    assert brow[1] > 0.0 and brow[2] > 0.0, brow  # still a warm brown, not green or blue
    assert np.hypot(brow[1], brow[2]) < np.hypot(10.0, 16.0)  # and less colourful than the skin


def test_hair_over_the_forehead_does_not_tint_the_skin_tone() -> None:
    target = lab_image((70.0, 12.0, 16.0), (70.0, 12.0, 16.0))
    fringe = to_lab(target)
    fringe[:14] = (35.0, 6.0, 24.0)  # dark blond hair across the top, inside the mesh's skin
    target = np.asarray(np.clip(np.rint(cv2.cvtColor(fringe, cv2.COLOR_LAB2RGB) * 255), 0, 255), dtype=np.uint8)
    donor = lab_image((70.0, 12.0, 16.0), (70.0, 12.0, 16.0))
    out = to_lab(tone_details(donor_details(donor, SKIN, 8.0), target, SKIN, 8.0))
    forehead = out[16:20, 4:60].reshape(-1, 3).mean(axis=0)
    assert abs(forehead[0] - 70.0) < 3.0 and abs(forehead[2] - 16.0) < 3.0, forehead

"""Scene-fit metrics on synthetic cases whose answer is known."""

from __future__ import annotations

import cv2
import numpy as np

from realanon.evaluation.scene_fit import (
    border_band,
    border_edge_ratio,
    changed_pixels,
    close_share,
    ring_colour_distance,
    twin_share,
    wasserstein_levels,
)


def _texture(size: int = 160, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.normal(128, 40, (size, size, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 1.0), 0, 255).astype(np.uint8)


def _disc(size: int = 160, radius: int = 40) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    cv2.circle(mask, (size // 2, size // 2), radius, (1,), -1)
    return mask.astype(bool)


def test_wasserstein_levels_is_the_shift_of_a_constant() -> None:
    a = np.full(100, 10, np.uint8)
    assert wasserstein_levels(a, a) == 0.0
    assert abs(wasserstein_levels(a, a + 7) - 7.0) < 1e-9


def test_ring_distance_zero_for_uniform_and_grows_with_a_bright_box() -> None:
    image = np.full((100, 100, 3), 120, np.uint8)
    assert ring_colour_distance(image, (40, 40, 60, 60)) == (0.0, 0.0)
    image[40:60, 40:60] = 180
    s, v = ring_colour_distance(image, (40, 40, 60, 60))
    assert s == 0.0 and abs(v - 60.0) < 1e-9


def test_border_band_straddles_the_border() -> None:
    disc = _disc()
    band = border_band(disc, 5)
    assert band.any() and not band[80, 80] and not band[0, 0]
    assert (band & disc).any() and (band & ~disc).any()


def test_edge_ratio_is_one_for_a_soft_replacement_below_for_a_halo_above_for_a_sticker() -> None:
    original = _texture()
    disc = _disc()
    # The same texture statistics inside (another draw), eased in: the border looks like the original.
    soft = original.copy()
    soft[disc] = _texture(seed=1)[disc]
    assert 0.8 <= border_edge_ratio(soft, original, changed_pixels(soft, original)) <= 1.25
    halo = original.copy()
    blurred = cv2.GaussianBlur(original, (0, 0), 4)
    halo[disc] = blurred[disc]
    assert border_edge_ratio(halo, original, disc) < 0.8
    sticker = original.copy()
    sticker[disc] = 255
    sticker[cv2.erode(disc.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0] = 0  # a hard outline
    assert border_edge_ratio(sticker, original, disc) > 1.25


def test_twin_and_close_shares() -> None:
    far = np.eye(4)  # pairwise distance sqrt(2) > 0.6
    assert twin_share(far) == 0.0
    twins = np.vstack([far, far[:1] + 0.01])
    assert abs(twin_share(twins) - 1 / 10) < 1e-9
    assert np.isnan(twin_share(far[:1]))
    assert close_share(far[:2], far[2:]) == 0.0 and close_share(far[:2], far[:1] + 0.1) == 0.5

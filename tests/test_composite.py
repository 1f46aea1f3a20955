"""Paste-back, feathering and the baselines' windowed work against straightforward float references."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from realanon.composite import blend_uint8, mask_entire_frame, paste_regions
from realanon.config import RegionOptions
from realanon.generators.blur import GaussianBlur, blur_box, gaussian_blur
from realanon.generators.mask import MaskOut
from realanon.regions import (
    FEATHER_FULL_RES_PX,
    build_regions,
    clip_box,
    crop_with_padding,
    feather_alpha_u8,
    feather_mask,
)
from realanon.structures import Detection, Detections, GenerationBatch, Region


def reference_paste(image: np.ndarray, regions: list[Region], generated: list[np.ndarray]) -> np.ndarray:
    """The original implementation: float32 blend over boolean indexing, region by region."""
    out = image.copy()
    for region, crop in zip(regions, generated):
        x1, y1, _, _ = region.crop_box_xyxy
        cx1, cy1, cx2, cy2 = clip_box(region.crop_box_xyxy, image.shape[:2])
        if cx2 <= cx1 or cy2 <= cy1:
            continue
        inner = (slice(cy1 - y1, cy2 - y1), slice(cx1 - x1, cx2 - x1))
        mask = region.replace_mask[inner]
        alpha = region.blend_mask[inner][mask][:, None] / np.float32(255)
        target = out[cy1:cy2, cx1:cx2]
        blended = alpha * crop[inner][mask].astype(np.float32) + (1.0 - alpha) * target[mask].astype(np.float32)
        target[mask] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out


def reference_feather(mask: np.ndarray, feather_px: float) -> np.ndarray:
    """Full-resolution distance transform over the whole crop."""
    if feather_px < 1:
        return mask.astype(np.float32)
    dist = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
    return np.clip(dist / feather_px, 0, 1).astype(np.float32) * mask


def faces(size: tuple[int, int], boxes: list[tuple[float, float, float, float]]) -> Detections:
    return Detections(tuple(Detection(b, 0.9, "face") for b in boxes), size)


# Large face past the frame's edges, small faces, overlapping faces, a face half outside.
SCENES = [
    ((360, 640), [(150.0, 20.0, 480.0, 350.0)]),
    ((240, 320), [(10.5, 12.2, 30.7, 36.1), (25.0, 20.0, 60.0, 62.0), (280.0, 200.0, 330.0, 260.0)]),
    ((200, 300), [(-40.0, 50.0, 60.0, 170.0), (100.0, 30.0, 112.0, 44.0)]),
]


@pytest.mark.parametrize(("size", "boxes"), SCENES)
@pytest.mark.parametrize("feather", [0.0, 0.08, 0.3])
def test_paste_is_within_one_level_of_the_float_reference(size, boxes, feather, rng) -> None:  # type: ignore[no-untyped-def]
    image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    regions = build_regions(faces(size, boxes), RegionOptions(feather=feather))
    generated = [rng.integers(0, 256, (*r.crop_size, 3), dtype=np.uint8) for r in regions]
    out = paste_regions(image, regions, generated)
    ref = reference_paste(image, regions, generated)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1
    union = np.zeros(size, dtype=bool)
    for r in regions:
        x1, y1, _, _ = r.crop_box_xyxy
        cx1, cy1, cx2, cy2 = clip_box(r.crop_box_xyxy, size)
        union[cy1:cy2, cx1:cx2] |= r.replace_mask[cy1 - y1 : cy2 - y1, cx1 - x1 : cx2 - x1]
    assert np.array_equal(out[~union], image[~union])  # bit-identical outside every replace-mask
    assert not np.array_equal(out[union], image[union])


def test_paste_ignores_alpha_outside_the_replace_mask(rng) -> None:  # type: ignore[no-untyped-def]
    """A hand-made region whose blend mask leaks outside its replace-mask still changes nothing there."""
    image = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    mask = np.zeros((20, 30), dtype=bool)
    mask[5:15, 5:25] = True
    region = Region(Detection((0, 0, 1, 1), 1.0, "face"), (10, 10, 40, 30), mask, np.full((20, 30), 255, np.uint8))
    out = paste_regions(image, [region], [np.zeros((20, 30, 3), np.uint8)])
    assert (out[15:25, 15:35] == 0).all()
    outside = np.ones((50, 60), dtype=bool)
    outside[15:25, 15:35] = False
    assert np.array_equal(out[outside], image[outside])


def test_the_more_confident_of_two_overlapping_regions_wins() -> None:
    """A doubtful detection over a real face must not paint over that face's checked replacement."""
    image = np.zeros((40, 40, 3), dtype=np.uint8)
    mask, alpha = np.ones((20, 20), dtype=bool), np.full((20, 20), 255, np.uint8)
    face = Region(Detection((10, 10, 30, 30), 0.9, "face"), (10, 10, 30, 30), mask, alpha)
    doubtful = Region(Detection((15, 5, 35, 25), 0.4, "face"), (15, 5, 35, 25), mask, alpha)
    crops = [np.full((20, 20, 3), 200, np.uint8), np.full((20, 20, 3), 50, np.uint8)]
    for order in ([0, 1], [1, 0]):
        out = paste_regions(image, [(face, doubtful)[i] for i in order], [crops[i] for i in order])
        assert (out[10:30, 10:30] == 200).all() and (out[5:10, 15:35] == 50).all()


def test_blend_uint8_is_exact_at_the_ends_and_rounds_in_between() -> None:
    fg = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    bg = fg[::-1, ::-1].copy()
    for a in (0, 1, 77, 128, 254, 255):
        alpha = np.full((16, 16), a, np.uint8)
        got = blend_uint8(fg, bg, alpha).astype(int)
        ref = np.rint((fg.astype(int) * a + bg.astype(int) * (255 - a)) / 255)
        assert np.abs(got - ref).max() <= 1
    assert np.array_equal(blend_uint8(fg, bg, np.zeros((16, 16), np.uint8)), bg)
    assert np.array_equal(blend_uint8(fg, bg, np.full((16, 16), 255, np.uint8)), fg)


@pytest.mark.parametrize("feather_px", [0.5, 3.0, FEATHER_FULL_RES_PX])
def test_feather_at_full_resolution_equals_the_reference(feather_px: float) -> None:
    mask = np.zeros((90, 120), dtype=bool)
    cv2.ellipse(mask.view(np.uint8), (70, 40), (35, 50), 20, 0, 360, 1, -1)
    np.testing.assert_allclose(feather_mask(mask, feather_px), reference_feather(mask, feather_px), atol=1e-6)


@pytest.mark.parametrize("feather_px", [40.0, 109.0])
def test_wide_feather_at_reduced_resolution_stays_close(feather_px: float) -> None:
    """A 730-px face's ramp: computed from a shrunk mask, within 0.03 of the full-resolution alpha."""
    mask = np.zeros((1100, 1400), dtype=bool)
    cv2.ellipse(mask.view(np.uint8), (760, 520), (547, 684), 10, 0, 360, 1, -1)
    mask[:, :250] = False  # a straight cut, as where a region leaves the frame
    alpha, ref = feather_mask(mask, feather_px), reference_feather(mask, feather_px)
    assert np.abs(alpha - ref).max() <= 0.03
    assert (alpha[~mask] == 0).all() and (alpha[mask] > 0).all()
    assert (alpha == 1).sum() >= 0.99 * (ref == 1).sum()


@pytest.mark.parametrize("feather_px", [0.5, 3.0, 40.0])
def test_uint8_feather_is_the_float_feather_rounded(feather_px: float) -> None:
    mask = np.zeros((300, 400), dtype=bool)
    cv2.ellipse(mask.view(np.uint8), (210, 140), (150, 120), 20, 0, 360, 1, -1)
    alpha = feather_alpha_u8(mask, feather_px)
    assert alpha.dtype == np.uint8 and (alpha[~mask] == 0).all() and (alpha[mask] > 0).all()
    assert np.abs(alpha.astype(int) - np.rint(255 * feather_mask(mask, feather_px))).max() <= 1


def test_crop_with_padding_equals_numpy_edge_padding(rng) -> None:  # type: ignore[no-untyped-def]
    image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    for box in [(-5, -7, 20, 25), (10, 10, 60, 45), (-3, 5, 43, 20), (5, 5, 15, 15)]:
        x1, y1, x2, y2 = box
        cx1, cy1, cx2, cy2 = clip_box(box, (30, 40))
        ref = np.pad(image[cy1:cy2, cx1:cx2], ((cy1 - y1, y2 - cy2), (cx1 - x1, x2 - cx2), (0, 0)), mode="edge")
        assert np.array_equal(crop_with_padding(image, box), ref)
        assert np.array_equal(crop_with_padding(image[..., 0], box), ref[..., 0])


def reference_blur(crop: np.ndarray, sigma: float) -> np.ndarray:
    """The blur of the whole crop: above sigma 3, shrunk by the integer factor ceil(sigma / 3)
    (edges replicated to whole blocks), blurred at sigma / k and scaled back up by k."""
    h, w = crop.shape[:2]
    if sigma <= 3.0:
        return gaussian_blur(crop, sigma)
    k = int(np.ceil(sigma / 3.0))
    padded = cv2.copyMakeBorder(crop, 0, -h % k, 0, -w % k, cv2.BORDER_REPLICATE)
    small = cv2.resize(padded, (padded.shape[1] // k, padded.shape[0] // k), interpolation=cv2.INTER_AREA)
    small = gaussian_blur(small, sigma / k)
    return cv2.resize(small, (padded.shape[1], padded.shape[0]), interpolation=cv2.INTER_LINEAR)[:h, :w]


@pytest.mark.parametrize(("box", "sigma"), [((30, 40, 80, 100), 2.5), ((0, 0, 200, 150), 1.0),
                                            ((20, 10, 190, 140), 25.0), ((150, 100, 200, 150), 6.0),
                                            ((90, 70, 110, 85), 7.0), ((3, 5, 197, 149), 13.0)])
def test_blur_of_the_box_equals_blurring_the_whole_crop(box, sigma, rng) -> None:  # type: ignore[no-untyped-def]
    crop = cv2.GaussianBlur(rng.integers(0, 256, (150, 200, 3), dtype=np.uint8), (0, 0), 2)
    x1, y1, x2, y2 = box
    assert np.array_equal(blur_box(crop, box, sigma), reference_blur(crop, sigma)[y1:y2, x1:x2])


@pytest.mark.parametrize(("size", "sigma"), [((30, 40), 1.0), ((60, 60), 2.5), ((150, 200), 3.0), ((20, 300), 1.7)])
def test_gaussian_blur_is_within_1_level_of_the_exact_blur(size, sigma, rng) -> None:  # type: ignore[no-untyped-def]
    image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    ours = gaussian_blur(image, sigma).astype(int)
    exact = cv2.GaussianBlur(image.astype(np.float64), (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    assert ours.shape == exact.shape and np.abs(ours - exact).max() <= 1.0
    # OpenCV's own uint8 path rounds its kernel to fixed point: up to 2 levels from the exact blur.
    theirs = cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    assert np.abs(ours - theirs).max() <= 2


def test_baselines_change_only_the_mask_box(rng) -> None:  # type: ignore[no-untyped-def]
    crop = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    mask = np.zeros((60, 80), dtype=bool)
    mask[10:40, 20:50] = True
    batch = GenerationBatch((crop,), (mask,), (None,), (None,), ("face",), (0,))
    blurred = GaussianBlur()(batch)[0]
    assert np.array_equal(blurred[10:40, 20:50], reference_blur(crop, 0.15 * 30)[10:40, 20:50])
    assert np.array_equal(MaskOut((1, 2, 3))(batch)[0], np.broadcast_to(np.uint8([1, 2, 3]), crop.shape))
    assert np.array_equal(mask_entire_frame(crop, (4, 5, 6)), np.broadcast_to(np.uint8([4, 5, 6]), crop.shape))

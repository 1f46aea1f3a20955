"""A video track's face mesh and planned face, reused while its face stays put in its crop."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import realanon.generators.donor as donor_module
from realanon.generators.donor import DonorFaceSwap
from realanon.generators.face_keep import FaceKeeper, aligned_shift
from realanon.structures import GenerationBatch


def texture(seed: int, size: int = 96) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(0, 1, (size, size)).astype(np.float32)
    return np.asarray(cv2.GaussianBlur(noise, (0, 0), 3) * 400 + 128, dtype=np.float32)


def test_aligned_shift_finds_a_small_move_and_refuses_another_face() -> None:
    grey, box = texture(0), (24.0, 24.0, 72.0, 72.0)
    assert aligned_shift(grey, grey, box) == (0, 0)
    moved = np.roll(grey, (-2, 3), axis=(0, 1))  # 3 px right, 2 px up
    assert aligned_shift(grey, moved, box) == (3, -2)
    assert aligned_shift(grey, texture(1), box) is None, "another face: look again"
    assert aligned_shift(grey, np.roll(grey, 20, axis=1), box) is None, "moved too far: look again"


def test_keeper_finds_a_mesh_once_while_the_face_stays_put() -> None:
    keeper, found = FaceKeeper(), []
    crop = np.repeat(texture(2)[..., None], 3, axis=2).clip(0, 255).astype(np.uint8)
    mesh = np.zeros((478, 3), np.float32)

    def find() -> tuple[np.ndarray, bool]:
        found.append(1)
        return mesh, False

    box = (24.0, 24.0, 72.0, 72.0)
    assert keeper.face(7, crop, box, find)[0] is mesh
    keeper.new_frame()
    moved, _ = keeper.face(7, np.roll(crop, 2, axis=1), box, find)
    assert len(found) == 1 and moved is not None and np.allclose(moved[:, :2], [2, 0])
    made = []
    plan = keeper.plan(7, "identity", crop.shape, lambda: made.append(1))  # type: ignore[func-returns-value]
    assert plan is None and made == [1]
    keeper.plan(7, "identity", crop.shape, lambda: made.append(1))  # type: ignore[func-returns-value]
    assert made == [1], "the track's plan for this identity is kept"
    keeper.new_frame()
    keeper.plan(8, "identity", crop.shape, lambda: made.append(1))  # type: ignore[func-returns-value]
    assert made == [1, 1], "an untracked face (no target on this frame) is always planned anew"
    keeper.face(7, np.repeat(texture(3)[..., None], 3, axis=2).clip(0, 255).astype(np.uint8), box, find)
    assert len(found) == 2, "another face under the track's seed is meshed again"


def test_a_still_tracked_face_is_meshed_and_warped_once(
        astronaut_region: tuple[np.ndarray, np.ndarray, int], monkeypatch: pytest.MonkeyPatch) -> None:
    crop, mask, seed = astronaut_region
    generator = DonorFaceSwap()
    meshed, planned = [], []
    find, plan = generator.find_face, donor_module.plan_inner_face
    monkeypatch.setitem(generator.__dict__, "find_face", lambda *a: meshed.append(1) or find(*a))
    monkeypatch.setattr(donor_module, "plan_inner_face", lambda *a: planned.append(1) or plan(*a))

    def draw(image: np.ndarray, tracked: bool = True) -> np.ndarray:
        batch = GenerationBatch((image,), (mask,), (None,), (None,), ("face",), (seed,), tracked=(tracked,))
        return generator(batch)[0]

    first = draw(crop)
    meshes, plans = len(meshed), len(planned)
    np.testing.assert_array_equal(draw(crop), first)
    moved = draw(np.roll(crop, 2, axis=1))  # the face 2 px to the right in its crop
    assert (len(meshed), len(planned)) == (meshes, plans), "nothing is meshed or warped again"
    inside = np.roll(mask, 2, axis=1) & mask
    changed = np.abs(moved.astype(int) - np.roll(crop, 2, axis=1)).sum(axis=2) > 0
    assert np.abs(np.roll(first, 2, axis=1)[inside & changed].astype(int) - moved[inside & changed]).mean() < 4
    draw(crop, tracked=False)
    assert len(meshed) == meshes + 1, "an untracked face is meshed every time"


def test_a_meshless_region_over_another_face_is_drawn_opaque(
        astronaut_region: tuple[np.ndarray, np.ndarray, int]) -> None:
    crop, mask, seed = astronaut_region
    generator = DonorFaceSwap()
    h, w = mask.shape
    big = np.zeros((3 * h, 3 * w), bool)  # a detection three times the face's size, over it
    cv2.ellipse(big.view(np.uint8), (3 * w // 2, 3 * h // 2), (int(1.4 * w), int(1.4 * h)), 0, 0, 360, (1,), -1)
    # Grey noise around the photo: on a flat padding a flat cover could equal it by chance.
    wide = np.random.default_rng(0).integers(112, 145, (3 * h, 3 * w, 3)).astype(np.uint8)
    wide[h:2 * h, w:2 * w] = crop
    target, crowded = generator.find_face(wide, big)
    assert target is None and crowded, "the face is too small to be this region's own: another person's"
    identity = generator.identities([seed])[0]
    faded = generator.render(wide, big, None, seed, identity, None)
    opaque = generator.render(wide, big, None, seed, identity, None, crowded=True)
    kept = lambda out: float((out == wide).all(axis=2)[big].mean())  # noqa: E731
    assert kept(opaque) < 0.01 < kept(faded), "nothing of the original shows through inside the mask"

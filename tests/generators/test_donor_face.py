"""The ``donor`` generator's inner-face mode: identities, contracts, fallback, keypoint layouts."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from realanon.config import AnonymizerConfig
from realanon.generators.donor import DonorFaceSwap, face_anchors
from realanon.generators.face_identity import assign_identities, draw_identity
from realanon.generators.face_inner import eyes_open, inner_face_mask, mixed_shape
from realanon.generators.face_render import fallback_geometry, fill_face
from realanon.generators.face_warp import mesh_groups
from realanon.pipeline import build_anonymizer
from realanon.regions import build_regions
from realanon.structures import GenerationBatch

PERSONS = tuple(f"P{i:03d}" for i in range(1, 11))


@pytest.fixture(scope="module")
def generator() -> DonorFaceSwap:
    return DonorFaceSwap()


def test_identities_follow_the_seed_and_never_repeat_in_a_batch() -> None:
    assert draw_identity(5, PERSONS) == draw_identity(5, PERSONS)
    drawn = {draw_identity(s, PERSONS) for s in range(20)}
    assert len(drawn) > 10, "different seeds should give different identities"
    for identity in drawn:
        assert 2 <= len(identity.persons) <= 3 and len(set(identity.persons)) == len(identity.persons)
        assert abs(sum(identity.weights) - 1.0) < 1e-6 and identity.weights[0] == max(identity.weights)
    seeds = list(range(100, 130))
    batch = assign_identities(seeds, PERSONS)
    mains = [i.main for i in batch[:10]]
    assert len({(i.persons[0], i.persons[1]) for i in batch}) == len(seeds), "no two regions alike"
    ordered = sorted(range(len(seeds)), key=lambda i: seeds[i])
    assert len({batch[i].main for i in ordered[:10]}) == 10 and len(mains) == 10, "distinct main donors first"
    # The smallest seed of a batch always keeps the identity it draws alone (a track's identity).
    assert batch[0] == draw_identity(seeds[0], PERSONS)


def test_identities_avoid_lookalikes_unless_none_would_be_left() -> None:
    avoided = assign_identities(list(range(12)), PERSONS, avoid=("P001", "P002"))
    assert all(not {"P001", "P002"} & set(i.persons) for i in avoided)
    assert assign_identities([1], ("P001",), avoid=("P001",))[0].persons == ("P001",)
    with pytest.raises(ValueError, match="no donor"):
        assign_identities([1], ())


def test_same_seed_same_output_and_other_seeds_other_faces(
    generator: DonorFaceSwap, astronaut_region: tuple[np.ndarray, np.ndarray, int]
) -> None:
    crop, mask, seed = astronaut_region
    first = generator.swap(crop, mask, None, seed)
    np.testing.assert_array_equal(first, generator.swap(crop, mask, None, seed))
    other = generator.swap(crop, mask, None, seed + 1)
    changed = (first != crop).any(axis=2)
    assert np.abs(first[changed].astype(int) - other[changed]).mean() > 5


def test_only_the_inner_face_changes(generator: DonorFaceSwap,
                                     astronaut_region: tuple[np.ndarray, np.ndarray, int]) -> None:
    crop, mask, seed = astronaut_region
    out = generator.swap(crop, mask, None, seed)
    target = generator.find_target(crop, mask)
    assert target is not None
    inner = inner_face_mask(target, crop.shape[:2]) & mask
    np.testing.assert_array_equal(out[~inner], crop[~inner])  # hair, forehead, ears, background kept
    diff = np.abs(out.astype(int) - crop).sum(axis=2)
    core = cv2.erode(inner.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    assert (diff[core] > 12).mean() > 0.5, "the face itself is new"
    # Eyes, nose and mouth of the original are inside the replaced area.
    features = np.concatenate([mesh_groups()["eyes"], mesh_groups()["lips"], [1, 4]])
    xy = np.round(target[features, :2]).astype(int)
    assert inner[xy[:, 1], xy[:, 0]].all()


def test_pipeline_keeps_pixels_outside_the_replace_mask(astronaut: np.ndarray) -> None:
    from realanon.regions import union_mask

    result = build_anonymizer(AnonymizerConfig(method="donor", fail_closed=False))(astronaut)
    inside = union_mask(result.regions, result.detections.image_size)
    np.testing.assert_array_equal(result.image[~inside], astronaut[~inside])
    assert (result.image != astronaut).any()


@pytest.mark.parametrize("size", [12, 40, 120])
def test_fallback_covers_the_detection_when_no_mesh(generator: DonorFaceSwap, size: int) -> None:
    crop = np.full((size, size, 3), (40, 160, 90), dtype=np.uint8)
    mask = np.zeros((size, size), dtype=bool)
    cv2.ellipse(mask.view(np.uint8), (size // 2, size // 2), (size * 3 // 8, size * 7 // 16), 0, 0, 360, (1,), -1)
    assert generator.find_target(crop, mask) is None
    out = generator.swap(crop, mask, None, seed=3)
    np.testing.assert_array_equal(out[~mask], crop[~mask])
    # The detection is the mask's box inset by the margin; every pixel of its inscribed ellipse is replaced.
    ys, xs = np.nonzero(mask)
    cx, cy = (xs.min() + xs.max() + 1) / 2, (ys.min() + ys.max() + 1) / 2
    ax, ay = 0.35 * (xs.max() + 1 - xs.min()), 0.35 * (ys.max() + 1 - ys.min())
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    face = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1
    assert (out[face] != crop[face]).any(axis=1).mean() > 0.95
    assert np.abs(out[face].astype(int) - crop[face]).max() > 20, "a face, not a tint"


def test_fallback_is_placed_by_eye_keypoints_when_given() -> None:
    reference = np.zeros((478, 3), np.float32)
    reference[:, :2] = np.random.default_rng(0).uniform(50, 150, (478, 2))
    reference[468, :2], reference[473, :2], reference[1, :2] = (80, 100), (120, 100), (100, 120)
    mask = np.ones((64, 64), bool)
    anchors = np.array([[20, 30, 1], [40, 30, 1], [30, 40, 1]], np.float32)
    placed = fallback_geometry(reference, anchors, mask)
    np.testing.assert_allclose(placed[[468, 473, 1], :2], anchors[:, :2], atol=1e-3)
    hidden = anchors.copy()
    hidden[:, 2] = 0  # no visible keypoint: placed on the mask instead
    assert not np.allclose(fallback_geometry(reference, hidden, mask)[468, :2], anchors[0, :2], atol=1.0)


def test_keypoint_layouts_are_read_defensively() -> None:
    face6 = np.arange(18, dtype=np.float32).reshape(6, 3)
    np.testing.assert_array_equal(face_anchors(face6, "face6"), face6[:3])
    np.testing.assert_array_equal(face_anchors(face6[:5], "face5"), face6[:3])
    np.testing.assert_array_equal(face_anchors(face6, "face6_ears_hidden"), face6[:3])
    mesh = np.zeros((478, 3), np.float32)
    assert face_anchors(mesh, "face_mesh478").shape == (3, 3)
    assert face_anchors(np.zeros((17, 3), np.float32), "coco17") is None
    assert face_anchors(None, "face6") is None and face_anchors(face6, None) is None
    assert face_anchors(face6[:1], "face6") is None


def test_generator_accepts_unknown_layouts(generator: DonorFaceSwap) -> None:
    crop = np.full((48, 48, 3), 120, np.uint8)
    mask = np.zeros((48, 48), bool)
    mask[8:40, 10:38] = True
    kps = np.array([[18, 20, 1], [30, 20, 1], [24, 28, 1], [20, 34, 1], [28, 34, 1]], np.float32)
    batch = GenerationBatch((crop, crop), (mask, mask), (kps, kps), ("face5", "something_new"), ("face", "face"), (1, 2))
    for out in generator(batch):
        np.testing.assert_array_equal(out[~mask], crop[~mask])
        assert (out[mask] != crop[mask]).any()


def test_eyes_and_lips_follow_the_target_more_than_the_rest() -> None:
    rng = np.random.default_rng(1)
    target = rng.uniform(0, 100, (478, 3)).astype(np.float32)
    donor = target + rng.normal(0, 5, target.shape).astype(np.float32)
    shape = mixed_shape(target, [donor], np.array([1.0]), keep=0.1, keep_features=0.8)
    eyes = mesh_groups()["eyes"]
    others = np.setdiff1d(np.arange(478), np.concatenate([eyes, mesh_groups()["lips"]]))
    err = np.linalg.norm(shape[:, :2] - target[:, :2], axis=1)
    assert err[eyes].mean() < 0.5 * err[others].mean()


def test_closed_eyes_measured(generator: DonorFaceSwap) -> None:
    opening = generator.views.eye_opening
    assert opening.shape == (len(generator.donors),) and 0.05 < float(np.median(opening)) < 0.6
    closed = generator.donors.landmarks[int(np.argmax(opening))].copy()
    for upper, lower in ((159, 145), (386, 374)):
        closed[upper, :2] = closed[lower, :2]
    assert eyes_open(closed) < 0.05


def test_the_shipped_pool_table_is_this_pool_and_excluded_people_never_come_up(generator: DonorFaceSwap) -> None:
    table = generator.pool_table
    assert table is not None and len(table) == generator.pool_size, "weights/donors/pool.npz should fit the bank"
    for number in (0, 311):  # what the table says is what dlib sees on the canonical face now
        fresh = generator.identity_descriptor(generator.pool_identity(number))
        assert np.linalg.norm(fresh - table[number]) < 0.02
    assert DonorFaceSwap(shape_strength=0.5).pool_table is None, "another pool: descriptors computed on demand"
    without = DonorFaceSwap(exclude_persons=("P003",))
    assert without.pool_table is not None
    assert all("P003" not in without.pool_identity(n).persons for n in without.chooser.usable)


def test_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="mode"):
        DonorFaceSwap(mode="hair")
    with pytest.raises(ValueError, match="max_mix"):
        DonorFaceSwap(max_mix=4)
    assert DonorFaceSwap().keep_shape == 0.1 and DonorFaceSwap(mode="head").keep_shape == 0.5
    assert DonorFaceSwap(keep_shape=0.7).keep_shape == 0.7


def test_a_track_keeps_its_identity_across_frames(generator: DonorFaceSwap, astronaut: np.ndarray) -> None:
    from realanon.structures import Detections

    anonymizer = build_anonymizer(AnonymizerConfig(method="donor"))
    face = anonymizer.detect(astronaut).items[0].with_track(7)
    picked = []
    for shift in (0, 6):  # the face moves a little between frames; the track's seed stays
        frame = np.roll(astronaut, shift, axis=1)
        moved = face.__class__(**{**face.__dict__, "box_xyxy": (face.box_xyxy[0] + shift, face.box_xyxy[1],
                                                                 face.box_xyxy[2] + shift, face.box_xyxy[3])})
        regions = build_regions(Detections((moved,), frame.shape[:2]), anonymizer.region_options)
        batch = anonymizer.make_batch(frame, regions, frame_index=shift)
        targets = [generator.find_target(batch.crops[0], batch.replace_masks[0])]
        picked.append(generator.choose_identities(batch.seeds, list(batch.crops), targets)[0])
        described = generator.chooser.described
    assert picked[0] == picked[1]
    assert generator.chooser.described == described, "a track's second frame must not describe candidates again"


class CountingDescriber:
    """Wraps the generator's dlib describer and counts its calls."""

    def __init__(self, inner: object) -> None:
        self.inner, self.calls = inner, 0

    def describe(self, image: np.ndarray, box: tuple[float, ...]) -> np.ndarray:
        self.calls += 1
        return self.inner.describe(image, box)  # type: ignore[attr-defined, no-any-return]


def one_region_batch(crop: np.ndarray, mask: np.ndarray, seed: int, tracked: bool) -> GenerationBatch:
    return GenerationBatch((crop,), (mask,), (None,), (None,), ("face",), (seed,), tracked=(tracked,))


def test_a_tracked_face_is_described_once_an_untracked_one_every_time(
        astronaut_region: tuple[np.ndarray, np.ndarray, int], monkeypatch: pytest.MonkeyPatch) -> None:
    crop, mask, seed = astronaut_region
    generator = DonorFaceSwap()
    counter = CountingDescriber(generator.describer)
    monkeypatch.setitem(generator.__dict__, "describer", counter)
    first = generator(one_region_batch(crop, mask, seed, tracked=True))[0]
    after_first = counter.calls
    assert after_first >= 2, "the original and the rendered face are described"
    again = generator(one_region_batch(crop, mask, seed, tracked=True))[0]
    assert counter.calls == after_first, "a track's settled face is not described again"
    np.testing.assert_array_equal(first, again)
    generator(one_region_batch(crop, mask, seed, tracked=False))
    assert counter.calls >= after_first + 2, "an untracked face (another photo) is checked again"
    other = np.roll(crop, crop.shape[1] // 3, axis=1)  # something else under the same track seed (a new video)
    generator(one_region_batch(other, mask, seed, tracked=True))
    assert counter.calls >= after_first + 4


def test_frames_batched_together_are_drawn_one_after_the_other(
        astronaut_region: tuple[np.ndarray, np.ndarray, int], monkeypatch: pytest.MonkeyPatch) -> None:
    crop, mask, seed = astronaut_region
    generator = DonorFaceSwap()
    counter = CountingDescriber(generator.describer)
    monkeypatch.setitem(generator.__dict__, "describer", counter)
    frames = (np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 3), np.uint8))  # two frames of a video batch
    batch = GenerationBatch((crop, crop), (mask, mask), (None, None), (None, None), ("face", "face"),
                            (seed, seed), frames=frames, tracked=(True, True))
    first, second = generator(batch)
    np.testing.assert_array_equal(first, second)  # one track, one identity: not a twin of itself
    alone = DonorFaceSwap()
    monkeypatch.setitem(alone.__dict__, "describer", CountingDescriber(alone.describer))
    alone(one_region_batch(crop, mask, seed, tracked=True))
    assert counter.calls == alone.describer.calls, "the second frame reuses the first frame's check"


def test_a_face_that_cannot_be_changed_enough_is_filled(
        astronaut_region: tuple[np.ndarray, np.ndarray, int], monkeypatch: pytest.MonkeyPatch) -> None:
    import realanon.generators.donor as donor_module

    monkeypatch.setattr(donor_module, "VERIFY_TRIES", 1)  # one identity, then the head and the covers
    crop, mask, seed = astronaut_region
    generator = DonorFaceSwap(verify_distance=5.0)  # no face is 5.0 from the original
    original = generator.describe_face(crop, mask)
    fill_distance = float(np.linalg.norm(generator.describe_face(fill_face(crop, mask), mask) - original))
    out = generator(one_region_batch(crop, mask, seed, tracked=False))[0]
    farthest = float(np.linalg.norm(generator.describe_face(out, mask) - original))
    assert farthest >= fill_distance, "nothing passes, not even the fill: the least close rendering is kept"
    np.testing.assert_array_equal(out[~mask], crop[~mask])

    def flat_is_far(image: np.ndarray, region: np.ndarray, roll: float = 0.0) -> np.ndarray:
        flat = len(np.unique(image[region], axis=0)) == 1
        return original + 10.0 if flat else DonorFaceSwap.describe_face(generator, image, region, roll)

    monkeypatch.setitem(generator.__dict__, "describe_face", flat_is_far)
    out = generator(one_region_batch(crop, mask, seed + 1, tracked=False))[0]
    assert len(np.unique(out[mask], axis=0)) == 1, "only the fill is far enough from the original: it is kept"
    np.testing.assert_array_equal(out[~mask], crop[~mask])
    twins_only = DonorFaceSwap(twin_distance=5.0)(one_region_batch(crop, mask, seed, tracked=False))[0]
    assert len(np.unique(twins_only[mask], axis=0)) > 100, "alone in its frame, a face has no twin to avoid"


@pytest.mark.slow  # about 20-40 s: renders and describes six faces, redrawing twins
def test_no_twins_among_six_faces_of_one_frame(generator: DonorFaceSwap,
                                               astronaut_region: tuple[np.ndarray, np.ndarray, int]) -> None:
    crop, mask, _ = astronaut_region
    seeds = (11, 12, 13, 14, 15, 16)
    batch = GenerationBatch((crop,) * 6, (mask,) * 6, (None,) * 6, (None,) * 6, ("face",) * 6, seeds)
    outs = generator(batch)
    desc = np.array([generator.describe_face(o, mask) for o in outs])
    pairs = np.linalg.norm(desc[:, None] - desc[None], axis=2)[np.triu_indices(6, k=1)]
    assert pairs.min() > 0.6, f"twin faces in one frame: {np.round(np.sort(pairs)[:3], 3)}"
    assert np.linalg.norm(desc - generator.describe_face(crop, mask), axis=1).min() > 0.6


def generator_box(landmarks: np.ndarray) -> tuple[float, float, float, float]:
    from realanon.generators.donor import oval_box

    return oval_box(landmarks)


def test_batches_say_which_regions_belong_to_a_track(astronaut: np.ndarray) -> None:
    from realanon.structures import Detections
    from realanon.video import concat_batches

    anonymizer = build_anonymizer(AnonymizerConfig(method="blur"))
    face = anonymizer.detect(astronaut).items[0]
    batches = [anonymizer.make_batch(astronaut, build_regions(Detections((d,), astronaut.shape[:2]),
                                                              anonymizer.region_options))
               for d in (face, face.with_track(3))]
    assert [b.tracked for b in batches] == [(False,), (True,)]
    assert concat_batches(batches).tracked == (False, True)
    b = batches[0]
    with pytest.raises(ValueError, match="tracked"):
        GenerationBatch(b.crops, b.replace_masks, b.keypoints, b.keypoint_layouts, b.kinds, b.seeds, tracked=(True, True))


def test_a_head_drawn_at_a_smaller_scale_fills_the_whole_mask_and_nothing_else() -> None:
    from realanon.generators.donor_head import draw_scaled

    rng = np.random.default_rng(4)
    crop = rng.integers(0, 255, (301, 257, 3), dtype=np.uint8)
    mask = np.zeros(crop.shape[:2], bool)
    cv2.ellipse(mask.view(np.uint8), (128, 150), (70, 95), 10, 0, 360, 1, -1)
    seen: list[tuple[int, ...]] = []

    def paint(c: np.ndarray, m: np.ndarray, t: np.ndarray | None, a: np.ndarray | None) -> np.ndarray:
        seen.append(c.shape)
        out = c.copy()
        out[m] = (10, 200, 30)
        return out

    out = draw_scaled(paint, crop, mask, None, None, 0.4)
    assert seen == [(120, 103, 3)], "drawn on the smaller copy"
    np.testing.assert_array_equal(out[~mask], crop[~mask])
    assert (np.abs(out[mask].astype(int) - (10, 200, 30)).max(axis=1) <= 1).all(), "every masked pixel replaced"
    assert draw_scaled(paint, crop, mask, None, None, 0.9).shape == crop.shape and seen[-1] == crop.shape



def test_histograms_are_matched_without_drifting_and_the_hue_is_kept() -> None:
    from realanon.generators.face_inner import match_histograms

    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, 80, dtype=np.float32)[None, :, None]  # skin from shadow to light, with grain
    reference = np.clip([200, 140, 110] * (0.5 + 0.6 * ramp) + rng.normal(0, 6, (80, 80, 3)), 0, 255).astype(np.uint8)
    smooth = np.zeros((80, 80, 3), np.uint8)  # a smooth face: few levels, each holding many pixels
    smooth[..., 0] = 150 + 10 * (np.arange(80) // 20)[None, :]
    smooth[..., 1], smooth[..., 2] = 110, 90
    out = match_histograms(smooth, reference, np.ones((80, 80), bool))
    hsv = [cv2.cvtColor(x, cv2.COLOR_RGB2HSV).astype(float) for x in (reference, out)]
    for c in (1, 2):  # a table sending each level to the top of its share drifts up by levels
        assert abs(hsv[1][..., c].mean() - hsv[0][..., c].mean()) < 1.5
    hue = [cv2.cvtColor(x, cv2.COLOR_RGB2HSV_FULL)[..., 0].astype(int) for x in (out, smooth)]
    assert np.abs((hue[0] - hue[1] + 128) % 256 - 128).mean() < 3

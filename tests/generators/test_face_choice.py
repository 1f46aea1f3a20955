"""Choosing identities by rejection in descriptor space (no dlib: descriptors are given)."""

from __future__ import annotations

import numpy as np

from realanon.generators.face_choice import IdentityChooser, pool_candidate
from realanon.generators.face_identity import Identity
from realanon.generators.face_variation import vary_shape

PERSONS = tuple(f"P{i:03d}" for i in range(1, 11))


def make_chooser(accept: float = 0.6, pool: int = 40) -> tuple[IdentityChooser, dict[Identity, np.ndarray]]:
    """A chooser over 8 clusters of descriptors: about 0.96 apart between clusters, 0.24 within."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 0.06, (8, 128))
    table = {pool_candidate(n, PERSONS, 3, 1.0): centres[n % 8] + rng.normal(0, 0.015, 128) for n in range(pool)}
    chooser = IdentityChooser(lambda n: pool_candidate(n, PERSONS, 3, 1.0), lambda i: table[i], pool, accept)
    return chooser, table


def test_pool_candidates_are_deterministic_and_varied() -> None:
    assert pool_candidate(3, PERSONS, 3, 1.0) == pool_candidate(3, PERSONS, 3, 1.0)
    many = {pool_candidate(n, PERSONS, 3, 1.0) for n in range(30)}
    assert len(many) == 30 and all(len(c.shape) == 7 and 2 <= len(c.persons) <= 3 for c in many)
    assert pool_candidate(3, PERSONS, 3, 0.0).shape == ()


def test_no_two_identities_of_a_frame_are_close() -> None:
    chooser, table = make_chooser()
    unchecked = make_chooser(accept=0.0)[0].choose(list(range(100, 106)), [])
    near = np.array([table[c] for c in unchecked])
    assert (np.linalg.norm(near[:, None] - near[None], axis=2)[np.triu_indices(6, k=1)] < 0.6).any(), \
        "the seeds alone should give twins here, or this test proves nothing"
    chosen = chooser.choose(list(range(100, 106)), [])
    desc = np.array([table[c] for c in chosen])
    pairs = np.linalg.norm(desc[:, None] - desc[None], axis=2)[np.triu_indices(6, k=1)]
    assert pairs.min() >= 0.6


def test_identities_keep_away_from_the_frames_faces() -> None:
    chooser, table = make_chooser()
    free = chooser.choose([7], [])[0]
    again = make_chooser()[0].choose([7], [table[free]])[0]  # the same seed, now a face looks like it
    assert again != free and np.linalg.norm(table[again] - table[free]) >= 0.6


def test_a_seed_keeps_its_identity_and_the_cache_is_hit() -> None:
    chooser, _ = make_chooser()
    first = chooser.choose([1, 2, 3], [])
    described = chooser.described
    assert chooser.choose([3, 1, 2], []) == [first[2], first[0], first[1]]
    assert chooser.described == described, "known identities must not be described again"


def test_shape_variation_moves_parts_but_zero_changes_nothing() -> None:
    rng = np.random.default_rng(2)
    landmarks = rng.uniform(100, 300, (478, 3)).astype(np.float32)
    assert np.array_equal(vary_shape(landmarks, (0.0,) * 7), landmarks)
    moved = vary_shape(landmarks, (0.05, 0, 0, 0, 0, 0, 0))
    assert 0 < np.abs(moved - landmarks).max() < 0.1 * 200


def test_held_identities_are_kept_and_the_others_chosen_around_them() -> None:
    chooser, table = make_chooser()
    # A held number is kept even when the chooser alone would drop it (it sits on a frame face).
    face = table[pool_candidate(3, PERSONS, 3, 1.0)]
    out = chooser.choose_around([10, 11, 12], [face], [3, None, None])
    assert out[0] == pool_candidate(3, PERSONS, 3, 1.0) and chooser.number(10) == 3
    given = [chooser.number(s) for s in (11, 12)]
    assert 3 not in given and len(set(given)) == 2
    desc = np.array([table[i] for i in out])
    assert np.linalg.norm(desc[1:] - desc[0], axis=1).min() >= 0.6, "the new ones keep away from the held one"


def test_known_descriptors_cost_nothing_and_unusable_candidates_are_never_given() -> None:
    chooser, table = make_chooser()
    known = np.array([table[pool_candidate(n, PERSONS, 3, 1.0)] for n in range(40)])
    calls: list[Identity] = []

    def describe(identity: Identity) -> np.ndarray:
        calls.append(identity)
        return table[identity]

    def odd(n: int) -> bool:
        return n % 2 == 1

    fast = IdentityChooser(lambda n: pool_candidate(n, PERSONS, 3, 1.0), describe, 40, 0.6, usable=odd, known=known)
    chosen = fast.choose(list(range(100, 104)), [])
    assert not calls and fast.described == 0, "shipped descriptors must not be computed again"
    assert all(fast.number(s) % 2 == 1 for s in range(100, 104)), "only usable candidates are given"
    desc = np.array([table[c] for c in chosen])
    assert np.linalg.norm(desc[:, None] - desc[None], axis=2)[np.triu_indices(4, k=1)].min() >= 0.6



def test_shape_variation_does_not_fold_the_inner_face() -> None:
    """Points either side of the nose bridge and lips must not pass each other: that tears the warp.

    Drawn shapes on the bank's donor faces: the triangles of the inner face (off the oval) that
    turn over must cover at most a trace of the face (thin ones between closed lips may flip).
    """
    from realanon.generators.donor_bank import DEFAULT_BANK, DonorBank
    from realanon.generators.face_variation import draw_shape
    from realanon.generators.face_warp import extend_landmarks, mesh_groups

    bank = DonorBank.load(DEFAULT_BANK)
    oval = set(mesh_groups()["oval"].tolist())
    inner = np.array([all(v < 478 and v not in oval for v in t) for t in bank.triangles])

    def signed_areas(landmarks: np.ndarray) -> np.ndarray:
        p = extend_landmarks(landmarks)[bank.triangles]
        return np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]) / 2

    shapes = [draw_shape(np.random.default_rng(seed)) for seed in range(12)]
    for landmarks in bank.landmarks[::5]:
        before = signed_areas(landmarks)
        face = float(np.ptp(landmarks[:, 0]) * np.ptp(landmarks[:, 1]))
        for shape in shapes:
            folded = inner & (np.sign(signed_areas(vary_shape(landmarks, shape))) != np.sign(before))
            assert np.abs(before[folded]).sum() < 0.002 * face, shape

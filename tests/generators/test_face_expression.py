"""Donor views matched on expression (:mod:`realanon.generators.face_expression`)."""

from __future__ import annotations

import numpy as np
import pytest

from realanon.generators import face_expression
from realanon.generators.donor_bank import DEFAULT_BANK, DonorBank
from realanon.generators.donor_views import DonorViews


@pytest.fixture(scope="module")
def views() -> DonorViews:
    return DonorViews(DonorBank.load(DEFAULT_BANK))


def _view(views: DonorViews, person: str, label: str) -> int:
    """Index of ``person``'s emotion-sheet view ``label`` (e.g. ``"Happy"``)."""
    bank = views.bank
    return next(i for i in range(len(bank)) if bank.person[i] == person and bank.source[i].endswith(f"#{label}"))


def test_head_pose_size_and_place_are_no_expression(views: DonorViews) -> None:
    mesh = views.bank.landmarks[_view(views, "P002", "Neutral")].astype(np.float64)
    turn = np.deg2rad(25.0)
    rotation = np.array([[np.cos(turn), 0, np.sin(turn)], [0, 1, 0], [-np.sin(turn), 0, np.cos(turn)]])
    moved = 1.7 * mesh @ rotation.T + np.array([40.0, -12.0, 5.0])
    resting = face_expression.normalised(mesh)
    assert float(face_expression.distance(face_expression.offset(moved, resting), 0.0)) < 1e-6
    happy = views.bank.landmarks[_view(views, "P002", "Happy")]
    assert float(face_expression.distance(face_expression.offset(happy, resting), 0.0)) > 0.05


@pytest.mark.parametrize("label", ["Happy", "Scared", "Surprised"])
def test_each_donor_shows_the_targets_expression(views: DonorViews, label: str) -> None:
    target = _view(views, "P001", label)
    features = views.features(views.image(target), views.bank.landmarks[target])
    for person in ("P003", "P008", "P010"):
        assert views.bank.source[views.best_view(person, features)].endswith(f"#{label}")


def test_smiling_astronaut_gets_no_grimace(views: DonorViews, astronaut: np.ndarray) -> None:
    """The demo's face: P008's "Scared" view fitted her open-lipped smile on pose, mouth and eyes alone."""
    from realanon.generators.face_warp import FaceMesher

    mesh = FaceMesher().nearest_face(astronaut, (220, 120))
    assert mesh is not None
    chosen = views.bank.source[views.best_view("P008", views.features(astronaut, mesh))]
    assert chosen.endswith("#Happy"), chosen

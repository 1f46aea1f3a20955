"""The leak check's reference people: pseudo-ground-truth people confirmed by MoveNet's skeleton."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from realanon.errors import ConfigError
from realanon.evaluation import references
from realanon.evaluation.coco import Instance, Sample
from realanon.evaluation.protocol import DataOptions, LeakOptions, load_protocol, protocol_from_dict
from realanon.media import read_video_frames, vtest_path

REPO = Path(__file__).resolve().parents[2]
# vtest frame 300 (full size): boxes centernet_person gives there, labelled by eye.
WALKERS = [(187, 158, 217, 236), (242, 154, 264, 221), (581, 160, 610, 235), (313, 214, 346, 296),
           (617, 161, 644, 233), (297, 155, 324, 229)]
NOT_PEOPLE = [(31, 108, 47, 140), (434, 178, 457, 201), (161, 248, 192, 277), (163, 185, 179, 206)]  # sign, cone, rock, cone


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    return read_video_frames(vtest_path(), [300])[0]


def test_real_walkers_have_a_skeleton_and_cones_and_a_rock_do_not(frame: np.ndarray) -> None:
    count = references.skeleton_counter(keypoint_score=0.3)
    assert all(count(frame, box) >= 5 for box in WALKERS)
    assert all(count(frame, box) < 5 for box in NOT_PEOPLE)
    flat = np.full((200, 200, 3), 128, np.uint8)
    assert count(flat, (80, 40, 120, 160)) == 0


def _samples(boxes: Sequence[Sequence[float]], scale: float) -> list[Sample]:
    image = np.zeros((int(576 * scale), int(768 * scale), 3), np.uint8)
    insts = tuple(Instance(tuple(v * scale for v in b)) for b in boxes)  # type: ignore[misc]
    return [Sample(image, insts + (Instance((0.0, 0.0, 5.0, 5.0), crowd=True),))]


def test_leak_references_keep_only_confirmed_people(frame: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    import realanon.evaluation.datasets as datasets

    monkeypatch.setattr(datasets, "vtest_validation_originals", lambda data, count: [frame] * count)
    data = DataOptions(scale=0.5)
    samples = _samples(WALKERS[:2] + NOT_PEOPLE[1:3], data.scale)
    everyone = references.leak_references(samples, data, LeakOptions())
    assert len(everyone[0]) == 4  # the ignore region is never a reference
    (confirmed,) = references.leak_references(samples, data, LeakOptions(confirm_keypoints=5))
    np.testing.assert_allclose(confirmed, np.array(WALKERS[:2]) * data.scale)


def test_the_small_protocol_confirms_its_reference_people() -> None:
    leak = load_protocol(REPO / "eval" / "small.toml").leak
    assert leak.confirm_keypoints >= 1 and 0 < leak.confirm_keypoint_score < 1


def test_confirming_annotated_coco_data_is_refused() -> None:
    with pytest.raises(ConfigError, match="confirm_keypoints"):
        protocol_from_dict({"data": {"source": "coco"}, "leak": {"confirm_keypoints": 5}})

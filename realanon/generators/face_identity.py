"""Synthetic identities: weighted blends of two or three donor people, drawn from a seed.

A region's seed alone fixes its preference over blends (a video track keeps its seed, so it
keeps its identity). Within one batch (one frame) no two regions get the same blend and, while
there are donor people left, no two share their main donor; the region with the smaller seed
keeps its first choice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Dirichlet concentration of the main donor and of the others: the main donor usually weighs
# about three quarters (even blends look like an average face, which is closer to everyone).
_MAIN_CONCENTRATION, _OTHER_CONCENTRATION = 10.0, 1.5


@dataclass(frozen=True)
class Identity:
    """A synthetic person: donor people and their weights (main donor first, weights sum to 1)."""

    persons: tuple[str, ...]
    weights: tuple[float, ...]

    @property
    def main(self) -> str:
        """The donor person with the largest weight."""
        return self.persons[0]


def _preferences(seed: int, persons: Sequence[str], max_mix: int) -> tuple[list[str], int, np.ndarray]:
    """A seed's order over donor people, how many it mixes and its weights (largest first)."""
    rng = np.random.default_rng(seed)
    order = [persons[i] for i in rng.permutation(len(persons))]
    count = int(rng.integers(2, max_mix + 1)) if max_mix >= 2 else 1
    count = min(count, len(order))
    alpha = [_MAIN_CONCENTRATION] + [_OTHER_CONCENTRATION] * (count - 1)
    weights = np.sort(rng.dirichlet(alpha))[::-1]
    return order, count, weights


def draw_identity(seed: int, persons: Sequence[str], max_mix: int = 3) -> Identity:
    """The identity a seed draws when nothing else in its frame competes for it.

    Args:
        seed: The region's seed.
        persons: Allowed donor person ids (at least one), in a fixed order.
        max_mix: Donors blended at most (2 or 3 are drawn uniformly; 1 disables blending).
    """
    return assign_identities([seed], persons, max_mix)[0]


def assign_identities(seeds: Sequence[int], persons: Sequence[str], max_mix: int = 3) -> list[Identity]:
    """One identity per region of a batch, no two alike.

    Regions are served in increasing seed order. Each takes, among the pairs (main donor,
    second donor) in its own seed's order, the first whose main donor is used least in the
    batch and whose pair is unused; further donors follow its order.

    Args:
        seeds: Per region seed.
        persons: Allowed donor person ids (at least one).
        max_mix: Donors blended at most per identity.

    Returns:
        One :class:`Identity` per seed, in the order of ``seeds``.

    Raises:
        ValueError: when ``persons`` is empty.
    """
    if not persons:
        raise ValueError("no donor person is allowed; nothing to swap in")
    persons = sorted(persons)
    used_main: Counter[str] = Counter()
    used_pairs: set[tuple[str, str]] = set()
    out: dict[int, Identity] = {}
    for index in sorted(range(len(seeds)), key=lambda i: (seeds[i], i)):
        order, count, weights = _preferences(seeds[index], persons, max_mix)
        if count == 1:
            main, second = order[0], ""
        else:
            pairs = [(a, b) for a in order for b in order if a != b]
            fresh = [p for p in pairs if p not in used_pairs] or pairs
            main, second = min(fresh, key=lambda p: used_main[p[0]])  # min keeps the first of ties
        chosen = [main] + ([second] if second else []) + [p for p in order if p not in (main, second)]
        used_main[main] += 1
        used_pairs.add((main, second))
        out[index] = Identity(tuple(chosen[:count]), tuple(float(w) for w in weights[:count]))
    return [out[i] for i in range(len(seeds))]

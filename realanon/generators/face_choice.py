"""Choosing identities by rejection in dlib's descriptor space: no twins, no look-alike of the scene.

Candidate identities form a fixed, numbered pool (donor blend, weights and a shape variation,
each drawn from its number), so their descriptors are computed once per generator and reused
by every frame. A region's seed orders the pool; the region takes the first candidate whose
descriptor is at least ``accept`` from every original face of the frame and from every identity
already given in the frame. A seed keeps its identity (a video track keeps its seed) while that
identity stays at least ``keep`` from the frame's faces and apart from the others'.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from realanon.generators.face_identity import Identity, _preferences
from realanon.generators.face_variation import draw_shape

# Number of the pool's random stream (any constant; changing it changes every identity).
_POOL_KEY = 0x5EED_FACE
# dlib's rule: two faces closer than this are the same person.
SAME_PERSON = 0.6


def pool_candidate(number: int, persons: Sequence[str], max_mix: int, shape_strength: float) -> Identity:
    """Candidate ``number`` of the pool: a blend of 2-3 ``persons`` with a shape variation."""
    order, count, weights = _preferences(hash_seed(number), persons, max_mix)
    shape = draw_shape(np.random.default_rng([_POOL_KEY, number, 1]), shape_strength) if shape_strength > 0 else ()
    return Identity(tuple(order[:count]), tuple(float(w) for w in weights[:count]), shape)


def hash_seed(number: int) -> int:
    """A 63-bit seed of pool candidate ``number``."""
    return int(np.random.SeedSequence([_POOL_KEY, number]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def _min_distance(descriptor: np.ndarray, others: Sequence[np.ndarray]) -> float:
    if not others:
        return float("inf")
    return float(np.min(np.linalg.norm(np.asarray(others) - descriptor, axis=1)))


class IdentityChooser:
    """Per-generator state: the pool's descriptors (computed on demand) and each seed's identity.

    Args:
        candidates: ``number -> Identity`` of the pool.
        describe: ``Identity -> (128,)`` descriptor of the identity's canonical face.
        pool_size: Candidates in the pool.
        accept: A new identity must be at least this far from the frame's faces and identities.
        keep: A seed's earlier identity is kept while it is at least this far (hysteresis).
        tries: Candidates described per new region at most (those of ``known`` cost nothing and
            do not count); the farthest of those examined is taken when none is far enough.
        remember: Seeds remembered (least recently used are forgotten).
        usable: ``number -> bool``: whether a candidate may be given at all (e.g. none with an
            excluded donor person); None: all.
        known: ``(M, 128)`` descriptors of candidates ``0 .. M-1`` computed beforehand (see
            :mod:`~realanon.generators.face_pool`).
    """

    def __init__(self, candidates: Callable[[int], Identity], describe: Callable[[Identity], np.ndarray],
                 pool_size: int, accept: float, keep: float = SAME_PERSON, tries: int = 24,
                 remember: int = 4096, usable: Callable[[int], bool] | None = None,
                 known: np.ndarray | None = None) -> None:
        self._make, self._describe = candidates, describe
        self._identities: dict[int, Identity] = {}  # candidates made so far (each is a few draws)
        self.pool_size, self.accept, self.keep, self.remember = pool_size, accept, max(keep, 0.0), remember
        self.tries = tries
        self.usable = [n for n in range(pool_size) if usable is None or usable(n)]
        if not self.usable:
            raise ValueError("no candidate of the identity pool is usable")
        known = np.zeros((0, 128)) if known is None else known
        self.descriptors: dict[int, np.ndarray] = {n: np.asarray(known[n], np.float64)
                                                   for n in range(min(len(known), pool_size))}
        self.by_seed: OrderedDict[int, int] = OrderedDict()
        self.banned: dict[int, set[int]] = {}  # per seed: candidates its rendered face was too close with
        self.described = 0  # candidate descriptors computed so far (cache misses)

    def _candidate(self, number: int) -> Identity:
        if number not in self._identities:
            self._identities[number] = self._make(number)
        return self._identities[number]

    def descriptor(self, number: int) -> np.ndarray:
        """Descriptor of pool candidate ``number`` (computed once)."""
        if number not in self.descriptors:
            self.descriptors[number] = self._describe(self._candidate(number))
            self.described += 1
        return self.descriptors[number]

    def hold(self, seed: int, number: int) -> None:
        """``seed`` keeps candidate ``number`` (its rendered face passed a stronger check than this chooser's)."""
        self.by_seed[seed] = number
        self.by_seed.move_to_end(seed)

    def number(self, seed: int) -> int:
        """The pool number of ``seed``'s current identity."""
        return self.by_seed[seed]

    def reject(self, seed: int) -> None:
        """``seed``'s current identity rendered too close to its face: never give it that one again."""
        self.banned.setdefault(seed, set()).add(self.by_seed.pop(seed))

    def choose(self, seeds: Sequence[int], originals: Sequence[np.ndarray], taken: Sequence[int] = ()) -> list[Identity]:
        """One identity per seed of a frame.

        Seeds seen before are served first (in increasing seed order), so tracks keep theirs.

        Args:
            seeds: Per region seed.
            originals: Descriptors of the frame's original faces (any number).
            taken: Pool numbers already given to other regions of the frame.
        """
        order = sorted(range(len(seeds)), key=lambda i: (seeds[i] not in self.by_seed, seeds[i], i))
        given: list[int] = list(taken)
        for i in order:
            number = self._pick(seeds[i], originals, given)
            given.append(number)
            self.by_seed[seeds[i]] = number
            self.by_seed.move_to_end(seeds[i])
        while len(self.by_seed) > self.remember:
            self.by_seed.popitem(last=False)
        numbers = dict(zip(order, given[len(taken):]))
        return [self._candidate(numbers[i]) for i in range(len(seeds))]

    def choose_around(self, seeds: Sequence[int], originals: Sequence[np.ndarray],
                      held: Sequence[int | None]) -> list[Identity]:
        """Like :meth:`choose`, but seeds with a ``held`` pool number keep it (see :meth:`hold`)
        and the others are chosen around them."""
        for seed, number in zip(seeds, held):
            if number is not None:
                self.hold(seed, number)
        new = [i for i, number in enumerate(held) if number is None]
        chosen = iter(self.choose([seeds[i] for i in new], originals, [n for n in held if n is not None]))
        return [next(chosen) if number is None else self._candidate(number) for number in held]

    def _pick(self, seed: int, originals: Sequence[np.ndarray], given: list[int]) -> int:
        previous = self.by_seed.get(seed)
        excluded = set(given) | self.banned.get(seed, set())
        if self.accept <= 0:
            return previous if previous is not None else self._first_free(seed, excluded)
        taken = [self.descriptor(n) for n in given]
        if previous is not None and previous not in excluded:
            d = self.descriptor(previous)
            if min(_min_distance(d, originals), _min_distance(d, taken)) >= self.keep:
                return previous
        best, best_score, spent = -1, -np.inf, 0
        avoid = [*originals, *taken]  # the score is the distance to the nearest of both
        for number in self._order(seed):
            if number in excluded:
                continue
            spent += number not in self.descriptors
            if spent > self.tries:
                break
            score = _min_distance(self.descriptor(number), avoid)
            if score >= self.accept:
                return number
            if score > best_score:
                best, best_score = number, score
        return best if best >= 0 else self._first_free(seed, excluded)

    def _order(self, seed: int) -> list[int]:
        """The usable candidates in ``seed``'s order."""
        return [self.usable[int(i)] for i in np.random.default_rng(seed).permutation(len(self.usable))]

    def _first_free(self, seed: int, excluded: set[int]) -> int:
        order = self._order(seed)
        return next((n for n in order if n not in excluded), order[0])

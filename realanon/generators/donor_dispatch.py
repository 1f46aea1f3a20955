"""The registered ``donor`` method: a real-looking replacement of someone who does not exist,
for faces (:class:`~realanon.generators.donor.DonorFaceSwap`) or whole bodies
(:class:`~realanon.generators.donor_body.DonorBody`), chosen by the pipeline's target."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from realanon.errors import ConfigError
from realanon.interfaces import Generator
from realanon.registry import register_generator

DONOR_TARGETS = ("face", "body")


@register_generator("donor")
def donor(
    target: str = "face", device: Any = None, dtype: Any = None, exclude_persons: Sequence[str] = (), **options: Any
) -> Generator:
    """Builds the donor generator for ``target``.

    Args:
        target: ``"face"`` (face swap; options of ``DonorFaceSwap``) or ``"body"`` (whole
            bodies; options of ``DonorBody``).
        device: Ignored (CPU only); accepted because the pipeline offers it.
        dtype: Ignored, as ``device``.
        exclude_persons: Donor person ids never used (named here so that the evaluator sees
            that this method takes them and excludes each face's own identity).
        **options: The chosen generator's options.

    Raises:
        ConfigError: for another target.
    """
    if target == "face":
        from realanon.generators.donor import DonorFaceSwap

        return DonorFaceSwap(exclude_persons=tuple(exclude_persons), **options)
    if target == "body":
        from realanon.generators.donor_body import DonorBody

        return DonorBody(exclude_persons=tuple(exclude_persons), **options)
    raise ConfigError(f"the donor method replaces {' or '.join(DONOR_TARGETS)}, not {target!r}")

"""A tiny separately installed realanon plug-in, used by tests/test_plugins.py."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FillGenerator:
    """Fills every replace-mask with one grey value."""

    value: int = 7

    def __call__(self, batch):  # type: ignore[no-untyped-def]
        out = []
        for crop, mask in zip(batch.crops, batch.replace_masks):
            filled = crop.copy()
            filled[mask] = self.value
            out.append(filled)
        return out

"""Shared helper for the stage results' ``from_dict``: strict field checks."""

from __future__ import annotations

import dataclasses
from typing import Any


def check_fields(cls: type, d: Any, what: str | None = None) -> dict[str, Any]:
    """Check ``d`` against the dataclass ``cls``: a JSON object, no unknown keys, no missing required ones.

    Returns a shallow copy of ``d`` ready for ``cls(**...)``. ``what`` names the object in messages.
    """
    what = what or cls.__name__
    if not isinstance(d, dict):
        raise ValueError(f"{what} must be a JSON object, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ValueError(f"{what} has unknown keys {unknown}")
    missing = sorted(
        n
        for n, f in fields.items()
        if n not in d and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )
    if missing:
        raise ValueError(f"{what} is missing keys {missing}")
    return dict(d)

"""Torch settings scoped to one call: a stage that changes them restores the caller's on the way out."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``n`` torch CPU threads (None: unchanged), then restore the previous count.

    ``n`` below 1 is refused (``ValueError``) rather than left to torch, whose error is a traceback.
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"threads: must be >= 1 (or None: torch's own choice), got {n!r}")
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)

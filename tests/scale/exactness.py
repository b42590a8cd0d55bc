"""Whether this machine's BLAS rounds a product's columns alike at any width: what the probe family's
parts being equal to the whole family to the bit rests on (``tests/scale/test_probes_ray.py``,
``test_extract_ray.py``)."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from redundancy._torch import torch_threads

COEF_RTOL = 2e-6
"""Where the BLAS picks kernels by width: how far a part's coefficients may be from the whole
family's, of the largest (measured before the family's kernels were made position-independent:
at most 3e-7)."""


def blas_rounds_columns_alike() -> bool:
    """Whether one thread's float32 products ``(Wᵀ Xᵀ)ᵀ`` and ``(Gᵀ X)ᵀ`` give each output column the
    same bits at every width from 4 on (the family solver pads narrower products to 4).

    True for the MKL of torch's CPU wheel on this project's machines (measured over widths 4-49);
    another BLAS or CPU may pick kernels by width, and the parts of a probe family then equal the
    whole family to float32 rounding only: the tests check that instead, and say so."""
    gen = torch.Generator().manual_seed(0)
    with torch_threads(1):
        for rows, d in ((256, 40), (512, 384), (7, 100)):
            x = torch.randn(rows, d, generator=gen)
            for wide in (5, 12, 26, 49):
                w, g = torch.randn(d, wide, generator=gen), torch.randn(rows, wide, generator=gen)
                full_w, full_g = (w.T @ x.T).T, (g.T @ x).T
                for a in range(0, wide - 3, 3):
                    part_w = (w[:, a : a + 4].contiguous().T @ x.T).T
                    part_g = (g[:, a : a + 4].contiguous().T @ x).T
                    same_w = torch.equal(full_w[:, a : a + 4], part_w)
                    if not (same_w and torch.equal(full_g[:, a : a + 4], part_g)):
                        return False
    return True


EXACT = blas_rounds_columns_alike()
if not EXACT:
    warnings.warn(
        "this BLAS rounds a product's columns by its width: the probe family's parts are checked "
        "against the whole family to float32 rounding, not to the bit",
        stacklevel=1,
    )


def assert_same_array(got: np.ndarray, ref: np.ndarray, scale: float) -> None:
    """Equal to the bit where :data:`EXACT`, else within ``COEF_RTOL * scale``."""
    if EXACT:
        np.testing.assert_array_equal(got, ref)
    else:
        np.testing.assert_allclose(got, ref, rtol=0, atol=COEF_RTOL * scale)

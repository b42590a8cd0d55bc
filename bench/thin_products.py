"""The fast solver's thin matrix products, in the BLAS's two orientations, measured in one run (not a test).

A probe's products are ``X @ W`` (logits) and ``X^T @ G`` (the weights' gradient), with ``X`` the
(rows x neurons) activations and ``W``, ``G`` as wide as the probe family's outputs: 2 for one
probe of a binary task, a few for a block used by one probe. At those widths the CPU BLAS's kernels
for these orientations run far below memory speed, while the same products written as
``(W^T X^T)^T`` and ``(G^T X)^T`` run at it (``redundancy.probe``'s fast solver uses the latter).

1. The kernels alone: ``x @ w`` vs ``(w^T x^T)^T`` and ``x^T @ g`` vs ``(g^T x)^T`` over shapes
   (rows, neurons, outputs), milliseconds per product and the ratio plain / ours.
2. The solver end to end on random data: full-batch FISTA on 5,000 x 9,984 (the [CLS] oracle of a
   GLUE task at MPNet's size, 2 classes, a fixed 40 iterations) and the minibatch family of one
   probe per layer (13 layers x 768, 20,000 rows, 2 classes, 1 epoch), each with the plain
   products patched in (the reference) and with ours, on the same input; equal within rounding.

The reference is the same solver with the plain products patched into its private module: this is a
benchmark script, not package code.

Usage: ``python bench/thin_products.py [--threads 1] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from redundancy.probe import _fast

SHAPES = [
    (5000, 9984, 1),
    (5000, 9984, 2),
    (5000, 9984, 10),
    (5000, 9984, 49),
    (512, 9984, 2),
    (512, 768, 2),
    (512, 768, 5),
    (512, 768, 20),
    (512, 768, 49),
    (512, 2688, 49),
]


def _plain_xw(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return x @ w


def _plain_xtg(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    return x.T @ g


def best_ms(f, repeat: int) -> float:
    f()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return 1e3 * min(times)


def kernels(repeat: int) -> list[dict]:
    gen = torch.Generator().manual_seed(0)
    rows = []
    for n, d, k in SHAPES:
        x = torch.randn(n, d, generator=gen)
        w = torch.randn(d, k, generator=gen)
        g = torch.randn(n, k, generator=gen)
        r = {"rows": n, "neurons": d, "outputs": k}
        r["xw_plain_ms"] = best_ms(lambda: _plain_xw(x, w), repeat)  # noqa: B023
        r["xw_ours_ms"] = best_ms(lambda: _fast._xw(x, w), repeat)  # noqa: B023
        r["xtg_plain_ms"] = best_ms(lambda: _plain_xtg(x, g), repeat)  # noqa: B023
        r["xtg_ours_ms"] = best_ms(lambda: _fast._xtg(x, g), repeat)  # noqa: B023
        r["xw_ratio"] = r["xw_plain_ms"] / r["xw_ours_ms"]
        r["xtg_ratio"] = r["xtg_plain_ms"] / r["xtg_ours_ms"]
        rows.append({k2: round(v, 3) if isinstance(v, float) else v for k2, v in r.items()})
    return rows


def _task(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = (X[:, :64].sum(1) + 0.5 * rng.standard_normal(n) > 0).astype(np.int64)
    return X, y


def end_to_end() -> dict:
    X, y = _task(5000, 9984, 0)
    Xd, yd = _task(1000, 9984, 1)
    fista = {"shape": [5000, 9984, 2], "iterations": 40}
    lay_X, lay_y = _task(20000, 13 * 768, 2)
    family = [[(i * 768, (i + 1) * 768)] for i in range(13)]
    mini = {"shape": [20000, 13 * 768, 2], "probes": 13, "epochs": 1}
    outs = {}
    for name, (xw, xtg) in {"plain": (_plain_xw, _plain_xtg), "ours": (_fast._xw, _fast._xtg)}.items():
        saved = _fast._xw, _fast._xtg
        _fast._xw, _fast._xtg = xw, xtg
        try:
            t = time.perf_counter()
            f = _fast.fit_fista(
                X, y, n_outputs=2, regression=False, l1=1e-5, l2=1e-4, standardize=True,
                X_dev=Xd, y_dev=yd, early_stopping=False, max_iter=40, tol=0.0,
            )  # fmt: skip
            fista[f"{name}_s"] = round(time.perf_counter() - t, 3)
            t = time.perf_counter()
            m = _fast.fit_family_minibatch(
                lay_X, lay_y, family, n_outputs=2, regression=False, l1=1e-5, l2=1e-4,
                standardize=True, lr=3e-3, batch_size=512, max_epochs=1.0, min_steps=1,
                early_stopping=False, seed=0,
            )  # fmt: skip
            mini[f"{name}_s"] = round(time.perf_counter() - t, 3)
            outs[name] = (f.weights, [o.weights for o in m])
        finally:
            _fast._xw, _fast._xtg = saved
    fista["ratio"] = round(fista["plain_s"] / fista["ours_s"], 2)
    mini["ratio"] = round(mini["plain_s"] / mini["ours_s"], 2)
    fw_p, fw_o = outs["plain"][0], outs["ours"][0]
    fista["max_rel_weight_difference"] = float(np.abs(fw_p - fw_o).max() / np.abs(fw_p).max())
    pairs = zip(outs["plain"][1], outs["ours"][1], strict=True)
    mini["max_rel_weight_difference"] = max(float(np.abs(a - b).max() / np.abs(a).max()) for a, b in pairs)
    return {"fista_oracle": fista, "layer_family_minibatch": mini}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = {"threads": args.threads, "torch": torch.__version__, "kernels": kernels(args.repeat)}
    result.update(end_to_end())
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

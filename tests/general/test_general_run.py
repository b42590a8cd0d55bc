"""run_general and the `general` subcommand on tiny real stores (written here, or from a tiny model)."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from synthetic import write_store as write_synthetic_store

from redundancy.general import (
    GeneralResult,
    cut_tree,
    linear_cka,
    load_result,
    run_general,
)
from redundancy.store import ActivationStore, StoreError, plan_hash

LAYERS, HIDDEN = 3, 6
PNG = b"\x89PNG\r\n\x1a\n"


def write_store(path, n_items: int = 90, seed: int = 0, dtype: str = "float32"):
    """A finished store whose neurons share a few factors; neuron 4 is constant, 13 copies 1."""
    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(n_items, 4))
    n = LAYERS * HIDDEN
    values = factors @ rng.normal(size=(4, n)) + 0.5 * rng.normal(size=(n_items, n))
    values[:, 4] = 1.5
    values[:, 13] = 2 * values[:, 1] - 1
    values = values.reshape(n_items, LAYERS, HIDDEN)
    sentence_ids = np.repeat(np.arange(n_items // 3), 3).astype(np.int32)
    positions = np.tile(np.arange(3), n_items // 3).astype(np.int32)
    labels = rng.integers(0, 2, size=n_items).astype(np.int32)
    return write_synthetic_store(
        path,
        values,
        labels,
        ("A", "B"),
        task="pos",
        sentence_ids=sentence_ids,
        positions=positions,
        chunks=np.array_split(np.arange(n_items), 2),
        model="org/tiny",
        weights_sha256="w" * 64,
        tokenizer="org/tiny",
        dtype=dtype,
        plan_hash=plan_hash({"seed": seed, "n": n_items}),
    )


class Counter:
    """A progress callback that keeps the last cumulative count."""

    def __init__(self):
        self.n = 0

    def __call__(self, what, done, total, unit="step"):
        self.n = done


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    return write_store(tmp_path_factory.mktemp("general") / "store")


def test_run_general_writes_result_and_figures(store_path, tmp_path):
    progress = Counter()
    res = run_general(store_path, tmp_path / "out", batch_size=7, seed=3, progress=progress)
    out = tmp_path / "out"
    assert progress.n == 90
    for name in res.files:
        assert (out / name).is_file(), name
    for name in ("cka.png", "redundancy_vs_threshold.png", "redundancy_per_layer.png", "cluster_span.png"):
        assert (out / name).read_bytes()[:8] == PNG
    # The JSON is plain (no NaN) and round-trips.
    data = json.loads((out / "general.json").read_text())
    assert GeneralResult.from_dict(data).to_dict() == res.to_dict()
    assert load_result(out) == GeneralResult.from_dict(res.to_dict())
    store = ActivationStore.open(store_path)
    assert res.input_hash == store.manifest.plan_hash and res.n_items == 90 and res.seed == 3
    assert (res.n_layers, res.hidden, res.n_neurons) == (LAYERS, HIDDEN, LAYERS * HIDDEN)
    assert res.zero_variance == (4,)
    assert len(res.sweep) == 21 and res.at().threshold == 0.3
    # CKA equals the in-memory kernel on the same activations.
    acts = store.read(dtype=np.float64)
    for a in range(LAYERS):
        for b in range(LAYERS):
            xa, xb = acts[:, a * HIDDEN : (a + 1) * HIDDEN], acts[:, b * HIDDEN : (b + 1) * HIDDEN]
            assert res.cka.linear[a][b] == pytest.approx(linear_cka(xa, xb), abs=1e-10)
            assert res.cka.debiased[a][b] == pytest.approx(linear_cka(xa, xb, debiased=True), abs=1e-10)
    # The saved tree gives the sweep's clusters again; the copy shares its original's cluster.
    z = np.load(out / "linkage.npy")
    labels = cut_tree(z, 0.3)
    assert labels.max() + 1 == res.at(0.3).n_clusters and labels[13] == labels[1]
    assert sum(res.at(0.3).span_histogram) == res.at(0.3).n_clusters


def test_options_thresholds_central_and_correlation(store_path, tmp_path):
    res = run_general(
        store_path,
        tmp_path,
        thresholds=[0.5, 0.1],
        report_threshold=0.2,
        representative="central",
        save_correlation=True,
        figures=False,
    )
    assert res.thresholds == (0.1, 0.2, 0.5)  # the report threshold is added
    assert res.representative == "central" and "cka.png" not in res.files
    corr = np.load(tmp_path / "correlation.npy")
    assert corr.dtype == np.float32 and corr.shape == (18, 18) and np.isfinite(corr).all()
    assert corr[4, 4] == 1 and np.all(np.delete(corr[4], 4) == 0)
    with pytest.raises(ValueError, match="representative"):
        run_general(store_path, tmp_path, representative="first")
    with pytest.raises(ValueError, match="seed"):
        run_general(store_path, tmp_path, seed=-1)


def test_summary_is_short_and_rounded(store_path, tmp_path):
    res = run_general(store_path, tmp_path, thresholds=[0.3], figures=False)
    s = res.summary()
    assert s["report_threshold"] == 0.3 and s["zero_variance"] == 1
    assert len(s["cka_linear"]) == LAYERS and all(v == round(v, 2) for row in s["cka_linear"] for v in row)
    with pytest.raises(KeyError):
        res.at(0.4)


def test_float16_store(tmp_path):
    path = write_store(tmp_path / "s16", dtype="float16", n_items=60, seed=1)
    res = run_general(path, tmp_path / "o", thresholds=[0.3], figures=False)
    assert res.n_items == 60 and np.isfinite(res.cka.as_array("linear")).all()


def test_store_from_a_tiny_model(tiny, tmp_path):
    from toy import token_task

    from redundancy.extract import ExtractConfig, extract

    extract(token_task(), str(tiny("bert")), tmp_path / "s", ExtractConfig(batch_size=4))
    res = run_general(tmp_path / "s", tmp_path / "o", step=0.1)
    assert (res.n_layers, res.hidden) == (3, 32) and res.n_items == 31
    cka = res.cka.as_array("linear")
    np.testing.assert_allclose(np.diag(cka), 1.0, atol=1e-9)
    assert np.all((cka > 0) & (cka <= 1 + 1e-9))
    assert res.at(1.0).n_clusters == 1


def test_incomplete_or_missing_store_is_a_store_error(tmp_path):
    with pytest.raises(StoreError, match="no such folder"):
        run_general(tmp_path / "nothing", tmp_path / "o")


# ------------------------------------------------------------------ CLI


def parser():
    from redundancy.cli._general import add_parser

    p = argparse.ArgumentParser(prog="redundancy")
    add_parser(p.add_subparsers(dest="command", required=True))
    return p


def test_cli_general(store_path, tmp_path, capsys):
    args = parser().parse_args(
        [
            "general",
            "--store",
            str(store_path),
            "--out",
            str(tmp_path),
            "--thresholds",
            "0.2,0.3,0.6",
            "--seed",
            "1",
            "--no-progress",
        ]
    )
    assert args.func(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["report_threshold"] == 0.3 and summary["n_neurons"] == 18
    assert set(summary["redundant_share_by_threshold"]) == {"0.2", "0.3", "0.6"}
    assert (tmp_path / "general.json").is_file()


def test_cli_help_and_bad_arguments(capsys):
    p = parser()
    with pytest.raises(SystemExit) as exc:
        p.parse_args(["general", "--help"])
    assert exc.value.code == 0 and "--thresholds" in capsys.readouterr().out
    for argv in (
        ["--thresholds", "0.1,x"],
        ["--step", "0"],
        ["--thresholds", "0.1", "--step", "0.1"],
        ["--representative", "first"],
        ["--batch-size", "0"],
    ):
        with pytest.raises(SystemExit) as exc:
            p.parse_args(["general", "--store", "s", "--out", "o", *argv])
        assert exc.value.code == 2


def test_main_dispatches_general_when_registered(store_path, tmp_path, capsys):
    from redundancy.cli import build_parser, main

    if "general" not in build_parser().format_usage():
        pytest.skip("the lead has not registered `general` in cli/_main.py yet")
    assert (
        main(
            [
                "-q",
                "general",
                "--store",
                str(store_path),
                "--out",
                str(tmp_path),
                "--thresholds",
                "0.3",
                "--no-progress",
                "--no-figures",
            ]
        )
        == 0
    )
    assert main(["-q", "general", "--store", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    assert "no such folder" in capsys.readouterr().err

"""The "Fine-tuning" section: ``RUN/finetuned/{task}/finetune.json`` read into the report.

The fixture run's task ``toy`` gets a fine-tuning record (as :func:`redundancy.finetune.finetune`
writes it, numbers chosen here) and a pretrained twin, so the section, the comparison's model column
and the provenance can be checked against known inputs.
"""

from __future__ import annotations

import json
import shutil

import pytest

from redundancy.report import (
    Report,
    TaskSection,
    build_document,
    collect,
    finetune_row,
    finetune_rows,
    plot_finetune,
    write_report,
)
from redundancy.report._blocks import Heading, Links, Table
from redundancy.report._finetune import _dev_text

RECORD = {
    "model": "base-model",
    "base_weights_sha256": "b" * 64,
    "weights_sha256": "f" * 64,
    "task": "toy",
    "label_type": "class",
    "metric": "f1",
    "config": {
        "lr": 5e-05,
        "max_epochs": 3.0,
        "batch_size": 8,
        "max_length": 128,
        "seed": 42,
        "weight_decay": 0.0,
        "warmup_steps": 0,
        "max_train_examples": 1000,
    },
    "train": {"n_items": 1000},
    "dev": {"n_items": 250},
    "steps": 375,
    "total_steps": 375,
    "finished": True,
    # a capped run stopped at step 60 (mid-epoch 1) and was resumed: its evaluation there is kept in
    # the record and the figure, and left out of the table's per-epoch column
    "dev_scores": [
        {"step": 60, "epoch": 0.48, "scores": {"f1": 0.5, "accuracy": 0.6}},
        {"step": 125, "epoch": 1.0, "scores": {"f1": 0.61, "accuracy": 0.7}},
        {"step": 250, "epoch": 2.0, "scores": {"f1": 0.7025, "accuracy": 0.75}},
        {"step": 375, "epoch": 3.0, "scores": {"f1": 0.7, "accuracy": 0.76}},
    ],
    "train_seconds": 150.0,
    "examples_per_s": 20.0,
    "resumed_at": [60],
    "seeds": {"seed": 42, "carve_seed": 7361},
    "versions": {"torch": "0.0-test"},
}


@pytest.fixture(scope="module")
def tuned(run, tmp_path_factory):
    """The fixture run with ``toy`` fine-tuned (the record above) beside ``toy.pretrained``:
    ``(Report, ReportFiles)``."""
    root = tmp_path_factory.mktemp("tuned-run")
    for stage in ("general", "probe", "pipeline", "compact"):
        for name in ("toy", "toy.pretrained"):
            shutil.copytree(run["root"] / stage / "toy", root / stage / name)
    (root / "finetuned" / "toy").mkdir(parents=True)
    (root / "finetuned" / "toy" / "finetune.json").write_text(json.dumps(RECORD))
    report = collect(root)
    return report, write_report(report, tmp_path_factory.mktemp("tuned-report"))


def test_collect_reads_the_record_into_the_fine_tuned_section_only(run, tuned):
    report, _ = tuned
    assert report.tasks == ("toy", "toy.pretrained")
    toy, pre = report.section("toy"), report.section("toy.pretrained")
    assert toy.finetune == RECORD and pre.finetune is None
    assert toy.model == run["pipeline"].model  # what the stages recorded: the analysed model folder
    assert toy.base_model == "base-model" and pre.base_model == run["pipeline"].model
    assert toy.model_label == "base-model fine-tuned on toy"
    assert Report.from_dict(report.to_dict()).section("toy").finetune == RECORD


def test_row_equals_the_record(tuned):
    report, files = tuned
    (row,) = finetune_rows(report)
    assert row == json.loads(files.results.read_text())["finetune"][0]
    assert (row["task"], row["model"], row["metric"]) == ("toy", "base-model", "f1")
    assert (row["n_train"], row["n_dev"], row["max_train_examples"]) == (1000, 250, 1000)
    assert (row["steps"], row["total_steps"], row["finished"]) == (375, 375, True)
    assert (row["train_seconds"], row["examples_per_s"], row["resumed_at"]) == (150.0, 20.0, [60])
    assert row["recipe"]["lr"] == 5e-05 and row["recipe"]["batch_size"] == 8
    assert [d["score"] for d in row["dev"]] == [0.5, 0.61, 0.7025, 0.7]
    assert row["dev_final"] == 0.7


def test_table_cells(tuned):
    report, files = tuned
    blocks = build_document(report, figures=False)
    (table,) = [b for b in blocks if isinstance(b, Table) and "training time" in b.header]
    (cells,) = table.rows
    row = dict(zip(table.header, cells, strict=True))
    assert row["task (dev metric)"] == "toy (f1)"
    assert row["train items"] == "1,000 (cap 1,000)"
    assert row["steps"] == "375" and row["training time"] == "2.5 min" and row["examples/s"] == "20.0"
    assert row["dev score after each epoch"] == "61.00 / 70.25 / 70.00"  # the mid-epoch stop left out
    assert row["resumed at step"] == "60"
    md = files.markdown.read_text()
    assert "AdamW, lr 5e-05, 3 epochs, batch 8, max length 128, seed 42" in md
    # the comparison names the pretrained model on both rows; the variant column tells them apart
    assert "| toy (accuracy) | fine-tuned | base-model |" in md  # the stages' metric, not the record's
    assert f"| toy (accuracy) | pretrained | {report.section('toy.pretrained').model} |" in md
    assert "The compact model (base-model fine-tuned on toy, truncated" in md


@pytest.mark.parametrize(
    ("epochs", "expected"),
    [
        ((1.0, 2.0), "10.00 / 20.00"),
        ((0.5, 1.0, 1.5), "1: 20.00 · 1.5: 30.00"),  # stopped mid-epoch 2: the last is kept, labelled
        ((0.5,), "0.5: 10.00"),
        ((), "–"),
    ],
)
def test_dev_text(epochs, expected):
    dev = [{"epoch": e, "score": 0.1 * (i + 1)} for i, e in enumerate(epochs)]
    assert _dev_text({"dev": dev}) == expected


def test_unfinished_run_is_marked(tuned):
    record = dict(RECORD, finished=False, steps=100, dev_scores=[], config={})
    row = finetune_row("toy", record)
    assert row["dev_final"] is None and row["max_train_examples"] is None
    report = Report("T", (TaskSection("toy", finetune=record),), {})
    blocks = build_document(report, figures=False)
    (table,) = [b for b in blocks if isinstance(b, Table) and "training time" in b.header]
    assert table.rows[0][5] == "100 of 375 (unfinished)"


def test_section_is_linked_and_provenance_names_both_models(tuned):
    report, files = tuned
    blocks = build_document(report, figures=False)
    headings = [b.text for b in blocks if isinstance(b, Heading) and b.level == 2]
    assert headings[:3] == ["Summary", "Fine-tuning", "Fine-tuned vs pretrained"]
    (links,) = [b for b in blocks if isinstance(b, Links)]
    assert ("Fine-tuning", "finetune") in links.items
    prov = json.loads(files.results.read_text())["provenance"]
    by_sha = {m["weights_sha256"]: m for m in prov["models"]}
    assert by_sha["b" * 64]["model"] == "base-model"
    assert by_sha["b" * 64]["sources"] == ["finetune/toy (base)"]
    assert by_sha["f" * 64]["model"] == report.section("toy").model
    assert "finetune/toy (fine-tuned)" in by_sha["f" * 64]["sources"]
    seeds = {(s["stage"], s["name"]): s["value"] for s in prov["seeds"] if s["task"] == "toy"}
    assert seeds[("finetune", "seed")] == 42 and seeds[("finetune", "carve_seed")] == 7361
    assert "finetune-dev.png" in {p.name for p in files.figures}


def test_no_section_without_a_record(written):
    report, files = written
    assert finetune_rows(report) == []
    assert json.loads(files.results.read_text())["finetune"] == []
    assert "## Fine-tuning" not in files.markdown.read_text()


def test_plot(tmp_path):
    import matplotlib.image as mpimg

    rows = [finetune_row("toy", RECORD), finetune_row("other", dict(RECORD, dev_scores=[]))]
    pixels = mpimg.imread(plot_finetune(rows, tmp_path / "f.png"))
    assert pixels.shape[0] > 300 and pixels.shape[1] > 600

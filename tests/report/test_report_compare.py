"""Fine-tuned vs pretrained: a task ``toy`` and its pretrained twin ``toy.pretrained`` side by side.

The twin is the real ``toy`` result files copied under a second name with a few numbers edited (the
redundant share at t = 0.3, one CKA value, the quoted pipeline row, the minimal set), so every number of
the comparison can be checked against its input.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from redundancy.report import (
    Report,
    TaskSection,
    build_document,
    collect,
    comparison_pairs,
    comparison_rows,
    comparison_sentence,
    plot_comparison,
    write_report,
)
from redundancy.report._blocks import Heading, Links, Paragraph, Table

STAGE_FILES = {
    "general": "general.json",
    "probe": "probe.json",
    "pipeline": "pipeline.json",
    "compact": "compact.json",
}
PRE = {"share": 0.05, "cka01": 0.5, "layer": 2, "n_selected": 6, "k": 5}
"""The pretrained twin's edits (the fine-tuned ``toy`` keeps the fixture's: share 1/6, layer 1, 2 kept)."""


def _copy_task(src_root: Path, dst_root: Path, task: str, name: str, stages=tuple(STAGE_FILES)) -> None:
    for stage in stages:
        src = src_root / stage / task / STAGE_FILES[stage]
        (dst_root / stage / name).mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst_root / stage / name / STAGE_FILES[stage])


def _edit(path: Path, change) -> None:
    d = json.loads(path.read_text())
    change(d)
    path.write_text(json.dumps(d))


def _make_run(run, root: Path, *, share: float = PRE["share"], twin: str = "toy.pretrained") -> Path:
    """``toy`` as the fixture has it, and ``twin`` = toy with the pretrained edits (``share`` at 0.3)."""
    _copy_task(run["root"], root, "toy", "toy")
    _copy_task(run["root"], root, "toy", twin)

    def general(d):
        t = d["report_threshold"]
        (point,) = [p for p in d["sweep"] if abs(p["threshold"] - t) < 1e-9]
        point["redundant_share"] = share
        d["cka"]["linear"][0][1] = d["cka"]["linear"][1][0] = PRE["cka01"]

    def pipeline(d):
        row = d["rows"][-1]  # the row the compact model was built from
        row["selected_layer"] = PRE["layer"]
        row["n_selected"] = PRE["n_selected"]
        row["share_of_all"] = PRE["n_selected"] / d["n_neurons"]

    def compact(d):
        d["selected_layer"] = PRE["layer"]  # still built from the last row

    def probe(d):
        d["minimal"]["k"] = PRE["k"]
        d["minimal"]["share"] = PRE["k"] / d["n_neurons"]

    for stage, change in (
        ("general", general),
        ("pipeline", pipeline),
        ("compact", compact),
        ("probe", probe),
    ):
        _edit(root / stage / twin / STAGE_FILES[stage], change)
    return root


def _table(blocks) -> Table:
    (table,) = [b for b in blocks if isinstance(b, Table) and "variant" in b.header]
    return table


@pytest.fixture(scope="module")
def pair(run, tmp_path_factory):
    """The pair's report written with figures: ``(Report, ReportFiles)``."""
    report = collect(_make_run(run, tmp_path_factory.mktemp("pair-run")))
    return report, write_report(report, tmp_path_factory.mktemp("pair-report"))


# ----------------------------------------------------------------------------------------------- table


def test_pairs_are_found_by_the_pretrained_suffix(pair):
    report, _ = pair
    assert report.tasks == ("toy", "toy.pretrained")
    ((task, fine, pre),) = comparison_pairs(report)
    assert (task, fine.task, pre.task) == ("toy", "toy", "toy.pretrained")


def test_comparison_rows_equal_the_inputs(run, pair):
    report, files = pair
    rows = json.loads(files.results.read_text())["comparison"]
    assert rows == comparison_rows(report)
    assert [(r["task"], r["variant"], r["section"]) for r in rows] == [
        ("toy", "pretrained", "toy.pretrained"),
        ("toy", "fine-tuned", "toy"),
    ]
    pre, fine = rows
    g, q, p = run["general"], run["pipeline"], run["probe"]
    m = g.cka.as_array("linear")
    row = q.rows[-1]

    assert fine["model"] == pre["model"] == g.model
    assert fine["report_threshold"] == pre["report_threshold"] == 0.3
    assert fine["redundant_share"] == g.at(0.3).redundant_share
    assert pre["redundant_share"] == PRE["share"]
    assert fine["cka_adjacent_mean"] == pytest.approx((m[0, 1] + m[1, 2]) / 2)
    assert pre["cka_adjacent_mean"] == pytest.approx((PRE["cka01"] + m[1, 2]) / 2)
    assert fine["cka_first_last"] == pre["cka_first_last"] == pytest.approx(m[0, 2])
    assert fine["oracle_dev"] == pre["oracle_dev"] == q.oracle_dev
    assert fine["oracle_test"] == pre["oracle_test"] == q.oracle_test
    assert (fine["selected_layer"], fine["n_selected"]) == (row.selected_layer, row.n_selected)
    assert fine["share_of_all"] == row.share_of_all and fine["share_of_oracle"] == row.share_of_oracle
    assert (pre["selected_layer"], pre["n_selected"]) == (PRE["layer"], PRE["n_selected"])
    assert pre["share_of_all"] == PRE["n_selected"] / q.n_neurons
    assert pre["pipeline_setting"]["chosen_by"] == fine["pipeline_setting"]["chosen_by"] == "compact model"
    assert fine["minimal_set_k"] == p.minimal.k and pre["minimal_set_k"] == PRE["k"]


def test_table_cells_show_the_inputs(run, pair):
    report, files = pair
    table = _table(build_document(report, figures=False))
    assert table.header[5] == "redundant % (t = 0.3)"
    assert len(table.rows) == 2
    pre, fine = (dict(zip(table.header, r, strict=True)) for r in table.rows)
    g, q, p = run["general"], run["pipeline"], run["probe"]
    m = g.cka.as_array("linear")
    row = q.rows[-1]
    assert pre["variant"] == "pretrained" and fine["variant"] == "fine-tuned"
    assert pre["task"] == fine["task"] == f"toy ({q.metric})"
    assert fine["mean CKA, adjacent layers"] == f"{(m[0, 1] + m[1, 2]) / 2:.3f}"
    assert pre["mean CKA, adjacent layers"] == f"{(PRE['cka01'] + m[1, 2]) / 2:.3f}"
    assert fine["CKA(first, last layer)"] == f"{m[0, 2]:.3f}"
    assert fine["redundant % (t = 0.3)"] == f"{100 * g.at(0.3).redundant_share:.1f}"
    assert pre["redundant % (t = 0.3)"] == f"{100 * PRE['share']:.1f}"
    assert fine["oracle test"] == pre["oracle test"] == f"{100 * q.oracle_test:.2f}"
    assert fine["oracle dev"] == f"{100 * q.oracle_dev:.2f}"
    assert (fine["selected layer"], fine["neurons kept"]) == (str(row.selected_layer), str(row.n_selected))
    assert (pre["selected layer"], pre["neurons kept"]) == (str(PRE["layer"]), str(PRE["n_selected"]))
    assert pre["% of all"] == f"{100 * PRE['n_selected'] / q.n_neurons:.2f}"
    assert fine["% of oracle"] == f"{100 * row.share_of_oracle:.2f}"
    assert fine["minimal set"].startswith(f"{p.minimal.k} (")
    assert pre["minimal set"] == f"{PRE['k']} ({100 * PRE['k'] / q.n_neurons:.1f}%)"
    # the same table in both files
    md, page = files.markdown.read_text(), files.html.read_text()
    assert "| task | variant | pretrained model | mean CKA, adjacent layers |" in md
    assert "<th>variant</th>" in page and "<td>pretrained</td>" in page and "<td>fine-tuned</td>" in page


# -------------------------------------------------------------------------------------------- sentence


@pytest.mark.parametrize(("pre_share", "verb"), [(PRE["share"], "raised"), (0.4, "lowered")])
def test_sentence_states_the_direction(run, tmp_path, pre_share, verb):
    report = collect(_make_run(run, tmp_path, share=pre_share))
    fine_share = run["general"].at(0.3).redundant_share
    assert (fine_share > pre_share) == (verb == "raised")
    expected = (
        f"On toy, fine-tuning {verb} the redundant share at t = 0.3 from {100 * pre_share:.1f}% to "
        f"{100 * fine_share:.1f}%, lowered the selected layer from {PRE['layer']} to "
        f"{run['pipeline'].rows[-1].selected_layer} and lowered the neurons the pipeline keeps from "
        f"{PRE['n_selected']} to {run['pipeline'].rows[-1].n_selected}."
    )
    assert comparison_sentence(*comparison_rows(report)) == expected
    texts = [b.text for b in build_document(report, figures=False) if isinstance(b, Paragraph)]
    assert expected in texts


def test_sentence_unchanged_and_missing_pieces():
    base = {"task": "sst2", "report_threshold": 0.3, "redundant_share": 0.412}
    before = {**base, "selected_layer": 4, "n_selected": 1200}
    after = {**base, "redundant_share": 0.55, "selected_layer": 4, "n_selected": None}
    assert comparison_sentence(before, after) == (
        "On sst2, fine-tuning raised the redundant share at t = 0.3 from 41.2% to 55.0% "
        "and left the selected layer at 4."
    )
    assert comparison_sentence(base, {**base, "redundant_share": 0.41201}) == (
        "On sst2, fine-tuning left the redundant share at t = 0.3 at 41.2%."
    )
    other_t = comparison_sentence(base, {**base, "report_threshold": 0.5, "redundant_share": 0.3})
    assert (
        other_t == "On sst2, fine-tuning lowered the redundant share from 41.2% (t = 0.3) to 30.0% (t = 0.5)."
    )
    assert "no redundant share" in comparison_sentence({"task": "sst2"}, {"task": "sst2"})


def test_missing_stages_of_one_variant_read_not_run(run, tmp_path):
    _copy_task(run["root"], tmp_path, "toy", "toy")
    _copy_task(run["root"], tmp_path, "toy", "toy.pretrained", stages=("general",))
    report = collect(tmp_path)
    table = _table(build_document(report, figures=False))
    pre = dict(zip(table.header, table.rows[0], strict=True))
    assert pre["variant"] == "pretrained"
    for col in ("oracle dev", "oracle test", "selected layer", "neurons kept", "% of oracle", "minimal set"):
        assert pre[col] == "not run", col
    assert pre["redundant % (t = 0.3)"] != "not run"
    share = f"{100 * run['general'].at(0.3).redundant_share:.1f}%"
    assert comparison_sentence(*comparison_rows(report)) == (
        f"On toy, fine-tuning left the redundant share at t = 0.3 at {share}."
    )
    empty = Report("T", (TaskSection("a"), TaskSection("a.pretrained")), {})
    table = _table(build_document(empty, figures=False))
    assert all(cell == "not run" for r in table.rows for cell in r[3:])


# ------------------------------------------------------------------------------------ section and files


def test_section_follows_the_summary_and_is_linked(pair):
    report, files = pair
    blocks = build_document(report, figures=False)
    headings = [b.text for b in blocks if isinstance(b, Heading) and b.level == 2]
    assert headings[:3] == ["Summary", "Fine-tuned vs pretrained", "Task toy"]
    assert "Task toy.pretrained" in headings  # the per-task sections stay
    (links,) = [b for b in blocks if isinstance(b, Links)]
    assert ("Fine-tuned vs pretrained", "comparison") in links.items
    md = files.markdown.read_text()
    assert md.index("## Summary") < md.index("## Fine-tuned vs pretrained") < md.index("## Task toy ")


def test_html_embeds_one_more_png_than_without_the_pair(run, pair, tmp_path):
    _, files = pair
    single = collect(_make_run(run, tmp_path / "run", twin="toy.other"))  # same sections, no pair
    alone = write_report(single, tmp_path / "report")
    imgs = re.findall(r"<img [^>]*src=\"data:image/png;base64,", files.html.read_text())
    imgs_alone = re.findall(r"<img [^>]*src=\"data:image/png;base64,", alone.html.read_text())
    assert len(imgs) == len(imgs_alone) + 1
    assert 'id="fig-comparison-finetuned-pretrained"' in files.html.read_text()
    assert len(files.figures) == len(alone.figures) + 1
    png = files.out_dir / "figures" / "comparison-finetuned-pretrained.png"
    assert png in files.figures and png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "](figures/comparison-finetuned-pretrained.png)" in files.markdown.read_text()
    assert json.loads(alone.results.read_text())["comparison"] == []
    assert "Fine-tuned vs pretrained" not in alone.markdown.read_text()


def test_plot_marks_missing_values(tmp_path):
    import matplotlib.image as mpimg

    rows = [
        {"task": "sst2", "variant": "pretrained", "report_threshold": 0.3, "redundant_share": 0.41},
        {"task": "sst2", "variant": "fine-tuned", "report_threshold": 0.3, "redundant_share": 0.55},
        {"task": "qnli", "variant": "pretrained", "redundant_share": None, "share_of_all": 0.02},
        {"task": "qnli", "variant": "fine-tuned", "redundant_share": 0.3, "share_of_all": float("nan")},
    ]
    path = plot_comparison(rows, tmp_path / "c.png")
    pixels = mpimg.imread(path)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 600


def test_no_section_without_a_pair(written):
    report, files = written
    assert comparison_pairs(report) == ()
    md, page = files.markdown.read_text(), files.html.read_text()
    assert "Fine-tuned vs pretrained" not in md and "Fine-tuned vs pretrained" not in page
    assert 'id="comparison"' not in page
    assert json.loads(files.results.read_text())["comparison"] == []
    lone = Report("T", (TaskSection("a.pretrained"), TaskSection("b")), {})
    assert comparison_rows(lone) == []
    assert not any(isinstance(b, Heading) and b.anchor == "comparison" for b in build_document(lone))

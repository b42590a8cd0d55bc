"""The report of a small real run: inputs found, results.json faithful, report.md / report.html complete."""

from __future__ import annotations

import argparse
import base64
import io
import json
import math
import re
import shutil
from html.parser import HTMLParser

import pytest

from redundancy.general import GeneralResult
from redundancy.pipeline import PipelineResult
from redundancy.probe import TaskRedundancyResult
from redundancy.report import (
    Report,
    TaskSection,
    build_document,
    collect,
    headline_row,
    load_results,
    render_markdown,
    write_report,
)
from redundancy.report._render import markdown_to_blocks

N_FIGURES = 8 + 4  # toy: 4 general + 3 probe (layers, sizes, rankings) + 1 pipeline; toy2: 4 general
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class _Images(HTMLParser):
    """Every ``<img>``'s attributes, and every ``src`` / ``href`` value, of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[dict[str, str | None]] = []
        self.refs: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        d = dict(attrs)
        if tag == "img":
            self.imgs.append(d)
        self.refs += [v for k, v in attrs if k in ("src", "href") and v is not None]


# --------------------------------------------------------------------------------------------- collect


def test_collect_reads_every_stage_in_config_order(run, written):
    report, _ = written
    assert report.title == "Toy run"
    assert report.tasks == ("toy2", "toy")  # the job config's order, not sorted
    toy, toy2 = report.section("toy"), report.section("toy2")
    assert isinstance(toy.general, GeneralResult)
    assert isinstance(toy.probe, TaskRedundancyResult)
    assert isinstance(toy.pipeline, PipelineResult)
    assert toy.compact == run["compact"]
    assert toy2.general is not None and toy2.probe is None and toy2.pipeline is None and toy2.compact is None
    assert toy.general.at(0.3).redundant_share == run["general"].at(0.3).redundant_share

    prov = report.provenance
    assert {s["name"] for s in prov["stores"]} == {"toy-train", "toy-dev", "toy-test", "toy2-dev"}
    plan = {s["name"]: s["plan_hash"] for s in prov["stores"]}
    probe_inputs = {i["split"]: i["plan_hash"] for i in prov["inputs"] if i["stage"] == "probe"}
    assert probe_inputs == {"train": plan["toy-train"], "dev": plan["toy-dev"], "test": plan["toy-test"]}
    assert prov["models"] and prov["models"][0]["weights_sha256"] == "0" * 64
    assert "numpy" in prov["versions"] and "redundancy" in prov["versions"]
    assert prov["job"] == run["job"]
    assert any(s["stage"] == "pipeline" and s["value"] == 0 for s in prov["seeds"])


def test_collect_without_job_sorts_tasks_and_survives_a_damaged_file(run, tmp_path):
    for task in ("b", "a"):
        (tmp_path / "general" / task).mkdir(parents=True)
        shutil.copy(run["root"] / "general" / "toy" / "general.json", tmp_path / "general" / task)
    (tmp_path / "probe" / "a").mkdir(parents=True)
    (tmp_path / "probe" / "a" / "probe.json").write_text("{not json")
    report = collect(tmp_path, title="T")
    assert report.tasks == ("a", "b") and report.title == "T"
    a = report.section("a")
    assert a.probe is None and a.general is not None
    assert len(a.problems) == 1 and "probe.json" in a.problems[0]
    files = write_report(report, tmp_path / "out", figures=False)
    md = files.markdown.read_text()
    assert "could not be read" in md and "Probe: not run" in md


def test_collect_missing_folder_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        collect(tmp_path / "nope")


# ---------------------------------------------------------------------------------------- results.json


def test_results_json_round_trips_and_equals_the_inputs(run, written):
    report, files = written
    text = files.results.read_text()
    assert "NaN" not in text and "Infinity" not in text
    d = json.loads(text)
    assert d["tasks"] == ["toy2", "toy"]
    toy = d["sections"]["toy"]
    assert toy["general"] == json.loads(json.dumps(run["general"].to_dict()))
    assert toy["probe"] == json.loads(json.dumps(run["probe"].to_dict()))
    assert toy["pipeline"] == json.loads(json.dumps(run["pipeline"].to_dict()))
    assert toy["compact"] == run["compact"]
    assert d["sections"]["toy2"]["probe"] is None
    assert d["job"] == run["job"]
    assert {"versions", "stores", "inputs", "seeds", "models", "created"} <= set(d["provenance"])

    # the numbers, read back through the stages' own from_dict
    back = load_results(files.out_dir)
    g = back.section("toy").general
    assert g.at(0.3).redundant_share == run["general"].at(0.3).redundant_share
    tests = [r.test for r in back.section("toy").pipeline.rows]
    assert tests == pytest.approx([r.test for r in run["pipeline"].rows], nan_ok=True)
    assert back.section("toy").probe.oracle.test_score == run["probe"].oracle.test_score
    for sec in report.sections:
        assert back.section(sec.task).to_dict() == json.loads(json.dumps(sec.to_dict()))

    summary = {s["task"]: s for s in d["summary"]}
    assert summary["toy"]["general"]["redundant_share"] == run["general"].at(0.3).redundant_share
    row = run["pipeline"].rows[-1]
    assert summary["toy"]["pipeline"]["chosen_by"] == "compact model"
    assert summary["toy"]["pipeline"]["test"] == row.test
    assert summary["toy"]["pipeline"]["n_selected"] == row.n_selected
    assert summary["toy"]["compact"]["layers"] == row.selected_layer + 1
    assert summary["toy2"]["pipeline"] is None and summary["toy2"]["oracle"] is None
    assert d["files"]["figures"] == [f"figures/{p.name}" for p in files.figures]


def test_report_round_trips_through_to_dict(written):
    report, _ = written
    again = Report.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again.tasks == report.tasks and again.title == report.title
    assert again.provenance == json.loads(json.dumps(report.provenance))


# ------------------------------------------------------------------------------------------- report.md


def test_markdown_holds_the_tables_and_links_existing_figures(run, written):
    _, files = written
    md = files.markdown.read_text()
    assert run["pipeline"].table_markdown() in md
    assert "## Summary" in md and "## Provenance" in md
    assert "| task | redundant % (t = 0.3) |" in md
    assert "Linear CKA between layers" in md and "Debiased CKA between layers" in md
    assert "| k | % of all | top-ranked | random (2 draws) | bottom-ranked |" in md
    assert "(minimal set)" in md
    # every ranking judged by the controls, the choice, and the offline ablation
    p = run["probe"]
    for rc in p.controls.rankings:
        name = rc.method + (" (used)" if rc.method == p.ranking_method else "")
        assert f"{name}: top / bottom" in md
    assert {rc.method for rc in p.controls.rankings} == {"paper", "group-lasso", "l1-path", "probeless"}
    assert "Ranking used: " in md and "Offline ablation" in md
    assert "Probe: not run" in md and "Compact: not run" in md  # toy2
    share = 100 * run["general"].at(0.3).redundant_share
    assert f"{share:.1f}% of the neurons are redundant" in md
    assert "23.5 kB" in md and "90.1 MB" in md  # compact and full model sizes
    assert "0" * 64 in md and run["probe"].train.plan_hash in md  # hashes in the provenance
    links = re.findall(r"\]\((figures/[^)]+\.png)\)", md)
    assert len(links) == N_FIGURES == len(files.figures)
    for link in links:
        data = (files.out_dir / link).read_bytes()
        assert data.startswith(PNG_MAGIC)


# ----------------------------------------------------------------------------------------- report.html


def test_html_is_self_contained_with_valid_embedded_pngs(written):
    import matplotlib.image as mpimg

    _, files = written
    page = files.html.read_text()
    parser = _Images()
    parser.feed(page)
    assert not [r for r in parser.refs if re.match(r"\s*(https?:)?//", r, re.IGNORECASE)]
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*https?://""", page, re.IGNORECASE)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", page, re.IGNORECASE)
    assert not {"script", "link", "iframe"} & parser.tags
    assert len(parser.imgs) == N_FIGURES
    ids = [img.get("id") for img in parser.imgs]
    assert all(ids) and len(set(ids)) == len(ids)
    for img in parser.imgs:
        assert img.get("alt")
        src = img["src"]
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data.startswith(PNG_MAGIC)
        pixels = mpimg.imread(io.BytesIO(data), format="png")
        assert pixels.shape[0] > 200 and pixels.shape[1] > 300
    # the same PNGs as beside report.md
    on_disk = sorted(p.read_bytes() for p in files.figures)
    embedded = sorted(base64.b64decode(img["src"].split(",", 1)[1]) for img in parser.imgs)
    assert on_disk == embedded


def test_html_has_the_same_tables_as_markdown(run, written):
    _, files = written
    page = files.html.read_text()
    separators = re.findall(r"^\|(?:---\|)+$", files.markdown.read_text(), re.MULTILINE)
    assert page.count("<table") == len(separators) > 10
    row = run["pipeline"].rows[0]
    assert f"<td>{100 * row.test:.2f}</td>" in page
    assert "<th>clustering t</th>" in page and "<td>Oracle</td>" in page
    assert page.count("not run") >= 3
    assert "&lt;" not in files.markdown.read_text()


def test_markdown_tables_are_parsed_for_html(run):
    text = run["pipeline"].table_markdown()
    blocks = markdown_to_blocks(text)
    tables = [b for b in blocks if hasattr(b, "rows")]
    assert len(tables) == 1
    assert len(tables[0].rows) == 1 + len(run["pipeline"].rows)  # the oracle line + one per row
    assert tables[0].header[0] == "clustering t"


# ------------------------------------------------------------------------------------ missing pieces


def test_missing_stages_render_not_run(tmp_path):
    report = Report(title="Empty <run>", sections=(TaskSection("pos"),), provenance={})
    files = write_report(report, tmp_path)
    md, page = files.markdown.read_text(), files.html.read_text()
    assert md.count("not run") >= 4 + 10  # four stages, ten summary cells
    assert "Empty &lt;run&gt;" in page and "<img" not in page
    d = json.loads(files.results.read_text())
    assert d["sections"]["pos"] == {
        "task": "pos",
        "finetune": None,
        "general": None,
        "probe": None,
        "ablate": None,
        "pipeline": None,
        "compact": None,
        "problems": [],
    }
    assert d["job"] is None and files.figures == ()


def test_ablation_section_says_whether_the_ranking_beats_random(tmp_path):
    from redundancy.ablate import AblationResult, AblationRow

    def row(name, kind, ranking, seed, score):
        return AblationRow(name, kind, ranking, seed, 134, score, score + 0.01, 0.95 - score, 0.94 - score)

    ablated = AblationResult(
        task="pos",
        model="m",
        metric="accuracy",
        split="test",
        mode="mean",
        n_sentences=300,
        n_items=4000,
        n_neurons=2688,
        share=0.05,
        k=134,
        intact=0.95,
        rows=(
            row("top[group-lasso]", "top", "group-lasso", None, 0.80),
            row("top[paper]", "top", "paper", None, 0.94),
            row("random-s2000", "random", None, 2000, 0.93),
            row("random-s2001", "random", None, 2001, 0.91),
        ),
        seconds=1.0,
        versions={},
        created="2026-01-01T00:00:00+00:00",
    )
    assert AblationResult.from_dict(json.loads(json.dumps(ablated.to_dict()))).to_dict() == ablated.to_dict()
    files = write_report(
        Report(title="t", sections=(TaskSection("pos", ablate=ablated),), provenance={}), tmp_path
    )
    md = files.markdown.read_text()
    assert "### Ablation inside the model" in md
    assert "group-lasso −15.00 (more than random)" in md and "paper −1.00 (not more than random)" in md
    assert "random −3.00 (mean of 2)" in md
    assert "| top 134 of group-lasso | 80.00 | 15.00 | 81.00 | 14.00 |" in md


def test_rewrite_replaces_stale_figures(written, tmp_path):
    report, _ = written
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "old.png").write_bytes(b"x")
    files = write_report(report, tmp_path, figures=False)
    assert not (tmp_path / "figures" / "old.png").exists()
    assert "![" not in files.markdown.read_text()
    assert not list(tmp_path.glob(".*.tmp"))


def test_headline_row_prefers_the_compact_models_row(run):
    q = run["pipeline"]
    assert headline_row(None) is None
    fewest = headline_row(q)
    assert fewest.n_selected == min(r.n_selected for r in q.rows)
    r = q.rows[2]
    compact = {"delta_layer": r.delta_layer, "delta_neuron": r.delta_neuron, "threshold": r.threshold}
    chosen = headline_row(q, compact)
    assert (chosen.delta_layer, chosen.delta_neuron, chosen.threshold) == tuple(compact.values())


def test_document_without_figures_is_text_only(written):
    report, _ = written
    md = render_markdown(build_document(report, figures=False))
    assert "![" not in md and "Task toy2" in md
    assert not math.isnan(report.section("toy").pipeline.oracle_test)


# ------------------------------------------------------------------------------------------------- cli


def test_cli_writes_the_report(run, tmp_path, capsys):
    from redundancy.cli._report import add_parser

    parser = argparse.ArgumentParser(prog="redundancy")
    add_parser(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "rep"
    args = parser.parse_args(["report", str(run["root"]), "--out", str(out), "--title", "CLI title"])
    assert args.func(args) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out / "results.json"), str(out / "report.md"), str(out / "report.html")]
    assert json.loads((out / "results.json").read_text())["title"] == "CLI title"


def test_general_numbers_carry_their_nulls_and_jackknife_intervals(run, written):
    g = run["general"]
    _, files = written
    md = files.markdown.read_text()
    point, iv = g.at(), g.share_interval()
    assert iv.low <= point.redundant_share <= iv.high and iv.n_boot == 5
    cell = f"{100 * point.redundant_share:.1f} [{100 * iv.low:.1f}, {100 * iv.high:.1f}]"
    assert f"{cell}% of the neurons are redundant (shuffled null: " in md
    assert "| threshold t | clusters | redundant % | shuffled null: redundant % | largest cluster |" in md
    assert "| layers | linear CKA | debiased CKA | shuffled: linear | shuffled: debiased |" in md
    assert "delete-a-group jackknife over sentences (5 random groups" in md
    assert "| layers spanned | clusters | shuffled null |" in md
    summaries = json.loads(files.results.read_text())["summary"]
    (summary,) = [s["general"] for s in summaries if s["task"] == "toy"]
    rec = summary["redundant_share_interval"]
    assert rec["estimator"] == "delete-a-group jackknife over sentences, t interval"
    assert (rec["low"], rec["high"], rec["n_boot"]) == (iv.low, iv.high, 5)
    one, first = summary["cka_adjacent"]["debiased_intervals"][0], summary["cka_adjacent"]["debiased"][0]
    assert one["method"] == "jackknife" and one["low"] <= first <= one["high"]

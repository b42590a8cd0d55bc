"""``redundancy run``: config checks, and the stage cache on a tiny model over a little real data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from redundancy.cli import main
from redundancy.job import ConfigError, JobConfig, RunBusyError, load_config, run_job
from redundancy.store import StoreError

STAGES = ["extract", "general", "probe", "pipeline", "compact", "report"]
STORES = ("train", "dev", "test")


def _config(tmp_path: Path, model: Path, **extra) -> str:
    lines = [
        f'model = "{model}"',
        'tasks = ["sem"]',
        f"stages = {json.dumps(extra.pop('stages', STAGES))}",
        f'out = "{tmp_path / "run"}"',
        "threads = 1",
        "[extract]",
        "max_items = 40",
        "[general]",
        "step = 0.25",
        "[probe]",
        f"l1 = {extra.pop('l1', 1e-5)}",
        "n_seeds = 0",
        "random_draws = 1",
        *extra.pop("sections", ()),
    ]
    path = tmp_path / "job.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _statuses(run: Path) -> dict[str, str]:
    job = json.loads((run / "job.json").read_text())
    return {f"{s['task']}/{s['stage']}": s["status"] for s in job["stages"]}


def test_glue_example_reads():
    c = load_config(Path(__file__).parents[2] / "examples" / "glue.toml")
    assert c.stages[0] == "finetune" and c.finetune.compare_pretrained
    assert "qnli" not in c.tasks and c.extract.aggregation == "cls"


@pytest.mark.parametrize(
    "name", sorted(p.name for p in (Path(__file__).parents[2] / "examples").glob("*.toml"))
)
def test_every_example_reads_and_round_trips(name):
    c = load_config(Path(__file__).parents[2] / "examples" / name)
    assert JobConfig.from_dict(c.to_dict()) == c


def test_capped_finetune_example_is_the_documented_cap():
    c = load_config(Path(__file__).parents[2] / "examples" / "finetune-sst2-capped.toml")
    assert c.tasks == ("sst2",) and c.stages[0] == "finetune" and c.finetune.compare_pretrained
    assert (c.finetune.max_train_examples, c.finetune.max_epochs, c.extract.max_items) == (2000, 1.0, 2000)


def test_default_config_reads():
    c = load_config(Path(__file__).parents[2] / "examples" / "default.toml")
    assert c.tasks == ("pos", "chunking", "sem", "ccg")
    assert c.pipeline.thresholds == (None, 0.3)
    assert c.pipeline.grid == ((3.0, 1.0), (2.0, 1.0), (1.0, 1.0))
    assert JobConfig.from_dict(c.to_dict()) == c


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('tasks = ["pos"]\nmodle = "x"\n', "unknown key(s) ['modle']"),
        ('tasks = ["nope"]\n', "unknown task(s) ['nope']"),
        ('tasks = ["pos"]\n[probe]\nl1 = "big"\n', "probe.l1: expected a finite number"),
        ('tasks = ["pos"]\n[extract]\nbatch_size = 0\n', "extract.batch_size: must be >= 1"),
        ('tasks = ["pos"]\n[extract]\nmax_train_tokens = 0\n', "extract.max_train_tokens: must be >= 1"),
        ('tasks = ["pos"]\n[extract]\nchunk_items = 0\n', "extract.chunk_items: must be >= 1"),
        ('tasks = ["pos"]\nthreads = 0\n', "threads: must be >= 1"),
        ('tasks = ["pos"]\nthreads = -2\n', "threads: must be >= 1"),
        ('tasks = ["pos"]\n[probe]\nthreads = 0\n', "probe.threads: must be >= 1"),
        ('tasks = ["pos"]\n[pipeline]\nthresholds = ["none", 1.5]\n', "pipeline.thresholds[1]"),
        (
            'tasks = ["pos"]\n[general]\nreport_threshold = 2\n',
            "general.report_threshold: must lie in [0, 1]",
        ),
        ('tasks = ["pos"]\n[probe]\nsolver = "slow"\n', "probe.solver: must be one of fast, paper"),
        (
            'tasks = ["pos"]\n[probe]\nseeds = 1\nn_seeds = 2\n',
            "probe.seeds: is the old name of probe.n_seeds",
        ),
        ('tasks = ["pos"]\n[pipeline]\nthresholds = [-1]\n', "pipeline.thresholds[0]"),
        ('tasks = ["pos"]\n[pipeline]\ngrid = [[3]]\n', "pipeline.grid[0]"),
        ('tasks = ["pos"]\nstages = ["extract", "dance"]\n', "unknown stage(s) ['dance']"),
        ('tasks = ["pos"]\nstages = ["finetune", "extract"]\n', "finetune is for sentence tasks"),
        ("tasks = [\n", "not valid TOML"),
        ('tasks = ["pos"]\n[probe]\nranking = "best"\n', "probe.ranking: must be one of auto"),
        ('tasks = ["pos"]\n[probe]\nrankings = ["paper", "lasso"]\n', "probe.rankings: unknown ['lasso']"),
        ('tasks = ["pos"]\n[probe]\nrandom_draws = 0\n', "probe.random_draws: must be >= 1"),
        ('tasks = ["pos"]\n[probe]\nablation_shares = [0.5, 1.5]\n', "probe.ablation_shares"),
        ('tasks = ["pos"]\n[probe]\nablation_mode = "noise"\n', "probe.ablation_mode: must be one of"),
        ('tasks = ["pos"]\n[ablate]\nshare = 0\n', "ablate.share: must lie in (0, 1)"),
        ('tasks = ["pos"]\n[ablate]\nrankings = ["nope"]\n', "ablate.rankings: unknown ['nope']"),
        ('tasks = ["pos"]\n[ablate]\nmax_sentences = 0\n', "ablate.max_sentences: must be >= 1"),
        ('tasks = ["pos"]\n[pipeline]\nranking = "weights"\n', "pipeline.ranking: must be one of"),
        ('tasks = ["pos"]\n[engine]\nkind = "spark"\n', "engine.kind: must be one of local, ray"),
        ('tasks = ["pos"]\n[engine]\naddress = "h:6379"\n', 'engine.address: is read only with kind = "ray"'),
        ('tasks = ["pos"]\n[engine]\nkind = "ray"\nnum_cpus = 0\n', "engine.num_cpus: must be an integer"),
        ('tasks = ["pos"]\n[engine]\nkind = "ray"\nadress = "h"\n', "(did you mean 'address'?)"),
    ],
)
def test_config_errors_name_file_and_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "none.toml")


def test_replace_is_checked_like_a_file():
    import dataclasses

    config = JobConfig()
    with pytest.raises(ConfigError, match="extract.batch_size: must be >= 1"):
        dataclasses.replace(config.extract, batch_size=0)
    with pytest.raises(ConfigError, match="threads: must be >= 1"):
        dataclasses.replace(config, threads=-1)
    with pytest.raises(ConfigError, match="threads: must be >= 1"):
        dataclasses.replace(config, threads=0)
    with pytest.raises(ConfigError, match=r"unknown task\(s\) \['nope'\]"):
        dataclasses.replace(config, tasks=("nope",))
    with pytest.raises(ConfigError, match=r"pipeline.thresholds\[0\]"):
        dataclasses.replace(config.pipeline, thresholds=(-0.1,))
    with pytest.raises(ConfigError, match="compact.min_share"):
        dataclasses.replace(config.compact, min_share=0)
    with pytest.raises(ConfigError, match="expected ExtractSettings"):
        dataclasses.replace(config, extract={"batch_size": 0})


def test_defaults_are_the_stages_own():
    import inspect

    from redundancy.pipeline import DEFAULT_GRID, DEFAULT_THRESHOLDS, choose_row
    from redundancy.probe import ElasticNetProbe

    c = JobConfig()
    probe = ElasticNetProbe()
    assert (
        (c.probe.l1, c.probe.l2, c.probe.solver) == (probe.l1, probe.l2, probe.solver) == (1e-5, 1e-5, "fast")
    )
    assert c.pipeline.grid == DEFAULT_GRID == ((3.0, 1.0), (2.0, 1.0), (1.0, 1.0))
    assert c.pipeline.thresholds == DEFAULT_THRESHOLDS == (None, 0.3)
    assert c.compact.min_share == inspect.signature(choose_row).parameters["min_share"].default == 0.97
    assert c.probe.n_seeds == 3 and c.probe.random_draws == 5 and c.probe.delta == 1.0
    assert c.probe.ranking == c.pipeline.ranking == "auto"
    assert c.probe.rankings == ("paper", "group-lasso", "l1-path", "probeless")


def test_seeds_is_a_deprecated_name_of_n_seeds(tmp_path, caplog):
    path = tmp_path / "old.toml"
    path.write_text('tasks = ["pos"]\n[probe]\nseeds = 5\n')
    with caplog.at_level("WARNING", logger="redundancy.job"):
        config = load_config(path)
    assert config.probe.n_seeds == 5
    assert "probe.seeds is deprecated" in caplog.text and str(path) in caplog.text
    assert JobConfig.from_dict(config.to_dict()) == config


_STORES = {"train": "plan-train", "dev": "plan-dev", "test": "plan-test"}


def test_threads_change_no_stage_key():
    import dataclasses

    from redundancy.job import stage_keys

    config = JobConfig(tasks=("sem",))
    keys = stage_keys(config, _STORES, weights="w")
    assert set(keys) == {"finetune", "extract/train", "extract/dev", "extract/test"} | {
        "general",
        "probe",
        "ablate",
        "pipeline",
        "compact",
    }
    ray = dataclasses.replace(config.engine, kind="ray", address="h:6379", num_cpus=4)
    for changed in (
        dataclasses.replace(config, threads=1),
        dataclasses.replace(config, threads=7),
        dataclasses.replace(config, probe=dataclasses.replace(config.probe, threads=2)),
        dataclasses.replace(config, engine=ray),  # where the extraction runs, not what it writes
    ):
        assert changed.compute != config.compute
        assert stage_keys(changed, _STORES, weights="w") == keys


def test_each_stage_is_keyed_on_what_it_reads():
    import dataclasses

    from redundancy.job import stage_keys

    # [pipeline] ranking = "paper": the pipeline ranks by its own probes' weights and reads no probe result
    config = JobConfig(tasks=("sem",))
    config = dataclasses.replace(config, pipeline=dataclasses.replace(config.pipeline, ranking="paper"))
    keys = stage_keys(config, _STORES, weights="w")

    def changed(**probe) -> set[str]:
        other = stage_keys(
            dataclasses.replace(config, probe=dataclasses.replace(config.probe, **probe)),
            _STORES,
            weights="w",
        )
        return {stage for stage in keys if other[stage] != keys[stage]}

    # the in-model ablation reads the probe stage's result (its rankings and oracle), so follows it
    assert changed(ranking="abs") == {"probe", "ablate"}
    for analysis_only in (
        {"delta": 2.0},
        {"n_seeds": 1},
        {"random_draws": 1},
        {"controls": False},
        {"rank_l1": 1e-3},
        {"rankings": ("paper",)},
        {"ablation_mode": "zero"},
    ):
        assert changed(**analysis_only) == {"probe", "ablate"}
    # the probe template is read by the probe, pipeline and compact stages
    assert changed(l1=1e-3) == changed(solver="paper") == {"probe", "ablate", "pipeline", "compact"}
    # [ablate] reaches only its own stage
    abl = dataclasses.replace(config, ablate=dataclasses.replace(config.ablate, share=0.1))
    assert {s for s, v in stage_keys(abl, _STORES, weights="w").items() if v != keys[s]} == {"ablate"}
    # the default ("auto"): the pipeline orders its neurons by the probe stage's ranking, so a
    # change of the probe analysis reruns it (and the compact model) too
    auto = JobConfig(tasks=("sem",))
    auto_keys = stage_keys(auto, _STORES, weights="w")
    delta = dataclasses.replace(auto, probe=dataclasses.replace(auto.probe, delta=2.0))
    other = stage_keys(delta, _STORES, weights="w")
    assert {s for s in auto_keys if other[s] != auto_keys[s]} == {"probe", "ablate", "pipeline", "compact"}
    grid = dataclasses.replace(config, pipeline=dataclasses.replace(config.pipeline, grid=((3.0, 1.0),)))
    other = stage_keys(grid, _STORES, weights="w")
    assert {s for s in keys if other[s] != keys[s]} == {"pipeline", "compact"}
    compact = dataclasses.replace(config, compact=dataclasses.replace(config.compact, min_share=0.9))
    other = stage_keys(compact, _STORES, weights="w")
    assert {s for s in keys if other[s] != keys[s]} == {"compact"}
    # how often an extraction commits (the unit it resumes from) stores the same bytes: no key moves
    chunks = dataclasses.replace(config, extract=dataclasses.replace(config.extract, chunk_items=7))
    assert stage_keys(chunks, _STORES, weights="w") == keys

    # the sweep with task accuracy reads the general stage's representatives: with it, the probe
    # stage follows the general stage's key; without it (the default), it does not
    assert changed(sweep_thresholds=(0.3,)) == {"probe", "ablate"}
    sweep = dataclasses.replace(config, probe=dataclasses.replace(config.probe, sweep_thresholds=(0.3,)))
    sweep_keys = stage_keys(sweep, _STORES, weights="w")
    step = dataclasses.replace(sweep, general=dataclasses.replace(sweep.general, step=0.1))
    other = stage_keys(step, _STORES, weights="w")
    assert {s for s in sweep_keys if other[s] != sweep_keys[s]} == {"general", "probe", "ablate"}

    # [rigour]: the general stage's groups and nulls reach only it; the bootstrap reaches the
    # stages that resample (probe, pipeline) and those that follow them
    def rigour(**kw) -> set[str]:
        other = stage_keys(
            dataclasses.replace(config, rigour=dataclasses.replace(config.rigour, **kw)), _STORES, weights="w"
        )
        return {s for s in keys if other[s] != keys[s]}

    assert rigour(general_groups=10) == rigour(nulls=("shuffled",)) == {"general"}
    assert rigour(selectivity=True) == {"probe", "ablate"}
    assert rigour(level=0.9) == {"probe", "ablate", "pipeline", "compact"}  # no general groups here
    # whether the pretrained model is compared changes what is analysed, not the fine-tuning
    ft = dataclasses.replace(config, finetune=dataclasses.replace(config.finetune, compare_pretrained=False))
    assert stage_keys(ft, _STORES, weights="w") == keys


def test_a_run_removes_what_a_killed_run_left_half_written(tmp_path):
    """SIGKILL between writing a temporary file or folder and renaming it into place leaves it
    behind (tests/reliability/test_kill_resume.py kills real runs there); the next run, holding the
    folder's lock, removes such leftovers and nothing else."""
    from redundancy.job._run import _remove_leftovers

    run = tmp_path / "run"
    leftovers = [
        ".job.json.a1b2c3d4.tmp",  # the atomic writer's temporary file
        "stores/sem-dev/.progress.json.x_9yz0ab.tmp",
        "compact/.sem.partial-k3j4_l5m/model/model.safetensors",  # an unfinished compact model
        "finetuned/rte/.checkpoint-abcdefgh/trainer_state.json",  # an unfinished checkpoint
        "compact/sem.old/compact.json",  # a replaced folder whose new one is in place
    ]
    kept = [
        "job.json",
        "compact/sem/compact.json",
        "probe/sem/.checkpoint/family.json",  # the probe stage's checkpoint: kept on purpose
        "stores/sem-dev/.lock",
        "notes.tmp",
        "other.old/x",  # an old folder without its new one: recover_dir puts it back when needed
    ]
    for rel in leftovers + kept:
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_text("x")
    _remove_leftovers(run)
    assert {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()} == set(kept)
    assert not (run / "compact" / ".sem.partial-k3j4_l5m").exists()


def test_cli_overrides_are_checked(tmp_path, capsys):
    path = tmp_path / "job.toml"
    path.write_text('tasks = ["pos"]\n')
    assert (
        main(["-q", "run", str(path), "--threads", "0", "--no-progress", "--out", str(tmp_path / "r")]) == 2
    )
    assert "threads: must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_run_caches_every_stage_and_resumes(tmp_path, tiny, data_dir, monkeypatch):
    cfg = _config(tmp_path, tiny("bert"))
    run = tmp_path / "run"
    assert main(["-q", "run", cfg, "--no-progress", "--data-dir", str(data_dir)]) == 0
    first = _statuses(run)
    assert set(first.values()) == {"ran"}
    assert len(first) == 3 + 4 + 1  # three extractions, general, probe, pipeline, compact; report
    assert (run / "compact" / "sem" / "model" / "config.json").is_file()
    results = json.loads((run / "report" / "results.json").read_text())
    assert results["tasks"] == ["sem"]
    html = (run / "report" / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 6
    pipeline = json.loads((run / "pipeline" / "sem" / "pipeline.json").read_text())
    assert pipeline["task"] == "sem" and len(pipeline["rows"]) == 6
    assert (run / "probe" / "sem" / "probe.json").is_file()
    assert json.loads((run / "general" / "sem" / "general.json").read_text())["n_items"] > 0
    mtime = (run / "pipeline" / "sem" / "pipeline.json").stat().st_mtime_ns

    # the recorded keys are the ones stage_keys gives: it says what a change of config reruns
    from redundancy.job import stage_keys

    job = json.loads((run / "job.json").read_text())
    recorded = {s["stage"] if s["task"] == "sem" else s["task"]: s["key"] for s in job["stages"]}
    recorded = {f"extract/{k[4:]}" if k.startswith("sem-") else k: v for k, v in recorded.items()}
    manifests = {
        sp: json.loads((run / "stores" / f"sem-{sp}" / "manifest.json").read_text()) for sp in STORES
    }
    records = {sp: json.loads((run / "cache" / "extract" / f"sem-{sp}.json").read_text()) for sp in STORES}
    expected = stage_keys(
        load_config(cfg),
        {sp: m["plan_hash"] for sp, m in manifests.items()},
        weights=manifests["train"]["weights_sha256"],
        data={sp: (r["inputs"]["items"], r["inputs"]["files"]) for sp, r in records.items()},
        versions=job["versions"],
    )
    for stage in ("extract/train", "extract/dev", "extract/test", "general", "probe", "pipeline", "compact"):
        assert recorded[stage] == expected[stage], stage

    # a rerun does nothing
    assert main(["-q", "run", cfg, "--no-progress", "--data-dir", str(data_dir)]) == 0
    again = _statuses(run)
    assert again.pop("all/report") == "ran"  # the report is cheap and always rebuilt
    assert set(again.values()) == {"cached"}
    assert (run / "pipeline" / "sem" / "pipeline.json").stat().st_mtime_ns == mtime

    # another probe penalty: only the stages that depend on it run again
    cfg2 = _config(tmp_path, tiny("bert"), l1=1e-3)
    config = load_config(cfg2)
    import dataclasses

    config = dataclasses.replace(config, data_dir=str(data_dir))
    result = run_job(config)
    got = {f"{s.task}/{s.stage}": s.status for s in result.stages}
    assert got["sem/probe"] == got["sem/pipeline"] == got["sem/compact"] == "ran"
    assert got["sem/general"] == got["sem-train/extract"] == "cached"

    # an interrupted stage leaves no record and runs again; finished ones stay cached
    import redundancy.pipeline as pipeline_pkg

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline_pkg, "run_pipeline", boom)
    with pytest.raises(KeyboardInterrupt):
        run_job(config, force=("pipeline",))
    assert not (run / "cache" / "pipeline" / "sem.json").exists()
    monkeypatch.undo()
    result = run_job(config)
    got = {f"{s.task}/{s.stage}": s.status for s in result.stages}
    assert got["sem/pipeline"] == "ran" and got["sem/probe"] == "cached"

    # a deleted output invalidates its record
    (run / "general" / "sem" / "general.json").unlink()
    got = {f"{s.task}/{s.stage}": s.status for s in run_job(config).stages}
    assert got["sem/general"] == "ran"


def test_stage_without_inputs_says_what_to_add(tmp_path, tiny, data_dir):
    cfg = _config(tmp_path, tiny("bert"), stages=["probe"])
    config = load_config(cfg)
    import dataclasses

    with pytest.raises(StoreError, match="no such folder.*add 'extract'"):
        run_job(dataclasses.replace(config, data_dir=str(data_dir)))


def test_finetune_stage_analyses_finetuned_and_pretrained(tmp_path, tiny, data_dir):
    text = _config(tmp_path, tiny("bert"), stages=["finetune", "extract", "general", "probe", "pipeline"])
    text_path = Path(text)
    body = text_path.read_text().replace('tasks = ["sem"]', 'tasks = ["rte"]')
    body += "[finetune]\nmax_train_examples = 16\nmax_epochs = 1.0\nbatch_size = 4\nmax_length = 32\n"
    text_path.write_text(body)
    config = load_config(text_path)
    import dataclasses

    config = dataclasses.replace(config, data_dir=str(data_dir))
    result = run_job(config)
    got = {f"{s.task}/{s.stage}": s.status for s in result.stages}
    assert got["rte/finetune"] == "ran"
    for label in ("rte", "rte.pretrained"):
        assert got[f"{label}/pipeline"] == "ran"
    run = tmp_path / "run"
    finetuned = json.loads((run / "stores" / "rte-train" / "manifest.json").read_text())
    pretrained = json.loads((run / "stores" / "rte.pretrained-train" / "manifest.json").read_text())
    assert finetuned["model_source"] == str((run / "finetuned" / "rte").resolve())
    assert finetuned["weights_sha256"] != pretrained["weights_sha256"]
    assert (run / "finetuned" / "rte" / "finetune.json").is_file()
    again = {f"{s.task}/{s.stage}": s.status for s in run_job(config).stages}
    assert set(again.values()) == {"cached"}


def test_second_run_on_the_same_folder_is_refused(tmp_path, tiny):
    import fcntl

    cfg = _config(tmp_path, tiny("bert"))
    run = tmp_path / "run"
    run.mkdir()
    with (run / ".lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RunBusyError, match="another `redundancy run` is using"):
            run_job(load_config(cfg))
        assert main(["-q", "run", cfg, "--no-progress"]) == 2
    assert not (run / "stores").exists()


def test_rigour_nulls_intervals_and_selectivity(tmp_path, tiny, data_dir):
    """[rigour]: both null models beside the real sweep, intervals on the probe and pipeline scores,
    selectivity of the probes; all cached on a rerun."""
    rigour = [
        "[rigour]",
        'nulls = ["shuffled", "random-init"]',
        "bootstrap = 50",
        "selectivity = true",
        "general_groups = 4",
    ]
    cfg = _config(tmp_path, tiny("bert"), sections=rigour)
    # the general sweep with task accuracy, in the probe stage (the [probe] table is the last one)
    Path(cfg).write_text(
        Path(cfg)
        .read_text()
        .replace("random_draws = 1", "random_draws = 1\nsweep_thresholds = [0.25, 0.5, 0.6]")
    )
    run = tmp_path / "run"
    assert main(["-q", "run", cfg, "--no-progress", "--data-dir", str(data_dir)]) == 0
    general = json.loads((run / "general" / "sem" / "general.json").read_text())
    kinds = [n["kind"] for n in general["nulls"]]
    assert kinds == ["shuffled", "random-init"]
    assert general["intervals"]["n_groups"] == 4
    assert len(general["intervals"]["share_low"]) == len(general["sweep"])
    null_store = json.loads((run / "stores" / "sem-train.random-init" / "manifest.json").read_text())
    real_store = json.loads((run / "stores" / "sem-train" / "manifest.json").read_text())
    assert null_store["model"].endswith("+random-init-s0")
    assert null_store["weights_sha256"] != real_store["weights_sha256"]
    probe = json.loads((run / "probe" / "sem" / "probe.json").read_text())
    iv = probe["oracle"]["test_interval"]
    assert iv["n_boot"] == 50 and iv["low"] <= probe["oracle"]["test"]["accuracy"] <= iv["high"]
    sweep = probe["sweep"]  # 0.6 is not in the general sweep (step 0.25): skipped with a warning
    assert [r["threshold"] for r in sweep["rows"]] == [0.25, 0.5]
    for row in sweep["rows"]:
        point = next(p for p in general["sweep"] if p["threshold"] == row["threshold"])
        assert row["n_kept"] == point["n_clusters"] and row["share_interval"]["n_boot"] == 50
    assert (run / "probe" / "sem" / "sweep.png").is_file()
    names = {r["name"] for r in probe["selectivity"]["rows"]}
    assert {"oracle", "minimal", "layer-0"} <= names
    results = json.loads((run / "report" / "results.json").read_text())
    (summary,) = results["summary"]
    assert summary["pipeline"]["test_interval"]["n_boot"] == 50
    assert summary["pipeline"]["share_interval"]["estimate"] == pytest.approx(
        summary["pipeline"]["share_of_oracle"]
    )
    assert summary["selectivity"]["probes"]["oracle"]["control"] <= 1.0
    md = (run / "report" / "report.md").read_text()
    assert "Selectivity" in md and "bootstrap intervals" in md
    assert "Redundant without loss" in md and "| threshold t | neurons kept | redundant % |" in md
    assert summary["general"]["redundant_share_interval"]["n_boot"] == 4
    assert [r["threshold"] for r in summary["sweep"]["rows"]] == [0.25, 0.5]
    assert main(["-q", "run", cfg, "--no-progress", "--data-dir", str(data_dir)]) == 0
    again = _statuses(run)
    again.pop("all/report")
    assert set(again.values()) == {"cached"}

"""Run ``redundancy run`` (or a fine-tuning) in this process and SIGKILL it at a chosen moment.

``python _driver.py run|finetune ...`` runs one; ``python _driver.py serve`` (what
``test_kill_resume.py`` uses) imports the package once and runs each request in a forked child.
Nothing in the package knows about it. Every observable step of the work is an *event* with a key:

- ``progress|WHAT|DONE``: a progress call (finetune: ``step|N``, the optimizer step N of the whole
  recipe, counted across resumes);
- ``log|LOGGER|TEMPLATE|ARGS``: a record of the ``redundancy`` logger (its integer and string
  arguments, run folder as ``RUN``; floats such as times are left out);
- ``mv|PATH``: an ``os.replace``/``os.rename`` about to put something at PATH (relative to the
  run folder): every atomic commit of a file, a chunk's progress record, a folder replacement;
- ``rm|PATH``: an ``os.unlink``/``os.remove``/``shutil.rmtree`` about to remove PATH.

``--record FILE`` writes the uninterrupted run's events, each with the stage it happened in.
``--clean FILE --target T`` kills this process (SIGKILL, no clean-up of any kind) at the first event
that matches, in order, an event at position >= T of the recorded run: each event is matched to the
next recorded event with the same key after the last match, so the events of stages found in the
cache (absent from the recorded run) and those of a resumed stage line up with the recorded run.
Before dying it appends what it died at to ``--note FILE``.
"""

from __future__ import annotations

import argparse
import bisect
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from collections import defaultdict
from pathlib import Path


class Events:
    """Counts, records and matches events; kills the process at the target."""

    def __init__(self, out: Path, clean: list[list[str]] | None, target: int | None, note: Path | None):
        self.outs = sorted({str(out), str(out.resolve())}, key=len, reverse=True)
        self.out = str(out.resolve())
        self.lock = threading.RLock()
        self.recorded: list[list[str]] = []
        self.stage = "start"
        self.clean = clean
        self.target = target
        self.note = note
        self.pos = -1
        self.where: dict[str, list[int]] = defaultdict(list)
        for i, (key, _) in enumerate(clean or []):
            self.where[key].append(i)

    def _arg(self, value: object) -> str | None:
        if isinstance(value, bool) or isinstance(value, float):
            return None
        if isinstance(value, int):
            return str(value)
        if isinstance(value, str | os.PathLike):
            text = str(value)
            for out in self.outs:
                text = text.replace(out, "RUN")
            return text
        return None

    def log(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        if record.msg == "%s/%s: running" and len(args) == 2:
            self.stage = str(args[1])
        elif record.name.startswith("redundancy.report"):
            self.stage = "report"
        parts = [a for a in (self._arg(x) for x in args) if a is not None]
        self.event(f"log|{record.name}|{record.msg}|{'|'.join(parts)}")

    def moved(self, kind: str, dst: object) -> None:
        if isinstance(dst, int):  # a file descriptor (dir_fd calls)
            return
        path = os.path.realpath(os.fspath(dst))  # type: ignore[arg-type]
        rel = os.path.relpath(path, self.out) if path.startswith(self.out + os.sep) else path
        self.event(f"{kind}|{rel}", stage="report" if rel.startswith("report" + os.sep) else None)

    def event(self, key: str, stage: str | None = None) -> None:
        with self.lock:
            self.recorded.append([key, stage or self.stage])
            if self.clean is None or self.target is None:
                return
            at = self.where.get(key)
            if not at:
                return
            i = bisect.bisect_right(at, self.pos)
            if i == len(at):
                return
            self.pos = at[i]
            if self.pos >= self.target:
                self._die(key)

    def _die(self, key: str) -> None:
        assert self.clean is not None
        if self.note is not None:
            line = {"target": self.target, "at": self.pos, "key": key, "stage": self.clean[self.pos][1]}
            with open(self.note, "a") as f:
                f.write(json.dumps(line) + "\n")
                f.flush()
                os.fsync(f.fileno())
        os.kill(os.getpid(), signal.SIGKILL)


class _Handler(logging.Handler):
    def __init__(self, events: Events):
        super().__init__(logging.DEBUG)
        self.events = events

    def emit(self, record: logging.LogRecord) -> None:
        self.events.log(record)


def _hook(events: Events) -> None:
    """Every log record of ``redundancy``, every rename into place and every removal is an event."""
    root = logging.getLogger("redundancy")
    root.setLevel(logging.DEBUG)
    root.addHandler(_Handler(events))
    for name in ("replace", "rename"):
        original = getattr(os, name)

        def hooked(src, dst, *args, _original=original, **kwargs):
            events.moved("mv", dst)
            return _original(src, dst, *args, **kwargs)

        setattr(os, name, hooked)
    for module, name in ((os, "unlink"), (os, "remove"), (shutil, "rmtree")):
        original = getattr(module, name)

        def removing(path, *args, _original=original, **kwargs):
            if kwargs.get("dir_fd") is None:  # not the files rmtree removes one by one
                events.moved("rm", path)
            return _original(path, *args, **kwargs)

        setattr(module, name, removing)


def _run(a: argparse.Namespace, events: Events) -> None:
    from dataclasses import replace

    from redundancy.job import load_config, run_job

    def progress(what: str, done: int, total: int | None, unit: str = "step") -> None:
        events.event(f"progress|{what}|{done}")

    config = replace(load_config(a.config), data_dir=a.data_dir)
    run_job(config, progress=progress)


def _finetune(a: argparse.Namespace, events: Events) -> None:
    from redundancy.finetune import FinetuneConfig, finetune

    steps = {"base": 0, "n": 0}

    class Resumed(logging.Handler):  # the step a resumed call starts from
        def emit(self, record: logging.LogRecord) -> None:
            if record.msg.startswith("resuming %s at step"):
                steps["base"] = int(record.args[1])  # type: ignore[index]

    logging.getLogger("redundancy").addHandler(Resumed())

    def progress(what: str, done: int, total: int | None, unit: str = "step") -> None:
        if done > 0:
            steps["n"] += 1
            events.event(f"step|{steps['base'] + steps['n']}")

    config = FinetuneConfig(**json.loads(a.recipe))
    finetune(a.task, a.model, a.out, config, data_dir=a.data_dir, progress=progress)


def serve(timeout: float = 600.0) -> int:
    """``python _driver.py serve``: import the package once, then run each request in a forked child,
    so a chain of kills pays the start-up (~4 s of imports) once instead of once per kill.

    A request is one JSON line on stdin, ``{"argv": [...], "log": PATH}`` (the child's stdout and
    stderr go to PATH); the answer one JSON line on stdout, ``{"rc": ...}``: the child's exit
    status, minus the signal that ended it (-9: killed), as ``subprocess`` gives it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401 - the report's figures

    import redundancy.finetune  # noqa: F401
    import redundancy.job  # noqa: F401
    import redundancy.report  # noqa: F401

    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # stray prints of this process must not garble the answers
    while line := sys.stdin.readline():
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the child: one run, then out without the parent's clean-up
            code = 1
            try:
                fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                code = main(request["argv"])
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        deadline = time.monotonic() + timeout
        while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                done = os.waitpid(pid, 0)
                break
            time.sleep(0.05)
        answers.write(json.dumps({"rc": os.waitstatus_to_exitcode(done[1])}) + "\n")
        answers.flush()
    return 0


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=("run", "finetune"))
    p.add_argument("--out", type=Path, required=True, help="the run (or fine-tuning) folder")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--config", help="run: the job's TOML (its `out` must be --out)")
    p.add_argument("--task", help="finetune: the task")
    p.add_argument("--model", help="finetune: the base model")
    p.add_argument("--recipe", default="{}", help="finetune: FinetuneConfig fields as JSON")
    p.add_argument("--record", type=Path, help="write the events of this run here")
    p.add_argument("--clean", type=Path, help="the recorded events of an uninterrupted run")
    p.add_argument("--target", type=int, help="die at the first event at or after this position")
    p.add_argument("--note", type=Path, help="append what this process died at here")
    a = p.parse_args(argv)
    clean = json.loads(a.clean.read_text()) if a.clean else None
    events = Events(a.out, clean, a.target, a.note)
    _hook(events)
    (_run if a.mode == "run" else _finetune)(a, events)
    if a.record:
        a.record.write_text(json.dumps(events.recorded))
    return 0


if __name__ == "__main__":
    sys.exit(serve() if sys.argv[1:] == ["serve"] else main(sys.argv[1:]))

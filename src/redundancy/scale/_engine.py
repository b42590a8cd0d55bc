"""Engines that run pieces of work: in this process (:class:`LocalEngine`) or on a Ray cluster
(:class:`RayEngine`), behind one small interface.

* ``start()`` / ``stop()``, or ``with engine:``; ``n_workers``; ``release()`` stops the kept workers.
* ``map(fn, items, names=...) -> list``: stateless pieces, results in the order of ``items``.
* ``workers(setup, arg, cpus=..., gpus=...) -> pool``: stateful workers, each holding
  ``setup(arg)`` (a loaded model) for its life; ``pool.call(fn, item, name=...)`` runs
  ``fn(state, item)`` on one of them, ``pool.imap_unordered(fn, items, names=...)`` yields
  ``(index, result)`` as pieces finish, a bounded number in flight per worker.

A piece that fails is re-raised in the calling process as one :class:`ScaleError` naming it
(``extract pos/train chunk 3: RuntimeError: ...``), not a wall of worker traceback (kept in
``ScaleError.detail``, logged at DEBUG). On Ray, a worker process that dies is restarted
(``MAX_RESTARTS``) and its unfinished pieces run again (``MAX_RETRIES``). Ray is imported only
when a :class:`RayEngine` starts: the package and the local engine never need it.

>>> with LocalEngine() as engine:
...     engine.map(abs, [-2, 3])
[2, 3]
>>> EngineSettings(kind="spark")
Traceback (most recent call last):
...
ValueError: kind: must be one of local, ray, got 'spark'
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

KINDS = ("local", "ray")
MAX_RESTARTS = 3  # a Ray worker (actor) that dies is started again this often
MAX_RETRIES = 3  # a piece whose worker died is run again this often
IN_FLIGHT = 2  # pieces queued per worker: one running, one waiting, so no worker idles


class ScaleError(RuntimeError):
    """A piece of work failed on an engine, or the engine cannot run it: one line naming the piece
    and the cause. ``detail`` keeps the worker's full report (a Ray traceback) for debugging."""

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class EngineSettings:
    """Where the distributable stages run (a compute setting: in no cache key).

    Attributes
    ----------
    kind : ``"local"`` (this process, the default) or ``"ray"``.
    address : with ``ray``, the cluster to join (``HOST:6379``, or ``auto`` for the one this
        machine belongs to); None starts a local cluster in this process (or joins
        ``$RAY_ADDRESS`` when set, as ``ray.init`` does).
    num_cpus : with ``ray``, the CPUs of the local cluster started here, or the most CPUs this run
        uses of a joined cluster; None: all of them.
    """

    kind: str = "local"
    address: str | None = None
    num_cpus: int | None = None

    def __post_init__(self) -> None:
        def require(ok: bool, name: str, rule: str) -> None:
            if not ok:
                raise ValueError(f"{name}: {rule}, got {getattr(self, name)!r}")

        require(self.kind in KINDS, "kind", "must be one of " + ", ".join(KINDS))
        require(
            self.address is None or (isinstance(self.address, str) and self.address.strip() != ""),
            "address",
            "must be a cluster address such as HOST:6379",
        )
        require(self.address is None or self.kind == "ray", "address", 'is read only with kind = "ray"')
        n = self.num_cpus
        require(
            n is None or (isinstance(n, int) and not isinstance(n, bool) and n >= 1),
            "num_cpus",
            "must be an integer >= 1",
        )


def make_engine(settings: EngineSettings | None = None) -> LocalEngine | RayEngine:
    """The engine ``settings`` names (not started yet).

    >>> make_engine().kind, make_engine(EngineSettings(kind="ray")).kind
    ('local', 'ray')
    """
    settings = settings or EngineSettings()
    return RayEngine(settings) if settings.kind == "ray" else LocalEngine(settings)


def _names(names: Sequence[str] | None, n: int) -> list[str]:
    out = [f"item {i}" for i in range(n)] if names is None else list(names)
    if len(out) != n:
        raise ValueError(f"names: expected {n} names (one per item), got {len(out)}")
    return out


def _plain(text: str) -> str:
    """``text`` without terminal colour codes (Ray colours its reports)."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _one_line(text: str, limit: int = 400) -> str:
    text = " ".join(_plain(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _cause(err: BaseException) -> str:
    """``Type: message`` of an exception, on one line."""
    message = _one_line(str(err))
    return f"{type(err).__name__}: {message}" if message else type(err).__name__


# ------------------------------------------------------------------ local


class _LocalPool:
    """One worker in this process; ``setup(arg)`` runs at the first call."""

    n_workers = 1

    def __init__(self, setup: Callable[[Any], Any], arg: Any):
        self._setup, self._arg = setup, arg
        self._state: Any = None
        self._ready = False

    def _run(self, fn: Callable[[Any, Any], Any], item: Any, name: str) -> Any:
        if not self._ready:
            try:
                self._state = self._setup(self._arg)
            except Exception as err:
                raise ScaleError(f"{name}: the worker could not start: {_cause(err)}") from err
            self._ready = True
        try:
            return fn(self._state, item)
        except Exception as err:
            raise ScaleError(f"{name}: {_cause(err)}") from err

    def call(self, fn: Callable[[Any, Any], Any], item: Any, *, name: str = "call") -> Any:
        """``fn(state, item)`` on the worker."""
        return self._run(fn, item, name)

    def imap_unordered(
        self, fn: Callable[[Any, Any], Any], items: Sequence[Any], *, names: Sequence[str] | None = None
    ) -> Iterator[tuple[int, Any]]:
        """``(index, fn(state, item))`` for each item (here: in order)."""
        labels = _names(names, len(items))
        for i, item in enumerate(items):
            yield i, self._run(fn, item, labels[i])

    def close(self) -> None:
        self._state, self._ready = None, False


class LocalEngine:
    """Runs everything in this process, one piece after the other (the default engine)."""

    kind = "local"

    def __init__(self, settings: EngineSettings | None = None):
        self.settings = settings or EngineSettings()
        self._pool: tuple[Hashable, _LocalPool] | None = None
        self.running = False

    @property
    def n_workers(self) -> int:
        return 1

    def start(self) -> LocalEngine:
        self.running = True
        return self

    def release(self) -> None:
        """Close the kept worker pool (its model goes); the engine stays started."""
        if self._pool is not None:
            self._pool[1].close()
            self._pool = None

    def stop(self) -> None:
        self.release()
        self.running = False

    def __enter__(self) -> LocalEngine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def map(
        self, fn: Callable[[Any], Any], items: Sequence[Any], *, names: Sequence[str] | None = None
    ) -> list[Any]:
        """``[fn(item) for item in items]``; a failure is a :class:`ScaleError` naming the item."""
        labels = _names(names, len(items))
        out = []
        for item, name in zip(items, labels, strict=True):
            try:
                out.append(fn(item))
            except Exception as err:
                raise ScaleError(f"{name}: {_cause(err)}") from err
        return out

    def workers(self, setup: Callable[[Any], Any], arg: Any, *, cpus: int = 1, gpus: int = 0) -> _LocalPool:
        """One in-process worker holding ``setup(arg)``; kept (and reused) until another is asked
        for or the engine stops. ``cpus`` and ``gpus`` are Ray's business and ignored here."""
        key = (setup, arg)
        if self._pool is None or self._pool[0] != key:
            if self._pool is not None:
                self._pool[1].close()
            self._pool = (key, _LocalPool(setup, arg))
        return self._pool[1]


# ------------------------------------------------------------------ Ray


class _Host:
    """The Ray actor behind a worker: holds ``setup(arg)`` and runs ``fn(state, item)`` on it."""

    def __init__(self, setup: Callable[[Any], Any], arg: Any):
        self._state = setup(arg)

    def call(self, fn: Callable[[Any, Any], Any], item: Any) -> Any:
        return fn(self._state, item)


def _ray_error(name: str, err: BaseException) -> ScaleError:
    """One line for what Ray raised about piece ``name``: the worker's own exception (its type and
    message), or why the worker is gone."""
    from ray.exceptions import RayActorError, RayTaskError

    detail = _plain(str(err))
    if isinstance(err, RayTaskError):
        cause = getattr(err, "cause", None)
        why = _cause(cause) if isinstance(cause, BaseException) else _one_line(detail.splitlines()[-1])
    elif isinstance(err, RayActorError):
        last = next((ln for ln in reversed(detail.splitlines()) if ln.strip()), "")
        if getattr(err, "actor_init_failed", False):
            why = f"the worker could not start: {_one_line(last)}"
        else:
            why = f"the worker died ({_one_line(last)}) and was not brought back"
    else:
        why = _cause(err)
    logger.debug("%s failed on Ray:\n%s", name, detail)
    return ScaleError(f"{name}: {why}", detail=detail)


class _RayPool:
    """Ray actors, each holding ``setup(arg)``; restarted by Ray when they die."""

    def __init__(self, ray: Any, setup: Callable[[Any], Any], arg: Any, n: int, cpus: int, gpus: int):
        self._ray = ray
        host = ray.remote(_Host).options(
            num_cpus=cpus, num_gpus=gpus, max_restarts=MAX_RESTARTS, max_task_retries=MAX_RETRIES
        )
        self._actors = [host.remote(setup, arg) for _ in range(n)]
        self.broken = False

    @property
    def n_workers(self) -> int:
        return len(self._actors)

    def _get(self, ref: Any, name: str) -> Any:
        try:
            return self._ray.get(ref)
        except Exception as err:
            from ray.exceptions import RayTaskError

            if not isinstance(err, RayTaskError):  # the worker itself is gone, not just this piece
                self.broken = True
            raise _ray_error(name, err) from None

    def call(self, fn: Callable[[Any, Any], Any], item: Any, *, name: str = "call") -> Any:
        """``fn(state, item)`` on the first worker."""
        return self._get(self._actors[0].call.remote(fn, item), name)

    def imap_unordered(
        self, fn: Callable[[Any, Any], Any], items: Sequence[Any], *, names: Sequence[str] | None = None
    ) -> Iterator[tuple[int, Any]]:
        """``(index, fn(state, item))`` as pieces finish; each worker has at most ``IN_FLIGHT``
        pieces queued, so finished results never pile up faster than the caller takes them."""
        ray = self._ray
        labels = _names(names, len(items))
        load = [0] * len(self._actors)
        flying: dict[Any, tuple[int, int]] = {}
        nxt = 0
        try:
            while nxt < len(items) or flying:
                while nxt < len(items) and min(load) < IN_FLIGHT:
                    a = load.index(min(load))
                    flying[self._actors[a].call.remote(fn, items[nxt])] = (nxt, a)
                    load[a] += 1
                    nxt += 1
                [ref], _ = ray.wait(list(flying), num_returns=1)
                i, a = flying.pop(ref)
                load[a] -= 1
                yield i, self._get(ref, labels[i])
        except BaseException:
            self.broken = True  # stop what is still queued: the pool is closed, its pieces dropped
            self.close()
            for ref in flying:
                try:
                    ray.get(ref)
                except Exception:  # killed on purpose; fetched so Ray does not report it
                    pass
            raise

    def close(self) -> None:
        for actor in self._actors:
            try:
                self._ray.kill(actor)
            except Exception:  # already gone
                pass
        self._actors = []


class RayEngine:
    """Runs pieces on a Ray cluster: joins ``settings.address``, or starts a local cluster.

    ``stop()`` shuts Ray down only if ``start()`` initialised it; a process already connected
    (``ray.is_initialized()``, e.g. a test's cluster) is used and left as it was.
    """

    kind = "ray"

    def __init__(self, settings: EngineSettings | None = None):
        self.settings = settings or EngineSettings(kind="ray")
        self._ray: Any = None
        self._initialised_here = False
        self._pool: tuple[Hashable, _RayPool] | None = None

    @property
    def running(self) -> bool:
        return self._ray is not None

    def start(self) -> RayEngine:
        if self._ray is not None:
            return self
        try:
            import ray
        except ImportError:
            raise ScaleError(
                "the ray engine needs Ray, an optional extra: pip install 'redundancy[ray]'"
            ) from None
        if ray.is_initialized():
            logger.info("using the Ray cluster this process is connected to")
        else:
            kw: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": logging.WARNING,
            }
            address = self.settings.address
            try:
                if address is not None:
                    ray.init(address=address, **kw)
                else:
                    ray.init(num_cpus=self.settings.num_cpus, **kw)
            except (ConnectionError, RuntimeError, ValueError) as err:
                where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
                raise ScaleError(f"cannot start or join {where}: {_cause(err)}") from err
            self._initialised_here = True
        self._ray = ray
        res = ray.cluster_resources()
        logger.info(
            "Ray: %d CPU(s), %d GPU(s) in the cluster; this run uses %d worker CPU(s)",
            int(res.get("CPU", 0)),
            int(res.get("GPU", 0)),
            self.n_workers,
        )
        return self

    def release(self) -> None:
        """Stop the kept workers (their models and CPUs go back); the engine stays started."""
        if self._pool is not None:
            self._pool[1].close()
            self._pool = None

    def stop(self) -> None:
        self.release()
        if self._ray is not None and self._initialised_here:
            self._ray.shutdown()
        self._ray, self._initialised_here = None, False

    def __enter__(self) -> RayEngine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _require(self) -> Any:
        if self._ray is None:
            raise ScaleError("the Ray engine is not started; call start() or use it in a with block")
        return self._ray

    @property
    def n_workers(self) -> int:
        """The CPUs this run uses: ``num_cpus``, at most the cluster's."""
        ray = self._require()
        total = max(1, int(ray.cluster_resources().get("CPU", 1)))
        return min(total, self.settings.num_cpus or total)

    def gpus(self) -> int:
        """The GPUs of the cluster."""
        return int(self._require().cluster_resources().get("GPU", 0))

    def map(
        self, fn: Callable[[Any], Any], items: Sequence[Any], *, names: Sequence[str] | None = None
    ) -> list[Any]:
        """``[fn(item) for item in items]`` as Ray tasks (one CPU each, run again up to
        ``MAX_RETRIES`` times when their worker dies); results in order."""
        ray = self._require()
        labels = _names(names, len(items))
        task = ray.remote(fn).options(num_cpus=1, max_retries=MAX_RETRIES)
        refs = [task.remote(item) for item in items]
        out = []
        try:
            for ref, name in zip(refs, labels, strict=True):
                try:
                    out.append(ray.get(ref))
                except Exception as err:
                    raise _ray_error(name, err) from None
        except BaseException:
            for ref in refs[len(out) + 1 :]:
                try:
                    ray.cancel(ref)
                except Exception:  # finished already
                    pass
            raise
        return out

    def workers(self, setup: Callable[[Any], Any], arg: Any, *, cpus: int = 1, gpus: int = 0) -> _RayPool:
        """Ray actors holding ``setup(arg)``, each reserving ``cpus`` CPUs and ``gpus`` GPUs: one
        per GPU of the cluster with ``gpus``, else as many as ``n_workers // cpus``. The pool is
        kept (and reused for the same ``setup`` and ``arg``) until another is asked for, a piece
        fails, or the engine stops: one pool at a time, so two never wait on each other's CPUs."""
        ray = self._require()
        key = (setup, arg, cpus, gpus)
        if self._pool is not None and self._pool[0] == key and not self._pool[1].broken:
            return self._pool[1]
        if self._pool is not None:
            self._pool[1].close()
            self._pool = None
        if gpus:
            n = self.gpus() // gpus
            if n < 1:
                raise ScaleError(f"each worker needs {gpus} GPU(s) but the Ray cluster has {self.gpus()}")
        else:
            widest = max(
                (int(node["Resources"].get("CPU", 0)) for node in ray.nodes() if node.get("Alive")),
                default=0,
            )
            if cpus > widest:
                raise ScaleError(
                    f"each worker needs {cpus} CPU(s) (threads) but the largest node of the Ray "
                    f"cluster has {widest}; lower the threads"
                )
            n = max(1, self.n_workers // cpus)
        pool = _RayPool(ray, setup, arg, n, cpus, gpus)
        logger.info("Ray: %d worker(s), %d CPU(s) and %d GPU(s) each", n, cpus, gpus)
        self._pool = (key, pool)
        return pool

"""Running stages on an engine: in this process, or on a Ray cluster (``pip install '.[ray]'``).

See ``docs/scaling.md``. Ray is imported only when a Ray engine starts.

Public API
----------
EngineSettings(kind="local" | "ray", address=None, num_cpus=None)
    Where the distributable stages run; validated when built; a compute setting, in no cache key.
make_engine(settings) -> LocalEngine | RayEngine
    The engine of a setting. Both have ``start``/``stop`` (or ``with``), ``n_workers``,
    ``map(fn, items, names=...) -> list`` (ordered results) and ``workers(setup, arg, ...)``: a
    pool of stateful workers (one model each) with ``call`` and ``imap_unordered``, kept until
    ``release()``, another pool, or ``stop``.
LocalEngine, RayEngine
    This process; Ray tasks and actors (retried and restarted when a worker dies).
ScaleError
    A piece of work that failed on an engine, in one line naming it
    (``extract pos/train chunk 3: RuntimeError: ...``).
extract_on_engine(data, model, out, config, engine, random_init=None, overwrite=False, progress=None)
    Extraction whose chunks are computed by the engine's workers and committed here: the same
    store, byte for byte, as ``redundancy.extract.extract``, resumable chunk by chunk.
distributed_stats(store, n_blocks, shift=None, engine=None, batch_size=4096) -> NeuronStats
    The statistics pass as a tree reduction: row blocks accumulated by tasks around the local
    pass's shift (``pass_shift``), merged pairwise (``merge_tree``; ``merge_stream`` locally);
    equals ``redundancy.general.accumulate`` to 1e-12. ``row_blocks`` cuts the rows.
cross_blocks(store, out_dir, ranges=None, pairs=None, engine=None) -> CrossBlocks
    The ``N x N`` centred cross-products and correlations in blocks of neuron ranges
    (``layer_ranges``), one task per block, each written to ``.npy``; never assembled.
block_clusters(blocks, thresholds) -> BlockClusters
    Average-linkage flat clusters from the blocks, one component of the threshold graph
    (``threshold_components``) at a time: the whole matrix's clusters without its ``N x N``.
fit_family_on_engine(train, dev, probe, feature_ranges, engine=None, n_parts=2) -> probes
    A probe family cut into parts (``split_family``) trained as parallel tasks, each as a member of
    the whole family (``fit_probe_family(only=...)``); ``EngineFamily`` is the same as a
    ``fit_family`` for ``layer_probes`` / ``train_curves``; ``layer_probes_on_engine`` runs the
    layer experiments so.
"""

from ._engine import (
    KINDS,
    MAX_RESTARTS,
    MAX_RETRIES,
    EngineSettings,
    LocalEngine,
    RayEngine,
    ScaleError,
    make_engine,
)
from ._extract import extract_on_engine
from ._probes import EngineFamily, fit_family_on_engine, layer_probes_on_engine, split_family
from ._stats import (
    BlockClusters,
    CrossBlocks,
    block_clusters,
    cross_blocks,
    distributed_stats,
    layer_ranges,
    merge_stream,
    merge_tree,
    pass_shift,
    row_blocks,
    threshold_components,
)

__all__ = [
    "KINDS",
    "MAX_RESTARTS",
    "MAX_RETRIES",
    "EngineSettings",
    "LocalEngine",
    "RayEngine",
    "ScaleError",
    "extract_on_engine",
    "make_engine",
    "BlockClusters",
    "CrossBlocks",
    "EngineFamily",
    "block_clusters",
    "cross_blocks",
    "distributed_stats",
    "fit_family_on_engine",
    "layer_probes_on_engine",
    "layer_ranges",
    "merge_stream",
    "merge_tree",
    "pass_shift",
    "row_blocks",
    "split_family",
    "threshold_components",
]

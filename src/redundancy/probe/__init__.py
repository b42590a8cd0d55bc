"""Linear probes on stored activations, and task-specific redundancy.

Public API
----------
ElasticNetProbe(l1=1e-5, l2=1e-5, solver="fast" | "paper", ...)
    scikit-learn-style probe: ``fit(X, y, X_dev=None, y_dev=None)``, ``coef_``, ``intercept_``,
    ``classes_``, ``scaled_coef_``, ``predict``, ``predict_proba``, ``decision_function``, ``score``.
fit_probe_family(probe, X, y, feature_ranges, X_dev, y_dev, progress=None, what="probes", checkpoint=None)
    Many probes over column ranges of one matrix; the fast solver trains them in one pass.
FamilyCheckpoint(folder, scope)
    Finished probe families saved as they finish (``ProbeTask.checkpoint``): a killed probe stage
    resumes with them.
sklearn_equivalent(l1, l2, n_samples, task)
    scikit-learn's ``C``/``alpha`` and ``l1_ratio`` for the fast solver's penalty.
default_lr(n_features)
    The fast solver's default step size, ``0.15 / sqrt(n_features)`` clipped to [1e-3, 3e-2].
train_probe(train, dev, test=None, neurons=None, layers=None, probe=None)
    One probe on store selections, scored on dev/test (``ProbeResult``).
load_probe_task, ProbeTask
    Train/dev/test stores opened, labels mapped by name, activations loaded once (a float32 split
    with every item labelled is a read-only view of its store's memory map, not a copy).
select_columns(X, neurons)
    ``X[:, neurons]`` for the probes: a view for a contiguous range, else a row-major float32 copy.
layer_probes, oracle_probe, minimal_neuron_set, neuron_controls, train_neuron_sets, train_curves,
baseline_score
    The experiments; ``run_task_redundancy`` runs them all (``TaskRedundancyResult``;
    ``incremental_file`` names the incremental probes it can save).
sweep_accuracy, SweepAccuracy, SweepRow, SWEEP_THRESHOLDS, SWEEP_TOLERANCES
    The general sweep with task accuracy: a probe on every threshold's cluster representatives of all
    neurons against the oracle; the largest redundant share within 1 % / 2 % of the oracle.
control_task, item_words, selectivity, SelectivityResult, SelectivityRow, CONTROL_METRIC
    Selectivity (Hewitt & Liang 2019): the control task (a fixed random label per word type), the
    probes trained on it, task accuracy minus control accuracy.
split_replicates, split_interval, ratio_interval
    Bootstrap over test sentences (``ProbeTask.bootstrap``): a score's replicates, its interval, the
    interval of a ratio of two scores from paired replicates.
neuron_rankings, path_ranking, probeless_order, class_means, PathSettings
    The rankings compared on dev (paper, group-lasso and L1 path entry orders, NeuroX's
    probeless), computed on train; ``ablated_scores`` ablates columns offline in a probe.
score, score_all, default_metric
    Metrics from scikit-learn / seqeval / scipy.
ProbeResult, MinimalSetResult, CurveResult, SeedSpread, ControlsResult, TaskRedundancyResult, SplitInfo
    Frozen results with ``to_dict`` / ``from_dict``.
plot_layers, plot_sizes, plot_rankings, plot_sweep
    Figures.
save_probe, load_probe
    A fitted probe in one safetensors file (parameters in its metadata; no pickle).

Progress is reported as :class:`redundancy._progress.Progress`: ``progress(what, done, total)``
with cumulative ``done``, ``what`` naming the experiment (``"layers"``, ``"minimal set"``, ...).

Modules: ``_task`` (loading), ``_evaluate`` (scoring), ``_experiments`` (the experiments),
``_redundancy`` (the stage runner), ``_single`` (one probe on store selections), ``_estimator`` /
``_fast`` / ``_paper`` (the probe and its solvers).
"""

from ._checkpoint import FamilyCheckpoint
from ._compare import choose_ranking, ranking_controls, top_curves
from ._data import LabelMap, ProbeSplit, SplitInfo, load_split
from ._estimator import SOLVERS, ElasticNetProbe, default_lr, fit_probe_family, sklearn_equivalent
from ._evaluate import baseline_score, evaluate_probe, ratio_interval, split_interval, split_replicates
from ._experiments import (
    LayerProbes,
    layer_probes,
    minimal_neuron_set,
    neuron_controls,
    oracle_probe,
    train_curves,
    train_neuron_sets,
)
from ._io import load_probe, save_probe
from ._metrics import METRICS, default_metric, score, score_all
from ._plots import plot_layers, plot_rankings, plot_sizes, plot_sweep
from ._rankings import (
    PathSettings,
    ablated_scores,
    class_means,
    neuron_rankings,
    path_ranking,
    probeless_order,
)
from ._redundancy import incremental_file, run_task_redundancy
from ._results import (
    SWEEP_TOLERANCES,
    ControlsResult,
    CurveResult,
    MinimalSetResult,
    ProbeResult,
    RankingControls,
    SeedSpread,
    SelectivityResult,
    SelectivityRow,
    SweepAccuracy,
    SweepRow,
    TaskRedundancyResult,
)
from ._selectivity import CONTROL_METRIC, control_task, item_words, selectivity
from ._single import train_probe
from ._sweep import SWEEP_THRESHOLDS, sweep_accuracy
from ._task import ProbeTask, load_probe_task, select_columns

__all__ = [
    "METRICS",
    "SOLVERS",
    "SWEEP_THRESHOLDS",
    "SWEEP_TOLERANCES",
    "SweepAccuracy",
    "SweepRow",
    "sweep_accuracy",
    "plot_sweep",
    "ControlsResult",
    "CurveResult",
    "ElasticNetProbe",
    "LabelMap",
    "LayerProbes",
    "MinimalSetResult",
    "ProbeResult",
    "ProbeSplit",
    "ProbeTask",
    "SeedSpread",
    "SplitInfo",
    "TaskRedundancyResult",
    "baseline_score",
    "default_lr",
    "default_metric",
    "evaluate_probe",
    "ratio_interval",
    "CONTROL_METRIC",
    "SelectivityResult",
    "SelectivityRow",
    "control_task",
    "item_words",
    "selectivity",
    "split_interval",
    "split_replicates",
    "fit_probe_family",
    "FamilyCheckpoint",
    "layer_probes",
    "load_probe_task",
    "load_split",
    "minimal_neuron_set",
    "neuron_controls",
    "oracle_probe",
    "plot_layers",
    "plot_rankings",
    "plot_sizes",
    "incremental_file",
    "run_task_redundancy",
    "PathSettings",
    "load_probe",
    "save_probe",
    "choose_ranking",
    "ranking_controls",
    "top_curves",
    "RankingControls",
    "ablated_scores",
    "class_means",
    "neuron_rankings",
    "path_ranking",
    "probeless_order",
    "select_columns",
    "score",
    "score_all",
    "sklearn_equivalent",
    "train_curves",
    "train_neuron_sets",
    "train_probe",
]

"""The selection-side estimators are scikit-learn estimators: parameters, set_params and clone."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone

from redundancy.general import CorrelationClusterer
from redundancy.select import LayerSelector


@pytest.mark.parametrize(
    "estimator, changed",
    [
        (LayerSelector(delta=2.0), {"delta": 1.0}),
        (CorrelationClusterer(0.4, representative="central", random_state=3), {"threshold": 0.2}),
    ],
)
def test_clone_round_trips_the_parameters(estimator, changed):
    assert isinstance(estimator, BaseEstimator)
    copy = clone(estimator)
    assert type(copy) is type(estimator) and copy is not estimator
    assert copy.get_params() == estimator.get_params()
    copy.set_params(**changed)
    assert copy.get_params() == {**estimator.get_params(), **changed}
    assert clone(copy).get_params() == copy.get_params()
    with pytest.raises(ValueError):
        copy.set_params(no_such_parameter=1)


def test_clone_drops_the_fitted_state_and_refits_the_same():
    sel = LayerSelector(delta=3.0).fit([0.80, 0.93, 0.96, 0.97], oracle_score=0.97)
    fresh = clone(sel)
    assert not hasattr(fresh, "selected_layer_")
    assert fresh.fit([0.80, 0.93, 0.96, 0.97], 0.97).selected_layer_ == sel.selected_layer_ == 2

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    corr = np.corrcoef(np.column_stack([x, x[:, 0] * 2 + 0.01 * rng.normal(size=200)]).T)
    cc = CorrelationClusterer(threshold=0.3, random_state=5).fit(corr)
    again = clone(cc)
    assert not hasattr(again, "labels_")
    again.fit(corr)
    np.testing.assert_array_equal(again.labels_, cc.labels_)
    np.testing.assert_array_equal(again.representatives_, cc.representatives_)

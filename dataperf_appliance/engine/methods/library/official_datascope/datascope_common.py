"""Helpers shared by the two datascope appraisers of this folder (`neighbor_shapley`, `mc_shapley`).

Not an appraiser itself: it defines no class with ``fit`` and ``propose``.
The appliance puts this folder on the method's ``sys.path``, so the appraiser
files import it by name.

- `read_parameter`: a parameter's value, ``DATAPERF_PARAM_<NAME>`` overriding
  the constructor's.
- `repeat_seed`: the repeat's seed (``DATAPERF_SEED``).
- `xgboost_accuracy_utility`: the utility of DataPerf's datascope baselines,
  the validation accuracy of an XGBoost classifier in a scikit-learn pipeline.
- `labels_1d`, `ascending_order`: the (N, 1) labels as (N,), values to an
  inspection order (ties as DataPerf's code leaves them).
"""


import numpy as np
from method_parameters import read_parameter, repeat_seed  # noqa: F401 (re-exported)



def xgboost_accuracy_utility():
    """datascope's SklearnModelAccuracy of a pipeline holding xgboost.XGBClassifier(eval_metric="logloss").

    DataPerf's baselines use this utility. datascope clones the pipeline
    before every fit, so the object can be shared. The returned object also
    counts its calls (`calls`): one per model trained on a coalition.
    """
    import xgboost
    from datascope.importance.common import SklearnModelAccuracy
    from sklearn.pipeline import make_pipeline

    class CountingModelAccuracy(SklearnModelAccuracy):
        calls = 0

        def __call__(self, *args, **kwargs):
            self.calls += 1
            return super().__call__(*args, **kwargs)

    return CountingModelAccuracy(make_pipeline(xgboost.XGBClassifier(eval_metric="logloss")))


def labels_1d(labels):
    """DataPerf passes labels as an (N, 1) column; datascope compares them elementwise and needs (N,)."""
    return np.asarray(labels).reshape(-1)


def ascending_order(values):
    """Row indices by ascending value, ties left in the order numpy's default sort gives them.

    The lowest value is inspected first. DataPerf's code sorts datascope's
    float64 values with ``argsort()``, numpy's default (unstable) sort, and
    so does this: with many tied values (Monte Carlo values of rows that
    every permutation truncated are all 0) the proposed order is DataPerf's
    on the same numpy and processor.
    """
    return np.asarray(values, dtype=np.float64).argsort().astype(np.int64)

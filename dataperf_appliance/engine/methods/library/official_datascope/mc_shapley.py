"""mc_shapley: DataPerf's baseline, truncated Monte Carlo Shapley values of XGBoost accuracy (datascope 0.0.8).

The method: the Shapley value of each training row in the game whose
utility is the validation accuracy of an XGBoost classifier trained on a
coalition, estimated by Monte Carlo over random permutations (Ghorbani and
Zou 2019, "Data Shapley"). Each permutation adds rows one by one and credits
each row with the change in accuracy it brings; a permutation stops early
once the accuracy has stayed within `mc_tolerance` (relative) of the mean
accuracy of the full training set for more than `mc_truncation_steps`
additions in a row, and the rows after that get 0. A fit that fails or
warns (XGBoost rejects a subset whose only label is 1) scores as the null
score, the accuracy of always answering the class that scores worse. The
value of a row is its mean credit over the permutations. Rows are proposed
by ascending value, ties in the order of numpy's default sort, as DataPerf's
code leaves them (rows that every permutation truncated all tie at 0).

Library: datascope 0.0.8 (the version DataPerf's debugging evaluator pins),
``ShapleyImportance(method=ImportanceMethod.MONTECARLO, utility=...,
mc_iterations=...)`` with the utility of DataPerf's baselines:
``SklearnModelAccuracy`` of a scikit-learn pipeline holding
``xgboost.XGBClassifier(eval_metric="logloss")``.

Parameters (constructor defaults; ``DATAPERF_PARAM_<NAME>`` overrides each):
    mc_iterations (int, 100): permutations, as DataPerf's baseline runs it
        (datascope's own default is 500).
    permutation_seed (int, -1): the seed of the permutations; -1 takes the
        repeat's seed (``DATAPERF_SEED``). DataPerf's baseline leaves
        datascope's fixed default, 7: set 7 to reproduce its numbers.
    mc_tolerance (float, 0.1) and mc_truncation_steps (int, 5): the
        truncation rule above, datascope's defaults as DataPerf uses them.
    mc_timeout (int, 0): seconds after which no further permutation starts
        (0: no limit); the values average the permutations done.

After `fit`, ``stopped_at`` says how far it went: the permutations done,
the models trained and their mean number per permutation (truncation makes
it smaller than the number of rows).

Environment: ``requirements.txt`` beside this file, with the build
constraints of ``build-constraints.txt``.
"""

import numpy as np
from appraiser import Appraiser
from datascope_common import ascending_order, labels_1d, read_parameter, repeat_seed, xgboost_accuracy_utility


class CountingRandomState(np.random.RandomState):
    """A RandomState that counts the permutations drawn: datascope draws one per Monte Carlo iteration."""

    permutations = 0

    def permutation(self, x):
        self.permutations += 1
        return super().permutation(x)


class MonteCarloShapleyAppraiser(Appraiser):
    """DataPerf's mc_shapley baseline through datascope 0.0.8."""

    name = "mc_shapley"

    def __init__(self, mc_iterations=100, permutation_seed=-1, mc_tolerance=0.1, mc_truncation_steps=5,
                 mc_timeout=0):
        super().__init__()
        self.mc_iterations = read_parameter("mc_iterations", mc_iterations)
        self.permutation_seed = read_parameter("permutation_seed", permutation_seed)
        self.mc_tolerance = read_parameter("mc_tolerance", mc_tolerance)
        self.mc_truncation_steps = read_parameter("mc_truncation_steps", mc_truncation_steps)
        self.mc_timeout = read_parameter("mc_timeout", mc_timeout)
        if self.mc_iterations < 1:
            raise ValueError(f"mc_iterations must be at least 1; got {self.mc_iterations}")
        self.values = None
        self.order = None
        self.stopped_at = None

    def fit(self, train_X, train_y, val_X, val_y):
        from datascope.importance.shapley import ImportanceMethod, ShapleyImportance

        seed = repeat_seed() if self.permutation_seed == -1 else self.permutation_seed
        utility = xgboost_accuracy_utility()
        importance = ShapleyImportance(
            method=ImportanceMethod.MONTECARLO,
            utility=utility,
            mc_iterations=self.mc_iterations,
            mc_tolerance=self.mc_tolerance,
            mc_truncation_steps=self.mc_truncation_steps,
            mc_timeout=self.mc_timeout,
            seed=seed % 2**32,
        )
        # Same stream as datascope's own RandomState(seed); counting it tells how many permutations ran.
        importance.randomstate = CountingRandomState(seed % 2**32)
        self.values = importance.fit(train_X, labels_1d(train_y)).score(val_X, labels_1d(val_y))
        self.order = ascending_order(self.values)
        permutations = importance.randomstate.permutations
        self.stopped_at = {
            "permutations": permutations,
            "of": self.mc_iterations,
            "models_trained": utility.calls,
            "models_per_permutation": round(utility.calls / max(permutations, 1), 1),
            "rows": int(len(train_X)),
        }

    def propose(self, budget):
        return self.order[:budget].tolist()

"""data_oob: Data-OOB values (Kwon and Zou 2023, "Data-OOB: out-of-bag estimate as a simple and efficient data value"), with pyDVL 0.10.0.

The method: train a random forest on the training rows; each tree sees a
bootstrap sample of them. A row's value is the share of the trees that did
not see it (its out-of-bag trees) that predict its given label. A
mislabeled row disagrees with the trees that learned from its neighbours,
so its value is low. One forest in all, and the validation set plays no
part. Rows are proposed by ascending value, ties by row index.

Library: pyDVL 0.10.0, ``DataOOBValuation`` of a fitted scikit-learn
``RandomForestClassifier`` (the authors' model), seeded by the repeat's
seed.

Parameters (constructor defaults; ``DATAPERF_PARAM_<NAME>`` overrides each):
    n_estimators (int, 800): trees, the authors' number (each row is out of
        the bag of about 37% of them).
    max_features (str, "sqrt"): features tried at each split, scikit-learn's
        default for classification.
    n_jobs (int, 1): the forest's training threads.

Environment: ``requirements.txt`` beside this file (scikit-learn below 1.8:
pyDVL 0.10.0 calls a private scikit-learn function whose arguments 1.9
changed).
"""

from appraiser import Appraiser
from pydvl_common import (ascending_order, labels_1d, make_datasets, read_parameter, repeat_seed,
                          require_positive, values_by_row)


class DataOOBAppraiser(Appraiser):
    """Data-OOB values of a random forest (pyDVL)."""

    name = "data_oob"

    def __init__(self, n_estimators=800, max_features="sqrt", n_jobs=1):
        super().__init__()
        self.n_estimators = read_parameter("n_estimators", n_estimators)
        self.max_features = read_parameter("max_features", max_features)
        self.n_jobs = read_parameter("n_jobs", n_jobs)
        require_positive(self, "n_estimators", "n_jobs")
        self.values = None
        self.order = None

    def fit(self, train_X, train_y, val_X, val_y):
        from pydvl.valuation.methods import DataOOBValuation
        from sklearn.ensemble import RandomForestClassifier

        training, _ = make_datasets(train_X, train_y, val_X, val_y)
        forest = RandomForestClassifier(n_estimators=self.n_estimators, max_features=self.max_features,
                                        n_jobs=self.n_jobs, random_state=repeat_seed())
        forest.fit(train_X, labels_1d(train_y))
        valuation = DataOOBValuation(forest).fit(training)
        self.values = values_by_row(valuation.result, len(train_X))
        self.order = ascending_order(self.values)

    def propose(self, budget):
        return self.order[:budget].tolist()

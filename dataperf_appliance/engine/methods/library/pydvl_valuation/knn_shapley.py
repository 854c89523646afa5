"""knn_shapley: exact K-nearest-neighbour Shapley values (Jia et al. 2019), with pyDVL 0.10.0.

The method: every training row gets the exact Shapley value of the game in
which a subset of the training rows classifies each validation point by its
K nearest members (Euclidean distance), the utility being the share of those
K whose label is the validation point's. A closed form gives it in
O(n log n) per validation point; the value is the mean over the validation
points. A row whose label disagrees with the validation points near it has
a low (often negative) value. Rows are proposed by ascending value, ties by
row index. DataPerf's neighbor_shapley is the same game with K = 1.

Library: pyDVL 0.10.0, ``KNNShapleyValuation`` of a scikit-learn
``KNeighborsClassifier(n_neighbors=k)``. Exact and deterministic: the seed
plays no part (two training rows at the same distance from a validation
point are ranked as scikit-learn's neighbour search returns them).

Parameters (constructor defaults; ``DATAPERF_PARAM_<NAME>`` overrides each):
    k (int, 10): the neighbours of the utility, as the appliance's own
        ``knn_shapley`` strategy.
    n_jobs (int, 1): joblib workers, each taking a share of the validation
        points.

Environment: ``requirements.txt`` beside this file.
"""

from appraiser import Appraiser
from pydvl_common import ascending_order, fit_valuation, make_datasets, read_parameter, require_positive, values_by_row


class KNNShapleyAppraiser(Appraiser):
    """Exact KNN-Shapley values (pyDVL)."""

    name = "knn_shapley"

    def __init__(self, k=10, n_jobs=1):
        super().__init__()
        self.k = read_parameter("k", k)
        self.n_jobs = read_parameter("n_jobs", n_jobs)
        require_positive(self, "k", "n_jobs")
        self.values = None
        self.order = None

    def fit(self, train_X, train_y, val_X, val_y):
        from pydvl.valuation.methods import KNNShapleyValuation
        from sklearn.neighbors import KNeighborsClassifier

        training, validation = make_datasets(train_X, train_y, val_X, val_y)
        valuation = KNNShapleyValuation(KNeighborsClassifier(n_neighbors=self.k), test_data=validation,
                                        progress=False)
        fit_valuation(valuation, training, self.n_jobs)
        self.values = values_by_row(valuation.result, len(train_X))
        self.order = ascending_order(self.values)

    def propose(self, budget):
        return self.order[:budget].tolist()

"""neighbor_shapley: DataPerf's baseline, the exact 1-nearest-neighbour Shapley value (datascope 0.0.8).

The method: every training row gets the Shapley value of the game in which
a coalition of training rows classifies each validation point by the label
of its nearest member (Euclidean distance), scored by whether that label is
right (Jia et al. 2019, "Efficient task-specific data valuation for nearest
neighbor algorithms", with K = 1). The value is the mean over the validation
points; a row whose label disagrees with the validation points it is nearest
to gets a low value. Rows are proposed by ascending value, ties in the
order of numpy's default sort, as DataPerf's code leaves them.

Library: datascope 0.0.8 (the version DataPerf's debugging evaluator pins),
``ShapleyImportance(method=ImportanceMethod.NEIGHBOR, utility=...)`` with
the utility of DataPerf's baselines: ``SklearnModelAccuracy`` of a
scikit-learn pipeline holding ``xgboost.XGBClassifier(eval_metric="logloss")``.
The neighbour method reads only the utility's elementwise part (1 where a
training label equals a validation label) and its null score (the accuracy
of always answering the class that scores worse), so XGBoost is never
trained. Exact and deterministic: the seed plays no part.

Parameters: none.

Environment: ``requirements.txt`` beside this file, with the build
constraints of ``build-constraints.txt`` (datascope ships only a source
distribution; its Cython extension needs numpy < 2 headers).
"""

from appraiser import Appraiser
from datascope_common import ascending_order, labels_1d, xgboost_accuracy_utility


class NeighborShapleyAppraiser(Appraiser):
    """DataPerf's neighbor_shapley baseline through datascope 0.0.8."""

    name = "neighbor_shapley"

    def __init__(self):
        super().__init__()
        self.values = None
        self.order = None

    def fit(self, train_X, train_y, val_X, val_y):
        from datascope.importance.shapley import ImportanceMethod, ShapleyImportance

        importance = ShapleyImportance(method=ImportanceMethod.NEIGHBOR, utility=xgboost_accuracy_utility())
        self.values = importance.fit(train_X, labels_1d(train_y)).score(val_X, labels_1d(val_y))
        self.order = ascending_order(self.values)

    def propose(self, budget):
        return self.order[:budget].tolist()

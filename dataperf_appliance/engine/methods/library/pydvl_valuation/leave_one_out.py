"""leave_one_out: leave-one-out values (the validation accuracy lost without a row), with pyDVL 0.10.0.

The method: a model is trained on all training rows and once more without
each row; a row's value is the validation accuracy on all rows minus the
accuracy without it. A row whose removal raises the accuracy has a negative
value. One model per row plus one: exact and cheap, but blind to rows whose
effect others mask, and on a small validation set many rows change no
prediction and tie at 0. Rows are proposed by ascending value, ties by row
index.

Library: pyDVL 0.10.0, ``LOOValuation``; utility: ``ModelUtility`` of the
validation accuracy of logistic regression, or of the constant label on a
one-label subset (``pydvl_common``). Deterministic: the seed plays no part.

Parameters (constructor defaults; ``DATAPERF_PARAM_<NAME>`` overrides each):
    n_jobs (int, 1): joblib workers.
    C (float, 1.0): the logistic regression's inverse regularisation.

Environment: ``requirements.txt`` beside this file.
"""

from appraiser import Appraiser
from pydvl_common import (ascending_order, fit_valuation, make_datasets, make_utility, read_parameter,
                          require_positive, values_by_row)


class LeaveOneOutAppraiser(Appraiser):
    """Leave-one-out values of logistic regression's validation accuracy (pyDVL)."""

    name = "leave_one_out"

    def __init__(self, n_jobs=1, C=1.0):
        super().__init__()
        self.n_jobs = read_parameter("n_jobs", n_jobs)
        self.C = read_parameter("C", C)
        require_positive(self, "n_jobs")
        self.values = None
        self.order = None

    def fit(self, train_X, train_y, val_X, val_y):
        from pydvl.valuation.methods import LOOValuation

        training, validation = make_datasets(train_X, train_y, val_X, val_y)
        valuation = LOOValuation(make_utility(validation, self.C), progress=False)
        fit_valuation(valuation, training, self.n_jobs)
        self.values = values_by_row(valuation.result, len(train_X))
        self.order = ascending_order(self.values)

    def propose(self, budget):
        return self.order[:budget].tolist()

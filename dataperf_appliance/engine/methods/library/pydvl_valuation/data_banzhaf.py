"""data_banzhaf: Data Banzhaf values by Maximum Sample Reuse (Wang and Jia 2023, "Data Banzhaf"), with pyDVL 0.10.0.

The method: the Banzhaf value of each training row in the game whose
utility is the validation accuracy of a model trained on a subset of the
rows: the mean, over all subsets of the other rows alike, of the change in
accuracy the row brings. Maximum Sample Reuse estimates it from uniformly
random subsets, one model each: a row's value is the mean accuracy of the
sampled subsets that hold it minus the mean accuracy of those that do not,
so every model informs every row. The authors show the Banzhaf value to be
the most robust semi-value to a noisy utility (a model's accuracy varies
with its training run). Rows are proposed by ascending value, ties by row
index.

Library: pyDVL 0.10.0, ``MSRBanzhafValuation``; utility: ``ModelUtility`` of
the validation accuracy of logistic regression, or of the constant label on
a one-label subset (``pydvl_common``). Subsets are drawn from the repeat's
seed.

Parameters (constructor defaults; ``DATAPERF_PARAM_<NAME>`` overrides each):
    max_samples (int, 1000): the subsets to draw, one model each (17 ms
        each for 200 rows of 256 features, 28 ms of 2048, much of it pyDVL's
        bookkeeping of the 200 updates a subset gives).
    batch_size (int, 10): subsets per batch; the stopping criteria are
        checked after each batch, and a joblib worker takes a batch at a time.
    max_seconds (float, 0.0): stop after this many seconds (0: no limit).
    n_jobs (int, 1): joblib workers. On 2 cores 2 workers took 63 s against
        23 s on 200 x 256: joblib sends batches ahead, and those run on after
        the stop (``stopped_at`` then counts them too).
    C (float, 1.0): the logistic regression's inverse regularisation.

After `fit`, ``stopped_at`` is ``{"stopped_by": [...], "subsets": k,
"seconds": s}``: what stopped it (``max_samples`` or ``max_seconds``) and
how many subsets it drew. pyDVL 0.10.0's ``RankCorrelation`` is left out: as
soon as some rows but not all are past its burn-in (as happens with MSR's
uneven counts) it fails with an IndexError.

Environment: ``requirements.txt`` beside this file.
"""

from appraiser import Appraiser
from pydvl_common import (ascending_order, fit_valuation, make_datasets, make_utility, stopping_rule,
                          read_parameter, repeat_seed, require_positive, stopping_report, values_by_row)


class DataBanzhafAppraiser(Appraiser):
    """Data Banzhaf (MSR) values of logistic regression's validation accuracy (pyDVL)."""

    name = "data_banzhaf"

    def __init__(self, max_samples=1000, batch_size=10, max_seconds=0.0, n_jobs=1, C=1.0):
        super().__init__()
        self.max_samples = read_parameter("max_samples", max_samples)
        self.batch_size = read_parameter("batch_size", batch_size)
        self.max_seconds = read_parameter("max_seconds", max_seconds)
        self.n_jobs = read_parameter("n_jobs", n_jobs)
        self.C = read_parameter("C", C)
        require_positive(self, "max_samples", "batch_size", "n_jobs")
        self.values = None
        self.order = None
        self.stopped_at = None

    def fit(self, train_X, train_y, val_X, val_y):
        from pydvl.valuation.methods import MSRBanzhafValuation
        from pydvl.valuation.stopping import MaxChecks

        training, validation = make_datasets(train_X, train_y, val_X, val_y)
        # A check follows each batch: the cap on checks is the cap on subsets over the batch size.
        criteria, stopping = stopping_rule("max_samples", MaxChecks(-(-self.max_samples // self.batch_size)),
                                           self.max_seconds)
        valuation = MSRBanzhafValuation(make_utility(validation, self.C), is_done=stopping,
                                        batch_size=self.batch_size, seed=repeat_seed(), show_warnings=False,
                                        progress=False)
        seconds = fit_valuation(valuation, training, self.n_jobs)
        self.values = values_by_row(valuation.result, len(train_X))
        self.order = ascending_order(self.values)
        self.stopped_at = stopping_report(criteria, valuation.sampler.n_samples, seconds, "subsets")

    def propose(self, budget):
        return self.order[:budget].tolist()

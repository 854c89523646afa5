"""tmc_shapley: Truncated Monte Carlo Shapley values (Ghorbani and Zou 2019, "Data Shapley"), with pyDVL 0.10.0.

The method: the Shapley value of each training row in the game whose
utility is the validation accuracy of a model trained on a subset of the
rows, estimated from random permutations. Each permutation adds the rows
one by one and credits each with the change in accuracy it brings; past the
first `burn_in_fraction` of the permutation, once the accuracy comes within
`truncation_rtol` (relative) of the accuracy on all rows, the rest of the
permutation is credited 0 without training. A row's value is its mean
credit. Rows are proposed by ascending value (the most harmful first), ties
by row index.

Library: pyDVL 0.10.0, ``TMCShapleyValuation`` (a ``PermutationSampler``
with ``RelativeTruncation``), utility: ``ModelUtility`` of the validation
accuracy of logistic regression, or of the constant label on a one-label
subset (``pydvl_common``). Permutations are drawn from the repeat's seed.

Parameters (constructor defaults; ``DATAPERF_PARAM_<NAME>`` overrides each):
    max_permutations (int, 50): the permutations to draw. Each costs up to
        one model per row (with the truncation about 0.2 s for 200 rows of
        256 features, 0.5 s of 2048).
    truncation_rtol (float, 0.05): the truncation's relative tolerance
        (pyDVL's default 0.01 asks for the exact accuracy of all rows on a
        validation set of 100 rows).
    burn_in_fraction (float, 0.4): the share of a permutation before
        truncation may start (pyDVL's default).
    max_seconds (float, 0.0): stop after this many seconds (0: no limit).
    n_jobs (int, 1): joblib workers, one permutation each at a time. On 2
        cores 2 workers were slower than one (20 s against 12 s for TMC on
        200 x 256): starting them and sending them the data costs more than
        it saves at this size.
    C (float, 1.0): the logistic regression's inverse regularisation.

After `fit`, ``stopped_at`` is ``{"stopped_by": [...], "permutations": k,
"seconds": s}``: what stopped it (``max_permutations`` or ``max_seconds``)
and how far it went. pyDVL's convergence criteria are left out:
``HistoryDeviation`` (its default for this method) divides by signed
values, so changes of opposite signs cancel (with a window of 5
permutations it stopped after 7 on a 200-row task), and ``RankCorrelation``
compares successive correlations of running means, which are all close to
1, so it stops as soon as its burn-in ends.

Environment: ``requirements.txt`` beside this file.
"""

from appraiser import Appraiser
from pydvl_common import (ascending_order, fit_valuation, make_datasets, make_utility, stopping_rule,
                          read_parameter, repeat_seed, require_positive, stopping_report, values_by_row)


class TMCShapleyAppraiser(Appraiser):
    """Truncated Monte Carlo Shapley values of logistic regression's validation accuracy (pyDVL)."""

    name = "tmc_shapley"

    def __init__(self, max_permutations=50, truncation_rtol=0.05, burn_in_fraction=0.4, max_seconds=0.0, n_jobs=1,
                 C=1.0):
        super().__init__()
        self.max_permutations = read_parameter("max_permutations", max_permutations)
        self.truncation_rtol = read_parameter("truncation_rtol", truncation_rtol)
        self.burn_in_fraction = read_parameter("burn_in_fraction", burn_in_fraction)
        self.max_seconds = read_parameter("max_seconds", max_seconds)
        self.n_jobs = read_parameter("n_jobs", n_jobs)
        self.C = read_parameter("C", C)
        require_positive(self, "max_permutations", "n_jobs")
        self.values = None
        self.order = None
        self.stopped_at = None

    def fit(self, train_X, train_y, val_X, val_y):
        from pydvl.valuation.methods import TMCShapleyValuation
        from pydvl.valuation.samplers import RelativeTruncation
        from pydvl.valuation.stopping import MaxUpdates

        training, validation = make_datasets(train_X, train_y, val_X, val_y)
        # Each permutation updates every row once: a row's update count is the permutations done.
        criteria, stopping = stopping_rule("max_permutations", MaxUpdates(self.max_permutations), self.max_seconds)
        valuation = TMCShapleyValuation(
            make_utility(validation, self.C),
            truncation=RelativeTruncation(rtol=self.truncation_rtol, burn_in_fraction=self.burn_in_fraction),
            is_done=stopping, seed=repeat_seed(), show_warnings=False, progress=False)
        seconds = fit_valuation(valuation, training, self.n_jobs)
        self.values = values_by_row(valuation.result, len(train_X))
        self.order = ascending_order(self.values)
        self.stopped_at = stopping_report(criteria, valuation.result.counts.max(), seconds, "permutations")

    def propose(self, budget):
        return self.order[:budget].tolist()

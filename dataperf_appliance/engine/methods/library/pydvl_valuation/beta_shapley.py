"""beta_shapley: Beta(16, 1) Shapley values (Kwon and Zou 2022, "Beta Shapley"), with pyDVL 0.10.0.

The method: a semi-value of the game whose utility is the validation
accuracy of a model trained on a subset of the training rows. Where the
Shapley value weighs a row's marginal contributions to subsets of every
size alike, Beta(alpha, beta) Shapley weighs them by a Beta distribution
over the subset's share of the rows; Beta(16, 1), the authors' choice for
finding mislabeled rows, puts most weight on small subsets, where a wrong
label moves the accuracy most. It is estimated from random permutations
(each gives every row one marginal contribution, reweighted to the Beta
weights); past the first `burn_in_fraction` of a permutation, once the
accuracy comes within `truncation_rtol` of the accuracy on all rows, the
rest is credited 0 without training (those large subsets weigh little
here). Rows are proposed by ascending value, ties by row index.

Library: pyDVL 0.10.0, ``BetaShapleyValuation`` with a
``PermutationSampler`` and ``RelativeTruncation``; utility: ``ModelUtility``
of the validation accuracy of logistic regression, or of the constant label
on a one-label subset (``pydvl_common``). Permutations are drawn from the
repeat's seed.

Parameters (constructor defaults; ``DATAPERF_PARAM_<NAME>`` overrides each):
    alpha (float, 16.0), beta (float, 1.0): the Beta distribution's.
    max_permutations (int, 50): the permutations to draw (with the
        truncation about 0.2 s each for 200 rows of 256 features, 0.5 s of
        2048).
    truncation_rtol (float, 0.05), burn_in_fraction (float, 0.4): the
        truncation above.
    max_seconds (float, 0.0): stop after this many seconds (0: no limit).
    n_jobs (int, 1): joblib workers, one permutation each at a time. On 2
        cores 2 workers were slower than one (20 s against 12 s for TMC on
        200 x 256): starting them and sending them the data costs more than
        it saves at this size.
    C (float, 1.0): the logistic regression's inverse regularisation.

After `fit`, ``stopped_at`` is ``{"stopped_by": [...], "permutations": k,
"seconds": s}``: what stopped it (``max_permutations`` or ``max_seconds``)
and how far it went. pyDVL's ``RankCorrelation`` is left out: it compares
successive correlations of running means, all close to 1, so it stops as
soon as its burn-in ends.

Environment: ``requirements.txt`` beside this file.
"""

from appraiser import Appraiser
from pydvl_common import (ascending_order, fit_valuation, make_datasets, make_utility, stopping_rule,
                          read_parameter, repeat_seed, require_positive, stopping_report, values_by_row)


class BetaShapleyAppraiser(Appraiser):
    """Beta(16, 1) Shapley values of logistic regression's validation accuracy (pyDVL)."""

    name = "beta_shapley"

    def __init__(self, alpha=16.0, beta=1.0, max_permutations=50, truncation_rtol=0.05, burn_in_fraction=0.4,
                 max_seconds=0.0, n_jobs=1, C=1.0):
        super().__init__()
        self.alpha = read_parameter("alpha", alpha)
        self.beta = read_parameter("beta", beta)
        self.max_permutations = read_parameter("max_permutations", max_permutations)
        self.truncation_rtol = read_parameter("truncation_rtol", truncation_rtol)
        self.burn_in_fraction = read_parameter("burn_in_fraction", burn_in_fraction)
        self.max_seconds = read_parameter("max_seconds", max_seconds)
        self.n_jobs = read_parameter("n_jobs", n_jobs)
        self.C = read_parameter("C", C)
        require_positive(self, "max_permutations", "n_jobs")
        if self.alpha <= 0 or self.beta <= 0:
            raise ValueError(f"alpha and beta must be positive; got {self.alpha} and {self.beta}")
        self.values = None
        self.order = None
        self.stopped_at = None

    def fit(self, train_X, train_y, val_X, val_y):
        from pydvl.valuation.methods import BetaShapleyValuation
        from pydvl.valuation.samplers import PermutationSampler, RelativeTruncation
        from pydvl.valuation.stopping import MaxUpdates

        training, validation = make_datasets(train_X, train_y, val_X, val_y)
        # Each permutation updates every row once: a row's update count is the permutations done.
        criteria, stopping = stopping_rule("max_permutations", MaxUpdates(self.max_permutations), self.max_seconds)
        sampler = PermutationSampler(
            truncation=RelativeTruncation(rtol=self.truncation_rtol, burn_in_fraction=self.burn_in_fraction),
            seed=repeat_seed())
        valuation = BetaShapleyValuation(make_utility(validation, self.C), sampler=sampler, is_done=stopping,
                                         alpha=self.alpha, beta=self.beta, show_warnings=False, progress=False)
        seconds = fit_valuation(valuation, training, self.n_jobs)
        self.values = values_by_row(valuation.result, len(train_X))
        self.order = ascending_order(self.values)
        self.stopped_at = stopping_report(criteria, valuation.result.counts.max(), seconds, "permutations")

    def propose(self, budget):
        return self.order[:budget].tolist()

"""The base class of a DataPerf debugging appraiser, for appraiser files that import it.

A participant's file written for the official evaluator starts with
``from appraiser import Appraiser``; the appliance puts this folder on the
method's ``sys.path`` so that line works unchanged. The class only names the
interface the appliance calls: ``fit`` with the noisy training set and the
clean validation set, then ``propose(budget)`` for the rows to fix first.
"""

from typing import List


class Appraiser:
    """Subclass it and set ``name``; the appliance calls `fit` once, then `propose` with the training set's size."""

    name = "appraiser"

    def __init__(self) -> None:
        pass

    def fit(self, train_X, train_y, val_X, val_y) -> None:
        """train_X (N, D) float32, train_y (N, 1) int labels 0/1 (noisy); val_X, val_y the same, clean."""
        raise NotImplementedError

    def propose(self, budget) -> List[int]:
        """The indices of the first `budget` training rows to fix, the most suspicious first."""
        raise NotImplementedError

"""The selection track: choose the best training set from a pool of unlabelled images.

`files` reads and writes the DataPerf selection files (pool and test parquet,
training-set and examples csv); `data` provides the datasets (the embedded
digits default, official folders); `strategies` choose a training set within
a label budget, buying labels from a `LabelOracle`; `evaluation` scores a
training set exactly as the reference evaluator does; `benchmark` runs the
track's stages (prepare_data, evaluate_tasks, report) and `plots` draws them.
"""

from dataperf_appliance.engine.selection.selection_evaluation import evaluate_training_set
from dataperf_appliance.engine.selection.files import TrainingSetError, read_training_set
from dataperf_appliance.engine.selection.selection_strategies import STRATEGY_NAMES, LabelOracle, choose_training_set

__all__ = ["STRATEGY_NAMES", "LabelOracle", "TrainingSetError", "choose_training_set", "evaluate_training_set",
           "read_training_set"]

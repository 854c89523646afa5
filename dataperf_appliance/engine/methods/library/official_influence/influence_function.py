"""influence_function: DataPerf's baseline, influence functions on a small torch model (a port, torch 2.13.0).

The method (Koh and Liang 2017, "Understanding black-box predictions via
influence functions"): train a model, then score each training row by how
much up-weighting it would change the loss on validation points,
-grad L(val)^T H^-1 grad L(row) / n, with the inverse-Hessian-vector product
estimated by the LiSSA recursion. Rows are proposed by descending score: the
rows whose up-weighting would raise the validation loss most come first
(ties in the reverse of numpy's default sort, as DataPerf's code leaves
them).

DataPerf's baseline (``InfluenceFunctionAppraiser`` of its debugging
evaluator, built on the pytorch-influence-functions code) is re-implemented
here, not imported. Its model is two stacked linear layers (D -> 128 -> 1,
no activation between them, initialised after ``torch.manual_seed(42)``),
trained with AdamW (lr 0.01, weight decay 0.9) on the sigmoid
cross-entropy for 20 epochs in unshuffled batches of 64. What that code
computes then differs from its configuration (200 recursions, 50 repeats,
40 validation points per class), and ``mode="official"`` (the default)
computes exactly what it computes:

- It loops over validation rows 0..79 but keeps only the order of the last
  one: the proposed order is the influence on validation row 79 alone.
  (With fewer than 80 validation rows DataPerf's code fails; this uses the
  last row.)
- Each recursion takes the first unshuffled batch (training rows 0..31) and
  restarts from the gradient instead of the previous estimate, so all 200
  give the same vector: (1 + (1 - damping)) v - Hv / scale, with v the
  validation row's gradient and Hv the product of the batch's Hessian with v
  plus, because v keeps its graph, the validation row's Hessian with the
  batch's gradient (damping 0.01, scale 25).
- Of the 50 repeats only the first is used, divided by 50.
- The score of a row is minus its gradient's dot product with that vector,
  over n; the order is by descending score (its ``helpful`` list, which it
  proposes: numpy's default sort of the float32 scores, reversed, as here).

The same inputs give the same numbers as DataPerf's code (float32, the same
torch operations in the same order), in seconds instead of hours: the 80 x
50 x 200 identical Hessian-vector products are done once.

``mode="lissa"`` computes what that configuration describes: the summed
gradient of the first `test_points_per_class` validation rows of each class,
then `r_averaging` runs of `recursion_depth` LiSSA steps, each on a random
batch of `hvp_batch_size` training rows (seeded by the repeat's seed) and
continuing from the previous estimate, averaged and divided by `scale`.

Parameters (constructor defaults; ``DATAPERF_PARAM_<NAME>`` overrides each):
    mode (str, "official"): "official" or "lissa", as above.
    epochs (int, 20), learning_rate (float, 0.01), weight_decay (float, 0.9),
    batch_size (int, 64), hidden_units (int, 128), init_seed (int, 42):
        the model and its training, DataPerf's values.
    test_points_per_class (int, 40): the validation rows of each class
        (official: the last index used is 2 x this - 1).
    recursion_depth (int, 200), r_averaging (int, 50): LiSSA steps and runs
        (official: only the division by r_averaging shows).
    damping (float, 0.01), scale (float, 25.0): the LiSSA recursion's.
    hvp_batch_size (int, 32): training rows per Hessian-vector product.

After `fit`, ``validation_rows`` holds the validation rows the scores use.

Environment: ``requirements.txt`` beside this file (torch 2.13.0, the CPU
build).
"""


import numpy as np
from method_parameters import read_parameter, repeat_seed  # noqa: F401 (re-exported)
from appraiser import Appraiser

MODES = ("official", "lissa")


class InfluenceFunctionAppraiser(Appraiser):
    """DataPerf's influence_function baseline, computed as its code computes it (or as it describes it)."""

    name = "influence_function"

    def __init__(self, mode="official", epochs=20, learning_rate=0.01, weight_decay=0.9, batch_size=64,
                 hidden_units=128, init_seed=42, test_points_per_class=40, recursion_depth=200, r_averaging=50,
                 damping=0.01, scale=25.0, hvp_batch_size=32):
        super().__init__()
        self.mode = read_parameter("mode", mode)
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {self.mode!r}")
        self.epochs = read_parameter("epochs", epochs)
        self.learning_rate = read_parameter("learning_rate", learning_rate)
        self.weight_decay = read_parameter("weight_decay", weight_decay)
        self.batch_size = read_parameter("batch_size", batch_size)
        self.hidden_units = read_parameter("hidden_units", hidden_units)
        self.init_seed = read_parameter("init_seed", init_seed)
        self.test_points_per_class = read_parameter("test_points_per_class", test_points_per_class)
        self.recursion_depth = read_parameter("recursion_depth", recursion_depth)
        self.r_averaging = read_parameter("r_averaging", r_averaging)
        self.damping = read_parameter("damping", damping)
        self.scale = read_parameter("scale", scale)
        self.hvp_batch_size = read_parameter("hvp_batch_size", hvp_batch_size)
        for name in ("epochs", "batch_size", "hidden_units", "test_points_per_class", "recursion_depth",
                     "r_averaging", "hvp_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1; got {getattr(self, name)}")
        self.scores = None
        self.order = None
        self.validation_rows = None

    # --- the model -------------------------------------------------------------------------

    def _train_model(self, train_X, train_y):
        """Two linear layers trained as DataPerf's LogisticClassifier trains them (same init, batches, optimiser)."""
        import torch

        torch.manual_seed(self.init_seed)
        model = torch.nn.Sequential(torch.nn.Linear(train_X.shape[1], self.hidden_units),
                                    torch.nn.Linear(self.hidden_units, 1))
        loss_function = torch.nn.BCEWithLogitsLoss()
        optimizer = torch.optim.AdamW(model.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        model.train(True)
        for _ in range(self.epochs):
            for start in range(0, len(train_X), self.batch_size):
                features, labels = train_X[start:start + self.batch_size], train_y[start:start + self.batch_size]
                optimizer.zero_grad()
                loss = loss_function(model(features).reshape(labels.shape), labels.float())
                loss.backward()
                optimizer.step()
        model.eval()
        return model

    @staticmethod
    def _loss(model, features, labels):
        """The cross-entropy of sigmoid outputs, as the influence code computes it (not the fused logits form)."""
        import torch

        return torch.nn.functional.binary_cross_entropy(torch.sigmoid(model(features)), labels.float())

    def _gradient(self, model, features, labels, keep_graph):
        import torch

        return list(torch.autograd.grad(self._loss(model, features, labels), list(model.parameters()),
                                        create_graph=keep_graph))

    def _hessian_vector_product(self, model, features, labels, vector, keep_graph):
        """H v by double backpropagation; with `vector` still attached to the graph, its own derivative adds in."""
        import torch

        parameters = list(model.parameters())
        first = torch.autograd.grad(self._loss(model, features, labels), parameters, retain_graph=True,
                                    create_graph=True)
        dot = 0
        for gradient_part, vector_part in zip(first, vector):
            dot += torch.sum(gradient_part * vector_part)
        return torch.autograd.grad(dot, parameters, create_graph=keep_graph)

    # --- the two modes ----------------------------------------------------------------------

    def _official_vector(self, model, train_X, train_y, val_X, val_y):
        """The vector DataPerf's code dots with every row's gradient (see the module docstring)."""
        last_row = min(2 * self.test_points_per_class, len(val_X)) - 1
        self.validation_rows = [last_row]
        gradient = self._gradient(model, val_X[last_row:last_row + 1], val_y[last_row:last_row + 1], True)
        batch = slice(0, self.hvp_batch_size)
        product = self._hessian_vector_product(model, train_X[batch], train_y[batch], gradient, True)
        # Term by term as that code writes it, so that the float32 rounding is the same.
        estimate = [g + (1 - self.damping) * g - p / self.scale for g, p in zip(gradient, product)]
        return [part / self.r_averaging for part in estimate]

    def _lissa_vector(self, model, train_X, train_y, val_X, val_y):
        """LiSSA's estimate of H^-1 times the summed gradient of the first validation rows of each class."""
        import torch

        labels = val_y.reshape(-1)
        rows = []
        for label in torch.unique(labels).tolist():
            rows += torch.nonzero(labels == label).reshape(-1)[:self.test_points_per_class].tolist()
        self.validation_rows = sorted(rows)
        gradient = [part.detach() for part in self._gradient(model, val_X[self.validation_rows],
                                                              val_y[self.validation_rows], False)]
        # The loss is a mean over the rows: times their number gives the sum of their gradients.
        gradient = [part * len(self.validation_rows) for part in gradient]
        generator = torch.Generator().manual_seed(repeat_seed() % 2**63)
        batch_size = min(self.hvp_batch_size, len(train_X))
        total = [torch.zeros_like(part) for part in gradient]
        for _ in range(self.r_averaging):
            estimate = [part.clone() for part in gradient]
            for _ in range(self.recursion_depth):
                batch = torch.randperm(len(train_X), generator=generator)[:batch_size]
                product = self._hessian_vector_product(model, train_X[batch], train_y[batch], estimate, False)
                estimate = [g + (1 - self.damping) * e - p / self.scale
                            for g, e, p in zip(gradient, estimate, product)]
            total = [t + e for t, e in zip(total, estimate)]
        return [part / (self.r_averaging * self.scale) for part in total]

    # --- the appraiser ----------------------------------------------------------------------

    def fit(self, train_X, train_y, val_X, val_y):
        import torch

        train_X = torch.as_tensor(np.asarray(train_X, dtype=np.float32))
        val_X = torch.as_tensor(np.asarray(val_X, dtype=np.float32))
        train_y = torch.as_tensor(np.asarray(train_y, dtype=np.int64).reshape(-1, 1))
        val_y = torch.as_tensor(np.asarray(val_y, dtype=np.int64).reshape(-1, 1))
        model = self._train_model(train_X, train_y)
        if self.mode == "official":
            vector = self._official_vector(model, train_X, train_y, val_X, val_y)
        else:
            vector = self._lissa_vector(model, train_X, train_y, val_X, val_y)
        n_rows = len(train_X)
        scores = np.empty(n_rows, dtype=np.float32)
        for row in range(n_rows):
            gradient = self._gradient(model, train_X[row:row + 1], train_y[row:row + 1], True)
            # Summed part by part from 0, negated, then divided by n: the official order of operations.
            scores[row] = (-sum([torch.sum(g * v).detach() for g, v in zip(gradient, vector)]) / n_rows).item()
        self.scores = scores
        # Descending score as DataPerf's code orders it: numpy's default sort of the float32 scores, reversed
        # (the same order of tied rows on the same numpy and processor).
        self.order = np.argsort(scores)[::-1].astype(np.int64)

    def propose(self, budget):
        return self.order[:budget].tolist()

"""scikit-learn estimators: :class:`GRURegressor` and :class:`GRUClassifier`.

They need scikit-learn (``pip install "fastgru[sklearn]"``), are clonable, take part in
``Pipeline`` and ``GridSearchCV``, and pass every scikit-learn estimator check that applies (the
sample-weight checks do not: ``fit`` takes no ``sample_weight``).

X is (samples, steps) for a univariate series per sample, or (samples, steps, features): one
array, so sequences of different lengths must be padded to one length (or trained with
:class:`fastgru.Model`, which takes them as a list). Both estimators standardise X (one mean and
deviation per feature) and the regressor its targets, so that raw data trains well; predictions
come back in the targets' units.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .layers import CELL_CLASSES, LAYER_CLASSES
from .layers.cells import CELLS
from .model_file import build_layer
from .training.callbacks import EarlyStopping
from .training.model import Model
from .training.optimizers import SGD, Adam, AdamW

__all__ = ["GRURegressor", "GRUClassifier"]

_OPTIMIZERS = {"adam": Adam, "adamw": AdamW, "sgd": SGD}


def _one_array(X):
    """A list or tuple X as one array (as scikit-learn reads it), refusing sequences of
    different lengths with a message that says what to do instead."""
    if not isinstance(X, (list, tuple)):
        return X
    try:
        return np.asarray(X)
    except ValueError:  # NumPy's "inhomogeneous shape"
        raise ValueError("X: the sequences have different lengths, and the estimators take one array, (samples, "
                         "steps) or (samples, steps, features): pad them to one length, or train a fastgru.Model, "
                         "which takes a list of sequences of different lengths (or padded X with lengths)") from None


class _GRUEstimator(BaseEstimator):
    def __init__(self, hidden_size=32, num_layers=1, cell="gru", bidirectional=False, reset_after=True,
                 dropout=0.0, recurrent_dropout=0.0, epochs=100, batch_size=32, optimizer="adam",
                 learning_rate=1e-3, weight_decay=0.0, clip_grad_norm=None, validation_fraction=0.0,
                 patience=10, dtype="float32", random_state=None, verbose=0):
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.cell = cell
        self.bidirectional = bidirectional
        self.reset_after = reset_after
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.clip_grad_norm = clip_grad_norm
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.non_deterministic = False
        return tags

    def _check_X(self, X, reset):
        X = validate_data(self, _one_array(X), reset=reset, allow_nd=True, dtype=np.float64)
        return self._to_sequences(X)

    def _to_sequences(self, X):
        if X.ndim == 2:
            X = X[:, :, None]
        if X.ndim != 3:
            raise ValueError(f"X: expected (samples, steps) or (samples, steps, features), got shape {X.shape}")
        return X

    def _seed(self):
        if self.random_state is None or isinstance(self.random_state, (int, np.integer)):
            return self.random_state
        return int(self.random_state.integers(2**31) if hasattr(self.random_state, "integers")
                   else self.random_state.randint(2**31))

    def _fit_model(self, X, y, outputs, loss):
        if self.cell not in CELL_CLASSES:
            raise ValueError(f"cell: expected one of {sorted(CELL_CLASSES)}, got {self.cell!r}")
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer: expected one of {sorted(_OPTIMIZERS)}, got {self.optimizer!r}")
        fraction = self.validation_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction < 1.0:
            raise ValueError(f"validation_fraction: expected a number in [0, 1), got {fraction!r}")
        held_out = int(round(fraction * len(X)))
        if fraction and not 1 <= held_out < len(X):
            raise ValueError(f"validation_fraction: {fraction} of {len(X)} samples leaves {held_out} held out and "
                             f"{len(X) - held_out} to train on; both need at least one")
        self.x_mean_ = X.mean(axis=(0, 1))
        self.x_scale_ = np.where(X.std(axis=(0, 1)) > 0, X.std(axis=(0, 1)), 1.0)
        X = (X - self.x_mean_) / self.x_scale_
        seed = self._seed()
        options = dict(num_layers=self.num_layers, bidirectional=self.bidirectional, dropout=self.dropout,
                       recurrent_dropout=self.recurrent_dropout, batch_first=True, dtype=self.dtype, seed=seed)
        layer_class = CELL_CLASSES[self.cell]
        if CELLS[layer_class.__name__]["has_reset_conventions"]:
            options["reset_after"] = self.reset_after
        elif self.reset_after is not True:  # scikit-learn's convention: checked at fit
            placed = ", ".join(repr(d["cell"]) for d in CELLS.values() if d["has_reset_conventions"])
            raise ValueError(f"reset_after: only cell={placed} has a reset gate to place; got "
                             f"reset_after={self.reset_after!r} with cell={self.cell!r}")
        layer = layer_class(X.shape[2], self.hidden_size, **options)
        optimizer_options = {"learning_rate": self.learning_rate}
        if self.weight_decay:
            optimizer_options["weight_decay"] = self.weight_decay
        self.model_ = Model(layer, outputs, loss=loss, optimizer=_OPTIMIZERS[self.optimizer](**optimizer_options),
                            clip_grad_norm=self.clip_grad_norm, seed=seed)
        callbacks, validation = [], None
        if held_out:
            order = np.random.default_rng(seed).permutation(len(X))
            validation = (X[order[:held_out]], y[order[:held_out]])
            X, y = X[order[held_out:]], y[order[held_out:]]
            callbacks.append(EarlyStopping(patience=self.patience))
        self.history_ = self.model_.fit(X, y, epochs=self.epochs, batch_size=self.batch_size,
                                        validation_data=validation, callbacks=callbacks, verbose=self.verbose)
        return self

    # Pickles (GridSearchCV's workers, joblib's processes, Dask) carry what predicting needs: the
    # fitted model's settings and weights, not its gradients and optimiser moments (3x as many
    # bytes again), which only training would read and which a refit starts afresh.
    def __getstate__(self):
        state = dict(super().__getstate__())
        model = state.get("model_")
        if isinstance(model, Model):
            state["model_"] = {"recurrent_class": type(model.recurrent).__name__,
                               "recurrent_config": model.recurrent.config(), "config": model.config(),
                               "weights": model.get_weights()}
        return state

    def __setstate__(self, state):
        fitted = state.get("model_")
        if isinstance(fitted, dict):
            config = fitted["config"]
            layer = build_layer(LAYER_CLASSES[fitted["recurrent_class"]], fitted["recurrent_config"])
            model = Model(layer, config["outputs"], head=config["head"], loss=config["loss"]["name"],
                          clip_grad_norm=config["clip_grad_norm"])
            model.set_weights(fitted["weights"])
            state = {**state, "model_": model}
        super().__setstate__(state)

    def _outputs(self, X):
        check_is_fitted(self, "model_")
        X = self._check_X(X, reset=False)
        # validate_data checks X's second axis (the steps); the features per step are ours to check.
        features = len(self.x_mean_)
        if X.shape[2] != features:
            raise ValueError(f"X has {X.shape[2]} features, but {type(self).__name__} is expecting {features} features "
                             "as input (features per step: X's last axis, 1 for a 2-D X).")
        return self.model_.predict((X - self.x_mean_) / self.x_scale_).astype(np.float64)


class GRURegressor(RegressorMixin, _GRUEstimator):
    """A GRU (or another cell of :mod:`fastgru.layers`: ``cell``) regressor on sequences: the last
    state through a dense layer, trained on the mean squared error of the standardised targets.

    Args:
        hidden_size, num_layers, bidirectional, reset_after, dropout, recurrent_dropout:
            the recurrent network (see :class:`fastgru.GRU`).
        cell: which recurrent layer, by its cell id: a key of ``fastgru.layers.CELL_CLASSES``
            (``"gru"``, the default, for :class:`fastgru.GRU`).
        epochs, batch_size, optimizer (``"adam"``, ``"adamw"``, ``"sgd"``), learning_rate,
            weight_decay, clip_grad_norm: training (see :meth:`fastgru.Model.fit`).
        validation_fraction, patience: hold out this share of the samples and stop when their
            loss has not improved for ``patience`` epochs (best weights restored); 0: no hold-out.
        dtype, random_state, verbose: as named.

    Attributes after fit: ``model_`` (the :class:`fastgru.Model`), ``history_``, and
    ``n_features_in_``, which is X's second axis as scikit-learn counts it: the steps T (so
    predict wants sequences of the fitted length, and of the fitted features per step). y:
    (samples,) or (samples, targets); predictions are float64.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X, y):
        X, y = validate_data(self, _one_array(X), y, allow_nd=True, dtype=np.float64, multi_output=True,
                             y_numeric=True)
        X = self._to_sequences(X)
        y = np.asarray(y, dtype=np.float64)
        self._y_1d = y.ndim == 1
        y2 = y.reshape(len(y), -1)
        self.y_mean_ = y2.mean(axis=0)
        self.y_scale_ = np.where(y2.std(axis=0) > 0, y2.std(axis=0), 1.0)
        return self._fit_model(X, (y2 - self.y_mean_) / self.y_scale_, y2.shape[1], "mse")

    def predict(self, X):
        """Predictions: (samples,) or (samples, targets), like the y of fit."""
        out = self._outputs(X) * self.y_scale_ + self.y_mean_
        return out[:, 0] if self._y_1d else out


class GRUClassifier(ClassifierMixin, _GRUEstimator):
    """A GRU (or another cell: ``cell``) sequence classifier: the last state through a dense layer, trained with
    softmax cross-entropy. Takes any labels (``classes_`` holds them, sorted). Arguments as
    :class:`GRURegressor`'s."""

    def fit(self, X, y):
        X, y = validate_data(self, _one_array(X), y, allow_nd=True, dtype=np.float64)
        check_classification_targets(y)
        X = self._to_sequences(X)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y: expected at least 2 classes, got 1 class ({self.classes_[0]!r})")
        return self._fit_model(X, encoded.astype(np.int64), len(self.classes_), "cross_entropy")

    def predict_proba(self, X):
        """(samples, classes) probabilities, columns in the order of ``classes_``."""
        logits = self._outputs(X)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    def predict(self, X):
        """(samples,) predicted labels (from ``classes_``)."""
        outputs = self._outputs(X)  # first: it refuses an unfitted estimator
        return self.classes_[outputs.argmax(axis=1)]

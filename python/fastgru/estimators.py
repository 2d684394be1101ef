"""scikit-learn estimators: :class:`GRURegressor` and :class:`GRUClassifier`.

They need scikit-learn (``pip install "fastgru[sklearn]"``), are clonable, take part in
``Pipeline`` and ``GridSearchCV``, and pass scikit-learn's estimator checks, the sample-weight
ones included, except ``check_sample_weight_equivalence_on_dense_data``, which asks a weight of
2 to give what a repeated sample gives and a weight of 0 what a removed one gives, to rounding:
minibatch training over shuffled samples draws other batches from other rows.

X: (samples, steps) for one series per sample, (samples, steps, features) for several, or a
list of sequences of different lengths, (T_i,) or (T_i, features) each; ``layout="NCT"`` reads
(samples, channels, steps) arrays (and (channels, T_i) list items) as sktime and aeon write them.

The defaults are chosen to learn on real series without tuning (measured on every UCR/UEA
classification set sktime ships: ``bench/ucr.py``, and README.md, "Classifying series with the
estimators' defaults"):

- the classifier standardises each series on its own (``scaling="series+level"``) and gives
  the GRU each series' mean and log deviation beside it, which the level-sensitive sets need;
  the regressor standardises each feature over the training set (``scaling="global"``);
- series longer than ``max_steps`` (32) are cut into patches of consecutive steps, so that the
  GRU sees at most 32 steps whatever T (of sequences of different lengths, the median one);
- the classifier trains on windows (crops) of 90% of each series' steps, drawn at random places
  afresh each epoch, and predicts with each model's outputs averaged over 5 windows spaced
  evenly from the series' start to its end (``crop_fraction="auto"``, ``test_crops=5``), when
  the series are cut into patches; short series (T <= ``max_steps``), read step by step, train
  whole. Why: a few dozen or hundred series are few for a network to learn from, and a random
  window is a new sample of the same class each epoch (window slicing, Le Guennec et al. 2016);
  where the series are cut into patches it also moves the patches' boundaries, so that a shape
  is learnt wherever it falls against them. Measured (bench/ucr.py, random_state 0, 1, 2)
  against whole series: ACSF1 0.727 -> 0.790, ArrowHead 0.684 -> 0.768, OSULeaf 0.715 ->
  0.782, PLAID 0.794 -> 0.922, GunPoint 0.976 -> 0.965, BasicMotions 1.000 both; on the short
  series it cost ItalyPowerDemand 0.966 -> 0.957 (24 steps: a tenth of them is 2 of the day's
  24 hours) and JapaneseVowels 0.980 -> 0.977, hence whole series there. Windows of 80% and of
  95% did worse than 90% on ArrowHead (0.688, 0.731); random time warping (on top of the
  windows) lifted ArrowHead to 0.789 but sank ACSF1 to 0.31-0.38, and is not used. The
  regressor trains on whole windows (``crop_fraction=1.0``): a forecast depends on the last
  steps, which a crop could cut off;
- a bidirectional GRU of 32 units, AdamW (weight decay 0.01, gradients clipped to norm 1),
  300 epochs under a cosine learning-rate schedule from 0.01 for the classifier (0.003 for the
  regressor), batches of 16. Why 0.01: with the windows above, 0.003 left the models short of
  what they could learn (0.001: ArrowHead 0.613); 0.01 measured, against 0.003 (random_state 0,
  1, 2, ensembles of 5): ArrowHead 0.768 -> 0.783 (random_state 3, 4, 5: 0.737 -> 0.787),
  GunPoint 0.965 -> 0.993, OSULeaf 0.782 -> 0.798, ACSF1 0.790 -> 0.823, PLAID 0.924 -> 0.933
  (random_state 0 alone), BasicMotions and UnitTest unchanged (1.000, 0.909), JapaneseVowels
  0.980 -> 0.978, ItalyPowerDemand 0.966 -> 0.965; 0.02 did no better on ArrowHead (0.779);
- an ensemble of models (their seeds drawn from ``random_state``), their outputs averaged:
  ``ensemble_size="auto"`` for the classifier, 10 models below 100 training samples and 5 from
  100 on (the regressor: 5). Why: the fewer the samples, the more one model's predictions vary
  with its seed, the more averaging more models gains, and the less each model costs (ten on 36
  series train faster than five on 100). Measured at the rate 0.01, 5 -> 10 models: ArrowHead
  0.783 -> 0.802 (random_state 3, 4, 5: 0.787 -> 0.808), ItalyPowerDemand 0.965 -> 0.967 (at
  0.003 ten models had not helped ArrowHead: 0.768 -> 0.750, within the spread of its seeds);
- also measured on ArrowHead (random_state 0, 1, 2, against 0.768 with windows at the rate
  0.003 and 5 models) and not taken: label smoothing 0.1 (0.773), 2 layers (0.775), 64, 48 or 16
  units (0.745, 0.768, 0.655), max_steps 16, 24 or 48 (0.760, 0.760, 0.731), batches of 8 or 32
  (0.752, 0.722), 600 epochs (0.754), a mean over the steps' outputs (head="sequence", each
  step trained on the label: 0.594); and on whole series, the first difference as another
  channel (0.686 against 0.684) and noise of 5% of each series' deviation (0.701);
- from 1000 samples on, 20% held out for early stopping (best weights restored); below that
  every sample trains: on the small UCR sets a hold-out cost accuracy;
- a ``UserWarning`` when training ends no better than chance.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .layers import CELL_CLASSES, LAYER_CLASSES
from .layers.cells import CELLS
from .model_file import build_layer
from .training.callbacks import EarlyStopping, History, LearningRateScheduler, ProgressBar, ReduceLROnPlateau
from .training.model import Model
from .training.optimizers import SGD, Adam, AdamW, cosine_decay

__all__ = ["GRURegressor", "GRUClassifier"]

_OPTIMIZERS = {"adam": Adam, "adamw": AdamW, "sgd": SGD}
_LAYOUTS = (None, "NTF", "NCT")
_SCALINGS = ("series+level", "series", "global", None)
_SCHEDULES = ("cosine", "plateau", None)
# validation_fraction="auto": this share held out once there are enough samples to spare it. On
# the UCR sets of bench/ucr.py (20 to 537 training samples) holding out 20% for early stopping
# cost accuracy on 5 of the 9 sets (README.md, "Classifying series with the estimators'
# defaults"): the losses of a few dozen held-out samples stop training too early.
_AUTO_VALIDATION_FRACTION, _AUTO_VALIDATION_MIN_SAMPLES = 0.2, 1000
# crop_fraction="auto": each epoch trains on windows of this share of each series' steps, at random
# places, when the series are cut into patches (T > max_steps); whole series when they are not.
_AUTO_CROP_FRACTION = 0.9
# ensemble_size="auto": this many models, and more below this many training samples, where one
# model's predictions vary most with its seed and models cost least.
_AUTO_ENSEMBLE, _AUTO_ENSEMBLE_SMALL, _AUTO_ENSEMBLE_SMALL_BELOW = 5, 10, 100


# _sequences' y when there is none to check (predict), unlike y=None passed to fit.
_NO_TARGETS = object()


def _is_ragged(X):
    """Whether X is a list (tuple, 1-D object array) of sequences that do not form one array."""
    if isinstance(X, np.ndarray):
        return X.dtype == object and X.ndim == 1 and len(X) > 0 and isinstance(X[0], (np.ndarray, list, tuple))
    if not isinstance(X, (list, tuple)) or len(X) == 0:
        return False
    return len({np.shape(item) for item in X}) > 1


def _check_choice(value, name, choices):
    if not any(value is choice or (isinstance(value, str) and value == choice) for choice in choices):
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}")


class _GRUEstimator(BaseEstimator):
    # The subclasses' __init__ hold the defaults (scikit-learn reads the parameters from there).
    def __init__(self, *, hidden_size, num_layers, cell, bidirectional, reset_after, dropout, recurrent_dropout,
                 epochs, batch_size, optimizer, learning_rate, weight_decay, clip_grad_norm, learning_rate_schedule,
                 validation_fraction, patience, scaling, patch_length, max_steps, crop_fraction, test_crops, layout,
                 ensemble_size, dtype, random_state, verbose):
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
        self.learning_rate_schedule = learning_rate_schedule
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.scaling = scaling
        self.patch_length = patch_length
        self.max_steps = max_steps
        self.crop_fraction = crop_fraction
        self.test_crops = test_crops
        self.layout = layout
        self.ensemble_size = ensemble_size
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.non_deterministic = False
        return tags

    # ------------------------------------------------------------------ inputs
    def _sequences(self, X, reset, y=_NO_TARGETS, **validate_options):
        """X as (sequences, y): one array (N, T, F) float64, or for ragged X a list of N
        (T_i, F) float64 arrays; y checked alongside (scikit-learn's validate_data) for an array
        X. Fitting a ragged X leaves no ``n_features_in_`` (there is no one width to check)."""
        _check_choice(self.layout, "layout", _LAYOUTS)
        if not _is_ragged(X):
            if y is _NO_TARGETS:
                X = validate_data(self, X, reset=reset, allow_nd=True, dtype=np.float64)
            else:
                X, y = validate_data(self, X, y, reset=reset, allow_nd=True, dtype=np.float64, **validate_options)
            if X.ndim == 2:
                X = X[:, :, None]
            elif X.ndim == 3 and self.layout == "NCT":
                X = X.transpose(0, 2, 1)
            elif X.ndim == 3 and self.layout is None and reset and X.shape[2] > X.shape[1]:
                warnings.warn(f"X: read as (samples, steps, features): {X.shape[1]} steps of {X.shape[2]} features "
                              "each. If it is (samples, channels, steps), as sktime and aeon write it, pass "
                              "layout='NCT'; layout='NTF' confirms this reading and silences this warning",
                              UserWarning, stacklevel=3)
            elif X.ndim != 3:
                expected = "(samples, channels, steps)" if self.layout == "NCT" else "(samples, steps, features)"
                raise ValueError(f"X: expected (samples, steps) or {expected} (layout={self.layout!r}), "
                                 f"got shape {X.shape}")
            return X, y
        items = []
        for i, item in enumerate(X):
            array = np.asarray(item)
            if array.dtype.kind not in "biuf":
                raise ValueError(f"X[{i}]: expected real numbers, got dtype {array.dtype}")
            array = array.astype(np.float64)
            if array.ndim == 1:
                array = array[:, None]
            elif array.ndim == 2 and self.layout == "NCT":
                array = array.T
            elif array.ndim != 2:
                expected = "(channels, steps)" if self.layout == "NCT" else "(steps, features)"
                raise ValueError(f"X[{i}]: expected a sequence (steps,) or {expected} (layout={self.layout!r}), "
                                 f"got shape {array.shape}")
            if len(array) == 0:
                raise ValueError(f"X[{i}]: expected at least one step, got shape {array.shape}")
            if not np.isfinite(array).all():
                raise ValueError(f"X[{i}]: expected finite values, got NaN or inf")
            if items and array.shape[1] != items[0].shape[1]:
                raise ValueError(f"X[{i}]: expected {items[0].shape[1]} features per step like X[0], got "
                                 f"{array.shape[1]}")
            items.append(array)
        if reset and hasattr(self, "n_features_in_"):
            del self.n_features_in_
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        if y is not _NO_TARGETS:
            y = np.asarray(y)
            if len(y) != len(items):
                raise ValueError(f"y: expected {len(items)} targets (one per sequence of X), got {len(y)}")
        return items, y

    def _check_params(self):
        if self.cell not in CELL_CLASSES:
            raise ValueError(f"cell: expected one of {sorted(CELL_CLASSES)}, got {self.cell!r}")
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer: expected one of {sorted(_OPTIMIZERS)}, got {self.optimizer!r}")
        _check_choice(self.scaling, "scaling", _SCALINGS)
        _check_choice(self.learning_rate_schedule, "learning_rate_schedule", _SCHEDULES)
        if self.patch_length != "auto" and (isinstance(self.patch_length, bool)
                                            or not isinstance(self.patch_length, numbers.Integral)
                                            or self.patch_length < 1):
            raise ValueError(f"patch_length: expected 'auto' or an int >= 1, got {self.patch_length!r}")
        if self.ensemble_size != "auto" and (isinstance(self.ensemble_size, bool)
                                             or not isinstance(self.ensemble_size, numbers.Integral)
                                             or self.ensemble_size < 1):
            raise ValueError(f"ensemble_size: expected 'auto' or an int >= 1, got {self.ensemble_size!r}")
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, numbers.Integral) or self.max_steps < 1:
            raise ValueError(f"max_steps: expected an int >= 1, got {self.max_steps!r}")
        if self.crop_fraction != "auto" and (isinstance(self.crop_fraction, bool)
                                             or not isinstance(self.crop_fraction, numbers.Real)
                                             or not 0.0 < self.crop_fraction <= 1.0):
            raise ValueError(f"crop_fraction: expected 'auto' or a number in (0, 1], got {self.crop_fraction!r}")
        if isinstance(self.test_crops, bool) or not isinstance(self.test_crops, numbers.Integral) or self.test_crops < 1:
            raise ValueError(f"test_crops: expected an int >= 1, got {self.test_crops!r}")

    def _held_out_count(self, count):
        fraction = self.validation_fraction
        if fraction == "auto":
            return int(round(_AUTO_VALIDATION_FRACTION * count)) if count >= _AUTO_VALIDATION_MIN_SAMPLES else 0
        if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real) or not 0.0 <= fraction < 1.0:
            raise ValueError(f"validation_fraction: expected 'auto' or a number in [0, 1), got {fraction!r}")
        held_out = int(round(fraction * count))
        if fraction and not 1 <= held_out < count:
            raise ValueError(f"validation_fraction: {fraction} of {count} samples leaves {held_out} held out and "
                             f"{count - held_out} to train on; both need at least one")
        return held_out

    @staticmethod
    def _check_sample_weight(sample_weight, count):
        if sample_weight is None:
            return None
        weights = np.asarray(sample_weight)
        if weights.dtype.kind not in "biuf" or weights.shape != (count,):
            raise ValueError(f"sample_weight: expected {count} real numbers (one per sample), got dtype "
                             f"{weights.dtype} shape {weights.shape}")
        weights = weights.astype(np.float64)
        if not np.isfinite(weights).all() or weights.min() < 0 or weights.sum() <= 0:
            raise ValueError("sample_weight: expected finite values >= 0, not all zero, got values in "
                             f"{weights.min()}..{weights.max()}")
        return weights

    # ------------------------------------------------------------------ transforms
    def _levels(self, X):
        """(N, 2F): each sequence's mean and log deviation per feature (what per-series
        standardisation removes), in units of the training steps' deviation: near 0 for series
        that were standardised already, rather than their rounding noise blown up."""
        return np.stack([np.concatenate([(x.mean(axis=0) - self.x_mean_) / self.x_scale_,
                                         np.log(x.std(axis=0) / self.x_scale_ + 1e-3)]) for x in X])

    def _fit_transform(self, X):
        """Fits the scaling and the patch length to X, then applies them."""
        if self.scaling in ("global", "series+level"):
            steps = np.concatenate(X) if isinstance(X, list) else X.reshape(-1, X.shape[2])
            self.x_mean_ = steps.mean(axis=0)
            deviation = steps.std(axis=0)
            self.x_scale_ = np.where(deviation > 0, deviation, 1.0)
        features = X[0].shape[1] if isinstance(X, list) else X.shape[2]
        self.n_step_features_ = features
        # sequences of different lengths: patches fitted to the median one, not the longest (PLAID's
        # 100-step series would get 3 steps from patches fitted to its 1344-step ones)
        typical = float(np.median([len(x) for x in X])) if isinstance(X, list) else X.shape[1]
        self.patch_length_ = (max(1, math.ceil(typical / self.max_steps)) if self.patch_length == "auto"
                              else int(self.patch_length))
        # "auto": crops where the GRU reads patches (see _AUTO_CROP_FRACTION), whole series where it
        # reads every step
        self.crop_fraction_ = (float(self.crop_fraction) if self.crop_fraction != "auto"
                               else _AUTO_CROP_FRACTION if self.patch_length_ > 1 else 1.0)
        return self._transform(X)

    def _transform(self, X):
        """Scaled, then cut into patches: (N, ceil(T / p), p * F (+ 2F levels)), or a list of
        (ceil(T_i / p), ...) arrays."""
        features = X[0].shape[1] if isinstance(X, list) else X.shape[2]
        if features != self.n_step_features_:
            raise ValueError(f"X has {features} features, but {type(self).__name__} is expecting "
                             f"{self.n_step_features_} features as input (features per step: X's last axis, 1 for "
                             "a 2-D X or for 1-D sequences).")
        if isinstance(X, list):
            return self._transform_list(X)
        levels = None
        if self.scaling in ("series", "series+level"):
            if self.scaling == "series+level":
                levels = self._levels(X)
            deviation = X.std(axis=1, keepdims=True)
            X = (X - X.mean(axis=1, keepdims=True)) / np.where(deviation > 0, deviation, 1.0)
        elif self.scaling == "global":
            X = (X - self.x_mean_) / self.x_scale_
        p = self.patch_length_
        if p > 1:
            # the last patch filled with the series' last value: no artificial step to zero
            missing = -X.shape[1] % p
            if missing:
                X = np.concatenate([X, np.repeat(X[:, -1:], missing, axis=1)], axis=1)
            X = X.reshape(len(X), X.shape[1] // p, p * X.shape[2])
        if levels is not None:
            X = np.concatenate([X, np.repeat(levels[:, None], X.shape[1], axis=1)], axis=2)
        return X

    def _transform_list(self, X):
        """_transform of a list of (T_i, F) sequences, all at once (one sequence at a time costs
        tens of microseconds each, which training on fresh crops of every sequence each epoch
        pays every epoch): the same values, the per-sequence sums in another order."""
        lengths = np.array([len(x) for x in X])
        flat = np.concatenate(X)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        levels = None
        if self.scaling in ("series", "series+level"):
            mean = np.add.reduceat(flat, starts, axis=0) / lengths[:, None]
            centred = flat - np.repeat(mean, lengths, axis=0)
            deviation = np.sqrt(np.add.reduceat(centred ** 2, starts, axis=0) / lengths[:, None])
            if self.scaling == "series+level":
                levels = np.concatenate([(mean - self.x_mean_) / self.x_scale_,
                                         np.log(deviation / self.x_scale_ + 1e-3)], axis=1)
            flat = centred / np.repeat(np.where(deviation > 0, deviation, 1.0), lengths, axis=0)
        elif self.scaling == "global":
            flat = (flat - self.x_mean_) / self.x_scale_
        p = self.patch_length_
        patches = -(-lengths // p)
        padded = patches * p
        # each sequence's steps, the last repeated to fill its last patch
        within = np.arange(padded.sum()) - np.repeat(np.cumsum(padded) - padded, padded)
        rows = flat[np.minimum(within, np.repeat(lengths - 1, padded)) + np.repeat(starts, padded)]
        rows = rows.reshape(-1, p * flat.shape[1])
        if levels is not None:
            rows = np.concatenate([rows, np.repeat(levels, patches, axis=0)], axis=1)
        return np.split(rows, np.cumsum(patches)[:-1])

    def _crops(self, X, rng=None):
        """Windows of ``crop_fraction`` of each sequence's steps (at least one): at random
        places (``rng``), or ``test_crops`` of them evenly spaced from the start to the end
        (``rng`` None), a list of X-like windows; [X] when crop_fraction is 1."""
        fraction = getattr(self, "crop_fraction_", 1.0)
        if fraction >= 1.0:
            return [X]
        if isinstance(X, list):
            lengths = np.array([len(x) for x in X])
            kept = np.maximum(1, np.rint(fraction * lengths).astype(np.int64))
            if rng is not None:
                starts = [(rng.integers(lengths - kept + 1))]
            else:
                count = self.test_crops
                starts = [np.rint(k * (lengths - kept) / max(count - 1, 1)).astype(np.int64) if count > 1
                          else (lengths - kept) // 2 for k in range(count)]
            return [[x[a: a + n] for x, a, n in zip(X, first, kept)] for first in starts]
        steps = X.shape[1]
        kept = max(1, int(round(fraction * steps)))
        if rng is not None:
            first = rng.integers(steps - kept + 1, size=len(X))
            return [X[np.arange(len(X))[:, None], first[:, None] + np.arange(kept)]]
        count = self.test_crops
        starts = ([int(round(k * (steps - kept) / (count - 1))) for k in range(count)] if count > 1
                  else [(steps - kept) // 2])
        return [X[:, a: a + kept] for a in starts]

    def _outputs(self, model, X):
        """One model's outputs on raw sequences X: the mean over its test crops (float64)."""
        return np.mean([model.predict(self._transform(crop)).astype(np.float64) for crop in self._crops(X)], axis=0)

    def _fit_on_crops(self, model, X, y, sample_weight, validation, callbacks, rng):
        """Trains ``epochs`` epochs, each on fresh random crops of the raw training sequences X,
        the callbacks (schedule, early stopping) called as one ``Model.fit`` of all the epochs
        calls them; returns that History."""
        history = History()
        every = [history, *callbacks]
        # One line per epoch of all the epochs (each one-epoch fit below is quiet).
        progress = ProgressBar(self.epochs, 1, 2 if self.verbose else 0)
        for callback in every:
            callback.on_train_begin(model)
        for epoch in range(self.epochs):
            for callback in every:
                callback.on_epoch_begin(model, epoch)
            progress.start_epoch(epoch)
            step = model.fit(self._transform(self._crops(X, rng)[0]), y, epochs=1, batch_size=self.batch_size,
                             validation_data=validation, verbose=0, sample_weight=sample_weight)
            logs = {key: values[-1] for key, values in step.history.items()}
            progress.end_epoch(logs)
            for callback in every:
                callback.on_epoch_end(model, epoch, logs)
            if model.stop_training:
                break
        for callback in every:
            callback.on_train_end(model)
        return history

    # ------------------------------------------------------------------ training
    def _seed(self):
        if self.random_state is None or isinstance(self.random_state, (int, np.integer)):
            return self.random_state
        return int(self.random_state.integers(2**31) if hasattr(self.random_state, "integers")
                   else self.random_state.randint(2**31))

    def _split(self, count, held_out, seed, stratify):
        """(training rows, held-out rows): held-out rows drawn at random, in proportion to each
        class (``stratify``: class indices) when every class has at least two samples."""
        rng = np.random.default_rng(seed)
        if stratify is not None and np.bincount(stratify).min() >= 2 and held_out >= len(np.unique(stratify)):
            from sklearn.model_selection import train_test_split

            train, validation = train_test_split(np.arange(count), test_size=held_out, stratify=stratify,
                                                 random_state=int(rng.integers(2**31)))
            return np.sort(train), np.sort(validation)
        order = rng.permutation(count)
        return np.sort(order[held_out:]), np.sort(order[:held_out])

    def _new_model(self, input_size, outputs, loss, seed):
        options = dict(num_layers=self.num_layers, bidirectional=self.bidirectional, dropout=self.dropout,
                       recurrent_dropout=self.recurrent_dropout, batch_first=True, dtype=self.dtype, seed=seed)
        layer_class = CELL_CLASSES[self.cell]
        if CELLS[layer_class.__name__]["has_reset_conventions"]:
            options["reset_after"] = self.reset_after
        elif self.reset_after is not True:  # scikit-learn's convention: checked at fit
            placed = ", ".join(repr(d["cell"]) for d in CELLS.values() if d["has_reset_conventions"])
            raise ValueError(f"reset_after: only cell={placed} has a reset gate to place; got "
                             f"reset_after={self.reset_after!r} with cell={self.cell!r}")
        layer = layer_class(input_size, self.hidden_size, **options)
        optimizer_options = {"learning_rate": self.learning_rate}
        if self.weight_decay:
            optimizer_options["weight_decay"] = self.weight_decay
        return Model(layer, outputs, loss=loss, optimizer=_OPTIMIZERS[self.optimizer](**optimizer_options),
                     clip_grad_norm=self.clip_grad_norm, seed=seed)

    def _fit_model(self, X, y, sample_weight, outputs, loss, stratify=None):
        """Trains ``ensemble_size_`` models, each with its own seed and its own hold-out (when
        there is one). Returns, per model, (model, X, y, sample weights or None) it is judged
        on: its held-out samples, else all the training samples."""
        self._check_params()
        held_out = self._held_out_count(len(X))
        raw = X
        X = self._fit_transform(raw)
        seed = self._seed()
        input_size = X[0].shape[1] if isinstance(X, list) else X.shape[2]
        take = (lambda rows: [X[r] for r in rows]) if isinstance(X, list) else (lambda rows: X[rows])
        take_raw = (lambda rows: [raw[r] for r in rows]) if isinstance(raw, list) else (lambda rows: raw[rows])
        # One seed per model drawn from random_state's: random_state 0 and 1 share no model (as
        # seeds 0..4 and 1..5 would share four); an ensemble of 3 is the first 3 of 5.
        self.ensemble_size_ = (int(self.ensemble_size) if self.ensemble_size != "auto"
                               else _AUTO_ENSEMBLE_SMALL if len(y) < _AUTO_ENSEMBLE_SMALL_BELOW else _AUTO_ENSEMBLE)
        member_seeds = ([None] * self.ensemble_size_ if seed is None
                        else np.random.SeedSequence(seed).generate_state(self.ensemble_size_).tolist())
        self.models_, self.histories_, judged_on = [], [], []
        for member_seed in member_seeds:
            model = self._new_model(input_size, outputs, loss, member_seed)
            callbacks, validation = [], None
            monitor = "val_loss" if held_out else "loss"
            if self.learning_rate_schedule == "cosine":
                callbacks.append(LearningRateScheduler(cosine_decay(self.epochs)))
            elif self.learning_rate_schedule == "plateau":
                callbacks.append(ReduceLROnPlateau(monitor=monitor, patience=max(1, self.patience // 3)))
            X_fit, raw_fit, y_fit, weight_fit = X, raw, y, sample_weight
            if held_out:
                train, kept = self._split(len(X), held_out, member_seed, stratify)
                validation = (take(kept), y[kept])
                X_fit, raw_fit, y_fit = take(train), take_raw(train), y[train]
                weight_fit = None if sample_weight is None else sample_weight[train]
                if weight_fit is not None and weight_fit.sum() == 0:
                    raise ValueError("sample_weight: every sample left for training after the validation hold-out "
                                     "has weight 0; give more samples weight, or validation_fraction=0")
                callbacks.append(EarlyStopping(monitor=monitor, patience=self.patience))
            if weight_fit is not None:
                # Model.fit divides a batch's weighted losses by its rows (Keras's rule): weights
                # of mean 1 keep the step size of unweighted training, whatever their scale
                weight_fit = weight_fit / weight_fit.mean()
            if self.crop_fraction_ < 1.0:
                history = self._fit_on_crops(model, raw_fit, y_fit, weight_fit, validation, callbacks,
                                             np.random.default_rng(member_seed))
            else:
                history = model.fit(X_fit, y_fit, epochs=self.epochs, batch_size=self.batch_size,
                                    validation_data=validation, callbacks=callbacks, verbose=self.verbose,
                                    sample_weight=weight_fit)
            self.models_.append(model)
            self.histories_.append(history)
            if validation is None:
                judged_on.append((model, raw, y, sample_weight))
            else:
                judged_on.append((model, take_raw(kept), y[kept], None if sample_weight is None else sample_weight[kept]))
        self.history_ = self.histories_[0]
        return judged_on

    # Pickles (GridSearchCV's workers, joblib's processes, Dask) carry what predicting needs: the
    # fitted models' settings and weights, not their gradients and optimiser moments (3x as many
    # bytes again), which only training would read and which a refit starts afresh.
    def __getstate__(self):
        state = dict(super().__getstate__())
        models = state.get("models_")
        if isinstance(models, list):
            state["models_"] = [{"recurrent_class": type(model.recurrent).__name__,
                                 "recurrent_config": model.recurrent.config(), "config": model.config(),
                                 "weights": model.get_weights()} for model in models]
        return state

    def __setstate__(self, state):
        fitted = state.get("models_")
        if isinstance(fitted, list):
            models = []
            for saved in fitted:
                config = saved["config"]
                layer = build_layer(LAYER_CLASSES[saved["recurrent_class"]], saved["recurrent_config"])
                model = Model(layer, config["outputs"], head=config["head"], loss=config["loss"]["name"],
                              clip_grad_norm=config["clip_grad_norm"])
                model.set_weights(saved["weights"])
                models.append(model)
            state = {**state, "models_": models}
        super().__setstate__(state)

    def _member_outputs(self, X):
        """Each model's outputs on X: a list of (samples, K) float64 arrays."""
        check_is_fitted(self, "models_")
        X, _ = self._sequences(X, reset=False)
        crops = [self._transform(crop) for crop in self._crops(X)]
        return [np.mean([model.predict(crop).astype(np.float64) for crop in crops], axis=0) for model in self.models_]


class GRURegressor(RegressorMixin, _GRUEstimator):
    """A GRU (or another cell of :mod:`fastgru.layers`: ``cell``) regressor on sequences: the last
    states through a dense layer, trained on the mean squared error of the standardised targets.

    Args:
        hidden_size, num_layers, bidirectional, reset_after, dropout, recurrent_dropout:
            the recurrent network (see :class:`fastgru.GRU`).
        cell: which recurrent layer, by its cell id: a key of ``fastgru.layers.CELL_CLASSES``
            (``"gru"``, the default, for :class:`fastgru.GRU`).
        epochs, batch_size, optimizer (``"adam"``, ``"adamw"``, ``"sgd"``), learning_rate,
            weight_decay, clip_grad_norm: training (see :meth:`fastgru.Model.fit`).
        learning_rate_schedule: ``"cosine"`` (half a cosine from ``learning_rate`` to 0 over
            ``epochs``), ``"plateau"`` (halved when the monitored loss has not improved for
            ``patience // 3`` epochs) or None (constant).
        validation_fraction, patience: hold out this share of the samples (stratified by class
            for the classifier) and stop when their loss has not improved for ``patience``
            epochs, the best epoch's weights restored; 0: no hold-out, all ``epochs`` run.
            ``"auto"``: 0.2 from 1000 samples on, 0 below (small sets train better on all
            their samples for all ``epochs``, the cosine schedule ending the learning).
        scaling: ``"series"`` (each sequence, each feature, to mean 0 and deviation 1 over its
            own steps), ``"series+level"`` (the classifier's default: as ``"series"``, and each
            step also carries the sequence's mean and log deviation per feature, in units of
            the training steps' deviation: 2F more inputs), ``"global"`` (the regressor's
            default: each feature over all the training steps), or None.
        patch_length, max_steps: each step the GRU sees is ``patch_length`` consecutive steps
            of the series side by side (``patch_length * features`` inputs; the last patch
            filled with the sequence's last step); ``"auto"``: the smallest patch length that
            leaves the training sequences at most ``max_steps`` steps (1 for short series);
            for sequences of different lengths, the median one.
        crop_fraction, test_crops: train each epoch on a window of ``crop_fraction`` of each
            sequence's steps (rounded, at least one) at a random place, drawn afresh each epoch
            (from the model's seed), and predict with the mean of each model's outputs over
            ``test_crops`` windows of that length spaced evenly from the start to the end (one:
            the middle one); 1.0: whole sequences. ``"auto"`` (the classifier's default): 0.9
            when the series are cut into patches (``patch_length_ > 1``), else 1.0; the
            regressor's default is 1.0 (its test_crops: 1). Fitted: ``crop_fraction_``.
        layout: ``"NTF"``: a 3-D X is (samples, steps, features) and a list's items (steps,
            features); ``"NCT"``: (samples, channels, steps) and (channels, steps), sktime's
            and aeon's layout; None (the default): as ``"NTF"``, with a ``UserWarning`` when
            fit gets a 3-D X of fewer steps than features, which is likelier (samples,
            channels, steps).
        ensemble_size: how many models train, each with its own seed drawn from
            ``random_state`` (and its own hold-out); predictions average their outputs (the
            classifier: their probabilities). ``"auto"`` (the classifier's default): 10 below
            100 training samples, 5 from 100 on; the regressor's default is 5. Fitted:
            ``ensemble_size_``.
        dtype, random_state, verbose: as named.

    Attributes after fit: ``models_`` (the ensemble's :class:`fastgru.Model` objects),
    ``histories_`` (their training histories; ``history_``: the first's), ``patch_length_``,
    ``crop_fraction_``, ``ensemble_size_``, and for an array X ``n_features_in_``, which is X's second axis as
    scikit-learn counts it (the steps T, or the channels with ``layout="NCT"``): predict wants
    arrays of that width, and the fitted features per step. A list X may have any lengths.
    y: (samples,) or (samples, targets); predictions are float64. A ``UserWarning`` says when
    training ends with an R² <= 0 (on the held-out samples, else the training ones, weighted by
    ``sample_weight``): no better than predicting the mean.
    """

    def __init__(self, hidden_size=32, num_layers=1, cell="gru", bidirectional=True, reset_after=True,
                 dropout=0.0, recurrent_dropout=0.0, epochs=300, batch_size=16, optimizer="adamw",
                 learning_rate=3e-3, weight_decay=1e-2, clip_grad_norm=1.0, learning_rate_schedule="cosine",
                 validation_fraction="auto", patience=50, scaling="global", patch_length="auto", max_steps=32,
                 crop_fraction=1.0, test_crops=1, layout=None, ensemble_size=5, dtype="float32", random_state=None,
                 verbose=0):
        super().__init__(hidden_size=hidden_size, num_layers=num_layers, cell=cell, bidirectional=bidirectional,
                         reset_after=reset_after, dropout=dropout, recurrent_dropout=recurrent_dropout,
                         epochs=epochs, batch_size=batch_size, optimizer=optimizer, learning_rate=learning_rate,
                         weight_decay=weight_decay, clip_grad_norm=clip_grad_norm,
                         learning_rate_schedule=learning_rate_schedule, validation_fraction=validation_fraction,
                         patience=patience, scaling=scaling, patch_length=patch_length, max_steps=max_steps,
                         crop_fraction=crop_fraction, test_crops=test_crops, layout=layout,
                         ensemble_size=ensemble_size, dtype=dtype, random_state=random_state, verbose=verbose)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X, y, sample_weight=None):
        """Trains on X (see the class) and y (samples,) or (samples, targets) real numbers;
        ``sample_weight``: (samples,) weights >= 0, or None."""
        X, y = self._sequences(X, reset=True, y=y, multi_output=True, y_numeric=True)
        y = np.asarray(y, dtype=np.float64)
        if not np.isfinite(y).all():
            raise ValueError("y: expected finite values, got NaN or inf")
        sample_weight = self._check_sample_weight(sample_weight, len(y))
        self._y_1d = y.ndim == 1
        y2 = y.reshape(len(y), -1)
        self.y_mean_ = y2.mean(axis=0)
        self.y_scale_ = np.where(y2.std(axis=0) > 0, y2.std(axis=0), 1.0)
        judged_on = self._fit_model(X, (y2 - self.y_mean_) / self.y_scale_, sample_weight, y2.shape[1], "mse")
        residual = total = 0.0
        for model, X_judged, y_judged, weights in judged_on:
            weights = np.ones(len(y_judged)) if weights is None else weights
            mean = np.average(y_judged, axis=0, weights=weights) if weights.sum() > 0 else y_judged.mean(axis=0)
            residual += (weights[:, None] * (self._outputs(model, X_judged) - y_judged) ** 2).sum()
            total += (weights[:, None] * (y_judged - mean) ** 2).sum()
        if total > 0 and residual >= total:
            where = "held-out" if len(judged_on[0][2]) < len(y) else "training"
            warnings.warn(f"GRURegressor: training ended no better than predicting the mean: R^2 "
                          f"{1 - residual / total:.3f} on the {where} samples (weighted as in fit); try more "
                          "epochs, another learning_rate, or check X's layout", UserWarning, stacklevel=2)
        return self

    def predict(self, X):
        """Predictions: (samples,) or (samples, targets) float64, like the y of fit."""
        out = np.mean(self._member_outputs(X), axis=0) * self.y_scale_ + self.y_mean_
        return out[:, 0] if self._y_1d else out


class GRUClassifier(ClassifierMixin, _GRUEstimator):
    """A GRU (or another cell: ``cell``) sequence classifier: the last states through a dense
    layer, trained with softmax cross-entropy. Takes any labels (``classes_`` holds them,
    sorted). Arguments as :class:`GRURegressor`'s, with other defaults: ``scaling="series+level"``,
    ``learning_rate=1e-2``, ``crop_fraction="auto"``, ``test_crops=5``, ``ensemble_size="auto"``; and
    ``class_weight``: None, ``"balanced"`` (weights inversely proportional to the classes'
    frequencies) or a dict {label: weight} (labels not in it weigh 1), multiplied into
    ``sample_weight``. Validation losses are unweighted.

    A ``UserWarning`` says when training ends at chance level: an accuracy (on the held-out
    samples, else the training ones) no higher than always predicting the most frequent class,
    both weighted by the samples' weights in training (``sample_weight`` times ``class_weight``).
    """

    def __init__(self, hidden_size=32, num_layers=1, cell="gru", bidirectional=True, reset_after=True,
                 dropout=0.0, recurrent_dropout=0.0, epochs=300, batch_size=16, optimizer="adamw",
                 learning_rate=1e-2, weight_decay=1e-2, clip_grad_norm=1.0, learning_rate_schedule="cosine",
                 validation_fraction="auto", patience=50, scaling="series+level", patch_length="auto", max_steps=32,
                 crop_fraction="auto", test_crops=5, layout=None, ensemble_size="auto", class_weight=None,
                 dtype="float32", random_state=None, verbose=0):
        super().__init__(hidden_size=hidden_size, num_layers=num_layers, cell=cell, bidirectional=bidirectional,
                         reset_after=reset_after, dropout=dropout, recurrent_dropout=recurrent_dropout,
                         epochs=epochs, batch_size=batch_size, optimizer=optimizer, learning_rate=learning_rate,
                         weight_decay=weight_decay, clip_grad_norm=clip_grad_norm,
                         learning_rate_schedule=learning_rate_schedule, validation_fraction=validation_fraction,
                         patience=patience, scaling=scaling, patch_length=patch_length, max_steps=max_steps,
                         crop_fraction=crop_fraction, test_crops=test_crops, layout=layout,
                         ensemble_size=ensemble_size, dtype=dtype, random_state=random_state, verbose=verbose)
        self.class_weight = class_weight

    def fit(self, X, y, sample_weight=None):
        """Trains on X (see :class:`GRURegressor`) and y (samples,) labels of any type;
        ``sample_weight``: (samples,) weights >= 0, or None."""
        X, y = self._sequences(X, reset=True, y=y)
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y: expected at least 2 classes, got 1 class ({self.classes_[0]!r})")
        sample_weight = self._check_sample_weight(sample_weight, len(encoded))
        if self.class_weight is not None:
            if isinstance(self.class_weight, dict):
                unknown = [label for label in self.class_weight if label not in set(self.classes_.tolist())]
                if unknown:
                    raise ValueError(f"class_weight: expected labels of y ({self.classes_.tolist()}), got {unknown}")
            elif self.class_weight != "balanced":
                raise ValueError(f"class_weight: expected None, 'balanced' or a dict {{label: weight}}, got "
                                 f"{self.class_weight!r}")
            by_class = compute_sample_weight(self.class_weight, y)
            sample_weight = by_class if sample_weight is None else sample_weight * by_class
            sample_weight = self._check_sample_weight(sample_weight, len(encoded))
        encoded = encoded.astype(np.int64)
        judged_on = self._fit_model(X, encoded, sample_weight, len(self.classes_), "cross_entropy", stratify=encoded)
        # accuracy and chance weighted as training weighs the samples (class_weight="balanced":
        # chance is 1 / classes, not the most frequent class's share)
        hits = judged = 0.0
        by_class = np.zeros(len(self.classes_))
        for model, X_judged, y_judged, weights in judged_on:
            weights = np.ones(len(y_judged)) if weights is None else weights
            hits += (weights * (self._outputs(model, X_judged).argmax(axis=1) == y_judged)).sum()
            judged += weights.sum()
            by_class += np.bincount(y_judged, weights=weights, minlength=len(self.classes_))
        accuracy, chance = hits / max(judged, 1e-300), by_class.max() / max(by_class.sum(), 1e-300)
        # Weights on one class alone make chance near 1; a fit right on 99.95% of the weight is no
        # failure to learn even then.
        if accuracy <= chance and accuracy < 0.9995:
            where = "held-out" if len(judged_on[0][2]) < len(encoded) else "training"
            warnings.warn(f"GRUClassifier: training ended at chance level: accuracy {accuracy:.3f} on the {where} "
                          f"samples, no better than {chance:.3f} from always predicting the most frequent class "
                          "(both weighted as in fit); try more epochs, another learning_rate, or check X's layout "
                          "(layout='NCT' for (samples, channels, steps))", UserWarning, stacklevel=2)
        return self

    def predict_proba(self, X):
        """(samples, classes) float64 probabilities, columns in the order of ``classes_``: the
        mean of the ensemble's softmax probabilities."""
        probabilities = []
        for logits in self._member_outputs(X):
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            probabilities.append(shifted / shifted.sum(axis=1, keepdims=True))
        return np.mean(probabilities, axis=0)

    def predict(self, X):
        """(samples,) predicted labels (from ``classes_``)."""
        probabilities = self.predict_proba(X)  # first: it refuses an unfitted estimator
        return self.classes_[probabilities.argmax(axis=1)]

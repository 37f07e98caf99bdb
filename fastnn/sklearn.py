"""scikit-learn estimators: ``MLPClassifier`` and ``MLPRegressor`` over a fastnn Network.

Why it is built this way: a user should change one import and get
scikit-learn's fitted model, faster.  So the estimators follow
``sklearn.neural_network``'s source (1.9: ``_multilayer_perceptron.py``,
``_base.py``, ``_stochastic_optimizers.py``) convention by convention, and
only the arithmetic of training is fastnn's -- its trainer running whole
epochs in C on the compiled backend.  Each convention has one fastnn piece:

* **Random draws** -- one ``check_random_state(random_state)`` per
  ``fit``/``partial_fit`` call, drawn from in scikit-learn's order:
  ``_init_coef``'s uniform weights then biases per layer on a first pass
  (``_sklearn_initial_weights``), ``train_test_split`` (scikit-learn's own)
  for ``early_stopping``, then each epoch's ``sklearn.utils.shuffle`` of
  the previous epoch's order (``_SklearnOrder``, handed to ``fit`` as its
  ``shuffler``).  Only the epochs run draw, so a ``RandomState`` passed in
  ends in scikit-learn's state.
* **Losses** -- loss rows of fastnn's table that compute scikit-learn's
  values (its clipped log-losses, half the squared error) and its output
  delta ``(out - y) / n_b``: ``_SklearnSoftmax`` (multiclass, labels),
  ``_SklearnLogistic`` (binary: one output; multi-label: one per label, the
  losses summed) and ``_SklearnSquaredError``.  The network's output is
  before the output activation; ``predict_proba`` applies it as
  scikit-learn's ``ACTIVATIONS`` do.
* **L2 penalty** -- ``alpha`` on the weights only, added by the trainer per
  batch: ``dW += alpha W / n_b`` and ``0.5 alpha sum ||W||^2 / n_b`` in the
  batch's loss, ``n_b`` the batch's rows (total sample weight); the
  loss's ``l2_penalty``.  ``loss_curve_`` is the rows-weighted mean of the
  batch losses, as scikit-learn accumulates it.
* **Optimizers** -- scikit-learn's SGD (velocity form, Nesterov) and Adam
  (bias-corrected step size, eps on the uncorrected root): the rows
  ``sk_sgd`` and ``sk_adam``.  A new one per ``fit`` (also warm-started),
  kept by ``partial_fit``.  ``invscaling`` sets the rate after each epoch,
  ``adaptive`` divides it by 5 where scikit-learn would stop.
* **Epoch bookkeeping** -- ``_Epochs`` does ``_fit_stochastic``'s per-epoch
  steps in its order (``n_iter_``, ``loss_``, ``t_``, ``loss_curve_``, the
  validation score or best loss and the no-improvement counter, the rate,
  stopping), and lets the trainer run several epochs per call where nothing
  can happen between them.  ``warm_start`` keeps the curve, the counter,
  the best loss and score; early stopping restores the best weights.
* **L-BFGS** -- ``scipy.optimize.minimize(method="L-BFGS-B")`` with
  scikit-learn's options over its packing (every W raveled, then every b);
  each loss and gradient over the whole set is one call of fastnn's
  trainer (``training.loss_and_gradients``).
* **dtype** -- training in X's dtype (float64 or float32) unless ``dtype``
  says otherwise; the same model to 1e-9 is promised in float64.

What still differs from scikit-learn (each is tested in
tests/test_sklearn_parity.py):

* The arithmetic is fastnn's (its GEMM, its summation orders), so the
  models agree to rounding: about 1e-12 relative after a few epochs in
  float64, growing with the epochs as any two BLAS libraries' runs do.
* ``MLPRegressor(loss="poisson")`` is refused with a clear error (its exp
  output is not implemented).
* Sparse X is refused (scikit-learn takes CSR/CSC): fastnn's kernels are
  dense.
* Negative sample weights are refused (fastnn's losses need weights >= 0).
* A diverging run: scikit-learn writes non-finite weights, then raises
  ``ValueError``; fastnn's trainer refuses the update that would write
  them, so the weights stay those of the last good batch, and raises the
  same ``ValueError``.

scikit-learn is an optional dependency of fastnn: ``import fastnn`` never
imports it; importing this module needs it (``pip install "fastnn[sklearn]"``).
"""

from __future__ import annotations

import numbers
import warnings
from itertools import chain
from typing import Any

import numpy as np
import scipy.optimize
from numpy.typing import ArrayLike, NDArray

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, is_classifier
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
    from sklearn.utils.optimize import _check_optimize_result
    from sklearn.utils.validation import (_check_sample_weight, check_is_fitted,
                                          column_or_1d)
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(
        "fastnn.sklearn needs scikit-learn, which is not installed; install it with "
        '`pip install "fastnn[sklearn]"` (or `pip install scikit-learn`)') from exc

try:
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # scikit-learn < 1.6: the same function was a method
    def _validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)

try:   # scipy < 1.15 takes L-BFGS-B's iprint; scikit-learn passes it only there
    from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
except ImportError:  # pragma: no cover - older scikit-learn: scipy's iprint exists
    def _get_additional_lbfgs_options_dict(key, value):
        return {key: value}

from . import layers as _layers
from . import losses as _losses
from . import training as _training
from ._validation import unmasked
from .backends import available_backends
from .network import Network
from .optimizers import _SklearnAdam, _SklearnSGD

__all__ = ["MLPClassifier", "MLPRegressor"]

_ACTIVATIONS = {"relu": _layers.ReLU, "tanh": _layers.Tanh, "logistic": _layers.Sigmoid,
                "identity": None}
_SOLVERS = ("lbfgs", "sgd", "adam")
_LEARNING_RATES = ("constant", "invscaling", "adaptive")


# ---------------------------------------------------------------- checks
def _check_number(value, name, *, integral=False, low=None, high=None, low_open=False,
                  high_open=False):
    kind = numbers.Integral if integral else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"{name} must be {'an integer' if integral else 'a real number'}, "
                        f"got {value!r}")
    if not np.isfinite(value):  # type: ignore[call-overload]
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and (value >= high if high_open else value > high):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value!r}")
    return value


def _check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


class _SklearnOrder:
    """scikit-learn's batch order, as the ``permutation`` of a fit driver's ``rng``.

    scikit-learn shuffles ``sample_idx = shuffle(sample_idx, random_state=rs)``
    each epoch (``sklearn.utils.shuffle``: ``rs.shuffle`` of ``arange(n)``, then
    ``sample_idx`` taken in that order), so its orders compose from epoch to
    epoch.  An instance stands in for the network's shuffle generator during a
    ``fit``: each ``permutation(n)`` is the next epoch's ``sample_idx``, drawn
    from ``rs`` exactly as scikit-learn draws it, one call per epoch run.

    Parameters
    ----------
    random_state : numpy.random.RandomState
        The estimator's ``RandomState`` of this ``fit`` (advanced in place).
    n : int
        The number of training samples; ``sample_idx`` starts at ``arange(n)``.
    """

    def __init__(self, random_state: np.random.RandomState, n: int) -> None:
        self.random_state = random_state
        self.sample_idx = np.arange(n, dtype=int)

    def permutation(self, n: int) -> NDArray[np.int64]:
        """The next epoch's order, (n,) int64."""
        if n != self.sample_idx.shape[0]:
            raise ValueError(f"scikit-learn's order is over {self.sample_idx.shape[0]} samples, "
                             f"not {n}")
        # sklearn.utils.shuffle(sample_idx, random_state=rs) without its argument
        # checks (a third of a millisecond a call): resample's arange, rs.shuffle
        # and take (tests/test_sklearn_parity.py compares the two)
        indices = np.arange(n)
        self.random_state.shuffle(indices)
        self.sample_idx = self.sample_idx[indices]
        return np.asarray(self.sample_idx, dtype=np.int64)


def _sklearn_initial_weights(random_state, layer_units, activation):
    """scikit-learn's ``_init_coef`` draws, layer by layer: W (fan_in, fan_out) then b (fan_out,).

    ``uniform(-r, r)`` with ``r = sqrt(f / (fan_in + fan_out))``, ``f = 2`` for
    ``activation="logistic"``, else 6; float64.  Returns [(W, b), ...].
    """
    factor = 2.0 if activation == "logistic" else 6.0
    out = []
    for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
        bound = np.sqrt(factor / (fan_in + fan_out))
        W = random_state.uniform(-bound, bound, (fan_in, fan_out))
        b = random_state.uniform(-bound, bound, fan_out)
        out.append((W, b))
    return out


def _output_activation(name, z):
    """scikit-learn's output activations (its ``ACTIVATIONS``), on a copy of z.

    ``"logistic"``: ``scipy.special.expit``; ``"softmax"``: ``exp(z - max)``
    over each row divided by the row's sum; ``"identity"``: z.
    """
    z = np.array(z, copy=True)
    if name == "logistic":
        from scipy.special import expit
        expit(z, out=z)
    elif name == "softmax":
        z -= z.max(axis=1)[:, np.newaxis]
        np.exp(z, out=z)
        z /= z.sum(axis=1)[:, np.newaxis]
    return z


class _BaseMLP(BaseEstimator):
    """Shared parameters, network building and the two solvers' drivers."""

    # fitted attributes (set by fit)
    network_: Network
    coefs_: list[Any]
    intercepts_: list[Any]
    loss_curve_: list[float]
    validation_scores_: Any
    best_validation_score_: Any
    best_loss_: Any

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 backend=None, dtype=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.backend = backend
        self.dtype = dtype

    # ------------------------------------------------------ parameters
    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
            sizes = [sizes]
        try:
            sizes = list(sizes)
        except TypeError:
            raise TypeError("hidden_layer_sizes must be an int or a sequence of ints, got "
                            f"{self.hidden_layer_sizes!r}") from None
        for size in sizes:
            if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
                raise ValueError("hidden_layer_sizes must hold integers >= 1, got "
                                 f"{self.hidden_layer_sizes!r}")
        return [int(size) for size in sizes]

    def _check_params(self):
        """Check every parameter (scikit-learn estimators do it in fit, not __init__)."""
        self._hidden_sizes()
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, "
                             f"got {self.activation!r}")
        if self.solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {_SOLVERS}, got {self.solver!r}")
        _check_number(self.alpha, "alpha", low=0.0)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            if (isinstance(self.batch_size, bool)
                    or not isinstance(self.batch_size, numbers.Integral)
                    or self.batch_size < 1):
                raise ValueError(f"batch_size must be 'auto' or an integer >= 1, "
                                 f"got {self.batch_size!r}")
        if self.learning_rate not in _LEARNING_RATES:
            raise ValueError(f"learning_rate must be one of {_LEARNING_RATES}, "
                             f"got {self.learning_rate!r}")
        _check_number(self.learning_rate_init, "learning_rate_init", low=0.0, low_open=True)
        _check_number(self.power_t, "power_t", low=0.0)
        _check_number(self.max_iter, "max_iter", integral=True, low=1)
        _check_bool(self.shuffle, "shuffle")
        _check_number(self.tol, "tol", low=0.0)
        if not isinstance(self.verbose, (bool, np.bool_)) \
                and not (isinstance(self.verbose, numbers.Integral) and int(self.verbose) >= 0):
            raise TypeError(f"verbose must be True, False or an integer >= 0, "
                            f"got {self.verbose!r}")
        _check_bool(self.warm_start, "warm_start")
        _check_number(self.momentum, "momentum", low=0.0, high=1.0)
        _check_bool(self.nesterovs_momentum, "nesterovs_momentum")
        _check_bool(self.early_stopping, "early_stopping")
        _check_number(self.validation_fraction, "validation_fraction", low=0.0, high=1.0,
                      low_open=True, high_open=True)
        _check_number(self.beta_1, "beta_1", low=0.0, high=1.0, high_open=True)
        _check_number(self.beta_2, "beta_2", low=0.0, high=1.0, high_open=True)
        _check_number(self.epsilon, "epsilon", low=0.0, low_open=True)
        _check_number(self.n_iter_no_change, "n_iter_no_change", integral=True, low=1)
        _check_number(self.max_fun, "max_fun", integral=True, low=1)
        if self.backend is not None and self.backend not in available_backends():
            raise ValueError(f"backend must be None or one of {available_backends()}, "
                             f"got {self.backend!r}")
        if self.dtype not in (None, "float64", "float32", np.float64, np.float32):
            raise ValueError(f"dtype must be None (X's), 'float64' or 'float32', "
                             f"got {self.dtype!r}")

    # --------------------------------------------------------- network
    def _build_network(self, layer_units, dtype):
        activation = _ACTIVATIONS[self.activation]
        stack: list[_layers.Layer] = []
        for i, (n_in, n_out) in enumerate(zip(layer_units[:-1], layer_units[1:])):
            stack.append(_layers.Dense(n_in, n_out))
            if i < len(layer_units) - 2 and activation is not None:
                stack.append(activation())
        return Network(stack, backend=self.backend, dtype=dtype, seed=0)

    def _dense(self):
        return [layer for layer in self.network_.layers if isinstance(layer, _layers.Dense)]

    def _link_weights(self):
        """coefs_[i] (n_in, n_out) and intercepts_[i] (n_out,) are the Dense layers'
        own arrays (not copies): training updates them in place."""
        dense = self._dense()
        self.coefs_ = [layer.W for layer in dense]
        self.intercepts_ = [layer.b for layer in dense]

    def _set_weights(self, coefs, intercepts):
        """Copy values into the Dense layers (coefs_ and intercepts_ stay their views)."""
        for layer, W, b in zip(self._dense(), coefs, intercepts):
            layer.W = W
            layer.b = b

    def _train_dtype(self, X):
        return np.dtype(self.dtype) if self.dtype is not None else X.dtype

    def _initialize(self, Y, layer_units, dtype, random_state):
        """scikit-learn's ``_initialize``: its draws (``_init_coef``), in float64,
        cast to the training dtype, and the bookkeeping of a first pass."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = Y.shape[1]
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._out_activation()
        self.network_ = self._build_network(layer_units, dtype)
        self._link_weights()
        init = _sklearn_initial_weights(random_state, layer_units, self.activation)
        self._set_weights([W for W, _ in init], [b for _, b in init])
        self._best_coefs = [c.copy() for c in self.coefs_]
        self._best_intercepts = [b.copy() for b in self.intercepts_]
        if self.solver != "lbfgs":
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None

    def _convert_network(self, dtype):
        """Go on in a new dtype (``dtype`` set after fit): the fitted network's
        weights, converted (a value too large for float32 is refused)."""
        old = self._dense()
        units = [old[0].W.shape[0]] + [layer.W.shape[1] for layer in old]
        self.network_ = self._build_network(units, dtype)
        self._link_weights()
        self._set_weights([layer.W for layer in old], [layer.b for layer in old])

    def _make_loss(self):
        """The fastnn loss row of scikit-learn's loss for this output, with its L2
        penalty ``alpha`` (applied by the trainer to the weights, not the biases)."""
        kind = {"identity": _losses._SklearnSquaredError, "logistic": _losses._SklearnLogistic,
                "softmax": _losses._SklearnSoftmax}[self.out_activation_]
        loss = kind()
        loss.l2_penalty = float(self.alpha)
        return loss

    def _targets(self, Y):
        """Y (n, n_outputs) as the loss row takes it: class labels for softmax."""
        if self.out_activation_ == "softmax":
            return np.argmax(Y, axis=1).astype(np.int64)
        return np.asarray(Y, dtype=self.network_.dtype)

    def _check_solver(self):
        """``partial_fit`` exists for the stochastic solvers only (scikit-learn's rule)."""
        if self.solver not in ("sgd", "adam"):
            raise AttributeError("partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        return True

    def _make_optimizer(self):
        if self.solver == "adam":
            return _SklearnAdam(lr=self.learning_rate_init, betas=(self.beta_1, self.beta_2),
                                eps=self.epsilon)
        return _SklearnSGD(lr=self.learning_rate_init, momentum=self.momentum,
                           nesterov=self.nesterovs_momentum)

    def _batch(self, n_samples):
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                          "going to be clipped")
        return int(np.clip(self.batch_size, 1, n_samples))

    # ------------------------------------------------------- training
    def _fit(self, X, y, sample_weight=None, incremental=False):
        self._check_params()
        hidden = self._hidden_sizes()
        first = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y = unmasked(X, "X"), unmasked(y, "y")       # masked values: refused
        X, y = self._validate_input(X, y, incremental, reset=first)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        layer_units = [X.shape[1]] + hidden + [Y.shape[1]]
        random_state = check_random_state(self.random_state)
        dtype = self._train_dtype(X)
        if first:
            self._initialize(Y, layer_units, dtype, random_state)
        else:
            fitted = [W.shape[1] for W in self.coefs_][:-1]
            if fitted != hidden:
                raise ValueError(f"hidden_layer_sizes is {self.hidden_layer_sizes!r} but the "
                                 f"fitted network has hidden layers {tuple(fitted)}; fit with "
                                 "warm_start=False to start a new network")
            if Y.shape[1] != self.n_outputs_:
                raise ValueError(f"y has {Y.shape[1]} outputs but the fitted network has "
                                 f"{self.n_outputs_}")
            if self.network_.dtype != dtype:
                self._convert_network(dtype)
        X = np.asarray(X, dtype=dtype)
        try:
            if self.solver == "lbfgs":
                self._fit_lbfgs(X, Y, sample_weight)
            else:
                self._fit_stochastic(X, Y, sample_weight, incremental, random_state)
        except FloatingPointError as exc:
            # fastnn's trainer refuses an update that would write a non-finite value
            # (the weights stay those of the last good batch); scikit-learn's error
            raise ValueError("Solver produced non-finite parameter weights. The input data "
                             "may contain large values and need to be preprocessed.") from exc
        if not all(np.isfinite(w).all() for w in chain(self.coefs_, self.intercepts_)):
            raise ValueError("Solver produced non-finite parameter weights. The input data "
                             "may contain large values and need to be preprocessed.")
        return self

    def _fit_stochastic(self, X, Y, sample_weight, incremental, random_state):
        """scikit-learn's ``_fit_stochastic``: its split, batch orders, optimizer and
        per-epoch bookkeeping; the batches run in fastnn's trainer, several epochs
        per call where no stop or learning-rate change can fall between them."""
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        X_val = y_val = sw_val = None
        if self.early_stopping:
            stratify = Y if is_classifier(self) and self.n_outputs_ == 1 else None
            arrays = [X, Y] + ([sample_weight] if sample_weight is not None else [])
            parts = train_test_split(*arrays, random_state=random_state,
                                     test_size=self.validation_fraction, stratify=stratify)
            X, X_val, Y, y_val = parts[:4]
            if sample_weight is not None:
                sample_weight, sw_val = parts[4:]
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
            if is_classifier(self):
                y_val = self._label_binarizer.inverse_transform(y_val)
        n_samples = X.shape[0]
        batch = self._batch(n_samples)
        order = _SklearnOrder(random_state, n_samples) if self.shuffle else None
        self.n_iter_ = 0
        epochs = _Epochs(self, n_samples, X_val, y_val, sw_val)
        history = _training.fit(self.network_, X, self._targets(Y), loss=self._make_loss(),
                                optimizer=self._optimizer, epochs=1 if incremental
                                else self.max_iter, batch_size=batch, shuffle=self.shuffle,
                                sample_weight=sample_weight, observers=[epochs],
                                shuffler=order)
        if not (epochs.stopped or incremental or history.interrupted):
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                          "and the optimization hasn't converged yet.", ConvergenceWarning)
        if self.early_stopping:
            # scikit-learn's coefs_ become its best copies: the same arrays from now on
            self._set_weights(self._best_coefs, self._best_intercepts)
            self._best_coefs, self._best_intercepts = self.coefs_, self.intercepts_

    def _fit_lbfgs(self, X, Y, sample_weight):
        """scikit-learn's ``_fit_lbfgs``: scipy's L-BFGS-B over the packed weights
        (all W raveled, then all b), fastnn computing each loss and gradient over
        the whole set in one compiled call."""
        evaluate = _training._LossAndGradients(self.network_, X, self._targets(Y),
                                               self._make_loss(), sample_weight)
        iprint = 1 if self.verbose is True or self.verbose >= 1 else -1
        try:
            result = scipy.optimize.minimize(
                evaluate.value_and_packed_grad, evaluate.packed_params(),
                method="L-BFGS-B", jac=True,
                options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol,
                         **_get_additional_lbfgs_options_dict("iprint", iprint)})
            evaluate.set_params(result.x)
        finally:
            evaluate.close()
        self.n_iter_ = _check_optimize_result("lbfgs", result, self.max_iter)
        self.loss_ = float(result.fun)

    def _end_of_epoch(self, loss_value, n_samples, X_val, y_val, sw_val):
        """scikit-learn's bookkeeping after one epoch, in its order; True to stop."""
        self.n_iter_ += 1
        self.loss_ = float(loss_value)
        self.t_ += n_samples
        self.loss_curve_.append(self.loss_)
        if self.verbose:
            print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
        if self.early_stopping:
            self._update_validation(X_val, y_val, sw_val)
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]
        if self.solver == "sgd" and self.learning_rate == "invscaling":   # iteration_ends
            self._optimizer.lr = float(self.learning_rate_init) / (self.t_ + 1) ** self.power_t
        if self._no_improvement_count > self.n_iter_no_change:
            if self.early_stopping:
                msg = ("Validation score did not improve more than tol=%f for %d consecutive "
                       "epochs." % (self.tol, self.n_iter_no_change))
            else:
                msg = ("Training loss did not improve more than tol=%f for %d consecutive "
                       "epochs." % (self.tol, self.n_iter_no_change))
            if self._trigger_stopping(msg):
                return True
            self._no_improvement_count = 0
        return False

    def _trigger_stopping(self, msg):
        """scikit-learn's ``trigger_stopping``: SGD's adaptive rate divides by 5
        instead of stopping, until it is at most 1e-6."""
        if self.solver != "sgd" or self.learning_rate != "adaptive":
            if self.verbose:
                print(msg + " Stopping.")
            return True
        if self._optimizer.lr <= 1e-6:
            if self.verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self._optimizer.lr /= 5.0
        if self.verbose:
            print(msg + " Setting learning rate to %f" % self._optimizer.lr)
        return False

    def _update_validation(self, X_val, y_val, sw_val):
        score = self._score(X_val, y_val, sw_val)
        self.validation_scores_.append(score)
        if self.verbose:
            print("Validation score: %f" % self.validation_scores_[-1])
        if score < self.best_validation_score_ + self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if score > self.best_validation_score_:
            self.best_validation_score_ = score
            self._best_coefs = [c.copy() for c in self.coefs_]
            self._best_intercepts = [b.copy() for b in self.intercepts_]

    def _score(self, X, y, sample_weight):
        """The validation score on checked X: ``nan`` for non-finite outputs."""
        out = self._forward(X)
        if not np.isfinite(out).all():
            return np.nan
        return self._score_function(y, self._predict_from(out), sample_weight=sample_weight)

    # ------------------------------------------------------ prediction
    def _forward(self, X):
        """The output activation of the network's output, (n, n_outputs), for checked X."""
        return _output_activation(self.out_activation_, self.network_.predict(X))

    def _check_X(self, X):
        check_is_fitted(self)
        X = unmasked(X, "X")
        return _validate_data(self, X, reset=False, dtype=(np.float64, np.float32))

    # ------------------------------------------------------------ ONNX
    def to_onnx(self, path=None):
        """The fitted model as an ONNX model (``pip install "fastnn[onnx]"``).

        Its input ``"input"`` is X (batch, n_features) in the network's dtype;
        its output is the classifier's ``"probabilities"``, ``predict_proba``
        (softmax; the logistic's [1 - p, p] columns for a binary problem; each
        label's logistic for a multi-label one), or the regressor's
        ``"predictions"``, ``predict`` ((batch,) for one output).  See
        ``fastnn.Network.to_onnx`` for the operators.

        Parameters
        ----------
        path : str or path-like, optional
            Also write the model there.

        Returns
        -------
        onnx.ModelProto
        """
        check_is_fitted(self)
        from .interop.onnx import estimator_to_onnx
        return estimator_to_onnx(self, path)

    # -------------------------------------------------------- pickling
    def __setstate__(self, state):
        super().__setstate__(state)      # scikit-learn's: checks the pickling version
        if "network_" in self.__dict__:
            best_is_current = all(a is b for a, b in zip(state.get("_best_coefs", ()),
                                                         state.get("coefs_", ())))
            self._link_weights()
            if best_is_current and "_best_coefs" in state:
                self._best_coefs, self._best_intercepts = self.coefs_, self.intercepts_


class _Epochs:
    """scikit-learn's end-of-epoch bookkeeping as an observer of ``fit``.

    ``quiet_epochs`` lets the driver run, in one call of the trainer, the
    epochs after which nothing can stop training or change the learning
    rate: the no-improvement counter rises by at most one per epoch, so no
    stop is possible in the next ``n_iter_no_change + 1 - counter`` epochs;
    with ``early_stopping`` (the weights of each epoch are scored), ``verbose``
    or SGD's ``invscaling`` rate (a new rate every epoch) it asks for every
    epoch.  The numbers are the same as epoch by epoch.
    """

    def __init__(self, estimator, n_samples, X_val, y_val, sw_val):
        self.estimator, self.n_samples = estimator, n_samples
        self.X_val, self.y_val, self.sw_val = X_val, y_val, sw_val
        self.stopped = False

    def quiet_epochs(self):
        est = self.estimator
        if est.early_stopping or est.verbose or (est.solver == "sgd"
                                                 and est.learning_rate == "invscaling"):
            return 1
        return max(1, est.n_iter_no_change + 1 - est._no_improvement_count)

    def on_epoch_end(self, epoch, logs):
        if self.estimator._end_of_epoch(logs["loss"], self.n_samples, self.X_val, self.y_val,
                                        self.sw_val):
            self.stopped = True
            return "stop"
        return None


_PARAMETERS_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default (100,)
        Width of each hidden layer; ``()`` gives a linear model.
    activation : {"relu", "tanh", "logistic", "identity"}, default "relu"
        Activation of the hidden layers.
    solver : {"adam", "sgd", "lbfgs"}, default "adam"
        scikit-learn's Adam and SGD (fastnn's optimizer rows ``sk_adam`` and
        ``sk_sgd``, run in fastnn's trainer), or scipy's L-BFGS-B over the
        whole set (each loss and gradient computed by fastnn).
    alpha : float >= 0, default 1e-4
        L2 penalty on the weights (not the biases), divided by the batch's
        size (its total sample weight) in the loss and the gradients.
    batch_size : int or "auto", default "auto"
        ``"auto"`` is ``min(200, n_samples)``; larger values are clipped (with a
        warning).  Not used by ``"lbfgs"``.
    learning_rate : {"constant", "invscaling", "adaptive"}, default "constant"
        SGD's schedule: ``invscaling`` sets ``learning_rate_init / (t_ + 1) **
        power_t`` after each epoch; ``adaptive`` divides the rate by 5 instead
        of stopping, until it is at most 1e-6.
    learning_rate_init : float > 0, default 1e-3
    power_t : float >= 0, default 0.5
    max_iter : int, default 200
        Epochs (stochastic solvers) or iterations (``"lbfgs"``).
    shuffle : bool, default True
    random_state : int, RandomState or None
        scikit-learn's: the same draws, in the same order, as its estimator
        (initial weights, validation split, batch orders).
    tol : float, default 1e-4
    verbose : bool or int, default False
        Print scikit-learn's progress lines.
    warm_start : bool, default False
    momentum : float in [0, 1], default 0.9
    nesterovs_momentum : bool, default True
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the data (stratified for a
        binary classifier), stop when its score has not improved by ``tol``
        for more than ``n_iter_no_change`` epochs, keep the best weights.
    validation_fraction : float in (0, 1), default 0.1
    beta_1, beta_2 : float in [0, 1), default 0.9, 0.999
    epsilon : float > 0, default 1e-8
    n_iter_no_change : int, default 10
    max_fun : int, default 15000
        ``"lbfgs"``: the most loss evaluations.
    backend : {"cython", "numpy"} or None, default None
        fastnn's backend; None: fastnn's default (the compiled one if built).
    dtype : {None, "float64", "float32"}, default None
        The dtype of training; None: X's (float64 or float32), as
        scikit-learn trains.
"""

_ATTRIBUTES_DOC = """
    Attributes
    ----------
    coefs_ : list of ndarray
        ``coefs_[i]`` (n_units_i, n_units_i+1): the i-th Dense layer's ``W``
        itself (a view: training updates it).
    intercepts_ : list of ndarray
        ``intercepts_[i]`` (n_units_i+1,): the i-th Dense layer's ``b``.
    loss_ : float
        The last epoch's loss (with the penalty), or L-BFGS's final value.
    loss_curve_ : list of float
        The loss of each epoch (stochastic solvers), over warm-started fits.
    best_loss_ : float or None
        The smallest loss so far; None with ``early_stopping``.
    validation_scores_ : list of float or None
        The validation score of each epoch with ``early_stopping``.
    best_validation_score_ : float or None
    t_ : int
        Training samples seen by the stochastic solvers.
    n_iter_ : int
        Epochs (or L-BFGS iterations) run by the last call.
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only when X had string column names
    n_layers_ : int
    n_outputs_ : int
    out_activation_ : str
    network_ : fastnn.Network
        The trained network (Dense layers and the activation; its output is
        before ``out_activation_``).
"""


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier: scikit-learn's ``MLPClassifier``, trained by fastnn.

    The same parameters and, with the same ``random_state``, the same fitted
    model as ``sklearn.neural_network.MLPClassifier`` (see the module
    docstring for the few differences).  Multiclass ``y`` trains a softmax
    output on the log-loss; binary ``y`` one logistic output; a multi-label
    indicator matrix ``y`` (n_samples, n_classes) one logistic output per
    label.
    """ + _PARAMETERS_DOC + """
    classes_ : ndarray (n_classes,)
        (Attributes) The class labels.
    """ + _ATTRIBUTES_DOC

    def _out_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _validate_input(self, X, y, incremental, reset):
        X, y = _validate_data(self, X, y, multi_output=True, dtype=(np.float64, np.float32),
                              reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where `y` has the same "
                                     "classes as in the previous call to fit. Previously "
                                     f"got {self.classes_}, `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError("`y` has classes not in `self.classes_`. "
                                 f"`self.classes_` has {self.classes_}. 'y' has {classes}.")
        return X, self._label_binarizer.transform(y).astype(bool)

    def _predict_from(self, out):
        if self.n_outputs_ == 1:
            out = out.ravel()
        return self._label_binarizer.inverse_transform(out)

    def _score_function(self, y, y_pred, sample_weight=None):
        return accuracy_score(y, y_pred, sample_weight=sample_weight)

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
            ) -> MLPClassifier:
        """Train on X and y.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : array-like, shape (n_samples,), or (n_samples, n_classes) label indicators
        sample_weight : array-like, shape (n_samples,), optional
            scikit-learn's weighting: each row's loss and output delta times
            its weight, divided by the batch's total weight.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    @available_if(lambda est: est._check_solver())
    def partial_fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None,
                    classes: ArrayLike | None = None) -> MLPClassifier:
        """One epoch over (X, y), continuing from the current state.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : array-like, shape (n_samples,), or (n_samples, n_classes)
        sample_weight : array-like, shape (n_samples,), optional
        classes : array-like, shape (n_classes,), required on the first call
            Every class of all the calls; y may hold only some of them.

        Returns
        -------
        self
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            if type_of_target(y).startswith("multilabel"):
                self._label_binarizer.fit(y)
            else:
                self._label_binarizer.fit(classes)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict_proba(self, X: ArrayLike) -> NDArray[Any]:
        """Class probabilities.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)

        Returns
        -------
        ndarray, shape (n_samples, n_classes)
            In the order of ``classes_`` (multi-label: each label's probability).
        """
        out = self._forward(self._check_X(X))
        if self.n_outputs_ == 1:
            out = out.ravel()
        if out.ndim == 1:
            return np.vstack([1 - out, out]).T
        return out

    def predict_log_proba(self, X: ArrayLike) -> NDArray[Any]:
        """Log of ``predict_proba``, shape (n_samples, n_classes)."""
        proba = self.predict_proba(X)
        return np.log(proba, out=proba)

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """Predicted labels, shape (n_samples,) (multi-label: (n_samples, n_classes)).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        """
        return self._predict_from(self._forward(self._check_X(X)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor: scikit-learn's ``MLPRegressor``, trained by fastnn.

    The same parameters and, with the same ``random_state``, the same fitted
    model as ``sklearn.neural_network.MLPRegressor``: an identity output
    trained on half the squared error (see the module docstring for the few
    differences).  y may be 1-D or 2-D (n_samples, n_outputs).

    Parameters
    ----------
    loss : {"squared_error"}, default "squared_error"
        scikit-learn's ``"poisson"`` is not available (a clear error).
    """ + _PARAMETERS_DOC[_PARAMETERS_DOC.index("hidden_layer_sizes"):] + _ATTRIBUTES_DOC

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 backend=None, dtype=None):
        self.loss = loss
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change,
            max_fun=max_fun, backend=backend, dtype=dtype)

    def _check_params(self):
        if self.loss == "poisson":
            raise ValueError("loss='poisson' (scikit-learn's exp output on the Poisson "
                             "deviance) is not available in fastnn.sklearn; use "
                             "loss='squared_error'")
        if self.loss != "squared_error":
            raise ValueError(f"loss must be 'squared_error', got {self.loss!r}")
        super()._check_params()

    def _out_activation(self):
        return "identity"

    def _validate_input(self, X, y, incremental, reset):
        X, y = _validate_data(self, X, y, multi_output=True, y_numeric=True,
                              dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _predict_from(self, out):
        return out.ravel() if out.shape[1] == 1 else out

    def _score_function(self, y, y_pred, sample_weight=None):
        return r2_score(y, y_pred, sample_weight=sample_weight)

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
            ) -> MLPRegressor:
        """Train on X and targets y.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : array-like, shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like, shape (n_samples,), optional

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=False)

    # scikit-learn 1.9's regressor tests ``est._check_solver`` without calling it, so
    # its partial_fit exists for "lbfgs" too and runs L-BFGS; so does this one
    def partial_fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
                    ) -> MLPRegressor:
        """One epoch over (X, y), continuing from the current state.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : array-like, shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like, shape (n_samples,), optional

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """Predictions, shape (n_samples,) for one output, else (n_samples, n_outputs).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        """
        return self._predict_from(self._forward(self._check_X(X)))

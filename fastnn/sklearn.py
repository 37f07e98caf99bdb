"""scikit-learn estimators: ``MLPClassifier`` and ``MLPRegressor`` over a fastnn Network.

Why it is built this way: the estimators are thin.  ``fit`` checks the data
with scikit-learn's own validators, builds a ``fastnn.Network`` (Dense layers
with the chosen activation between them, a linear output layer) and trains it
with ``Network.fit``, so the training arithmetic -- and its speed on the
compiled backend -- is fastnn's, while parameters, fitted attributes and
behaviour follow ``sklearn.neural_network``'s estimators of the same names.

scikit-learn is an optional dependency of fastnn: ``import fastnn`` never
imports it; importing this module needs it (``pip install "fastnn[sklearn]"``).

What differs from scikit-learn's MLPs (read before comparing numbers)
--------------------------------------------------------------------
* Solvers: ``"adam"`` (default) and ``"sgd"`` with a constant learning rate;
  no ``"lbfgs"``, no ``learning_rate`` schedules.  SGD momentum and Nesterov
  momentum are PyTorch's formulas, which for a constant learning rate are the
  same updates as scikit-learn's.  Adam adds ``epsilon`` after the square root
  of the bias-corrected second moment (PyTorch's placement).
* ``alpha`` (L2 penalty) is applied as the optimizer's ``weight_decay``:
  ``weight_decay = alpha / b`` with ``b`` the effective batch size
  (``min(batch_size, n_samples)``), i.e. every step adds ``alpha / b * p`` to
  the gradient of each parameter ``p``.  For the weights this is exactly
  scikit-learn's term (its penalty ``alpha/2 * ||W||^2 / n_batch`` has the
  gradient ``alpha * W / n_batch``).  Three honest differences: fastnn also
  decays the biases (scikit-learn does not); the last, smaller batch of an
  epoch uses the same ``alpha / b`` (scikit-learn divides by that batch's own
  size); and ``loss_curve_`` / ``best_loss_`` report the data loss only,
  without the penalty term that scikit-learn adds to its reported loss.
* Losses: the classifier minimises the mean cross-entropy of a softmax over
  one logit per class (two logits for a binary problem); the regressor
  minimises fastnn's ``MSELoss`` -- the mean over all elements of
  ``(y_pred - y)^2``, without scikit-learn's factor 1/2.  Its loss values are
  therefore twice scikit-learn's for one output, and its gradients too.
* Initial weights: fastnn's ``init="auto"`` (He-normal before ReLU, Glorot-
  uniform otherwise, zero biases), drawn from a seed taken from
  ``random_state``; scikit-learn draws Glorot-uniform weights and biases.
* Multi-label classification (a 2-D indicator ``y``) and ``sample_weight``
  are not supported.

Convergence follows scikit-learn's rule exactly: after each epoch the loss
(or, with ``early_stopping``, the validation score) is compared with the best
so far; an epoch that does not improve it by at least ``tol`` increments a
counter, any other epoch resets it, and training stops when the counter
exceeds ``n_iter_no_change``.  When ``max_iter`` epochs run without stopping,
a ``ConvergenceWarning`` is issued.  The rule is an observer of one ``fit``
(``_Convergence``), the same mechanism as fit's own early stopping.  Because
the counter can rise by at most one per epoch, it lets the trainer run the
epochs in which no stop is possible in one call (same numbers as one call per
epoch, less overhead); with ``early_stopping`` or ``verbose`` it observes
every epoch.

Plan: scikit-learn's fitted model, exactly (work in progress)
-------------------------------------------------------------
Built so far, not yet wired into the estimators: the optimizer rows
``sk_sgd`` / ``sk_adam`` (``optimizers._SklearnSGD`` / ``_SklearnAdam``),
``_SklearnOrder`` (scikit-learn's composed batch orders) and
``_sklearn_initial_weights`` (its ``_init_coef`` draws); with ``alpha=0``
they already give the binary and multiclass ``MLPClassifier``'s model
(tests/test_sklearn_optimizers.py).
The specification is scikit-learn 1.9's ``sklearn/neural_network``
(``_multilayer_perceptron.py``, ``_base.py``, ``_stochastic_optimizers.py``).
Goal: with the same parameters and ``random_state``, ``coefs_``,
``intercepts_``, ``n_iter_``, ``loss_curve_``, ``best_loss_``,
``validation_scores_``, ``best_validation_score_`` and ``t_`` equal to
scikit-learn's to 1e-9 relative in float64 (1e-7 for L-BFGS).  Convention by
convention, what scikit-learn does and the fastnn piece that does the same:

* **Random draws** -- one ``RandomState``, ``check_random_state(random_state)``,
  taken afresh at the start of *every* ``fit``/``partial_fit`` call (so a
  ``RandomState`` instance passed in advances across calls; an int restarts).
  Its draws, in this order, and no others:
  1. on the first pass only (``_initialize``), per layer ``i`` in order:
     ``coef = rs.uniform(-b, b, (fan_in, fan_out))`` then
     ``intercept = rs.uniform(-b, b, fan_out)``, ``b = sqrt(f / (fan_in +
     fan_out))`` with ``f = 2`` for ``activation="logistic"``, else 6 (the
     output layer too); drawn in float64, then cast to X's dtype.  fastnn:
     drawn in Python with that ``RandomState`` and assigned to the Dense
     layers' ``W``/``b`` (replacing the ``seed``-from-``random_state`` and
     ``init="auto"`` of today).
  2. with ``early_stopping`` (each ``fit``): ``train_test_split(X, y,
     random_state=rs, test_size=validation_fraction, stratify=...)`` with
     ``y`` the *binarized* targets, stratified only when the classifier has
     one output (binary; multiclass and multi-label are not stratified); with
     ``sample_weight`` the weights are split alongside.  fastnn: call
     scikit-learn's ``train_test_split`` with the same arguments (the draws
     are then the same by construction); fewer than 2 validation rows is
     scikit-learn's ValueError.
  3. with ``shuffle``, per epoch: ``sample_idx = shuffle(sample_idx,
     random_state=rs)`` (``sklearn.utils.shuffle`` = ``rs.shuffle`` of
     ``arange(n)`` then ``sample_idx[indices]``), so the epochs' orders
     *compose*: ``sample_idx`` starts at ``arange(n_train)`` each ``fit`` and
     is permuted again each epoch.  fastnn: Python computes exactly those
     permutations and hands them to the trainer as the batch order (fastnn's
     own ``_shuffle_rng`` is not used).  Only the epochs actually run may draw
     (a passed-in ``RandomState`` must end in scikit-learn's state): a call
     of the trainer over several epochs draws the orders of those epochs
     only, which ``quiet_epochs`` already guarantees (no stop is possible
     inside the chunk).  Without ``shuffle`` the order is ``arange``.
* **Batches** -- ``gen_batches(n_train, batch_size)``, the last batch
  smaller; ``batch_size="auto"`` is ``min(200, n_train)``, a larger int is
  clipped to ``n_train`` with scikit-learn's warning text; ``n_train`` is the
  size *after* the validation split.  fastnn's batching is the same.
* **Outputs and losses** (``_backprop``): the output delta is always
  ``out - y`` per row, and every gradient is divided by the batch's rows
  ``n_b`` (``sum(sample_weight)`` when weighted):
  - regressor, ``loss="squared_error"``: identity output, loss
    ``0.5 * mean over rows, then mean over outputs, of (out - y)^2``.  Its
    gradient is ``(out - y) / n_b`` -- *not* divided by the number of
    outputs, so for k outputs the gradient is k times that of the reported
    loss.  fastnn: a new loss row (``sk_squared_error``) whose value is the
    half mean and whose gradient is ``(out - y) / rows``; MSELoss with a
    factor cannot express both (its gradient is ``2 (out - y) / (rows k)``).
  - regressor, ``loss="poisson"`` (scikit-learn >= 1.7; ``out_activation_ =
    "exp"``): loss ``sum over outputs of mean over rows of xlogy(y, y/p) - y
    + p`` with ``p = exp(z)``, gradient ``(p - y) / n_b``.  fastnn: an
    ``exp`` output handled in the loss row (Poisson NLL on the log input,
    PyTorch's ``PoissonNLLLoss(log_input=True)``, plus scikit-learn's
    constant term in the value only).
  - classifier, binary (one ``LabelBinarizer`` column): ONE logistic output
    (``out_activation_ = "logistic"``, ``n_outputs_ = 1``), loss
    ``binary_log_loss`` = mean of ``-(y log p + (1-y) log(1-p))`` with ``p``
    clipped to ``[eps, 1-eps]`` (``eps`` of X's dtype), gradient ``(p - y) /
    n_b``.  fastnn: a Dense with 1 output and ``BCEWithLogitsLoss`` for the
    gradient (the same ``(sigmoid(z) - y) / n_b``); the *value* must be
    scikit-learn's (clipped probabilities), so a loss row computing the value
    from ``p`` as scikit-learn does.
  - classifier, multiclass: softmax output, ``log_loss`` = mean over rows of
    ``-sum_c y_c log(clip(p_c))``, gradient ``(p - y) / n_b``: fastnn's
    cross-entropy on logits with labels, except the clip in the value (the
    same loss row's value rule).
  - classifier, multi-label (2-D indicator ``y``): ``n_classes`` independent
    logistic outputs, ``binary_log_loss`` *summed* over the outputs (mean
    over rows), gradient ``(p - y) / n_b`` per output; ``predict`` thresholds
    at 0.5.  fastnn: BCEWithLogits with reduction over rows only.
* **L2 penalty** ``alpha`` -- on the weights ``W`` only, never the biases,
  per batch: ``dW = (A^T delta + alpha W) / n_b``, ``db = sum(delta) / n_b``,
  and the batch loss gets ``0.5 * alpha * sum_i ||W_i||^2 / n_b`` (with ``W``
  *before* the batch's update).  fastnn: the trainer adds ``(alpha / n_b) W``
  to each ``dW`` (a per-array flag: W yes, b no; ``n_b`` the batch's own
  rows, so the last smaller batch gets its own factor) and adds the penalty,
  summed in a fixed order in double, to the batch's loss; the reference
  trainer the same in NumPy.  Not the optimizer's ``weight_decay`` (which
  decays b too and has no per-batch divisor).
* **loss_curve_** -- per epoch ``sum over batches of batch_loss * n_b``
  divided by ``n_train``, ``batch_loss`` including the penalty above.  fastnn's
  epoch loss is already the row-weighted mean of the batch losses; with the
  penalty inside the batch loss it is scikit-learn's value.
* **SGD** (``SGDOptimizer``): velocities ``v = momentum * v - lr * g``; the
  update is ``momentum * v - lr * g`` (the new ``v``) with
  ``nesterovs_momentum``, else ``v``; ``p += update``.  Not PyTorch's form
  (``v = mu v + g``, ``p -= lr (g + mu v)``): equal only for a constant lr,
  and not to the last bit.  fastnn: a new row ``sk_sgd`` (hypers ``lr
  momentum nesterov``, one state: the velocity) in FASTNN_OPTIMIZERS /
  ``optim_impl.h`` with its ``sk_sgd_safe`` proof, its reference in
  ``numpy_ops.OPTIMIZERS`` and a class in ``optimizers.py``.  Velocities are
  created per ``fit`` (also with ``warm_start``) and kept by ``partial_fit``.
  Learning rates (SGD only; Adam ignores ``learning_rate``):
  - ``constant``: ``learning_rate_init``;
  - ``invscaling``: after each epoch (``iteration_ends(t_)``), ``lr =
    float(learning_rate_init) / (t_ + 1) ** power_t`` with ``t_`` the samples
    seen *over all calls*; a new optimizer (each ``fit``) starts again at
    ``learning_rate_init`` for its first epoch.  fastnn: computed in Python
    with the same expression, handed to the trainer per epoch (a chunk of
    epochs as the trainer's per-batch ``hyper_table``);
  - ``adaptive``: when the no-improvement counter exceeds
    ``n_iter_no_change``: stop if ``lr <= 1e-6``, else ``lr /= 5``, reset the
    counter to 0 and go on.  fastnn: in ``_end_of_epoch``; the counter may now
    reset inside a chunk, so ``quiet_epochs`` counts from 0 after a division.
* **Adam** (``AdamOptimizer``): ``t += 1``; ``m = b1 m + (1-b1) g``; ``v = b2 v
  + (1-b2) g^2``; ``lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t)`` (in Python
  floats); ``p += (-lr_t * m) / (sqrt(v) + eps)`` -- eps added to the
  *uncorrected* ``sqrt(v)``, which PyTorch's form (``sqrt(v)/sqrt(bc2) + eps``)
  is not.  No subnormal flush.  fastnn: a new row ``sk_adam`` (hypers ``lr
  beta1 beta2 eps``, states m, v; ``t`` the trainer's step counter, from 1,
  restarted by every ``fit`` since scikit-learn makes a new optimizer, kept by
  ``partial_fit``), with its proof, reference and class as for ``sk_sgd``.
* **Epoch bookkeeping** (``_fit_stochastic``), in this order after each
  epoch: ``n_iter_ += 1`` (``n_iter_`` restarts at 0 every call, so it is 1
  after ``partial_fit``); ``loss_ = accumulated / n_train``; ``t_ += n_train``
  (over all calls); ``loss_curve_.append``; then the counter: with
  ``early_stopping`` the validation score (``accuracy_score`` of ``predict``
  on the held-out labels; ``r2_score`` for the regressor; ``nan`` if the
  predictions are not finite) is appended to ``validation_scores_``, the
  counter rises if ``score < best + tol`` else resets, and a *strictly*
  better score becomes ``best_validation_score_`` with copies of the weights;
  otherwise the counter rises if ``loss > best_loss_ - tol`` else resets and
  ``best_loss_ = min``.  Then the invscaling update, then ``counter >
  n_iter_no_change`` triggers stopping (``adaptive``: see above); then
  ``partial_fit`` stops after its one epoch; a ``fit`` reaching ``max_iter``
  warns ``ConvergenceWarning``.  At the end of a ``fit`` with
  ``early_stopping`` the best weights become ``coefs_``/``intercepts_`` (the
  initial weights if no epoch was better than ``-inf``).  ``warm_start``
  keeps ``loss_curve_``, ``best_loss_``, ``validation_scores_``,
  ``best_validation_score_``, ``t_`` *and the counter* (only the first pass
  resets them), with a new optimizer.  Non-finite weights at the end:
  scikit-learn's ValueError.
* **dtype** -- scikit-learn trains in X's dtype (float32 X stays float32);
  fastnn's ``dtype`` parameter decides instead (float64 default); parity is
  promised in float64.
* **L-BFGS** -- ``scipy.optimize.minimize(fun, _pack(coefs, intercepts),
  method="L-BFGS-B", jac=True, options={maxfun: max_fun, maxiter: max_iter,
  gtol: tol, iprint})`` over the whole set (the loss with the penalty / n, the
  gradient packed: all W raveled, then all b), ``n_iter_`` from
  ``_check_optimize_result``; fastnn computes ``fun`` in compiled code (one
  forward and backward over the whole set per call).  No ``loss_curve_``.
* **sample_weight** -- ``delta *= w`` per row, every divisor ``n_b`` becomes
  ``sum(w)`` of the batch (also the penalty's), losses ``np.average(...,
  weights=w)``; ``train_test_split`` splits the weights too.  fastnn's loss
  rows already take sample weights with that denominator.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.utils import check_random_state
    from sklearn.utils import shuffle as sklearn_shuffle
    from sklearn.utils.multiclass import check_classification_targets, unique_labels
    from sklearn.utils.validation import check_array, check_is_fitted
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(
        "fastnn.sklearn needs scikit-learn, which is not installed; install it with "
        '`pip install "fastnn[sklearn]"` (or `pip install scikit-learn`)') from exc

try:
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # scikit-learn < 1.6: the same function was a method
    def _validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)

from . import layers as _layers
from . import training as _training
from ._validation import unmasked
from .backends import available_backends
from .losses import CrossEntropyLoss, MSELoss
from .network import Network
from .optimizers import SGD, Adam

__all__ = ["MLPClassifier", "MLPRegressor"]

_ACTIVATIONS = {"relu": _layers.ReLU, "tanh": _layers.Tanh, "logistic": _layers.Sigmoid,
                "identity": None}
_SOLVERS = ("sgd", "adam")


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
        self.sample_idx = sklearn_shuffle(self.sample_idx, random_state=self.random_state)
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


class _BaseMLP(BaseEstimator):
    """Shared parameters, network building and the training loop."""

    _loss: Any = None       # MSELoss or CrossEntropyLoss, set by the subclasses
    # fitted attributes (set by fit)
    network_: Network
    coefs_: list[Any]
    intercepts_: list[Any]
    loss_curve_: list[float]
    validation_scores_: Any
    best_validation_score_: Any
    best_loss_: Any

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate_init=0.001, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, backend=None, dtype="float64"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
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
            extra = (" (fastnn has no 'lbfgs'; use 'adam' or 'sgd')"
                     if self.solver == "lbfgs" else "")
            raise ValueError(f"solver must be one of {_SOLVERS}, got {self.solver!r}{extra}")
        _check_number(self.alpha, "alpha", low=0.0)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            if (isinstance(self.batch_size, bool)
                    or not isinstance(self.batch_size, numbers.Integral)
                    or self.batch_size < 1):
                raise ValueError(f"batch_size must be 'auto' or an integer >= 1, "
                                 f"got {self.batch_size!r}")
        _check_number(self.learning_rate_init, "learning_rate_init", low=0.0, low_open=True)
        _check_number(self.max_iter, "max_iter", integral=True, low=1)
        _check_bool(self.shuffle, "shuffle")
        _check_number(self.tol, "tol", low=0.0)
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
        if self.backend is not None and self.backend not in available_backends():
            raise ValueError(f"backend must be None or one of {available_backends()}, "
                             f"got {self.backend!r}")
        if self.dtype not in ("float64", "float32", np.float64, np.float32):
            raise ValueError(f"dtype must be 'float64' or 'float32', got {self.dtype!r}")

    # --------------------------------------------------------- network
    def _build_network(self, n_features, n_outputs, seed):
        sizes = [n_features] + self._hidden_sizes() + [n_outputs]
        activation = _ACTIVATIONS[self.activation]
        stack: list[_layers.Layer] = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            stack.append(_layers.Dense(n_in, n_out))
            if i < len(sizes) - 2 and activation is not None:
                stack.append(activation())
        return Network(stack, backend=self.backend, dtype=self.dtype, seed=seed)

    def _link_weights(self):
        """coefs_[i] (n_in, n_out) and intercepts_[i] (n_out,) are the Dense layers'
        own arrays (not copies): training updates them in place."""
        dense = [layer for layer in self.network_.layers if isinstance(layer, _layers.Dense)]
        self.coefs_ = [layer.W for layer in dense]
        self.intercepts_ = [layer.b for layer in dense]
        self.n_layers_ = len(dense) + 1

    def _convert_network(self):
        """Go on in a new ``dtype`` (set_params after fit): the fitted network's weights,
        converted (a value too large for float32 is refused), in a network of that dtype."""
        old = self.network_
        net = self._build_network(old.n_inputs, old.n_outputs, old.seed)
        for layer, fitted in zip(net.layers, old.layers):
            if isinstance(layer, _layers.Dense) and isinstance(fitted, _layers.Dense):
                layer.W = fitted.W
                layer.b = fitted.b
        net._shuffle_rng = old._shuffle_rng      # the batch order goes on as it would have
        self.network_ = net
        self._link_weights()

    def _make_optimizer(self):
        if self.solver == "adam":
            return Adam(lr=self.learning_rate_init, betas=(self.beta_1, self.beta_2),
                        eps=self.epsilon)
        return SGD(lr=self.learning_rate_init, momentum=self.momentum,
                   nesterov=bool(self.nesterovs_momentum) and self.momentum > 0)

    def _batch(self, n_samples):
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn(f"Got batch_size={self.batch_size} larger than the number of "
                          f"samples {n_samples}; it is clipped to {n_samples}")
        return min(int(self.batch_size), n_samples)

    # ------------------------------------------------------- training
    def _fit(self, X, y, incremental):
        self._check_params()
        first = (not hasattr(self, "network_")
                 or (not self.warm_start and not incremental))
        X, y = unmasked(X, "X"), unmasked(y, "y")       # masked values: refused
        X, T = self._validate_input(X, y, incremental, reset=first)
        n_outputs = self._n_network_outputs(T)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        random_state = check_random_state(self.random_state)
        if first:
            seed = int(random_state.randint(np.iinfo(np.int32).max))
            self.network_ = self._build_network(X.shape[1], n_outputs, seed)
            self._link_weights()
            self.n_outputs_ = n_outputs
            self.n_iter_ = 0
            self.t_ = 0
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.validation_scores_ = None
                self.best_validation_score_ = None
                self.best_loss_ = np.inf
        else:
            sizes = [layer.W.shape[1] for layer in self.network_.layers
                     if isinstance(layer, _layers.Dense)][:-1]
            if sizes != self._hidden_sizes():
                raise ValueError(f"hidden_layer_sizes is {self.hidden_layer_sizes!r} but the "
                                 f"fitted network has hidden layers {tuple(sizes)}; fit with "
                                 "warm_start=False to start a new network")
            if n_outputs != self.n_outputs_:
                raise ValueError(f"y has {n_outputs} outputs but the fitted network has "
                                 f"{self.n_outputs_}")
            if self.network_.dtype != np.dtype(self.dtype):
                self._convert_network()
            if not incremental:
                # a warm-started fit: n_iter_ restarts (as in scikit-learn); so do the
                # stopping counter and the best validation score (scikit-learn carries
                # its counter over, which can end a warm-started fit after one epoch);
                # best_loss_ and loss_curve_ carry over
                self.n_iter_ = 0
                self._no_improvement_count = 0
                if self.early_stopping:
                    if self.validation_scores_ is None:
                        self.validation_scores_ = []
                    self.best_validation_score_ = -np.inf
                elif self.best_loss_ is None:
                    self.best_loss_ = np.inf
        if first or not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._make_optimizer()

        if self.early_stopping:
            stratify = T if self._loss is CrossEntropyLoss else None
            X, X_val, T, T_val = train_test_split(X, T, random_state=random_state,
                                                  test_size=self.validation_fraction,
                                                  stratify=stratify)
            if X_val.shape[0] < 2:
                raise ValueError("The validation set is too small: increase "
                                 "validation_fraction or the number of samples")
            self._best_coefs = [c.copy() for c in self.coefs_]
            self._best_intercepts = [b.copy() for b in self.intercepts_]
        n_samples = X.shape[0]
        batch = self._batch(n_samples)
        self._optimizer.weight_decay = self.alpha / batch
        loss = self._loss()
        epochs_to_run = 1 if incremental else self.max_iter
        if incremental:
            self.n_iter_ = 0
        convergence = _Convergence(self, n_samples, X_val if self.early_stopping else None,
                                   T_val if self.early_stopping else None)
        history = _training.fit(self.network_, X, T, loss=loss, optimizer=self._optimizer,
                                epochs=epochs_to_run, batch_size=batch, shuffle=self.shuffle,
                                observers=[convergence])
        stopped = convergence.stopped or history.interrupted  # Ctrl-C: fit stopped and warned
        if not stopped and not incremental:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                          "and the optimization hasn't converged yet.", ConvergenceWarning)
        if self.early_stopping:
            for layer, W, b in zip(self._dense(), self._best_coefs, self._best_intercepts):
                layer.W = W                       # copies in place: coefs_ stay views
                layer.b = b
        return self

    def _dense(self):
        return [layer for layer in self.network_.layers if isinstance(layer, _layers.Dense)]

    def _end_of_epoch(self, loss_value, n_samples, X_val, T_val):
        """scikit-learn's bookkeeping after one epoch; True when its rule says stop."""
        self.n_iter_ += 1
        self.t_ += n_samples
        self.loss_ = float(loss_value)
        self.loss_curve_.append(self.loss_)
        if self.verbose:
            print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
        if self.early_stopping:
            self._update_validation(X_val, T_val)
        else:
            if self.loss_ > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            self.best_loss_ = min(self.best_loss_, self.loss_)
        if self._no_improvement_count > self.n_iter_no_change:
            if self.verbose:
                what = ("Validation score" if self.early_stopping else "Training loss")
                print(f"{what} did not improve more than tol={self.tol:f} for "
                      f"{self.n_iter_no_change} consecutive epochs. Stopping.")
            return True
        return False

    def _update_validation(self, X_val, T_val):
        score = self._validation_score(X_val, T_val)
        self.validation_scores_.append(score)
        if self.verbose:
            print(f"Validation score: {score:f}")
        if score < self.best_validation_score_ + self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if score > self.best_validation_score_:
            self.best_validation_score_ = score
            self._best_coefs = [c.copy() for c in self.coefs_]
            self._best_intercepts = [b.copy() for b in self.intercepts_]

    def _forward(self, X):
        """Network output for validated X."""
        return self.network_.predict(X)

    def _check_X(self, X):
        check_is_fitted(self)
        X = unmasked(X, "X")
        return _validate_data(self, X, reset=False, dtype=(np.float64, np.float32))

    # -------------------------------------------------------- pickling
    def __setstate__(self, state):
        super().__setstate__(state)      # scikit-learn's: checks the pickling version
        if "network_" in self.__dict__:
            self._link_weights()


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier trained by fastnn (scikit-learn API).

    A ``fastnn.Network`` of Dense layers with ``activation`` between them and
    one output logit per class, trained on the softmax cross-entropy with
    ``Network.fit``.  Parameters and fitted attributes follow
    ``sklearn.neural_network.MLPClassifier``; see the module docstring for
    exactly how fastnn differs (``alpha``, solvers, loss, initialisation).

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default (100,)
        Width of each hidden layer; ``()`` gives a linear (softmax) model.
    activation : {"relu", "tanh", "logistic", "identity"}, default "relu"
    solver : {"adam", "sgd"}, default "adam"
    alpha : float, default 1e-4
        L2 penalty, applied as the optimizer's ``weight_decay = alpha / b``
        (b: effective batch size), to weights and biases.
    batch_size : int or "auto", default "auto"
        ``"auto"`` is ``min(200, n_samples)``; larger values are clipped (with a
        warning).
    learning_rate_init : float, default 1e-3
    max_iter : int, default 200
        Maximum number of epochs (full passes over the training data).
    shuffle : bool, default True
    random_state : int, RandomState or None
        Seeds the initial weights, the batch order and the validation split.
    tol : float, default 1e-4
    verbose : bool, default False
        Print the loss (and the validation score) after each epoch.
    warm_start : bool, default False
        Continue from the fitted network on the next ``fit`` (same classes), with a
        new optimizer (as scikit-learn does) and a reset stopping counter.
    momentum : float, default 0.9
        SGD only.
    nesterovs_momentum : bool, default True
        SGD only (when momentum > 0).
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the training data (stratified),
        stop when its accuracy has not improved by ``tol`` for more than
        ``n_iter_no_change`` epochs, and keep the best weights.
    validation_fraction : float, default 0.1
    beta_1, beta_2, epsilon : float, default 0.9, 0.999, 1e-8
        Adam only.
    n_iter_no_change : int, default 10
    backend : {"cython", "numpy"} or None, default None
        fastnn backend; None uses fastnn's default (the compiled one if built).
    dtype : {"float64", "float32"}, default "float64"
        The network's dtype.  Changed with ``set_params`` after a fit, a
        warm-started ``fit`` or a ``partial_fit`` goes on from the fitted
        weights converted to the new dtype.

    Attributes
    ----------
    classes_ : ndarray (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only when X had string column names
    network_ : fastnn.Network
        The trained network (its output is the logits).
    coefs_ : list of ndarray
        ``coefs_[i]`` has shape (n_units_i, n_units_i+1): the i-th Dense ``W``
        itself (not a copy).
    intercepts_ : list of ndarray
        ``intercepts_[i]`` has shape (n_units_i+1,): the i-th Dense ``b``.
    loss_ : float
        Mean cross-entropy of the last epoch (no penalty term).
    loss_curve_ : list of float
        One entry per epoch, over all calls of ``fit`` (warm start) and
        ``partial_fit``.
    best_loss_ : float or None
        Smallest value of ``loss_curve_``; None with ``early_stopping``.
    validation_scores_ : list of float or None
        Validation accuracy per epoch with ``early_stopping``, else None.
    best_validation_score_ : float or None
    n_iter_ : int
        Epochs run by the last ``fit`` (1 after ``partial_fit``).
    t_ : int
        Training samples seen.
    n_layers_ : int
    n_outputs_ : int
        Number of logits (= number of classes).
    out_activation_ : str
        ``"softmax"``.
    """

    _loss = CrossEntropyLoss

    def _validate_input(self, X, y, incremental, reset):
        X, y = _validate_data(self, X, y, reset=reset, dtype=(np.float64, np.float32))
        check_classification_targets(y)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self.classes_ = unique_labels(y)
        else:
            classes = unique_labels(y)
            if self.warm_start and not incremental:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where y has the same classes "
                                     f"as in the previous fit: it had {self.classes_}, y has "
                                     f"{classes}")
            elif len(np.setdiff1d(classes, self.classes_)):
                raise ValueError(f"y has classes not in classes_ {self.classes_}: "
                                 f"{np.setdiff1d(classes, self.classes_)}")
        if len(self.classes_) < 2:
            raise ValueError("MLPClassifier needs samples of at least 2 classes; y has 1 class "
                             f"({self.classes_[0]!r})")
        return X, np.searchsorted(self.classes_, y).astype(np.int64)

    def _n_network_outputs(self, T):
        self.out_activation_ = "softmax"
        return len(self.classes_)

    def fit(self, X: ArrayLike, y: ArrayLike) -> MLPClassifier:
        """Train on X (n_samples, n_features) and class labels y (n_samples,).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : array-like, shape (n_samples,)

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=False)

    def partial_fit(self, X: ArrayLike, y: ArrayLike,
                    classes: ArrayLike | None = None) -> MLPClassifier:
        """One epoch over (X, y), continuing from the current state.

        Parameters
        ----------
        X : array-like (n_samples, n_features)
        y : array-like (n_samples,)
        classes : array-like (n_classes,), required on the first call
            Every class of all the calls; y may hold only some of them.

        Returns
        -------
        self
        """
        if not hasattr(self, "classes_") or not hasattr(self, "network_"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
            self.classes_ = unique_labels(classes)
            if len(self.classes_) < 2:
                raise ValueError("MLPClassifier needs at least 2 classes; classes has 1 class")
        elif classes is not None and not np.array_equal(unique_labels(classes), self.classes_):
            raise ValueError(f"classes={classes!r} is not the same as on the first call to "
                             f"partial_fit ({self.classes_!r})")
        return self._fit(X, y, incremental=True)

    def _validation_score(self, X_val, T_val):
        return accuracy_score(T_val, self._forward(X_val).argmax(axis=1))

    def predict_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """Class probabilities (the softmax of the network's logits).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)

        Returns
        -------
        ndarray, float64, shape (n_samples, n_classes)
            In the order of ``classes_``.
        """
        logits = np.asarray(self._forward(self._check_X(X)), dtype=np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=1, keepdims=True)
        return logits

    def predict_log_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """Log of ``predict_proba``.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)

        Returns
        -------
        ndarray, float64, shape (n_samples, n_classes)
        """
        logits = np.asarray(self._forward(self._check_X(X)), dtype=np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        logits -= np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return logits

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """Predicted class labels.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)

        Returns
        -------
        ndarray, shape (n_samples,)
            Labels from ``classes_``.
        """
        index = self.predict_proba(X).argmax(axis=1)
        return self.classes_[index]


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor trained by fastnn (scikit-learn API).

    A ``fastnn.Network`` of Dense layers with ``activation`` between them and a
    linear output layer, trained on fastnn's ``MSELoss`` (mean of squared
    errors, no factor 1/2) with ``Network.fit``.  y may be 1-D (n_samples,) or
    2-D (n_samples, n_outputs); ``predict`` returns the same number of
    dimensions.  Parameters and attributes are those of ``MLPClassifier``
    (without ``classes_``); with ``early_stopping`` the validation score is
    R^2.  ``loss_`` / ``loss_curve_`` are mean squared errors; ``out_activation_``
    is ``"identity"``.
    """

    _loss = MSELoss

    def _validate_input(self, X, y, incremental, reset):
        X, y = _validate_data(self, X, y, reset=reset, dtype=(np.float64, np.float32),
                              multi_output=True, y_numeric=True)
        y = check_array(y, ensure_2d=False, dtype="numeric", input_name="y")  # refuses strings
        if reset:
            self._y_ndim = y.ndim
        return X, y.reshape(-1, 1) if y.ndim == 1 else y

    def _n_network_outputs(self, T):
        self.out_activation_ = "identity"
        return T.shape[1]

    def fit(self, X: ArrayLike, y: ArrayLike) -> MLPRegressor:
        """Train on X and targets y.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : array-like, shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=False)

    def partial_fit(self, X: ArrayLike, y: ArrayLike) -> MLPRegressor:
        """One epoch over (X, y), continuing from the current state.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : array-like, shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=True)

    def _validation_score(self, X_val, T_val):
        return r2_score(T_val, self._forward(X_val))

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """Predictions of the network.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)

        Returns
        -------
        ndarray, shape (n_samples,) for a 1-D y in fit, else (n_samples, n_outputs)
        """
        out = self._forward(self._check_X(X))
        return out.ravel() if self._y_ndim == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True     # y may be 2-D (n_samples, n_outputs)
        return tags

    def _more_tags(self):                        # the same tag for scikit-learn < 1.6
        return {"multioutput": True}


class _Convergence:
    """scikit-learn's stopping rule as an observer of ``fit``'s epochs.

    After each epoch it does the estimator's bookkeeping (``loss_curve_``,
    ``n_iter_``, the validation score) and says ``"stop"`` when the counter
    of epochs without improvement exceeds ``n_iter_no_change``.  The counter
    rises by at most one per epoch, so no stop is possible in the next
    ``n_iter_no_change + 1 - counter`` epochs: ``quiet_epochs`` lets the
    driver run them in one go (the same numbers as epoch by epoch); with
    ``early_stopping`` (the weights of each epoch are scored) or ``verbose``
    it asks for every epoch.
    """

    def __init__(self, estimator, n_samples, X_val, T_val):
        self.estimator, self.n_samples = estimator, n_samples
        self.X_val, self.T_val = X_val, T_val
        self.stopped = False

    def quiet_epochs(self):
        est = self.estimator
        if est.early_stopping or est.verbose:
            return 1
        return max(1, est.n_iter_no_change + 1 - est._no_improvement_count)

    def on_epoch_end(self, epoch, logs):
        if self.estimator._end_of_epoch(logs["loss"], self.n_samples, self.X_val, self.T_val):
            self.stopped = True
            return "stop"
        return None

"""Network: a stack of layers with forward/backward, predict and evaluate.

Why it is built this way: the network owns the execution *plan* -- its layers
in order, with each activation that directly follows a Dense layer fused into
that layer's kernel call -- and the data checks at the API boundary.  Data is
converted once per call (never per batch).  Training (``fastnn.training``),
persistence (``fastnn.io``) and PyTorch interop (``fastnn.interop.torch``) live
in their own modules; ``fit``, ``save``, ``load``, ``to_torch`` and
``from_torch`` are thin methods delegating to them, so this module shows the
model and nothing else.  So are ``to_onnx`` and ``from_onnx``
(``fastnn.interop.onnx``, imported when called: onnx is optional).
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Sequence

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from . import io as _io
from . import training as _training
from ._custom import user_methods
from ._interrupts import _StopOnInterrupt
from ._metrics import resolve_metrics, score_metrics
from ._validation import (as_float_array, as_numeric, as_samples, as_weights, check_dtype,
                          check_int)
from .backends import get_backend
from .backends.numpy_ops import NumpyOps
from .interop import torch as _torch_interop
from .layers import Activation, Dense, Flatten, Layer, Sigmoid, Softmax
from .losses import BCELoss, CrossEntropyLoss, Loss, get_loss
from .optimizers import Optimizer
from .training import History, _BatchInterrupted

if TYPE_CHECKING:
    from .callbacks import Callback
    from .schedules import LRScheduler

__all__ = ["Network", "History"]


class Network:
    """A feed-forward stack of layers.

    Parameters
    ----------
    layers : list of Layer
        E.g. ``[Dense(2, 4), Sigmoid(), Dense(4, 1), Sigmoid()]``.  Consecutive
        Dense sizes must agree.  Each layer object belongs to one network: a
        layer already in another Network is refused (ValueError).  Weights
        assigned to a Dense layer before are kept, in ``dtype``.
    backend : str or None
        ``"numpy"`` (reference) or ``"cython"`` (compiled); None uses the
        default (``fastnn.set_backend``, ``FASTNN_BACKEND``, else compiled).
    dtype : {"float64", "float32"}
        Dtype of weights, activations and gradients.
    seed : int or None
        Seeds the initial weights, dropout masks and the default shuffling, so
        the same seed gives the same network on every backend.

    Attributes
    ----------
    layers : list of Layer
    n_inputs, n_outputs : int
        Width of the input ``X`` (n, n_inputs) and of the output (n, n_outputs).
        When a ``Flatten`` comes before the first Dense layer, ``X`` may also be
        ``(n, d1, d2, ...)`` with ``d1 * d2 * ... == n_inputs`` (flattened where it
        enters).  ``predict``, ``forward`` and calling the network also take one
        sample, a 1-D ``X`` of ``n_inputs`` values, and return a 1-D output of
        ``n_outputs``, as ``nn.Linear`` does.
    dtype : numpy.dtype
    ops : NumpyOps
        The backend's kernels (``backend`` is its name).

    Examples
    --------
    The XOR network of the tutorials:

    >>> import fastnn
    >>> from fastnn import Dense, Network, Sigmoid
    >>> net = Network([Dense(2, 4), Sigmoid(), Dense(4, 1), Sigmoid()], seed=0)
    >>> net.n_inputs, net.n_outputs, net.dtype.name
    (2, 1, 'float64')
    >>> X, y = fastnn.datasets.xor()
    >>> net.predict(X).shape
    (4, 1)
    """

    def __init__(self, layers: Iterable[Layer], *, backend: str | NumpyOps | None = None,
                 dtype: DTypeLike = "float64", seed: int | None = None) -> None:
        if isinstance(layers, Layer) or not isinstance(layers, Iterable):
            raise TypeError(f"layers must be a list of fastnn Layers, got {layers!r}")
        layers = list(layers)
        seed = check_int(seed, "seed", minimum=0, allow_none=True)
        if not layers:
            raise ValueError("a Network needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {i} is {layer!r}, not a fastnn Layer")
        if not any(isinstance(layer, Dense) for layer in layers):
            raise ValueError("a Network needs at least one Dense layer")
        if len({id(layer) for layer in layers}) != len(layers):
            raise ValueError("the same layer object appears twice in the network")
        for i, layer in enumerate(layers):
            if layer._in_network:
                raise ValueError(
                    f"layer {i} ({layer!r}) already belongs to another Network; building it "
                    "again would change that network's weights (and dtype), so each network "
                    "needs its own layer objects: make new ones (e.g. Dense(...) again), or "
                    "copy.deepcopy the whole Network")
        self.layers = layers
        self.dtype = check_dtype(dtype)
        self.ops = get_backend(backend)
        self.seed = seed
        rng = np.random.default_rng(seed)
        self.n_inputs = next(layer for layer in layers if isinstance(layer, Dense)).n_in
        first_dense = next(i for i, layer in enumerate(layers) if isinstance(layer, Dense))
        # a Flatten before the first Dense: inputs (n, d1, d2, ...) are flattened on entry
        self._flattens_input = any(isinstance(layer, Flatten) for layer in layers[:first_dense])
        if self._flattens_input:
            first_flatten = next(i for i, layer in enumerate(layers) if isinstance(layer, Flatten))
            for layer in layers[:first_flatten]:
                if isinstance(layer, Softmax):
                    raise ValueError(f"{layer!r} before {layers[first_flatten]!r}: fastnn's "
                                     "Softmax works on the flattened features of each sample; "
                                     "put it after the Flatten")
        width = self.n_inputs
        for i, layer in enumerate(layers):
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            try:
                width = layer.build(width, self.ops, self.dtype, rng, nxt)
            except ValueError as exc:
                raise ValueError(f"layer {i}: {exc}") from None
        self.n_outputs = width
        self._shuffle_rng = np.random.default_rng(rng.integers(0, 2**63))
        self._plan = self._make_plan()
        self._last_output_shape: tuple[int, ...] | None = None
        self._last_input_shape: tuple[int, ...] | None = None
        self._fit_lock = threading.Lock()   # held while fit runs: one fit at a time
        self.stop_training = False          # a callback sets it to end fit after an epoch
        for layer in layers:                # built: from now on this network's alone
            layer._in_network = True

    def __getstate__(self) -> dict[str, Any]:
        # a lock does not pickle; a copy or an unpickled network gets its own
        state = self.__dict__.copy()
        del state["_fit_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a network pickled before Flatten and one-sample input lacks their attributes
        state = {"_flattens_input": False, "_last_input_shape": None, **state}
        self.__dict__.update(state)
        self._fit_lock = threading.Lock()

    @property
    def backend(self) -> str:
        """Name of the backend this network runs on."""
        return self.ops.name

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Network([{inner}], backend={self.backend!r}, dtype={self.dtype.name!r})"

    def _make_plan(self) -> list[tuple[Layer, Activation | None]]:
        """(layer, fused activation or None) pairs; a fused activation is not run apart.

        Only fastnn's own Dense and activations fuse (a subclass that overrides
        none of their computing methods counts as their own): an activation
        with its own ``forward``/``backward`` runs as a layer of its own, so
        its code runs, on every backend.
        """
        plan: list[tuple[Layer, Activation | None]] = []
        i = 0
        while i < len(self.layers):
            layer = self.layers[i]
            nxt = self.layers[i + 1] if i + 1 < len(self.layers) else None
            if (isinstance(layer, Dense) and isinstance(nxt, Activation)
                    and not user_methods(layer, "Layer") and not user_methods(nxt, "Layer")):
                plan.append((layer, nxt))
                i += 2
            else:
                plan.append((layer, None))
                i += 1
        return plan

    def parameters(self) -> Iterator[tuple[str, NDArray[Any], NDArray[Any] | None]]:
        """Yield (key, param, grad) for every trainable array, e.g. ("0.W", W, dW).

        Yields
        ------
        key : str
            ``"<layer index>.<name>"``, e.g. ``"0.W"``, ``"0.b"``.
        param : ndarray
            The parameter itself (e.g. a Dense ``W``, shape (n_in, n_out)).
        grad : ndarray or None
            Its gradient from the last ``backward`` (same shape), None before one.
        """
        for i, layer in enumerate(self.layers):
            grads = layer.grads()
            for name, param in layer.params().items():
                yield f"{i}.{name}", param, grads[name]

    # ------------------------------------------------------------ passes
    def _forward(self, X: NDArray[Any], training: bool, keep: bool = True,
                 interrupt: _StopOnInterrupt | None = None) -> NDArray[Any]:
        """The layers on X; ``keep=False`` (inference) leaves every layer's state alone.

        With ``interrupt`` (fit's), raises ``_BatchInterrupted`` before a layer
        once Ctrl-C has been asked for.
        """
        for layer, activation in self._plan:
            if interrupt is not None and interrupt.requested:
                raise _BatchInterrupted
            if activation is None:
                X = layer.forward(X, training=training, keep=keep)
            else:
                X = layer.forward(X, training=training, keep=keep,  # type: ignore[call-arg]
                                  activation=activation)
        return X

    def _inputs(self, X: ArrayLike, name: str = "X", *,
                single: bool = False) -> tuple[NDArray[Any], tuple[int, ...]]:
        """X where it enters: (n_samples, n_inputs), C-contiguous, the network's dtype.

        A network with a Flatten before its first Dense takes (n, d1, d2, ...)
        and flattens it here; with ``single``, a 1-D X is one sample.  Returns
        the array and X's own shape.
        """
        arr = as_numeric(X, name)
        shape = arr.shape
        if single and arr.ndim == 1:
            if shape[0] != self.n_inputs:
                raise ValueError(f"{name} has shape {shape}: one sample needs {self.n_inputs} "
                                 f"values (several samples: a 2-D array (n_samples, "
                                 f"{self.n_inputs}))")
            arr = arr.reshape(1, -1)
        elif self._flattens_input and arr.ndim > 2:
            per = int(np.prod(shape[1:]))
            if per != self.n_inputs:
                raise ValueError(f"{name} has shape {shape}, {per} values per sample once "
                                 f"flattened, but the network expects {self.n_inputs}")
            arr = arr.reshape(shape[0], per)
        return as_samples(arr, self.dtype, self.n_inputs, name), shape

    def forward(self, X: ArrayLike, *, training: bool = False) -> NDArray[Any]:
        """Run the layers on X, keeping what ``backward`` needs.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_inputs), or (n_inputs,) for one sample
            (or (n_samples, d1, d2, ...) after a Flatten, see ``Network``)
        training : bool, default False
            Dropout is active only when True.

        Returns
        -------
        ndarray, shape (n_samples, n_outputs), or (n_outputs,) for one sample
        """
        Xa, shape = self._inputs(X, single=True)
        out = self._forward(Xa, training)
        if len(shape) == 1:
            out = out[0]
        self._last_input_shape = shape
        self._last_output_shape = out.shape
        return out

    def backward(self, grad: ArrayLike) -> NDArray[Any]:
        """Back-propagate d loss / d output; sets every layer's gradients.

        Parameters
        ----------
        grad : array-like, shape (n_samples, n_outputs)
            d loss / d output of the last ``forward`` (its shape: (n_outputs,)
            after a forward of one sample).

        Returns
        -------
        ndarray, the shape of the last forward's X
            d loss / d input: (n_samples, n_inputs), (n_inputs,) for one sample,
            (n_samples, d1, d2, ...) for an input a Flatten flattened.
        """
        if self._last_output_shape is None or self._last_input_shape is None:
            raise RuntimeError("Network.backward called before forward")
        out = as_float_array(grad, self.dtype, "grad")
        if out.shape != self._last_output_shape:
            raise ValueError(f"grad has shape {out.shape} but the last forward output has "
                             f"shape {self._last_output_shape}")
        out = out.reshape(-1, self.n_outputs)
        for layer, _ in reversed(self._plan):
            out = layer.backward(out)
        return out.reshape(self._last_input_shape)

    def _backward_no_input_grad(self, grad: NDArray[Any],
                                interrupt: _StopOnInterrupt | None = None) -> None:
        """backward without d loss / d input; ``interrupt`` as in ``_forward``."""
        for k, (layer, _) in enumerate(reversed(self._plan)):
            if interrupt is not None and interrupt.requested:
                raise _BatchInterrupted
            if (k == len(self._plan) - 1 and isinstance(layer, Dense)
                    and "backward" not in user_methods(layer, "Layer")):
                layer.backward(grad, need_dX=False)
            else:
                grad = layer.backward(grad)

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """Network output, dropout off.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_inputs), or (n_inputs,) for one sample
            (or (n_samples, d1, d2, ...) after a Flatten, see ``Network``)

        Returns
        -------
        ndarray, shape (n_samples, n_outputs), or (n_outputs,) for one sample

        Examples
        --------
        >>> from fastnn import Dense, Network
        >>> net = Network([Dense(3, 2)], seed=0)
        >>> net.predict([[1.0, 2.0, 3.0]]).shape, net.predict([1.0, 2.0, 3.0]).shape
        ((1, 2), (2,))
        """
        Xa, shape = self._inputs(X, single=True)
        out = self._forward(Xa, training=False, keep=False)
        return out[0] if len(shape) == 1 else out

    def __call__(self, X: ArrayLike) -> NDArray[Any]:
        """Same as ``predict(X)``."""
        return self.predict(X)

    # --------------------------------------------------------- training
    def fit(self, X: ArrayLike | Iterable[tuple[ArrayLike, ArrayLike]],
            y: ArrayLike | None = None, *, loss: Loss | type[Loss] | str,
            optimizer: Optimizer | type[Optimizer] | str, epochs: int = 1,
            batch_size: int | None = None, shuffle: bool = True, seed: int | None = None,
            verbose: int = 0,
            validation_data: tuple[ArrayLike, ArrayLike] | None = None,
            early_stopping: bool = False, patience: int = 10, min_delta: float = 0.0,
            restore_best_weights: bool = True, sample_weight: ArrayLike | None = None,
            class_weight: dict[Any, float] | str | None = None,
            clip_grad_norm: float | None = None,
            clip_grad_value: float | None = None, validation_split: float = 0.0,
            lr_scheduler: LRScheduler | None = None, callbacks: Sequence[Callback] = (),
            metrics: Sequence[str] | None = None) -> History:
        """Train on (X, y) with mini-batch gradient descent.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_inputs), or an iterable of batches
            (or (n_samples, d1, d2, ...) after a Flatten, see ``Network``).
            An ``np.memmap`` (or ``np.load(..., mmap_mode="r")``) that is
            C-contiguous and of the network's dtype is used in place: only the
            rows of each batch are read, nothing copies it (another dtype or
            layout is refused, as converting would copy the whole file;
            ``predict`` and ``evaluate`` convert it, as any array).  An
            array of rows that is not NumPy's (an h5py or zarr dataset) is
            read a batch at a time, with an array fit's batches and weights
            (``validation_split``, weights, ``metrics`` and a per-batch
            schedule refused).  With ``y`` omitted: a re-iterable of ``(X_batch, y_batch)`` pairs,
            each one batch, iterated once per epoch (a list, a DataLoader, an
            object reading files); training equals training on the
            concatenated arrays with ``shuffle=False`` and the same batch
            boundaries.  ``shuffle`` must then be False, and ``batch_size``,
            ``seed``, ``validation_split``, ``sample_weight``,
            ``class_weight``, ``metrics`` and a per-batch ``lr_scheduler`` are
            refused (the iterable decides the batches and their order;
            ``validation_data`` and the rest apply).
        y : array-like, shape (n_samples, n_outputs), (n_samples,) for one output,
            or class labels (n_samples,) for CrossEntropyLoss; None (omitted)
            when X is an iterable of batches
        loss : Loss, Loss subclass or str
            E.g. ``MSELoss()``, ``HuberLoss(delta=0.5)`` or ``"mse"``, ``"l1"``,
            ``"huber"``, ``"smooth_l1"``, ``"bce"``, ``"bce_with_logits"``,
            ``"cross_entropy"``.
        optimizer : Optimizer, Optimizer subclass or str
            E.g. ``SGD(lr=0.1)``, ``"adam"``.  Its state carries over to the
            next ``fit`` with the same optimizer object.
        epochs : int, default 1
            Number of passes over the data (fewer with ``early_stopping``).
        batch_size : int or None
            None trains on the whole set at once; the last partial batch is used.
        shuffle : bool, default True
            Visit the samples in a new random order each epoch.
        seed : int or None
            Seeds the shuffling; None continues the network's own generator.
        verbose : int, default 0
            0 prints nothing.  1 shows a progress bar over the epochs with the
            loss and the time left (with tqdm when it is installed, on stderr;
            else one line per epoch on stdout).  2 prints one line per epoch on
            stdout (epoch, losses, time left) even when tqdm is installed.
        validation_data : (X_val, y_val) or None
            Evaluated after each epoch into ``val_loss`` (and ``val_accuracy``).
        early_stopping : bool, default False
            Stop when the monitored value -- ``val_loss`` when
            ``validation_data`` is given, else the training ``loss`` -- has not
            improved by more than ``min_delta`` for ``patience`` epochs in a row.
        patience : int, default 10
            Epochs without improvement after which training stops (>= 1).
        min_delta : float, default 0.0
            An epoch improves on the best value so far only if it is lower by
            more than ``min_delta``.
        restore_best_weights : bool, default True
            With ``early_stopping``: at the end of ``fit`` (stopped early or
            not), copy the parameters of the best epoch back into the layers'
            arrays in place (a Dense ``W`` stays the same array object).  The
            optimizer state (momentum, Adam's moments) is not rolled back.
            ``early_stopping``, ``patience``, ``min_delta`` and
            ``restore_best_weights`` are a shorthand for the callback
            ``fastnn.callbacks.EarlyStopping(monitor, min_delta, patience,
            "min", restore_best_weights)``.
        validation_split : float in [0, 1), default 0.0
            Hold out the last fraction of the rows (taken before any
            shuffling, as Keras) as validation data: ``int(n * (1 -
            validation_split))`` rows train.  Not with ``validation_data``.
        lr_scheduler : fastnn.schedules.LRScheduler, optional
            A learning-rate schedule (``StepLR``, ``OneCycleLR``, ...), bound to
            ``optimizer`` on first use.  Epoch-based schedules step after each
            epoch (``ReduceLROnPlateau`` on ``val_loss`` when there is
            validation data, else on ``loss``); ``OneCycleLR`` after each batch
            (the values of every batch of the fit are computed up front and
            applied by the trainer, in C on the compiled backend).
        callbacks : list of fastnn.callbacks.Callback, optional
            Their hooks run between epochs (``on_train_begin``,
            ``on_epoch_begin``, ``on_epoch_end``, ``on_train_end``); setting
            ``network.stop_training = True`` in one ends training after the
            epoch.  With callbacks the compiled backend runs one epoch per call.
        metrics : list of str, optional
            ``"accuracy"``, ``"mae"``, ``"mse"``: recorded per epoch in the
            History under their names (and ``val_`` + name with validation
            data).  Each is computed after the epoch, in one pass over the
            training rows with the epoch's final weights, dropout off (as
            ``evaluate`` would give them; not Keras's running mean over the
            epoch's batches), by the backend's metric kernels.  ``accuracy`` is
            ``evaluate``'s: argmax for cross-entropy, per output at 0.5 otherwise.
        sample_weight : array-like of shape (n_samples,), optional
            A weight >= 0 per sample (finite, not all 0), gathered with each
            batch's rows.  A batch's loss is sum_i w_i l_i / sum_i w_i for
            ``reduction="mean"`` (sum_i w_i l_i for ``"sum"``), l_i the
            sample's loss -- for the per-element losses (MSE, L1, ...) the
            mean over its outputs -- so in full-batch training an integer
            weight is the same as that many copies of the row.  With
            ``CrossEntropyLoss(weight=...)`` and class labels, the two
            multiply: sample i counts w_i * weight[y_i] times, in the sum and
            in the mean's denominator (PyTorch's, per copy).  A batch whose
            total weight is 0 under ``"mean"`` is an error (ZeroWeightError,
            a ValueError), raised before the epoch that has it runs.  The
            ``validation_data`` is scored without sample weights.
        class_weight : dict or "balanced", optional
            Turned into sample weights (multiplying ``sample_weight``):
            ``{class: weight}`` (unnamed classes weigh 1), or ``"balanced"``,
            scikit-learn's n_samples / (n_classes * count of the class), over
            the classes present.  The classes are the integer labels of
            ``CrossEntropyLoss``, or the 0/1 targets of a one-output
            ``BCELoss`` / ``BCEWithLogitsLoss``.
        clip_grad_norm : float >= 0 or None, default None
            After each batch's backward, before the update, scale all the
            gradients together as ``torch.nn.utils.clip_grad_norm_(params,
            clip_grad_norm)``: with ``total`` the L2 norm of all of them at
            once, multiply each by ``clip_grad_norm / (total + 1e-6)`` when
            that is below 1.
        clip_grad_value : float >= 0 or None, default None
            Likewise, clamp every gradient element to ``[-clip_grad_value,
            clip_grad_value]`` (``torch.nn.utils.clip_grad_value_``); after
            the norm's scaling when both are given.

        Returns
        -------
        History
            One record per epoch run: ``loss``, ``lr`` (the learning rate the
            epoch started with), the metrics and the validation scores;
            ``stopped_epoch`` and ``best_epoch`` are set with early stopping;
            ``interrupted`` after Ctrl-C.

        Raises
        ------
        RuntimeError
            When ``fit`` is already running on this network in another thread.
        ValueError
            For a bad argument: ``validation_split`` outside [0, 1) or with
            ``validation_data``, an unknown metric, a ``OneCycleLR`` with fewer
            steps left than the fit's batches, or a schedule that needs a
            hyper-parameter the optimizer does not have (``OneCycleLR``'s
            momentum cycling without SGD's momentum or Adam's betas).
        FloatingPointError
            If training diverges: a batch's loss is NaN or infinite, or its update
            would make a weight or an optimizer state value (momentum, Adam's
            moments) NaN or infinite, as a non-finite gradient or a far too
            large learning rate does.  The message names the epoch; that update
            is not applied, so weights and optimizer state are exactly those
            the previous batch left.

        Notes
        -----
        With ``verbose``, validation data, ``early_stopping``, ``metrics``,
        ``callbacks`` or an epoch-based ``lr_scheduler``, the compiled backend
        runs one epoch per native call (Python decides between epochs); the
        numbers are the same as without them.  ``OneCycleLR`` does not need
        that: its per-batch values are handed to the native loop for the run.

        Pieces of your own -- a ``Layer``, an ``Activation`` with its own
        ``forward``/``backward``, a ``Loss`` with its own ``compute``, an
        ``Optimizer`` with its own ``step`` -- run as written on both
        backends.  The compiled backend runs its native loop only when it
        knows every piece exactly (a built-in class, or a subclass that
        overrides none of those methods); otherwise the whole ``fit`` runs
        the Python training loop (``fastnn.training.PythonTrainer``, with
        the compiled kernels for the built-in layers) and warns once, naming
        the piece and the method.

        Ctrl-C (SIGINT) during ``fit`` in the main thread stops training at
        once, also in the middle of a long batch, and ``fit`` returns the
        History of the completed epochs with ``interrupted=True``, warning
        once.  The batch being computed is dropped whole: the weights, the
        optimizer state and the dropout step counts are those after the last
        completed batch -- never a half-applied update (only the layers'
        gradient arrays, ``dW`` and ``db``, may hold partial values of the
        dropped batch; the compiled backend's native loop keeps a Dense
        layer's gradients to itself and leaves its ``dW`` and ``db`` as they
        were before ``fit``).  The reference backend notices the signal between
        layers (one NumPy call, e.g. a large product, runs to its end first);
        the compiled one, whose C code runs with the GIL released, installs
        its own C handler for each call and notices it between layers and
        inside its matrix products, within milliseconds.  The best weights
        of ``early_stopping`` are not restored after an interrupt; a Ctrl-C
        while they are being copied back at the end of ``fit`` is held until
        the copy is complete (all of them are the best epoch's), then raises
        KeyboardInterrupt.  A second Ctrl-C -- before ``fit`` has returned,
        even while the compiled code still runs, or at any later time --
        raises KeyboardInterrupt at once; two are never merged into one
        (except, on the reference backend, two within a single NumPy call).
        Under a custom SIGINT handler, or in another thread, signals are
        left alone.

        The compiled backend releases the GIL while it computes, so separate
        networks train in separate threads at the same time, with the same
        numbers as one after the other; ``predict`` may be called from several
        threads at once, also while the network trains (it stores nothing in
        the layers).  One network runs one ``fit`` at a time.

        Examples
        --------
        >>> import fastnn
        >>> from fastnn import SGD, Dense, Network, Sigmoid
        >>> X, y = fastnn.datasets.xor()
        >>> net = Network([Dense(2, 4), Sigmoid(), Dense(4, 1), Sigmoid()], seed=0)
        >>> history = net.fit(X, y, loss="mse", optimizer=SGD(lr=2.0), epochs=3000)
        >>> bool(history.loss[-1] < 0.01)
        True
        >>> net.predict(X).round(1).ravel().tolist()
        [0.0, 1.0, 1.0, 0.0]

        Early stopping on the training loss, keeping the best weights:

        >>> history = net.fit(X, y, loss="mse", optimizer=SGD(lr=2.0), epochs=100000,
        ...                   early_stopping=True, patience=5, min_delta=1e-3)
        >>> history.stopped_epoch is not None and len(history.epochs) < 100000
        True
        """
        return _training.fit(self, X, y, loss=loss, optimizer=optimizer, epochs=epochs,
                             batch_size=batch_size, shuffle=shuffle, seed=seed,
                             verbose=verbose, validation_data=validation_data,
                             early_stopping=early_stopping, patience=patience,
                             min_delta=min_delta, restore_best_weights=restore_best_weights,
                             sample_weight=sample_weight, class_weight=class_weight,
                             clip_grad_norm=clip_grad_norm, clip_grad_value=clip_grad_value,
                             validation_split=validation_split, lr_scheduler=lr_scheduler,
                             callbacks=callbacks, metrics=metrics)

    def evaluate(self, X: ArrayLike, y: ArrayLike, *, loss: Loss | type[Loss] | str,
                 sample_weight: ArrayLike | None = None,
                 metrics: Sequence[str] | None = None) -> dict[str, float]:
        """Loss (and accuracy for BCE / cross-entropy) on (X, y), dropout off.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_inputs)
            (or (n_samples, d1, d2, ...) after a Flatten, see ``Network``)
        y : array-like, shape (n_samples, n_outputs), (n_samples,) for one output,
            or class labels (n_samples,) for CrossEntropyLoss
        loss : Loss, Loss subclass or str
        sample_weight : array-like of shape (n_samples,), optional
            A weight >= 0 per sample, as in ``fit`` (the loss is the weighted
            one, the accuracy the weighted fraction).
        metrics : list of str, optional
            Also these: ``"accuracy"``, ``"mae"``, ``"mse"`` (see ``fit``);
            unweighted, so not with ``sample_weight``.

        Returns
        -------
        dict
            ``{"loss": float}``, each metric asked for, and ``"accuracy"`` for
            classification losses:
            for CrossEntropyLoss the fraction of samples whose largest output
            is the target class (the label, or the largest target
            probability); for BCELoss the fraction of all outputs (every
            label of every sample) on the same side of 0.5 as their target,
            as Keras's binary accuracy (logits of ``BCEWithLogitsLoss``: on
            the same side of 0).

        Examples
        --------
        Two labels per sample, three of the four predicted right:

        >>> import fastnn
        >>> from fastnn import Dense, Network, Sigmoid
        >>> net = Network([Dense(2, 2), Sigmoid()], seed=0)
        >>> net.layers[0].W = [[8.0, 0.0], [0.0, -8.0]]
        >>> net.layers[0].b = [0.0, 0.0]
        >>> net.evaluate([[1.0, 1.0], [-1.0, -1.0]], [[1, 0], [0, 0]], loss="bce")["accuracy"]
        0.75
        """
        loss = get_loss(loss)
        X, T = self._check_data(X, y, loss)
        weights = None
        if sample_weight is not None:
            weights = as_weights(sample_weight, "sample_weight", X.shape[0], "samples")
            if not (weights > 0).any():
                raise ValueError("every sample has weight 0: the weighted loss is undefined")
            if metrics:
                raise ValueError("the metrics are computed without sample weights: give "
                                 "evaluate either metrics or sample_weight, not both (its "
                                 "loss and accuracy are the weighted ones)")
        return self._score(X, T, loss, weights, resolve_metrics(metrics, loss, T))

    def _check_data(self, X: ArrayLike, y: ArrayLike, loss: Loss, name: str = "X",
                    y_name: str = "y") -> tuple[NDArray[Any], NDArray[Any]]:
        if isinstance(loss, BCELoss) and not isinstance(self.layers[-1], (Sigmoid, Softmax)):
            raise ValueError("BCELoss takes probabilities: end the network with Sigmoid() "
                             f"(its last layer is {self.layers[-1]!r})")
        Xa = self._inputs(X, name)[0]
        if np.shape(y)[:1] != (Xa.shape[0],):
            raise ValueError(f"{name} has {Xa.shape[0]} samples but {y_name} has shape "
                             f"{np.shape(y)}")
        return Xa, loss.prepare_target(y, Xa.shape[0], self.n_outputs, self.dtype, y_name)

    def _score(self, X: NDArray[Any], T: NDArray[Any], loss: Loss,
               sample_weight: NDArray[np.float64] | None = None,
               metrics: Sequence[tuple[str, str]] = ()) -> dict[str, float]:
        out = self._forward(X, training=False, keep=False)
        if sample_weight is None:
            value = loss.compute(self.ops, out, T, need_grad=False)[0]
        else:
            value = loss.compute(self.ops, out, T, need_grad=False,
                                 sample_weight=sample_weight)[0]
        scores: dict[str, float] = {"loss": value}
        if loss.classification:
            scores["accuracy"] = _accuracy(out, T, loss, sample_weight)
        scores.update(score_metrics(self.ops, out, T, metrics))
        return scores

    # ----------------------------------------------------------- storage
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write layers, weights and dtype to ``path`` (.npz), atomically.

        The file is written beside ``path`` and renamed over it, so a failure
        part-way leaves any previous file intact (a process killed mid-save
        may leave a hidden ``.fastnn-*.npz.tmp`` file beside it).  A new file
        gets the permissions ``open(path, "w")`` would give it (0666 less the
        umask); a file replaced keeps its permission bits.  When ``path`` is
        a symbolic link, the file it points to is replaced (written beside
        it, in its directory) and the link is left as it is.

        Parameters
        ----------
        path : str or os.PathLike
            The file to write (NumPy's ``.npz`` format, no pickles).

        Raises
        ------
        ValueError
            If a parameter holds NaN or infinity (the message names it and
            the first bad index): ``load`` refuses such a file, so ``save``
            writes nothing rather than a model that cannot be reopened, and
            any previous file at ``path`` is left as it was.
        """
        _io.save(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str],
             backend: str | NumpyOps | None = None) -> Network:
        """A Network from a file written by ``save``, bit-exact, with its dtype.

        Safe on untrusted files: only the members the network's description
        needs are read, each checked (zip entry, dtype, shape, order, size)
        against that description before its data is read, and never more than
        that data; a member the description does not need is not read at all.
        Loading costs the memory of the network the file describes (twice its
        weights, briefly), no more.

        Parameters
        ----------
        path : str or os.PathLike
            A file written by ``save``.
        backend : str or None
            Backend of the new network (None: the default).

        Returns
        -------
        Network

        Raises
        ------
        ValueError
            For any problem with the file's content, naming the file and the
            problem: not a zip archive, no or a damaged description (bad JSON,
            nested too deeply, unknown layer types or arguments), a missing
            array, an array of the wrong dtype, shape or order, a member that
            is encrypted, uses a compression other than stored or deflate,
            declares sizes it cannot have, is truncated or fails its CRC, a
            malformed Dropout generator state, NaN or infinite weights (which
            ``save`` refuses to write, so no file it wrote is refused here).
        OSError
            For errors of the file system (no such file, a directory, no
            permission).
        """
        return _io.load(cls, path, backend)

    # ----------------------------------------------------------- PyTorch
    def to_torch(self) -> Any:
        """An equivalent ``torch.nn.Sequential``, with copies of the weights.

        Each ``Dense`` becomes an ``nn.Linear`` (``weight = W.T``, shape
        (n_out, n_in); ``bias = b``), each activation its PyTorch module
        (``Softmax`` as ``nn.Softmax(dim=1)``, ``LeakyReLU`` with its
        ``negative_slope``) and ``Dropout(p)`` ``nn.Dropout(p)``.  The modules
        have the network's dtype; the result is in evaluation mode (like
        ``predict``: dropout off), so call ``.train()`` before training it.
        Needs PyTorch (``pip install torch``), imported only here.

        Returns
        -------
        torch.nn.Sequential
            Maps a tensor (n_samples, n_inputs) to (n_samples, n_outputs), the
            same numbers as ``predict``.
        """
        return _torch_interop.to_torch(self)

    @classmethod
    def from_torch(cls, module: Any, *, backend: str | NumpyOps | None = None) -> Network:
        """A Network equivalent to a ``torch.nn.Sequential``, with copies of its weights.

        Reads ``nn.Linear`` (with or without bias; ``W = weight.T``),
        ``nn.Sigmoid``, ``nn.ReLU``, ``nn.Tanh``, ``nn.SiLU``, ``nn.LeakyReLU``,
        ``nn.Softmax`` (over dim 1 or -1), ``nn.Identity`` and ``nn.Dropout``;
        nested ``nn.Sequential`` / ``nn.ModuleList`` are flattened.  The dtype
        (float32 or float64) is the weights'.  Needs PyTorch (``pip install
        torch``), imported only here.

        Parameters
        ----------
        module : torch.nn.Sequential, torch.nn.ModuleList or sequence of modules
        backend : str or None
            Backend of the new network (None: the default).

        Returns
        -------
        Network
            ``predict(X)`` for X (n_samples, in_features) gives the module's
            output in evaluation mode.

        Raises
        ------
        TypeError
            For a module fastnn has no layer for (``nn.Conv2d``, a custom
            module, ...); the message names it and its position.
        ValueError
            For weights of another dtype than float32/float64, or of different
            dtypes, a ``Softmax`` over another dimension, or sizes that do not
            chain.
        """
        return _torch_interop.from_torch(cls, module, backend=backend)

    # -------------------------------------------------------------- ONNX
    def to_onnx(self, path: str | os.PathLike[str] | None = None, *,
                sample_shape: tuple[int, ...] | None = None) -> Any:
        """An ONNX model of ``predict``, in the network's dtype; written to ``path`` if given.

        Each layer is one ONNX operator (opset 20): ``Dense`` a ``Gemm``
        (``MatMul`` without bias; ``W`` as stored, (n_in, n_out)), the
        activations ``Relu``, ``Sigmoid``, ``Tanh``, ``Softmax`` (axis 1),
        ``LeakyRelu``, ``Elu``, ``Selu``, ``Gelu``, ``Mish``,
        ``Identity`` and SiLU as ``Sigmoid`` and ``Mul``; ``Dropout`` an ONNX
        ``Dropout`` (the identity at inference), ``Flatten`` a ``Flatten``,
        ``BatchNorm1d`` a ``BatchNormalization`` with the running statistics,
        ``LayerNorm`` a ``LayerNormalization``.  Where ONNX's float32
        attributes or onnxruntime's missing float64 ``Erf`` would change a
        float64 model's numbers (Softplus's beta and threshold, SELU, a
        LeakyReLU slope or ELU alpha float32 cannot hold, exact GELU), the layer is a model-local
        function of domain ``fastnn`` made of standard operators.  The input
        ``"input"`` is (batch, n_inputs) with a dynamic batch (or (batch,
        *sample_shape)), the output ``"output"`` (batch, n_outputs);
        onnxruntime gives ``predict``'s numbers to rounding.  ONNX holds eps
        as float32: a BatchNorm1d / LayerNorm eps of 1e-5 is 1e-5 + 2.5e-13
        there.  Needs the ``onnx`` package (``pip install "fastnn[onnx]"``).

        Parameters
        ----------
        path : str or path-like, optional
            Also write the model there (``onnx.save``).
        sample_shape : tuple of int, optional
            The shape of one input sample, e.g. ``(28, 28)`` for a network
            whose Flatten comes before its first Dense; default ``(n_inputs,)``.

        Returns
        -------
        onnx.ModelProto

        Raises
        ------
        TypeError
            For a layer of your own (the message names it).
        """
        from .interop import onnx as _onnx_interop
        return _onnx_interop.to_onnx(self, path, sample_shape=sample_shape)

    @classmethod
    def from_onnx(cls, model_or_path: Any, *, backend: str | NumpyOps | None = None) -> Network:
        """A Network equal to an ONNX model: what ``to_onnx`` writes, or an MLP that
        ``torch.onnx.export`` wrote from an ``nn.Sequential`` of the layers fastnn has.

        Reads ``Gemm`` / ``MatMul`` (+ ``Add``), the activations' operators and
        fastnn's functions (see ``to_onnx``), ``PRelu`` with one slope, ``Softplus``,
        ``Dropout``, ``Flatten``, ``BatchNormalization``, ``LayerNormalization``,
        and the operator patterns torch writes for SiLU, GELU, Mish and
        Softplus(beta).  The dtype is the input's (float32 or float64).

        Parameters
        ----------
        model_or_path : onnx.ModelProto, str or path-like
        backend : str or None
            Backend of the new network (None: the default).

        Returns
        -------
        Network

        Raises
        ------
        TypeError
            For an operator (or a graph shape) fastnn has no layer for; the
            message names the node.
        ValueError
            For an operator's setting fastnn's layer does not have (a Softmax
            over another axis, a training-mode BatchNormalization, ...).
        """
        from .interop import onnx as _onnx_interop
        return _onnx_interop.from_onnx(cls, model_or_path, backend=backend)


def _accuracy(out: NDArray[Any], T: NDArray[Any], loss: Loss,
              sample_weight: NDArray[np.float64] | None = None) -> float:
    """The accuracy of the outputs ``out`` (n, C) for the targets ``T`` of ``loss``.

    CrossEntropyLoss: the fraction of samples whose largest output is the
    target class (its label, or the largest target probability).  BCELoss and
    any other classification loss: per label, as Keras's binary accuracy --
    the fraction of all n * C outputs on the same side of the loss's
    ``threshold`` (0.5; 0 for the logits of BCEWithLogitsLoss) as their
    target is of 0.5.  With ``sample_weight``, each sample's results count
    with its weight.
    """
    if isinstance(loss, CrossEntropyLoss):
        truth = T if T.ndim == 1 else T.argmax(axis=1)
        right = out.argmax(axis=1) == truth
    else:
        right = (out > loss.threshold) == (T.reshape(out.shape) > 0.5)
    if sample_weight is None:
        return float(np.mean(right))
    weights = np.broadcast_to(sample_weight.reshape((-1,) + (1,) * (right.ndim - 1)),
                              right.shape)
    return float(np.average(right, weights=weights))


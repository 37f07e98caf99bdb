"""Network: a stack of layers with forward/backward, fit/predict/evaluate, save/load.

Why it is built this way: the network owns the execution *plan* -- its layers
in order, with each activation that directly follows a Dense layer fused into
that layer's kernel call -- and the data checks at the API boundary.  Data is
converted once per call (never per batch); the batch order comes from a seeded
``numpy.random.Generator`` here in Python, so every backend visits the samples
in the same order and gives the same weights.
"""

import json
import numbers
import os
import tempfile
import time

import numpy as np

from ._validation import as_samples, check_dtype, check_int
from .backends import get_backend
from .layers import LAYER_TYPES, Activation, Dense, Dropout, Layer, Sigmoid, Softmax
from .losses import BCELoss, get_loss
from .optimizers import get_optimizer

__all__ = ["Network", "History"]

#: Version of the ``save`` file format; ``load`` rejects any other.
FORMAT_VERSION = 1


class History:
    """Per-epoch records of ``fit``: ``history.loss``, ``history["val_loss"]``, ...

    Attributes
    ----------
    history : dict of str -> list of float
        ``loss`` (the mean of the batch losses, weighted by batch size, or their
        sum for ``reduction="sum"``) always; ``val_loss``, and ``val_accuracy``
        for classification losses, when validation data is given.
    epochs : list of int
    """

    def __init__(self):
        self.history = {}
        self.epochs = []

    def _extend(self, values):
        """Append the next epochs' records: ``values`` maps each key to a list."""
        count = len(next(iter(values.values())))
        self.epochs.extend(range(len(self.epochs), len(self.epochs) + count))
        for key, value in values.items():
            self.history.setdefault(key, []).extend(value)

    def __getitem__(self, key):
        return self.history[key]

    def __getattr__(self, key):
        try:
            return self.__dict__["history"][key]
        except KeyError:
            raise AttributeError(f"History has no record {key!r}; it has "
                                 f"{sorted(self.__dict__['history'])}") from None

    def __repr__(self):
        return f"History(epochs={len(self.epochs)}, keys={sorted(self.history)})"


class Network:
    """A feed-forward stack of layers.

    Parameters
    ----------
    layers : list of Layer
        E.g. ``[Dense(2, 4), Sigmoid(), Dense(4, 1), Sigmoid()]``.  Consecutive
        Dense sizes must agree.
    backend : str or None
        ``"numpy"`` (reference) or ``"cython"`` (compiled); None uses the
        default (``fastnn.set_backend``, ``FASTNN_BACKEND``, else compiled).
    dtype : {"float64", "float32"}
        Dtype of weights, activations and gradients.
    seed : int or None
        Seeds the initial weights, dropout masks and the default shuffling, so
        the same seed gives the same network on every backend.
    """

    def __init__(self, layers, *, backend=None, dtype="float64", seed=None):
        layers = list(layers)
        if not layers:
            raise ValueError("a Network needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"layer {i} is {layer!r}, not a fastnn Layer")
        if not any(isinstance(layer, Dense) for layer in layers):
            raise ValueError("a Network needs at least one Dense layer")
        if len({id(layer) for layer in layers}) != len(layers):
            raise ValueError("the same layer object appears twice in the network")
        self.layers = layers
        self.dtype = check_dtype(dtype)
        self.ops = get_backend(backend)
        self.seed = seed
        rng = np.random.default_rng(seed)
        self.n_inputs = next(layer for layer in layers if isinstance(layer, Dense)).n_in
        width = self.n_inputs
        for i, layer in enumerate(layers):
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            try:
                width = layer.build(width, self.ops, self.dtype, rng, nxt)
            except ValueError as exc:
                raise ValueError(f"layer {i}: {exc} (from the layer before it)") from None
        self.n_outputs = width
        self._shuffle_rng = np.random.default_rng(rng.integers(0, 2**63))
        self._plan = self._make_plan()
        self._last_output_shape = None

    @property
    def backend(self):
        """Name of the backend this network runs on."""
        return self.ops.name

    def __repr__(self):
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Network([{inner}], backend={self.backend!r}, dtype={self.dtype.name!r})"

    def _make_plan(self):
        """(layer, fused activation or None) pairs; a fused activation is not run apart."""
        plan, i = [], 0
        while i < len(self.layers):
            layer = self.layers[i]
            nxt = self.layers[i + 1] if i + 1 < len(self.layers) else None
            if isinstance(layer, Dense) and isinstance(nxt, Activation):
                plan.append((layer, nxt))
                i += 2
            else:
                plan.append((layer, None))
                i += 1
        return plan

    def parameters(self):
        """Yield (key, param, grad) for every trainable array, e.g. ("0.W", W, dW)."""
        for i, layer in enumerate(self.layers):
            grads = layer.grads()
            for name, param in layer.params().items():
                yield f"{i}.{name}", param, grads[name]

    # ------------------------------------------------------------ passes
    def _forward(self, X, training):
        for layer, activation in self._plan:
            if activation is None:
                X = layer.forward(X, training=training)
            else:
                X = layer.forward(X, training=training, activation=activation)
        return X

    def forward(self, X, *, training=False):
        """Run the layers on X (n, n_inputs) -> (n, n_outputs), keeping what backward needs."""
        out = self._forward(as_samples(X, self.dtype, self.n_inputs), training)
        self._last_output_shape = out.shape
        return out

    def backward(self, grad):
        """Back-propagate d loss / d output (n, n_outputs); sets every layer's gradients.

        Returns d loss / d input, shape (n, n_inputs).
        """
        if self._last_output_shape is None:
            raise RuntimeError("Network.backward called before forward")
        grad = np.ascontiguousarray(grad, dtype=self.dtype)
        if grad.shape != self._last_output_shape:
            raise ValueError(f"grad has shape {grad.shape} but the last forward output has "
                             f"shape {self._last_output_shape}")
        for layer, _ in reversed(self._plan):
            grad = layer.backward(grad)
        return grad

    def _backward_no_input_grad(self, grad):
        for k, (layer, _) in enumerate(reversed(self._plan)):
            if k == len(self._plan) - 1 and isinstance(layer, Dense):
                layer.backward(grad, need_dX=False)
            else:
                grad = layer.backward(grad)

    def predict(self, X):
        """Network output for X (n, n_inputs) -> (n, n_outputs); dropout off."""
        return self._forward(as_samples(X, self.dtype, self.n_inputs), training=False)

    def __call__(self, X):
        return self.predict(X)

    # --------------------------------------------------------- training
    def fit(self, X, y, *, loss, optimizer, epochs=1, batch_size=None, shuffle=True, seed=None,
            verbose=0, validation_data=None):
        """Train on (X, y) with mini-batch gradient descent.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_inputs)
        y : array-like, shape (n_samples, n_outputs), (n_samples,) for one output,
            or class labels (n_samples,) for CrossEntropyLoss
        loss : Loss or str
        optimizer : Optimizer or str
        epochs : int, default 1
        batch_size : int or None
            None trains on the whole set at once; the last partial batch is used.
        shuffle : bool, default True
            Visit the samples in a new random order each epoch.
        seed : int or None
            Seeds the shuffling; None continues the network's own generator.
        verbose : int, default 0
            1 prints one line per epoch.
        validation_data : (X_val, y_val) or None
            Evaluated after each epoch into ``val_loss`` (and ``val_accuracy``).

        Returns
        -------
        History
        """
        loss = get_loss(loss)
        optimizer = get_optimizer(optimizer)
        epochs = check_int(epochs, "epochs", minimum=0)
        batch_size = check_int(batch_size, "batch_size", minimum=1, allow_none=True)
        X, T = self._check_data(X, y, loss)
        if validation_data is not None:
            try:
                X_val, y_val = validation_data
            except (TypeError, ValueError):
                raise TypeError("validation_data must be a pair (X_val, y_val)") from None
            X_val, T_val = self._check_data(X_val, y_val, loss, "X_val")
        rng = np.random.default_rng(seed) if seed is not None else self._shuffle_rng
        n = X.shape[0]
        batch = n if batch_size is None else min(batch_size, n)

        def next_orders(count):
            """Sample orders of the next ``count`` epochs: (count, n), or None when in order."""
            return np.stack([rng.permutation(n) for _ in range(count)]) if shuffle else None

        native = getattr(self.ops, "make_trainer", None) is not None
        per_epoch = bool(verbose) or validation_data is not None
        run = self._epochs_native if native else self._epochs_python
        history = History()
        for totals in run(X, T, loss, optimizer, batch, next_orders, epochs, per_epoch):
            losses = totals / n if loss.reduction == "mean" else totals
            if not per_epoch:                   # a whole chunk of epochs at once
                history._extend({"loss": losses.tolist()})
                continue
            record = {"loss": float(losses[0])}
            if validation_data is not None:
                scores = self._score(X_val, T_val, loss)
                record.update({"val_" + k: v for k, v in scores.items()})
            history._extend({k: [v] for k, v in record.items()})
            if verbose:
                print(f"epoch {len(history.epochs)}/{epochs}  " +
                      "  ".join(f"{k}={v:.6g}" for k, v in record.items()), flush=True)
        return history

    def _epochs_python(self, X, T, loss, optimizer, batch, next_orders, epochs, per_epoch):
        """The reference loop, one epoch at a time.

        Yields, per epoch, a 1-element array of the summed batch losses (each
        times its batch size for ``reduction="mean"``).
        """
        n = X.shape[0]
        mean = loss.reduction == "mean"
        for _ in range(epochs):
            orders = next_orders(1)
            order = None if orders is None else orders[0]
            total = 0.0
            for start in range(0, n, batch):
                idx = slice(start, start + batch) if order is None else order[start:start + batch]
                out = self._forward(X[idx], training=True)
                value, grad = loss.compute(self.ops, out, T[idx])
                self._backward_no_input_grad(grad)
                optimizer.step(self)
                total += value * out.shape[0] if mean else value
            yield np.array([total])

    def _epochs_native(self, X, T, loss, optimizer, batch, next_orders, epochs, per_epoch,
                       seconds_per_call=0.25):
        """The same loop run by the backend's native trainer, many batches per call.

        Each call does about ``seconds_per_call`` of work (whole epochs when
        they are short), so Python -- signals, progress, validation -- is
        re-entered between calls, never inside a batch.  Yields the epochs'
        loss sums as ``_epochs_python`` does, a chunk of epochs at a time.
        """
        n = X.shape[0]
        per_epoch_batches = -(-n // batch)
        dense = [layer for layer in self.layers if isinstance(layer, Dense)]
        for layer in dense:
            if layer.dW is None:
                layer.dW = self.ops.zeros_like(layer.W)
            if layer.bias and layer.db is None:
                layer.db = self.ops.zeros_like(layer.b)
        spec, states = optimizer.native_spec(self)
        stages = [self._stage(i, layer, activation, states)
                  for i, (layer, activation) in enumerate(self._plan)]
        trainer = self.ops.make_trainer(stages, loss.kernel, loss.reduction, spec, X, T, batch)
        max_batches = per_epoch_batches
        try:
            done = 0
            while done < epochs:
                chunk = 1 if per_epoch else min(epochs - done,
                                                max(1, max_batches // per_epoch_batches))
                orders = next_orders(chunk)
                losses = np.zeros(chunk)
                epoch = start = 0
                while epoch < chunk:
                    began = time.perf_counter()
                    before = epoch * per_epoch_batches + start // batch
                    epoch, start = trainer.run(orders, epoch, start, max_batches, losses)
                    ran = epoch * per_epoch_batches + start // batch - before
                    elapsed = time.perf_counter() - began
                    if ran and elapsed > 0:
                        max_batches = max(1, int(ran * seconds_per_call / elapsed))
                done += chunk
                yield losses
        finally:
            final = trainer.close()
            for stage, step in zip(self._plan, final["dropout_steps"]):
                if step is not None:
                    stage[0].step = step
            optimizer.native_done(final["step"])

    def _stage(self, index, layer, activation, states):
        """Plain description of one plan entry for the native trainer."""
        if isinstance(layer, Dense):
            key = self.layers.index(layer)
            return {"kind": "dense", "W": layer.W, "b": layer.b, "dW": layer.dW,
                    "db": layer.db if layer.bias else None,
                    "activation": activation.kind if activation else "identity",
                    "alpha": activation.alpha if activation else 0.0,
                    "state_W": states[f"{key}.W"],
                    "state_b": states.get(f"{key}.b", [None, None]),
                    "width": layer.n_out}
        if isinstance(layer, Activation):
            return {"kind": "activation", "activation": layer.kind, "alpha": layer.alpha}
        if isinstance(layer, Dropout):
            return {"kind": "dropout", "p": layer.p, "seed": layer.seed, "step": layer.step}
        raise TypeError(f"the native trainer cannot run {layer!r}")

    def evaluate(self, X, y, *, loss):
        """Loss (and accuracy for BCE / cross-entropy) on (X, y), dropout off.

        Returns
        -------
        dict
            ``{"loss": float}``, plus ``"accuracy"`` for classification losses.
        """
        loss = get_loss(loss)
        X, T = self._check_data(X, y, loss)
        return self._score(X, T, loss)

    def _check_data(self, X, y, loss, name="X"):
        if isinstance(loss, BCELoss) and not isinstance(self.layers[-1], (Sigmoid, Softmax)):
            raise ValueError("BCELoss takes probabilities: end the network with Sigmoid() "
                             f"(its last layer is {self.layers[-1]!r})")
        X = as_samples(X, self.dtype, self.n_inputs, name)
        if np.shape(y)[:1] != (X.shape[0],):
            raise ValueError(f"{name} has {X.shape[0]} samples but y has shape {np.shape(y)}")
        return X, loss.prepare_target(y, X.shape[0], self.n_outputs, self.dtype)

    def _score(self, X, T, loss):
        out = self._forward(X, training=False)
        scores = {"loss": loss.compute(self.ops, out, T, need_grad=False)[0]}
        if loss.classification:
            scores["accuracy"] = _accuracy(out, T)
        return scores

    # ----------------------------------------------------------- storage
    def save(self, path):
        """Write layers, weights and dtype to ``path`` (.npz), atomically.

        The file is written beside ``path`` and renamed over it, so a failure
        part-way leaves any previous file intact.
        """
        path = os.fspath(path)
        config = {"format": "fastnn", "version": FORMAT_VERSION, "dtype": self.dtype.name,
                  "seed": int(self.seed) if isinstance(self.seed, numbers.Integral) else None,
                  "layers": [{"type": type(layer).__name__, "config": layer.config()}
                             for layer in self.layers]}
        arrays = {"config": np.array(json.dumps(config))}
        for key, param, _ in self.parameters():
            arrays[key] = param
        for i, layer in enumerate(self.layers):
            if hasattr(layer, "seed") and hasattr(layer, "step"):
                arrays[f"{i}.rng"] = np.array([layer.seed, layer.step], dtype=np.uint64)
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".fastnn-", suffix=".npz.tmp", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    @classmethod
    def load(cls, path, backend=None):
        """A Network from a file written by ``save``, bit-exact, with its dtype."""
        try:
            with np.load(os.fspath(path), allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError, EOFError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise ValueError(f"{path!s} is not a fastnn network file: {exc}") from exc
        try:
            config = json.loads(str(arrays.pop("config")))
            if config.get("format") != "fastnn":
                raise ValueError("missing fastnn header")
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"{path!s} is not a fastnn network file ({exc})") from None
        if config.get("version") != FORMAT_VERSION:
            raise ValueError(f"{path!s} has format version {config.get('version')!r}; this "
                             f"fastnn reads version {FORMAT_VERSION}")
        layers = []
        for spec in config["layers"]:
            if spec.get("type") not in LAYER_TYPES:
                raise ValueError(f"{path!s} names an unknown layer type {spec.get('type')!r}")
            layers.append(LAYER_TYPES[spec["type"]](**spec["config"]))
        net = cls(layers, backend=backend, dtype=config["dtype"], seed=config.get("seed"))
        for key, param, _ in net.parameters():
            if key not in arrays:
                raise ValueError(f"{path!s} lacks the array {key!r}")
            if arrays[key].shape != param.shape:
                raise ValueError(f"{path!s}: {key} has shape {arrays[key].shape}, "
                                 f"expected {param.shape}")
            param[...] = arrays[key]
        for i, layer in enumerate(net.layers):
            if f"{i}.rng" in arrays:
                layer.seed, layer.step = (int(v) for v in arrays[f"{i}.rng"])
        return net


def _accuracy(out, T):
    """Fraction of samples whose predicted class matches the target."""
    if out.shape[1] == 1:
        return float(np.mean((out[:, 0] > 0.5) == (T.reshape(-1) > 0.5)))
    truth = T if T.ndim == 1 else T.argmax(axis=1)
    return float(np.mean(out.argmax(axis=1) == truth))

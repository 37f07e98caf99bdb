"""Layers: Dense, the activations, Dropout, Flatten and the norms -- each backward beside
its forward.

Why it is built this way: a layer holds its parameters and the few arrays its
backward needs, and delegates every computation to ``self.ops`` (the backend
kernels), so the same layer runs on the reference and the compiled backend.
A Network fuses an activation that directly follows a Dense layer into that
layer's kernel call (``Dense.forward(X, activation=...)``): one pass over the
output instead of two, with the same numbers as running them apart.  An
activation's numbers (LeakyReLU's slope, Softplus's beta and threshold) are its
``alpha`` and ``beta``, the two every activation kernel takes.

Layers are *built* by the Network that holds them: ``build`` gives them the
backend, the dtype and the seeded generator their initial weights come from,
so the same seed gives the same weights on every backend.  Weights the user
assigned before that are kept (converted to the network's dtype); the draw is
made all the same, so the other layers get the weights they would get anyway.
A layer belongs to one network: a second Network refuses it, since building it
again would change the first network's weights and dtype.  This module imports
no backend: a layer computes only through the ops object it is handed.
BatchNorm1d keeps its running statistics beside its parameters; a training
loop that must be able to refuse a batch holds their update (``_hold``) until
the batch is applied (``_commit``), so a refused batch leaves them unchanged.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import as_batch, as_float_array, as_numeric, check_float, check_int

if TYPE_CHECKING:  # for the type checker only: a layer is handed its ops by build
    from .backends.numpy_ops import NumpyOps

__all__ = ["Layer", "Dense", "Activation", "Identity", "Sigmoid", "Tanh", "ReLU", "LeakyReLU",
           "SiLU", "Softmax", "GELU", "ELU", "SELU", "Softplus", "Mish", "Dropout", "Flatten",
           "BatchNorm1d", "LayerNorm", "INITIALIZERS"]

#: Weight initialisers; ``"auto"`` picks He for ReLU-like activations, else Xavier.
INITIALIZERS = ("auto", "normal", "small_normal", "xavier", "glorot", "he", "kaiming")

_RELU_LIKE = ("relu", "leaky_relu", "silu", "gelu", "gelu_tanh", "elu", "selu", "softplus",
              "mish")


class Layer:
    """Base class: ``forward(X, training=False)`` and ``backward(dY)``.

    Attributes
    ----------
    ops : NumpyOps or None
        The backend kernels, set by ``build`` (None before).
    dtype : numpy.dtype or None
        The network's dtype, set by ``build``.
    """

    #: trainable parameter names, in order (e.g. ``("W", "b")``)
    param_names: tuple[str, ...] = ()

    #: the ``torch.nn`` module this layer equals (built from ``torch_config()``),
    #: or None: ``Network.to_torch`` / ``from_torch`` read it
    torch_module: str | None = None

    #: set by the Network built from this layer: one network per layer (see ``Network``)
    _in_network: bool = False

    def __init__(self) -> None:
        self.ops: Any = None
        self.dtype: np.dtype[Any] | None = None

    def build(self, n_in: int, ops: NumpyOps, dtype: np.dtype[Any], rng: np.random.Generator,
              next_layer: Layer | None = None) -> int:
        """Attach backend and dtype, draw initial parameters.

        Parameters
        ----------
        n_in : int
            Width of the layer's input (n, n_in).
        ops : NumpyOps
            The backend's kernels.
        dtype : numpy.dtype
            float32 or float64.
        rng : numpy.random.Generator
            Source of the initial parameters.
        next_layer : Layer or None
            The layer after this one (``Dense(init="auto")`` looks at it).

        Returns
        -------
        int
            Width of the layer's output (n, n_out).
        """
        self.ops = ops
        self.dtype = dtype
        return n_in

    def forward(self, X: NDArray[Any], *, training: bool = False,
                keep: bool = True) -> NDArray[Any]:
        """X: (n, n_in) -> Y: (n, n_out).

        ``keep=False`` (inference: ``Network.predict``) stores nothing for
        ``backward``, so it changes no state of the layer and is safe while a
        ``fit`` of the same network runs in another thread.
        """
        raise NotImplementedError

    def backward(self, dY: NDArray[Any]) -> NDArray[Any]:
        """dY: (n, n_out) -> dX: (n, n_in)."""
        raise NotImplementedError

    def params(self) -> dict[str, NDArray[Any]]:
        """Parameter name -> array (only those present), e.g. ``{"W": W, "b": b}``."""
        return {}

    def grads(self) -> dict[str, NDArray[Any] | None]:
        """Parameter name -> gradient of the last backward (same shape), None before one."""
        return {}

    def config(self) -> dict[str, Any]:
        """Constructor arguments, for save/load (``type(layer)(**layer.config())``)."""
        return {}

    def torch_config(self) -> dict[str, Any]:
        """Arguments of the ``torch.nn`` module ``torch_module`` (default: ``config()``)."""
        return self.config()

    @classmethod
    def from_torch_module(cls, module: Any) -> Layer:
        """The layer equal to a ``torch.nn`` module of type ``torch_module``: each
        constructor argument read from the module's attribute of that name."""
        names = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        return cls(**{name: getattr(module, name) for name in names})

    def _require_built(self) -> None:
        if self.ops is None:
            raise RuntimeError(f"{self!r} is not built: put it in a Network (or call "
                               f".build(n_in, fastnn.get_backend(), 'float64', rng))")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


# ------------------------------------------------------------------ Dense
class Dense(Layer):
    """Fully connected layer: ``Y = X @ W + b``.

    Parameters
    ----------
    n_in, n_out : int
        Number of input and output features.
    bias : bool, default True
        Whether the layer has a bias ``b``.
    init : str, default "auto"
        Weight initialiser: ``"normal"`` (W and b ~ N(0, 1), the weight/height tutorial's),
        ``"small_normal"`` (W ~ 0.01 N(0, 1), b = 0, the tutorials' 2-layer
        ``NeuralNetwork`` class), ``"xavier"`` /
        ``"glorot"`` (W ~ U(-a, a), a = sqrt(6 / (n_in + n_out)), b = 0), ``"he"`` /
        ``"kaiming"`` (W ~ N(0, 2 / n_in), b = 0), or ``"auto"``: He when the next
        layer is of the ReLU family (ReLU, LeakyReLU, SiLU, GELU, ELU, SELU, Softplus,
        Mish), Xavier otherwise.

    Attributes
    ----------
    W : ndarray, shape (n_in, n_out)
    b : ndarray, shape (n_out,), or None without bias
        Writable; assigning an array of the same shape copies it in place.
        Assigned before the layer is in a Network, they are kept: the
        network uses them (in its dtype) instead of initial weights.
    dW, db : ndarray
        Gradients of the last ``backward``, shapes (n_in, n_out) and (n_out,).

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn import Dense, Network
    >>> layer = Dense(3, 2, bias=True)
    >>> net = Network([layer], seed=0)
    >>> layer.W.shape, layer.b.shape
    ((3, 2), (2,))
    >>> layer.W = np.ones((3, 2))          # copied into the same array
    >>> layer.b = [0.5, -0.5]
    >>> net.predict([[1.0, 2.0, 3.0]])
    array([[6.5, 5.5]])
    """

    param_names = ("W", "b")
    #: the parameters the user assigned ("W", "b"), which ``build`` keeps
    _assigned: frozenset[str] = frozenset()

    def __init__(self, n_in: int, n_out: int, *, bias: bool = True, init: str = "auto") -> None:
        super().__init__()
        self.n_in = check_int(n_in, "Dense n_in", minimum=1)
        self.n_out = check_int(n_out, "Dense n_out", minimum=1)
        self.bias = bool(bias)
        if init not in INITIALIZERS:
            raise ValueError(f"unknown init {init!r}; expected one of {INITIALIZERS}")
        self.init = init
        self._W: NDArray[Any] | None = None
        self._b: NDArray[Any] | None = None
        self.dW: NDArray[Any] | None = None
        self.db: NDArray[Any] | None = None
        self._cache: Any = None

    def config(self) -> dict[str, Any]:
        return {"n_in": self.n_in, "n_out": self.n_out, "bias": self.bias, "init": self.init}

    # parameters, checked on assignment
    @property
    def W(self) -> NDArray[Any]:
        """The weights, shape (n_in, n_out); assigning copies in place."""
        return self._W  # type: ignore[return-value]

    @W.setter
    def W(self, value: ArrayLike) -> None:
        self._W = self._assign(self._W, value, (self.n_in, self.n_out), "W")

    @property
    def b(self) -> NDArray[Any] | None:
        """The bias, shape (n_out,), None without bias; assigning copies in place."""
        return self._b

    @b.setter
    def b(self, value: ArrayLike | None) -> None:
        if not self.bias:
            if value is None:
                return
            raise ValueError("this Dense layer was made with bias=False; it has no b")
        self._b = self._assign(self._b, value, (self.n_out,), "b")  # type: ignore[arg-type]

    def _assign(self, current: NDArray[Any] | None, value: ArrayLike,
                shape: tuple[int, ...], name: str) -> NDArray[Any]:
        # any real dtype is converted to the network's (as NumPy assignment does);
        # a value that does not fit it (1e300 into float32) is refused
        arr = as_numeric(value, f"Dense.{name}")
        if arr.shape != shape:
            raise ValueError(f"Dense.{name} must have shape {shape}, got {arr.shape}")
        arr = as_float_array(arr, self.dtype or np.float64, f"Dense.{name}")
        self._assigned = self._assigned | {name}
        if current is None:
            return arr.copy() if arr is value else arr
        current[...] = arr          # in place: keeps optimizer state and views valid
        return current

    def params(self) -> dict[str, NDArray[Any]]:
        params: dict[str, Any] = {"W": self._W, "b": self._b} if self.bias else {"W": self._W}
        return params

    def grads(self) -> dict[str, NDArray[Any] | None]:
        return {"W": self.dW, "b": self.db} if self.bias else {"W": self.dW}

    def build(self, n_in: int, ops: NumpyOps, dtype: np.dtype[Any], rng: np.random.Generator,
              next_layer: Layer | None = None) -> int:
        if n_in != self.n_in:
            raise ValueError(f"{self!r} expects {self.n_in} inputs but receives {n_in} "
                             "(from the layer before it)")
        super().build(n_in, ops, dtype, rng)
        init = self.init
        if init == "auto":
            kind = getattr(next_layer, "kind", None)
            init = "he" if kind in _RELU_LIKE else "xavier"
        shape = (self.n_in, self.n_out)
        b = np.zeros(self.n_out)
        if init == "normal":
            W = rng.standard_normal(shape)
            b = rng.standard_normal(self.n_out)
        elif init == "small_normal":
            W = 0.01 * rng.standard_normal(shape)
        elif init in ("xavier", "glorot"):
            a = np.sqrt(6.0 / (self.n_in + self.n_out))
            W = rng.uniform(-a, a, shape)
        else:  # he / kaiming
            W = np.sqrt(2.0 / self.n_in) * rng.standard_normal(shape)
        # drawn even when the user assigned W / b, so the generator moves on as always
        if "W" in self._assigned and self._W is not None:
            W = self._W
        if "b" in self._assigned and self._b is not None:
            b = self._b
        self._W = as_float_array(W, dtype, "Dense.W")  # a value too large for float32: refused
        self._b = as_float_array(b, dtype, "Dense.b") if self.bias else None
        return self.n_out

    def forward(self, X: NDArray[Any], *, training: bool = False, keep: bool = True,
                activation: Activation | None = None) -> NDArray[Any]:
        """Y = f(X @ W + b), with f the fused ``activation`` (identity if None).

        Parameters
        ----------
        X : ndarray, shape (n, n_in)
            C-contiguous, the network's dtype.
        training : bool
            Unused (a Dense layer is the same in training).
        keep : bool, default True
            Store what ``backward`` needs (see ``Layer.forward``).
        activation : Activation or None
            An activation fused into the same kernel call.

        Returns
        -------
        Y : ndarray, shape (n, n_out)
        """
        self._require_built()
        X = as_batch(X, self.dtype, (None, self.n_in), "X", self)
        if activation is None:
            kind, alpha, beta = "identity", 0.0, 0.0
        else:
            kind, alpha, beta = activation.kind, activation.alpha, activation.beta
        Z, Y = self.ops.dense_forward(X, self._W, self._b, kind, alpha, beta)
        if keep:
            self._cache = (X, Z, Y, kind, alpha, beta)
        return Y

    def backward(self, dY: NDArray[Any], *,  # type: ignore[override]
                 need_dX: bool = True) -> NDArray[Any] | None:
        """Gradients of the last ``forward``; sets ``dW`` (n_in, n_out) and ``db`` (n_out,).

        Parameters
        ----------
        dY : ndarray, shape (n, n_out)
            d loss / d Y.
        need_dX : bool, default True
            False skips d loss / d X (the first layer needs none).

        Returns
        -------
        dX : ndarray, shape (n, n_in), or None when not ``need_dX``
        """
        if self._cache is None:
            raise RuntimeError("Dense.backward called before forward")
        X, Z, Y, kind, alpha, beta = self._cache
        dY = as_batch(dY, self.dtype, Y.shape, "dY", self, of_last_forward=True)
        dX, self.dW, self.db = self.ops.dense_backward(
            X, self._W, Z, Y, dY, kind, alpha, beta, need_dX=need_dX, need_db=self.bias)
        return dX


# ------------------------------------------------------------ activations
class Activation(Layer):
    """An elementwise (softmax: row-wise) activation ``Y = f(X)``; no trainable parameters.

    ``kind`` names its row of the activation table; ``alpha`` and ``beta`` are
    the (at most two) numbers its kernels read, e.g. LeakyReLU's slope.
    """

    kind: str = "identity"
    alpha: float = 0.0
    beta: float = 0.0

    def __init__(self) -> None:
        super().__init__()
        self._cache: Any = None

    def forward(self, X: NDArray[Any], *, training: bool = False,
                keep: bool = True) -> NDArray[Any]:
        """X: (n, d) -> Y: (n, d)."""
        self._require_built()
        X = as_batch(X, self.dtype, (None, None), "X", self)
        Y = self.ops.activation_forward(X, self.kind, self.alpha, self.beta)
        if keep:   # the input, for the kernels whose derivative reads it (NEEDS_PREACTIVATION)
            self._cache = (X, Y)
        return Y

    def backward(self, dY: NDArray[Any]) -> NDArray[Any]:
        """dY: (n, d) -> dX: (n, d)."""
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        Z, Y = self._cache
        dY = as_batch(dY, self.dtype, Y.shape, "dY", self, of_last_forward=True)
        return self.ops.activation_backward(dY, Z, Y, self.kind, self.alpha, self.beta)


class Identity(Activation):
    """f(x) = x."""
    kind = "identity"
    torch_module = "Identity"


class Sigmoid(Activation):
    """f(x) = 1 / (1 + exp(-x)), computed without overflow."""
    kind = "sigmoid"
    torch_module = "Sigmoid"


class Tanh(Activation):
    """f(x) = tanh(x)."""
    kind = "tanh"
    torch_module = "Tanh"


class ReLU(Activation):
    """f(x) = max(0, x); f'(0) = 0."""
    kind = "relu"
    torch_module = "ReLU"


class LeakyReLU(Activation):
    """f(x) = x if x > 0 else negative_slope * x.

    Parameters
    ----------
    negative_slope : float, default 0.01
    """
    kind = "leaky_relu"
    torch_module = "LeakyReLU"

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.alpha = check_float(negative_slope, "negative_slope")

    @property
    def negative_slope(self) -> float:
        """The slope for x <= 0."""
        return self.alpha

    def config(self) -> dict[str, Any]:
        return {"negative_slope": self.alpha}


class SiLU(Activation):
    """f(x) = x * sigmoid(x)."""
    kind = "silu"
    torch_module = "SiLU"


class Softmax(Activation):
    """f(x)_i = exp(x_i) / sum_j exp(x_j) along each row."""
    kind = "softmax"
    torch_module = "Softmax"

    def torch_config(self) -> dict[str, Any]:
        """``nn.Softmax``'s arguments: ``dim=1``, the features of each sample."""
        return {"dim": 1}

    @classmethod
    def from_torch_module(cls, module: Any) -> Layer:
        """A Softmax from ``nn.Softmax`` over dim 1 (or -1); another dim is a ValueError."""
        if module.dim not in (1, -1):
            raise ValueError(f"nn.Softmax(dim={module.dim}): fastnn's Softmax works over "
                             "dim 1 (the features of each sample)")
        return cls()


class GELU(Activation):
    """f(x) = x * Phi(x), Phi the standard normal CDF: ``x * 0.5 * (1 + erf(x / sqrt(2)))``.

    Parameters
    ----------
    approximate : {"none", "tanh"}, default "none"
        ``"tanh"``: PyTorch's approximation
        ``0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))``.
    """
    torch_module = "GELU"

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate
        self.kind = "gelu" if approximate == "none" else "gelu_tanh"

    def config(self) -> dict[str, Any]:
        return {"approximate": self.approximate}


class ELU(Activation):
    """f(x) = x if x > 0 else alpha * (exp(x) - 1).

    Parameters
    ----------
    alpha : float, default 1.0
        The value f approaches as x goes to -inf is -alpha.
    """
    kind = "elu"
    torch_module = "ELU"

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = check_float(alpha, "ELU alpha")

    def config(self) -> dict[str, Any]:
        return {"alpha": self.alpha}


class SELU(Activation):
    """f(x) = scale * (x if x > 0 else alpha * (exp(x) - 1)), with PyTorch's constants
    alpha = 1.6732632423543772 and scale = 1.0507009873554805."""
    kind = "selu"
    torch_module = "SELU"


class Softplus(Activation):
    """f(x) = log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold.

    Parameters
    ----------
    beta : float, default 1.0
        The sharpness (PyTorch's ``beta``; not 0).
    threshold : float, default 20.0
        Above it (of ``beta * x``) f is the identity, as in PyTorch.
    """
    kind = "softplus"
    torch_module = "Softplus"

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        beta = check_float(beta, "Softplus beta")
        if beta == 0:
            raise ValueError("Softplus beta must not be 0 (f divides by it)")
        # the kernels' two numbers: alpha is the threshold, beta the sharpness
        self.beta = beta
        self.alpha = check_float(threshold, "Softplus threshold")

    @property
    def threshold(self) -> float:
        """Where f becomes the identity (of ``beta * x``)."""
        return self.alpha

    def config(self) -> dict[str, Any]:
        return {"beta": self.beta, "threshold": self.alpha}


class Mish(Activation):
    """f(x) = x * tanh(softplus(x)) = x * tanh(log(1 + exp(x)))."""
    kind = "mish"
    torch_module = "Mish"


# ---------------------------------------------------------------- Dropout
class Dropout(Layer):
    """Inverted dropout: in training, zero each element with probability ``p``
    and scale the rest by 1 / (1 - p); the identity in ``predict``.

    Masks come from a counter-based generator (the layer's seed, its step
    count, the element index), so both backends draw the same masks.

    Parameters
    ----------
    p : float in [0, 1], default 0.5
        Probability of zeroing an element.
    """

    torch_module = "Dropout"

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = check_float(p, "Dropout p", minimum=0.0, maximum=1.0)
        self.seed = 0
        self.step = 0
        self._mask: NDArray[Any] | None = None

    def config(self) -> dict[str, Any]:
        return {"p": self.p}

    def build(self, n_in: int, ops: NumpyOps, dtype: np.dtype[Any], rng: np.random.Generator,
              next_layer: Layer | None = None) -> int:
        super().build(n_in, ops, dtype, rng)
        self.seed = int(rng.integers(0, 2**63))
        self.step = 0
        return n_in

    def forward(self, X: NDArray[Any], *, training: bool = False,
                keep: bool = True) -> NDArray[Any]:
        """X: (n, d) -> Y: (n, d); the identity unless ``training``."""
        self._require_built()
        X = as_batch(X, self.dtype, (None, None), "X", self)
        if not training or self.p == 0:
            if keep:
                self._mask = None
            return X
        Y, self._mask = self.ops.dropout_forward(X, self.p, self.seed, self.step)
        self.step += 1
        return Y

    def backward(self, dY: NDArray[Any]) -> NDArray[Any]:
        """dY: (n, d) -> dX: (n, d)."""
        shape = (None, None) if self._mask is None else self._mask.shape
        dY = as_batch(dY, self.dtype, shape, "dY", self, of_last_forward=True)
        if self._mask is None:
            return dY
        return self.ops.dropout_backward(dY, self._mask)


# ---------------------------------------------------------------- Flatten
class Flatten(Layer):
    """Flatten every axis but the first: ``(n, d1, d2, ...) -> (n, d1 * d2 * ...)``,
    PyTorch's ``nn.Flatten()`` (``start_dim=1, end_dim=-1``).

    A Network whose layers before its first Dense include a Flatten takes such
    inputs -- the MNIST images as ``(n, 28, 28)`` -- and flattens them once,
    where the data enters it (a C-contiguous reshape, no copy), so the
    compiled trainer runs as without it.  On a 2-D input it is the identity.

    Parameters
    ----------
    start_dim, end_dim : int
        PyTorch's arguments; only their defaults, 1 and -1, are supported.

    Examples
    --------
    >>> import numpy as np
    >>> from fastnn import Dense, Flatten, Network
    >>> net = Network([Flatten(), Dense(28 * 28, 10)], seed=0)
    >>> net.predict(np.zeros((5, 28, 28))).shape
    (5, 10)
    """

    torch_module = "Flatten"

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        if (check_int(start_dim, "Flatten start_dim"), check_int(end_dim, "Flatten end_dim")) \
                != (1, -1):
            raise ValueError(f"Flatten(start_dim={start_dim}, end_dim={end_dim}): fastnn "
                             "flattens all axes but the first (start_dim=1, end_dim=-1)")
        self._shape: tuple[int, ...] | None = None

    def forward(self, X: NDArray[Any], *, training: bool = False,
                keep: bool = True) -> NDArray[Any]:
        """X: (n, d1, d2, ...) -> Y: (n, d1 * d2 * ...), a view of X when it is C-contiguous."""
        self._require_built()
        arr = as_numeric(X, "X")
        if arr.ndim < 2:
            raise ValueError(f"X has shape {arr.shape} but {self!r} expects (n, ...) with at "
                             "least 2 axes")
        arr = np.ascontiguousarray(arr, dtype=self.dtype)
        if keep:
            self._shape = arr.shape
        return arr.reshape(arr.shape[0], -1)

    def backward(self, dY: NDArray[Any]) -> NDArray[Any]:
        """dY: (n, d1 * d2 * ...) -> dX: (n, d1, d2, ...), the shape of the last forward's X."""
        if self._shape is None:
            raise RuntimeError("Flatten.backward called before forward")
        n = self._shape[0]
        dY = as_batch(dY, self.dtype, (n, int(np.prod(self._shape[1:]))), "dY", self,
                      of_last_forward=True)
        return dY.reshape(self._shape)


# ---------------------------------------------------------------- normalization
class _Norm(Layer):
    """What BatchNorm1d and LayerNorm share: an optional affine ``weight`` (ones)
    and ``bias`` (zeros) of shape (num_features,), trained like W and b."""

    param_names = ("weight", "bias")

    def __init__(self, num_features: int, eps: float, affine: bool) -> None:
        super().__init__()
        self.num_features = check_int(num_features, f"{type(self).__name__} num_features",
                                      minimum=1)
        self.eps = check_float(eps, f"{type(self).__name__} eps", minimum=0.0)
        if not isinstance(affine, (bool, np.bool_)):
            raise TypeError(f"{type(self).__name__}: the affine flag must be a bool, "
                            f"got {affine!r}")
        self.affine = bool(affine)
        self.weight: NDArray[Any] | None = None
        self.bias: NDArray[Any] | None = None
        self.dweight: NDArray[Any] | None = None
        self.dbias: NDArray[Any] | None = None
        self._xhat: NDArray[Any] | None = None

    def build(self, n_in: int, ops: NumpyOps, dtype: np.dtype[Any], rng: np.random.Generator,
              next_layer: Layer | None = None) -> int:
        if n_in != self.num_features:
            raise ValueError(f"{self!r} takes {self.num_features} features but the layer "
                             f"before it gives {n_in}")
        super().build(n_in, ops, dtype, rng)
        if self.affine:
            self.weight = self._keep(self.weight, np.ones(n_in, dtype=dtype), "weight")
            self.bias = self._keep(self.bias, np.zeros(n_in, dtype=dtype), "bias")
        return n_in

    def _keep(self, current: NDArray[Any] | None, fresh: NDArray[Any],
              name: str) -> NDArray[Any]:
        """A value assigned before build, in the network's dtype; else ``fresh``."""
        if current is None:
            return fresh
        arr = np.ascontiguousarray(current, dtype=fresh.dtype)
        if arr.shape != fresh.shape:
            raise ValueError(f"{type(self).__name__}.{name} has shape {arr.shape}, "
                             f"expected {fresh.shape}")
        return arr

    def params(self) -> dict[str, NDArray[Any]]:
        if not self.affine or self.weight is None or self.bias is None:
            return {}
        return {"weight": self.weight, "bias": self.bias}

    def grads(self) -> dict[str, NDArray[Any] | None]:
        if not self.affine:
            return {}
        return {"weight": self.dweight, "bias": self.dbias}

    def torch_state(self) -> dict[str, Any]:
        """The torch module's tensors this layer sets (``Network.to_torch``)."""
        return dict(self.params())

    def load_torch_state(self, module: Any) -> None:
        """Take the torch module's parameters (``Network.from_torch``), before build."""
        if self.affine:
            self.weight = module.weight.detach().cpu().numpy().copy()
            self.bias = module.bias.detach().cpu().numpy().copy()

    def _set_grads(self, dweight: NDArray[Any], dbias: NDArray[Any]) -> None:
        """Write the gradients in place (the compiled trainer holds these buffers)."""
        if not self.affine:
            return
        if self.dweight is None or self.dbias is None:
            self.dweight, self.dbias = dweight, dbias
        else:
            self.dweight[...] = dweight
            self.dbias[...] = dbias


class BatchNorm1d(_Norm):
    """Batch normalization over the batch axis, PyTorch's ``nn.BatchNorm1d`` on (n, C).

    In training (``fit``, ``forward(training=True)``) each feature is normalized
    with the batch's mean and biased variance; the running statistics move by
    ``momentum`` towards the batch mean and the *unbiased* batch variance::

        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var  = (1 - momentum) * running_var + momentum * var * n / (n - 1)

    (``momentum=None``: the cumulative average, factor ``1 / num_batches_tracked``),
    and ``num_batches_tracked`` counts the batches.  In ``predict`` / ``evaluate``
    (eval mode) it uses the running statistics.  During ``fit`` the statistics of a
    batch are written only when its update is applied: a refused, diverged or
    interrupted batch leaves them unchanged, like the weights.

    Parameters
    ----------
    num_features : int
        C, the width of the input (n, C).
    eps : float, default 1e-5
        Added to the variance before the square root.
    momentum : float or None, default 0.1
    affine : bool, default True
        Learn ``weight`` (ones at init) and ``bias`` (zeros), shape (C,).

    Attributes
    ----------
    weight, bias : ndarray (C,) or None
    running_mean : ndarray (C,), zeros at init
    running_var : ndarray (C,), ones at init
    num_batches_tracked : int

    Raises
    ------
    ValueError
        A training batch of one row (as PyTorch).
    """

    torch_module = "BatchNorm1d"

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True) -> None:
        super().__init__(num_features, eps, affine)
        self.momentum = None if momentum is None else \
            check_float(momentum, "BatchNorm1d momentum", minimum=0.0, maximum=1.0)
        self.running_mean: NDArray[Any] | None = None
        self.running_var: NDArray[Any] | None = None
        self.num_batches_tracked = 0
        self._var: NDArray[Any] | None = None
        #: while True (the Python trainer's batch), training forwards leave their
        #: statistics in ``_pending`` for ``_commit``; else they are written at once
        self._hold = False
        self._pending: tuple[NDArray[Any], NDArray[Any], int] | None = None

    def config(self) -> dict[str, Any]:
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum,
                "affine": self.affine}

    def build(self, n_in: int, ops: NumpyOps, dtype: np.dtype[Any], rng: np.random.Generator,
              next_layer: Layer | None = None) -> int:
        super().build(n_in, ops, dtype, rng)
        self.running_mean = self._keep(self.running_mean, np.zeros(n_in, dtype=dtype),
                                       "running_mean")
        self.running_var = self._keep(self.running_var, np.ones(n_in, dtype=dtype),
                                      "running_var")
        return n_in

    def torch_state(self) -> dict[str, Any]:
        return {**self.params(), **self.buffers(),
                "num_batches_tracked": np.int64(self.num_batches_tracked)}

    def load_torch_state(self, module: Any) -> None:
        if not module.track_running_stats:
            raise ValueError("BatchNorm1d(track_running_stats=False) is not supported: "
                             "fastnn's BatchNorm1d keeps running statistics")
        super().load_torch_state(module)
        self.running_mean = module.running_mean.detach().cpu().numpy().copy()
        self.running_var = module.running_var.detach().cpu().numpy().copy()
        self.num_batches_tracked = int(module.num_batches_tracked)

    @classmethod
    def from_torch_module(cls, module: Any) -> Layer:
        """The layer of an ``nn.BatchNorm1d`` (its arguments; the tensors come apart)."""
        return cls(module.num_features, eps=module.eps, momentum=module.momentum,
                   affine=module.affine)

    def buffers(self) -> dict[str, NDArray[Any]]:
        """The running statistics (not trained by the optimizer), for save/load."""
        assert self.running_mean is not None and self.running_var is not None
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def forward(self, X: NDArray[Any], *, training: bool = False,
                keep: bool = True) -> NDArray[Any]:
        """X: (n, C) -> Y: (n, C); batch statistics when ``training``, else the running ones."""
        self._require_built()
        X = as_batch(X, self.dtype, (None, self.num_features), "X", self)
        if not training:
            if keep:
                self._xhat = None
            return self.ops.batchnorm_eval(X, self.running_mean, self.running_var,
                                           self.weight, self.bias, self.eps)
        Y, xhat, mean, var = self.ops.batchnorm_forward(X, self.weight, self.bias, self.eps)
        if keep:
            self._xhat, self._var = xhat, var
        n = X.shape[0]
        self._pending = (mean, var * (n / (n - 1)), n)
        if not self._hold:
            self._commit()
        return Y

    def _commit(self) -> None:
        """Write the last training forward's statistics into the running ones."""
        if self._pending is None:
            return
        mean, unbiased, _ = self._pending
        self._pending = None
        assert self.running_mean is not None and self.running_var is not None
        self.num_batches_tracked += 1
        f = 1.0 / self.num_batches_tracked if self.momentum is None else self.momentum
        self.running_mean[...] = (1.0 - f) * self.running_mean.astype(np.float64) + f * mean
        self.running_var[...] = (1.0 - f) * self.running_var.astype(np.float64) + f * unbiased

    def backward(self, dY: NDArray[Any]) -> NDArray[Any]:
        """dY: (n, C) -> dX: (n, C); sets ``dweight``, ``dbias`` (C,)."""
        if self._xhat is None or self._var is None:
            raise RuntimeError("BatchNorm1d.backward needs a training forward before it")
        dY = as_batch(dY, self.dtype, self._xhat.shape, "dY", self, of_last_forward=True)
        dX, dw, db = self.ops.batchnorm_backward(dY, self._xhat, self._var, self.weight,
                                                 self.eps)
        self._set_grads(dw, db)
        return dX


class LayerNorm(_Norm):
    """Layer normalization over the last axis, PyTorch's ``nn.LayerNorm(C)`` on (n, C).

    Each row is normalized with its own mean and biased variance,
    ``y = (x - mean) / sqrt(var + eps) * weight + bias``; the same in training
    and in eval mode (no running statistics).

    Parameters
    ----------
    normalized_shape : int or tuple of one int
        C, the width of the input (n, C).
    eps : float, default 1e-5
    elementwise_affine : bool, default True
        Learn ``weight`` (ones at init) and ``bias`` (zeros), shape (C,).

    Attributes
    ----------
    weight, bias : ndarray (C,) or None
    """

    torch_module = "LayerNorm"

    def __init__(self, normalized_shape: int | tuple[int], eps: float = 1e-5,
                 elementwise_affine: bool = True) -> None:
        shape = normalized_shape
        if isinstance(shape, (tuple, list)):
            if len(shape) != 1:
                raise ValueError(f"LayerNorm normalizes over the last axis only: "
                                 f"normalized_shape must be an int or a 1-tuple, got {shape!r}")
            shape = shape[0]
        super().__init__(shape, eps, elementwise_affine)
        self._rstd: NDArray[Any] | None = None

    @classmethod
    def from_torch_module(cls, module: Any) -> Layer:
        """The layer of an ``nn.LayerNorm`` over one last axis (its arguments)."""
        if getattr(module, "bias", True) is None and module.elementwise_affine:
            raise ValueError("LayerNorm(bias=False) is not supported: the affine LayerNorm "
                             "has a weight and a bias")
        return cls(tuple(module.normalized_shape), eps=module.eps,
                   elementwise_affine=module.elementwise_affine)

    @property
    def normalized_shape(self) -> tuple[int]:
        """PyTorch's name for the width: ``(num_features,)``."""
        return (self.num_features,)

    @property
    def elementwise_affine(self) -> bool:
        """PyTorch's name for ``affine``: whether ``weight`` and ``bias`` are learnt."""
        return self.affine

    def config(self) -> dict[str, Any]:
        return {"normalized_shape": self.num_features, "eps": self.eps,
                "elementwise_affine": self.affine}

    def forward(self, X: NDArray[Any], *, training: bool = False,
                keep: bool = True) -> NDArray[Any]:
        """X: (n, C) -> Y: (n, C)."""
        self._require_built()
        X = as_batch(X, self.dtype, (None, self.num_features), "X", self)
        Y, xhat, rstd = self.ops.layernorm_forward(X, self.weight, self.bias, self.eps)
        if keep:
            self._xhat, self._rstd = xhat, rstd
        return Y

    def backward(self, dY: NDArray[Any]) -> NDArray[Any]:
        """dY: (n, C) -> dX: (n, C); sets ``dweight``, ``dbias`` (C,)."""
        if self._xhat is None or self._rstd is None:
            raise RuntimeError("LayerNorm.backward needs a forward before it")
        dY = as_batch(dY, self.dtype, self._xhat.shape, "dY", self, of_last_forward=True)
        dX, dw, db = self.ops.layernorm_backward(dY, self._xhat, self._rstd, self.weight)
        self._set_grads(dw, db)
        return dX


#: The layers ``load`` builds by name: every public one (``__all__``) but the bases.
LAYER_TYPES: dict[str, type[Layer]] = {
    name: cls for name, cls in ((name, globals()[name]) for name in __all__)
    if isinstance(cls, type) and issubclass(cls, Layer) and cls not in (Layer, Activation)}


"""PyTorch interop: a Network to and from a ``torch.nn.Sequential``.

Why it is built this way: PyTorch is an optional dependency, imported only
inside these functions, so ``import fastnn`` never needs it.  The map between
fastnn's layers and torch's modules is declared by each layer class
(``torch_module``, ``torch_config``, ``from_torch_module``) and read here in
both directions, so a new layer brings its own mapping.  The network class is handed in (``Network.from_torch``
passes itself), so this module does not import the network module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Iterator

import numpy as np

from ..backends.numpy_ops import NumpyOps
from .._custom import user_methods
from ..layers import LAYER_TYPES, Dense, Layer

if TYPE_CHECKING:
    from ..network import Network

__all__ = ["to_torch", "from_torch"]


#: torch.nn module name -> the fastnn layer equal to it (nn.Linear is Dense, apart)
_FROM_TORCH: dict[str, type[Layer]] = {
    cls.torch_module: cls for cls in LAYER_TYPES.values() if cls.torch_module is not None}


def _import_torch(what: str) -> Any:
    """torch, or an ImportError that says how to install it."""
    try:
        import torch
    except ImportError as exc:
        raise ImportError(f"{what} needs PyTorch, which is not installed; install it with "
                          "`pip install torch` (the CPU build is enough)") from exc
    return torch



def to_torch(network: Network) -> Any:
    """An equivalent ``torch.nn.Sequential`` (see ``Network.to_torch``).

    Parameters
    ----------
    network : Network

    Returns
    -------
    torch.nn.Sequential
    """
    torch = _import_torch("Network.to_torch")
    nn = torch.nn
    dtype = torch.float64 if network.dtype == np.float64 else torch.float32
    modules = []
    for i, layer in enumerate(network.layers):
        if isinstance(layer, Dense):
            # skip_init: no random initialisation, so torch's global RNG is untouched
            linear = torch.nn.utils.skip_init(nn.Linear, layer.n_in, layer.n_out,
                                              bias=layer.bias, dtype=dtype)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(layer.W.T)))
                if layer.bias:
                    linear.bias.copy_(torch.from_numpy(layer.b.copy()))  # type: ignore[union-attr]
            modules.append(linear)
        elif hasattr(layer, "torch_state") and not user_methods(layer, "Layer"):
            # a norm: its parameters and running statistics, in the network's dtype
            norm = getattr(nn, layer.torch_module)(**layer.torch_config(), dtype=dtype)
            with torch.no_grad():
                for name, value in layer.torch_state().items():
                    target = getattr(norm, name)
                    target.copy_(torch.from_numpy(np.array(value)).to(target.dtype))
            modules.append(norm)
        elif layer.torch_module is not None and not user_methods(layer, "Layer"):
            modules.append(getattr(nn, layer.torch_module)(**layer.torch_config()))
        else:
            raise TypeError(f"layer {i} ({layer!r}) has no PyTorch counterpart")
    return nn.Sequential(*modules).eval()



def from_torch(cls: type[Network], module: Any, *,
               backend: str | NumpyOps | None = None) -> Network:
    """A ``cls`` network equivalent to a ``torch.nn.Sequential`` (see ``Network.from_torch``).

    Parameters
    ----------
    cls : type
        The network class to build (``Network``).
    module : torch.nn.Sequential, torch.nn.ModuleList or sequence of modules
    backend : str, NumpyOps or None

    Returns
    -------
    Network
    """
    torch = _import_torch("Network.from_torch")
    nn = torch.nn

    def flatten(mods: Iterable[Any], prefix: str) -> Iterator[tuple[str, Any]]:
        for k, m in enumerate(mods):
            if isinstance(m, (nn.Sequential, nn.ModuleList)):
                yield from flatten(m, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}", m

    if isinstance(module, nn.Module) and not isinstance(module, (nn.Sequential,
                                                                 nn.ModuleList)):
        raise TypeError(f"from_torch reads an nn.Sequential (or a list of modules), got "
                        f"{type(module).__name__}")
    layers: list[Layer] = []
    weights: list[tuple[Dense, Any, Any]] = []
    dtypes = set()
    for where, m in flatten(module, ""):
        kind = type(m)
        layer: Layer
        if kind is nn.Linear:
            layer = Dense(m.in_features, m.out_features, bias=m.bias is not None)
            weights.append((layer, m.weight, m.bias))
            dtypes.add(m.weight.dtype)
            if m.bias is not None:
                dtypes.add(m.bias.dtype)
        elif isinstance(m, nn.Module) and kind.__name__ in _FROM_TORCH \
                and kind is getattr(nn, kind.__name__):
            try:
                layer = _FROM_TORCH[kind.__name__].from_torch_module(m)
            except ValueError as exc:
                raise ValueError(f"module {where}: {exc}") from None
            if hasattr(layer, "load_torch_state"):   # a norm's parameters and statistics
                dtypes.update(p.dtype for p in m.parameters())
                layer.load_torch_state(m)
        else:
            known = ", ".join(f"nn.{name}" for name in ["Linear", *_FROM_TORCH])
            raise TypeError(f"module {where} ({type(m).__module__}.{type(m).__qualname__}: "
                            f"{m!r}) is not supported by Network.from_torch; it reads {known}")
        layers.append(layer)
    if len(dtypes) > 1:
        raise ValueError(f"the weights have different dtypes {sorted(map(str, dtypes))}; "
                         "convert the module with .double() or .float() first")
    torch_dtype = dtypes.pop() if dtypes else torch.float64
    if torch_dtype not in (torch.float32, torch.float64):
        raise ValueError(f"the weights are {torch_dtype}; fastnn computes in float32 or "
                         "float64: convert the module with .float() or .double() first")
    dtype = "float64" if torch_dtype == torch.float64 else "float32"
    net = cls(layers, backend=backend, dtype=dtype)
    for layer, weight, bias in weights:
        layer.W = weight.detach().cpu().numpy().T
        if bias is not None:
            layer.b = bias.detach().cpu().numpy()
    return net

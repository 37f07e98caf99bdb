"""PyTorch interop: a Network to and from a ``torch.nn.Sequential``.

Why it is built this way: PyTorch is an optional dependency, imported only
inside these functions, so ``import fastnn`` never needs it.  The map between
fastnn's layers and torch's modules is declared by each layer class
(``torch_module``, ``torch_config``, ``from_torch_module``) and read here in
both directions, so a new layer brings its own mapping.  The network class is handed in (``Network.from_torch``
passes itself), so this module does not import the network module.

Optimizers go both ways too (``optimizer_to_torch`` / ``optimizer_from_torch``):
fastnn's SGD, Adam, AdamW, RMSprop and Adagrad are ``torch.optim``'s formulas
under the same names, so a conversion is the hyper-parameters and the state
(momenta, moments, sums, step counts), each array transposed with the weight
it belongs to (fastnn's ``W`` is ``Linear.weight.T``).  Parameters are
matched by position: module ``i`` of the flattened Sequential is layer ``i``
of the network (what ``to_torch`` and ``from_torch`` make), so a state keyed
``"i.W"`` is the state of ``model[i].weight``.  A torch option fastnn does not
have (``dampening``, ``maximize``, several parameter groups) is refused,
never dropped.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import numpy as np

from ..backends.numpy_ops import NumpyOps
from .._custom import user_methods
from . import _import_optional
from ..layers import LAYER_TYPES, Dense, Layer
from ..optimizers import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop

if TYPE_CHECKING:
    from ..network import Network

__all__ = ["to_torch", "from_torch", "optimizer_to_torch", "optimizer_from_torch"]


#: torch.nn module name -> the fastnn layer equal to it (nn.Linear is Dense, apart)
_FROM_TORCH: dict[str, type[Layer]] = {
    cls.torch_module: cls for cls in LAYER_TYPES.values() if cls.torch_module is not None}


def _import_torch(what: str) -> Any:
    """torch, or an ImportError that says how to install it."""
    return _import_optional("torch", what, "PyTorch",
                            "`pip install torch` (the CPU build is enough)")



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
            assert layer.torch_module is not None     # (a norm names its module)
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

    if isinstance(module, nn.Module) and not isinstance(module, (nn.Sequential,
                                                                 nn.ModuleList)):
        raise TypeError(f"from_torch reads an nn.Sequential (or a list of modules), got "
                        f"{type(module).__name__}")
    layers: list[Layer] = []
    weights: list[tuple[Dense, Any, Any]] = []
    dtypes = set()
    for where, m in _flat_modules(module, nn):
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


# ------------------------------------------------------------ optimizers
#: fastnn optimizer class -> (torch.optim class name, {fastnn state name: torch state name})
_OPTIMIZER_MAP: dict[type[Optimizer], tuple[str, dict[str, str]]] = {
    SGD: ("SGD", {"": "momentum_buffer"}),
    Adam: ("Adam", {"m": "exp_avg", "v": "exp_avg_sq", "max_v": "max_exp_avg_sq"}),
    AdamW: ("AdamW", {"m": "exp_avg", "v": "exp_avg_sq", "max_v": "max_exp_avg_sq"}),
    RMSprop: ("RMSprop", {"square_avg": "square_avg", "momentum_buffer": "momentum_buffer",
                          "grad_avg": "grad_avg"}),
    Adagrad: ("Adagrad", {"sum": "sum"}),
}

#: torch options that must keep these values (fastnn has no such option);
#: ``decoupled_weight_decay`` is True for AdamW (and makes torch's Adam an AdamW)
_TORCH_FIXED = {"dampening": 0, "maximize": False}


def _flat_modules(module: Iterable[Any], nn: Any,
                  prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(position, module) of each leaf of nested Sequentials / ModuleLists, in order."""
    for k, m in enumerate(module):
        if isinstance(m, (nn.Sequential, nn.ModuleList)):
            yield from _flat_modules(m, nn, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", m


def _torch_parameters(model: Any, nn: Any) -> list[tuple[str, Any, bool]]:
    """(fastnn key, torch parameter, transposed) of each ``nn.Linear`` of ``model``:
    ``"i.W"`` is ``weight`` (transposed), ``"i.b"`` ``bias``, ``i`` the layer index."""
    if not isinstance(model, (nn.Sequential, nn.ModuleList)):
        raise TypeError(f"the model must be the nn.Sequential of the network (to_torch's), "
                        f"got {type(model).__name__}")
    out = []
    for i, (_, m) in enumerate(_flat_modules(model, nn)):
        if type(m) is nn.Linear:
            out.append((f"{i}.W", m.weight, True))
            if m.bias is not None:
                out.append((f"{i}.b", m.bias, False))
    return out


def optimizer_to_torch(optimizer: Optimizer, model: Any) -> Any:
    """The ``torch.optim`` optimizer equal to ``optimizer``, over ``model``'s parameters.

    Its hyper-parameters are ``optimizer``'s and its state (momentum buffers,
    Adam's ``exp_avg`` / ``exp_avg_sq`` / ``max_exp_avg_sq``, RMSprop's and
    Adagrad's sums, the step counts) is a copy of ``optimizer.state``, so
    training ``model`` with it goes on as fastnn's would.  RMSprop's torch
    ``step`` count, which its formulas do not use, starts at 0.

    Parameters
    ----------
    optimizer : SGD, Adam, AdamW, RMSprop or Adagrad
        fastnn's own classes (not subclasses).
    model : torch.nn.Sequential
        ``network.to_torch()`` of the network ``optimizer`` trains (or any
        Sequential whose ``i``-th module is layer ``i``'s counterpart).

    Returns
    -------
    torch.optim.Optimizer
        One parameter group over the ``nn.Linear`` parameters, in order.

    Raises
    ------
    TypeError
        For an optimizer class of your own.
    ValueError
        If the state names a parameter the model lacks or has another shape.

    Examples
    --------
    >>> import numpy as np, fastnn
    >>> from fastnn.interop.torch import optimizer_to_torch
    >>> net = fastnn.Network([fastnn.Dense(2, 3), fastnn.Tanh(), fastnn.Dense(3, 1)], seed=0)
    >>> opt = fastnn.Adam(lr=0.01)
    >>> _ = net.fit(np.eye(2), np.ones((2, 1)), loss="mse", optimizer=opt, epochs=2)
    >>> model = net.to_torch()
    >>> topt = optimizer_to_torch(opt, model)
    >>> type(topt).__name__, topt.state[model[0].weight]["step"].item()
    ('Adam', 2.0)
    """
    torch = _import_torch("optimizer_to_torch")
    cls = type(optimizer)
    if cls not in _OPTIMIZER_MAP:
        known = [c.__name__ for c in _OPTIMIZER_MAP]
        raise TypeError(f"optimizer_to_torch converts fastnn's {known}, not {cls.__name__}")
    name, names = _OPTIMIZER_MAP[cls]
    params = _torch_parameters(model, torch.nn)
    args: dict[str, Any] = {arg: getattr(optimizer, arg)
                            for arg in inspect.signature(cls).parameters}
    if "betas" in args:
        args["betas"] = tuple(args["betas"])
    topt = getattr(torch.optim, name)([p for _, p, _ in params], **args)
    by_key = {key: (p, t) for key, p, t in params}
    unknown = sorted(set(optimizer.state) - set(by_key))
    if unknown:
        raise ValueError(f"the optimizer holds state for {unknown}, which the model lacks "
                         f"(it has {sorted(by_key)})")
    for key, value in optimizer.state.items():
        param, transposed = by_key[key]
        entry: dict[str, Any] = {}
        items = value.items() if isinstance(value, dict) else [("", value)]
        for state_name, item in items:
            if state_name == "step":
                entry["step"] = torch.tensor(float(item), dtype=torch.float32)
                continue
            array = np.asarray(item)
            if (array.T if transposed else array).shape != tuple(param.shape):
                raise ValueError(f"the state {state_name or 'momentum'!r} of {key!r} has "
                                 f"shape {array.shape}; the model's parameter is "
                                 f"{tuple(param.shape)}{' (transposed)' if transposed else ''}")
            # a copy: the two optimizers never share a buffer
            entry[names[state_name]] = torch.from_numpy(
                np.array(array.T if transposed else array, order="C", copy=True)
            ).to(param.dtype)
        if cls is RMSprop:
            entry.setdefault("step", torch.tensor(0.0, dtype=torch.float32))
        if cls in (Adam, AdamW) and getattr(optimizer, "amsgrad") and \
                "max_exp_avg_sq" not in entry:
            entry["max_exp_avg_sq"] = torch.zeros_like(param)
        topt.state[param] = entry
    return topt


def optimizer_from_torch(torch_optimizer: Any, model: Any) -> Optimizer:
    """The fastnn optimizer equal to a ``torch.optim`` one over ``model``'s parameters.

    Its state is keyed by fastnn's parameter keys (``"0.W"``: the first
    ``nn.Linear``'s weight, transposed), so it continues training
    ``Network.from_torch(model)`` where the torch optimizer stopped.

    Parameters
    ----------
    torch_optimizer : torch.optim.SGD, Adam, AdamW, RMSprop or Adagrad
        One parameter group holding exactly ``model``'s ``nn.Linear``
        parameters; ``dampening=0``, ``maximize=False`` (Adam with
        ``decoupled_weight_decay=True`` becomes fastnn's AdamW, which it is).
    model : torch.nn.Sequential
        The model ``Network.from_torch`` reads.

    Returns
    -------
    Optimizer

    Raises
    ------
    TypeError
        For another optimizer class.
    ValueError
        For an option fastnn does not have, several parameter groups, or
        parameters that are not the model's.
    """
    torch = _import_torch("optimizer_from_torch")
    by_name = {name: (cls, names) for cls, (name, names) in _OPTIMIZER_MAP.items()}
    kind = type(torch_optimizer)
    if kind.__name__ not in by_name or kind is not getattr(torch.optim, kind.__name__):
        raise TypeError(f"optimizer_from_torch converts torch.optim's {sorted(by_name)}, not "
                        f"{kind.__module__}.{kind.__qualname__}")
    cls, names = by_name[kind.__name__]
    if len(torch_optimizer.param_groups) != 1:
        raise ValueError(f"the {kind.__name__} has {len(torch_optimizer.param_groups)} parameter "
                         "groups; fastnn's optimizer has one set of hyper-parameters")
    group = torch_optimizer.param_groups[0]
    if cls is Adam and group.get("decoupled_weight_decay"):
        cls = AdamW          # torch's Adam(decoupled_weight_decay=True) is AdamW
    fixed = {**_TORCH_FIXED, "decoupled_weight_decay": cls is AdamW}
    for option, value in fixed.items():
        if option in group and group[option] != value:
            raise ValueError(f"the {kind.__name__} has {option}={group[option]!r}; fastnn's "
                             f"{cls.__name__} has no such option (only {option}={value!r})")
    args: dict[str, Any] = {}
    for arg in inspect.signature(cls).parameters:
        value = group[arg]
        if isinstance(value, torch.Tensor):
            value = value.item()
        args[arg] = tuple(float(v) for v in value) if arg == "betas" else value
    optimizer = cls(**args)
    params = _torch_parameters(model, torch.nn)
    if {id(p) for p in group["params"]} != {id(p) for _, p, _ in params} \
            or len(group["params"]) != len(params):
        raise ValueError(f"the {kind.__name__} must hold exactly the model's nn.Linear "
                         f"parameters ({len(params)}), as fastnn's optimizer updates every "
                         "weight and bias")
    inverse = {torch_name: name for name, torch_name in names.items()}
    for key, param, transposed in params:
        st = torch_optimizer.state.get(param)
        if not st:
            continue
        arrays: dict[str, Any] = {}
        for torch_name, value in st.items():
            if torch_name == "step":
                continue
            if torch_name not in inverse:
                raise ValueError(f"the {kind.__name__} state of {key!r} holds {torch_name!r}, "
                                 f"which fastnn's {cls.__name__} does not keep")
            if value is None:
                continue
            array = value.detach().cpu().numpy()
            arrays[inverse[torch_name]] = np.array(array.T if transposed else array,
                                                   order="C", copy=True)   # not torch's buffer
        if cls is SGD:
            if "" in arrays:
                optimizer.state[key] = arrays[""]
            continue
        if cls is not RMSprop:
            step = float(st["step"])
            if step != int(step) or step < 0:
                raise ValueError(f"the {kind.__name__} step count of {key!r} is {step}")
            arrays["step"] = int(step)
        optimizer.state[key] = arrays
    return optimizer

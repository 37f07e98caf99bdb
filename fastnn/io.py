"""Persistence: ``save`` and ``load`` of a Network, as an ``.npz`` file without pickles.

Why it is built this way: a saved network is its description (layer types and
arguments, dtype, seed: JSON) and its arrays, each a plain ``.npy`` member, so
a file can be read without running code from it.  ``load`` checks every member
against the description before reading its data (through
``fastnn._archive.NetworkArchive``), so an untrusted file costs no more than
the network it describes.  ``save`` writes beside the target and renames over
it, so a failure never leaves half a file.  The generator that shuffles
``fit``'s batches is saved with the weights, so a loaded network's next
``fit`` visits the batches in the order the saved one would have.  The
network class is handed in (``Network.load`` passes itself), so this module
does not import the network module.  An optimizer's hyper-parameters and state go to a file of their own
(``save_optimizer`` / ``load_optimizer``, the same format and checks), read
back for a given network, whose parameters fix every state array's shape and
dtype before it is read.  A learning-rate schedule's state goes into the
optimizer's file (``lr_scheduler=``): it is bound to that optimizer, and the
two together are what a resumed ``fit`` needs besides the network.  It is
stored as JSON values checked against a fresh schedule of the same class, so
a file never names a class to build or holds anything but numbers and strings.
"""

from __future__ import annotations

import errno
import inspect
import json
import math
import numbers
import os
import secrets
import stat
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ._archive import NetworkArchive
from ._validation import as_float_array, check_dtype
from .backends import get_backend
from .backends.numpy_ops import NumpyOps
from .layers import LAYER_TYPES, BatchNorm1d, Dense, Layer, _Norm
from .optimizers import _OPTIMIZERS, Optimizer
from . import schedules as _schedules
from .schedules import LRScheduler

if TYPE_CHECKING:
    from .network import Network

__all__ = ["save", "load", "save_optimizer", "load_optimizer", "FORMAT_VERSION"]

#: Version of the ``save`` file format; ``load`` rejects any other.
FORMAT_VERSION = 1


def save(network: Network, path: str | os.PathLike[str]) -> None:
    """Write ``network`` to ``path`` atomically (see ``Network.save``).

    Parameters
    ----------
    network : Network
    path : str or os.PathLike

    Raises
    ------
    ValueError
        If a parameter holds NaN or infinity; nothing is written.
    """
    path = os.fspath(path)
    config = {"format": "fastnn", "version": FORMAT_VERSION, "dtype": network.dtype.name,
              "seed": int(network.seed) if isinstance(network.seed, numbers.Integral) else None,
              "layers": [{"type": type(layer).__name__, "config": layer.config()}
                         for layer in network.layers]}
    arrays: dict[str, NDArray[Any]] = {"config": np.array(json.dumps(config))}
    for key, param, _ in network.parameters():
        try:
            as_float_array(param, network.dtype, f"parameter {key!r}")  # load's check
        except ValueError as exc:
            raise ValueError(f"cannot save to {path!s}: {exc}; load refuses non-finite "
                             "weights, so nothing was written") from None
        arrays[key] = param
    for i, layer in enumerate(network.layers):
        if hasattr(layer, "seed") and hasattr(layer, "step"):
            arrays[f"{i}.rng"] = np.array([layer.seed, layer.step], dtype=np.uint64)
        if isinstance(layer, BatchNorm1d):     # the running statistics
            for name, value in layer.buffers().items():
                arrays[f"{i}.{name}"] = value
            arrays[f"{i}.num_batches_tracked"] = np.array([layer.num_batches_tracked],
                                                          dtype=np.int64)
    shuffle = _shuffle_state(network)
    if shuffle is not None:
        arrays["shuffle_rng"] = shuffle
    _write_npz(path, arrays)


def _shuffle_state(network: Network) -> NDArray[np.uint64] | None:
    """The state of the generator that shuffles ``fit``'s batches (PCG64, ``default_rng``'s)
    as 6 uint64: state (high, low), increment (high, low), has_uint32, uinteger; None for
    another bit generator (a network whose generator was replaced by hand)."""
    bits = getattr(getattr(network, "_shuffle_rng", None), "bit_generator", None)
    if type(bits) is not np.random.PCG64:
        return None
    st = bits.state
    mask = (1 << 64) - 1
    return np.array([st["state"]["state"] >> 64, st["state"]["state"] & mask,
                     st["state"]["inc"] >> 64, st["state"]["inc"] & mask,
                     st["has_uint32"], st["uinteger"]], dtype=np.uint64)


def _load_shuffle_state(archive: NetworkArchive) -> np.random.Generator:
    """The shuffling generator ``save`` wrote (``_shuffle_state``), checked."""
    words = [int(v) for v in archive.read_array("shuffle_rng", (6,), np.dtype(np.uint64))]
    inc = words[2] << 64 | words[3]
    if inc % 2 == 0 or words[4] not in (0, 1) or words[5] >= 2**32:
        raise ValueError(f"{archive.path}: shuffle_rng is not the state of a PCG64 generator "
                         "(its increment must be odd, has_uint32 0 or 1, uinteger < 2**32)")
    bits = np.random.PCG64()
    bits.state = {"bit_generator": "PCG64",
                  "state": {"state": words[0] << 64 | words[1], "inc": inc},
                  "has_uint32": words[4], "uinteger": words[5]}
    return np.random.Generator(bits)


def _write_npz(path: str, arrays: dict[str, NDArray[Any]]) -> None:
    """``arrays`` as an .npz at ``path``: written beside it, then renamed over it."""
    target = os.path.realpath(path)         # through symlinks: the link stays
    fd, tmp = _create_beside(target)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise



def load(cls: type[Network], path: str | os.PathLike[str],
         backend: str | NumpyOps | None = None) -> Network:
    """A ``cls`` network read from a file written by ``save`` (see ``Network.load``).

    Parameters
    ----------
    cls : type
        The network class to build (``Network``).
    path : str or os.PathLike
    backend : str, NumpyOps or None

    Returns
    -------
    Network

    Raises
    ------
    ValueError
        For any problem with the file's content.
    OSError
        For errors of the file system.
    """
    ops = get_backend(backend)               # a bad backend name is not the file's fault
    with open(os.fspath(path), "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            raise ValueError(f"{path!s} is not a fastnn network file (not an .npz archive, "
                             "which save writes)")
        with NetworkArchive(f, str(path)) as archive:
            config = _load_config(archive)
            try:
                dtype = _config_dtype(config.get("dtype"))
                layers = _config_layers(config["layers"])
            except (KeyError, AttributeError, TypeError, ValueError) as exc:
                raise ValueError(f"{path!s} holds a damaged network description: "
                                 f"{type(exc).__name__}: {exc}") from None
            # every array the description declares is checked and read before the
            # network (and its initial weights of that size) is made
            arrays: dict[str, NDArray[Any]] = {}
            for key, shape in _param_shapes(layers):
                if not archive.has(key):
                    raise ValueError(f"{path!s} lacks the array {key!r}")
                arrays[key] = archive.read_array(key, shape, dtype)
            states = {i: _load_rng_state(archive, f"{i}.rng")
                      for i, layer in enumerate(layers)
                      if hasattr(layer, "seed") and hasattr(layer, "step")}
            running = {i: _load_running(archive, i, layer, dtype)
                       for i, layer in enumerate(layers) if isinstance(layer, BatchNorm1d)}
            # files of earlier versions lack it: the network's seed then gives it
            shuffle = _load_shuffle_state(archive) if archive.has("shuffle_rng") else None
    try:
        net = cls(layers, backend=ops, dtype=dtype, seed=config.get("seed"))
    except (KeyError, AttributeError, TypeError, ValueError) as exc:
        raise ValueError(f"{path!s} holds a damaged network description: "
                         f"{type(exc).__name__}: {exc}") from None
    for key, param, _ in net.parameters():
        if key not in arrays:                    # _param_shapes disagrees with the layers
            raise RuntimeError(f"load expected no parameter {key!r}: _param_shapes does not "
                               f"know {net.layers[int(key.split('.')[0])]!r}")
        try:
            param[...] = as_float_array(arrays.pop(key), net.dtype, key)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path!s}: {exc}") from None
    for i, (seed, step) in states.items():
        layer = net.layers[i]
        layer.seed, layer.step = seed, step  # type: ignore[attr-defined]
    for i, (mean, var, count) in running.items():
        norm: Any = net.layers[i]
        norm.running_mean[...] = mean
        norm.running_var[...] = var
        norm.num_batches_tracked = count
    if shuffle is not None:         # the batch order goes on where the saved run stopped
        net._shuffle_rng = shuffle
    return net

# ------------------------------------------------------------ optimizer state
#: The built-in optimizers save_optimizer writes, by class name.
_OPTIMIZER_TYPES = {cls.__name__: cls for cls in _OPTIMIZERS.values()}

#: At most this many state arrays per parameter (the optimizers keep up to 3).
_MAX_STATE_ARRAYS = 4


def save_optimizer(optimizer: Optimizer, path: str | os.PathLike[str],
                   lr_scheduler: LRScheduler | None = None) -> None:
    """Write a built-in optimizer -- its hyper-parameters and state -- to ``path``, atomically.

    The file (an ``.npz`` without pickles, like ``save``'s) holds the
    optimizer's class and constructor arguments (JSON) and each parameter's
    state: arrays (momenta, moments, sums) and step counts, keyed like
    ``Network.parameters`` ("0.W").  ``load_optimizer`` reads it back for a
    network of the same shapes, so training resumes exactly where it stopped.

    Parameters
    ----------
    optimizer : SGD, Adam, AdamW, RMSprop or Adagrad
    path : str or os.PathLike
    lr_scheduler : LRScheduler, optional
        A schedule of ``fastnn.schedules`` (unbound, or bound to
        ``optimizer``): its state (``state_dict()``: the epochs or batches
        counted, the base rate, ReduceLROnPlateau's best value and counters)
        is written too, for ``load_optimizer(..., lr_scheduler=...)``.

    Raises
    ------
    TypeError
        For an optimizer or schedule class of your own (its arguments are
        not known).
    ValueError
        If a state value is NaN or infinite, or ``lr_scheduler`` schedules
        another optimizer; nothing is written.
    """
    path = os.fspath(path)
    schedule = None if lr_scheduler is None else _schedule_spec(lr_scheduler, optimizer)
    cls = type(optimizer)
    if _OPTIMIZER_TYPES.get(cls.__name__) is not cls:
        raise TypeError(f"save_optimizer writes fastnn's own optimizers "
                        f"({sorted(_OPTIMIZER_TYPES)}), not {cls.__name__}")
    args = {name: getattr(optimizer, name)
            for name in inspect.signature(cls).parameters}
    arrays: dict[str, NDArray[Any]] = {}
    state: dict[str, Any] = {}
    for i, (key, value) in enumerate(sorted(optimizer.state.items())):
        entry: dict[str, Any] = {"arrays": {}, "ints": {}}
        for name, item in (value.items() if isinstance(value, dict) else [("", value)]):
            if isinstance(item, np.ndarray):
                member = f"state.{i}.{len(entry['arrays'])}"
                try:
                    as_float_array(item, item.dtype, f"optimizer state {key!r} {name}")
                except ValueError as exc:
                    raise ValueError(f"cannot save to {path!s}: {exc}; nothing was "
                                     "written") from None
                arrays[member] = item
                entry["arrays"][name] = member
            else:
                entry["ints"][name] = int(item)
        state[key] = entry
    config = {"format": "fastnn-optimizer", "version": FORMAT_VERSION, "type": cls.__name__,
              "config": args, "state": state}
    if schedule is not None:
        config["schedule"] = schedule
    arrays["config"] = np.array(json.dumps(config))
    _write_npz(path, arrays)


def load_optimizer(path: str | os.PathLike[str], network: Network,
                   lr_scheduler: LRScheduler | None = None) -> Optimizer:
    """An optimizer read from a file written by ``save_optimizer``, for ``network``.

    Safe on untrusted files, as ``Network.load``: each state array is checked
    against the shape and dtype of ``network``'s parameter of the same key
    before it is read, so loading costs at most a few times the network's
    weights.  The optimizer belongs to the first network it steps.

    Parameters
    ----------
    path : str or os.PathLike
    network : Network
        Its parameters give the state's keys, shapes and dtype.
    lr_scheduler : LRScheduler, optional
        A new schedule (never bound) of the class saved with the optimizer:
        it takes the saved state -- its arguments included, as PyTorch's
        ``load_state_dict`` -- and is bound to the returned optimizer without
        a step, so ``fit(..., optimizer=opt, lr_scheduler=schedule)`` goes on
        where the saved run stopped.  Nothing changes in it when loading fails.

    Returns
    -------
    Optimizer
        Of the saved class, with the saved hyper-parameters and state.

    Raises
    ------
    ValueError
        For any problem with the file's content, state that does not fit
        ``network``, a ``lr_scheduler`` when the file holds no schedule or one
        of another class, or a ``lr_scheduler`` already bound.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import fastnn
    >>> from fastnn.io import load_optimizer, save_optimizer
    >>> from fastnn.schedules import StepLR
    >>> X, y = np.linspace(-1, 1, 8).reshape(4, 2), np.ones((4, 1))
    >>> net = fastnn.Network([fastnn.Dense(2, 1)], seed=0)
    >>> opt, schedule = fastnn.SGD(lr=0.1), StepLR(step_size=2, gamma=0.5)
    >>> _ = net.fit(X, y, loss="mse", optimizer=opt, lr_scheduler=schedule, epochs=3)
    >>> path = os.path.join(tempfile.mkdtemp(), "opt.npz")
    >>> save_optimizer(opt, path, lr_scheduler=schedule)
    >>> schedule2 = StepLR(step_size=1)          # its arguments come from the file
    >>> opt2 = load_optimizer(path, net, lr_scheduler=schedule2)
    >>> schedule2.step_size, schedule2.last_epoch, opt2.lr
    (2, 3, 0.05)
    """
    if lr_scheduler is not None and not isinstance(lr_scheduler, LRScheduler):
        raise TypeError(f"lr_scheduler must be a schedule of fastnn.schedules, got "
                        f"{lr_scheduler!r}")
    if lr_scheduler is not None and lr_scheduler.optimizer is not None:
        raise ValueError(f"load_optimizer restores the state of a new schedule; this "
                         f"{type(lr_scheduler).__name__} already schedules an optimizer")
    params = {key: param for key, param, _ in network.parameters()}
    with open(os.fspath(path), "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            raise ValueError(f"{path!s} is not a fastnn optimizer file (not an .npz archive, "
                             "which save_optimizer writes)")
        with NetworkArchive(f, str(path)) as archive:
            config = _load_config(archive, "fastnn-optimizer")
            try:
                cls = _OPTIMIZER_TYPES[config["type"]]
                optimizer = cls(**config["config"])
                specs = config["state"]
                if not isinstance(specs, dict):
                    raise TypeError(f"state must be an object, got {type(specs).__name__}")
                state = {key: _load_state_entry(archive, key, spec, params, network.dtype)
                         for key, spec in specs.items()}
                schedule = None
                if lr_scheduler is not None:
                    if "schedule" not in config:
                        raise _FileProblem(f"{path!s} holds no learning-rate schedule (it "
                                           "was saved without lr_scheduler=), so none can "
                                           f"be restored into the {type(lr_scheduler).__name__}")
                    schedule = _schedule_state(config["schedule"], lr_scheduler, str(path))
            except _FileProblem:
                raise
            except (KeyError, AttributeError, TypeError, ValueError) as exc:
                raise ValueError(f"{path!s} holds a damaged optimizer description: "
                                 f"{type(exc).__name__}: {exc}") from None
    optimizer.state = state
    for key, value in state.items():   # every array the optimizer's formulas need is there
        try:
            optimizer._state_arrays(network.ops, key, params[key])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{path!s}: the {type(optimizer).__name__} state of {key!r} "
                             f"lacks {exc}") from None
    if lr_scheduler is not None and schedule is not None:
        bound, values = schedule
        lr_scheduler.load_state_dict(values)
        if bound:                # bound without a step: the saved run's values stand
            lr_scheduler.optimizer = optimizer
    return optimizer


# ------------------------------------------------------------ schedule state
def _schedule_spec(schedule: LRScheduler, optimizer: Optimizer) -> dict[str, Any]:
    """The JSON description of a schedule: its class, whether it is bound, its state."""
    cls = type(schedule)
    if not isinstance(schedule, LRScheduler) or _SCHEDULE_TYPES.get(cls.__name__) is not cls:
        raise TypeError(f"save_optimizer writes the schedules of fastnn.schedules "
                        f"({sorted(_SCHEDULE_TYPES)}), not {schedule!r}")
    if schedule.optimizer is not None and schedule.optimizer is not optimizer:
        raise ValueError(f"this {cls.__name__} schedules another optimizer "
                         f"({type(schedule.optimizer).__name__}), not the one saved")
    return {"type": cls.__name__, "bound": schedule.optimizer is not None,
            "state": {key: _to_json(value, key)
                      for key, value in sorted(schedule.state_dict().items())}}


def _to_json(value: Any, key: str) -> Any:
    """A schedule's state value as JSON: numbers, strings, booleans, null, lists
    (tuples too), objects of string keys and Counters (as a list of [key, count])."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Counter):
        return {"counter": [[_to_json(k, key), int(n)] for k, n in sorted(value.items())]}
    if isinstance(value, (list, tuple)):
        return [_to_json(v, key) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"object": {k: _to_json(v, key) for k, v in value.items()}}
    raise TypeError(f"the schedule's state {key!r} holds a {type(value).__name__}, which "
                    "save_optimizer cannot write")


def _schedule_state(spec: Any, template: LRScheduler,
                    path: str) -> tuple[bool, dict[str, Any]]:
    """(bound, state_dict) from a file's schedule description, checked against
    ``template`` (a new schedule of the class the caller expects): the same class,
    the same state keys, each value of the template's kind."""
    if not isinstance(spec, dict) or set(spec) != {"type", "bound", "state"}:
        raise TypeError("the schedule must be an object of 'type', 'bound' and 'state'")
    kind, bound, state = spec["type"], spec["bound"], spec["state"]
    if kind != type(template).__name__:
        raise _FileProblem(f"{path} holds the state of a {kind!r} schedule, not of a "
                           f"{type(template).__name__}")
    if type(bound) is not bool or not isinstance(state, dict):
        raise TypeError("the schedule's 'bound' must be a boolean and 'state' an object")
    expected = template.state_dict()
    if set(state) != set(expected):
        raise ValueError(f"the {kind} state has the keys {sorted(state)}, not "
                         f"{sorted(expected)}")
    out = {key: _from_json(state[key], expected[key], key) for key in expected}
    # the arguments pass the constructor's checks, and what it derives from them
    # (OneCycleLR's phases and rates) is what the file holds
    cls = type(template)
    args = {name: out[name] for name in inspect.signature(cls).parameters}
    if isinstance(args.get("milestones"), Counter):
        args["milestones"] = sorted(args["milestones"].elements())
    fresh = cls(**args).state_dict()
    for key, value in fresh.items():
        if key not in _SCHEDULE_RUN_STATE and out[key] != value:
            raise ValueError(f"the {kind} state {key!r} is {out[key]!r}, but its arguments "
                             f"give {value!r}")
    for key in ("num_bad_epochs", "cooldown_counter"):
        if key in out and out[key] < 0:
            raise ValueError(f"the {kind} state {key!r} is negative ({out[key]})")
    last = out["last_epoch"]
    if bound != (last >= 0) or (not bound and out.get("base_lr") is not None):
        raise ValueError(f"the {kind} state is {'bound' if bound else 'unbound'} but "
                         f"counts last_epoch={last}")
    return bound, out


def _from_json(value: Any, like: Any, key: str) -> Any:
    """A JSON value back as the kind of ``like`` (the new schedule's own value)."""
    where = f"the schedule's state {key!r}"
    if isinstance(like, bool):
        if type(value) is not bool:
            raise TypeError(f"{where} must be a boolean, got {value!r}")
        return value
    if isinstance(like, int):
        if type(value) is not int or not -1 <= value < 2**63:
            raise TypeError(f"{where} must be an integer in [-1, 2**63), got {value!r}")
        return value
    if isinstance(like, float) or (like is None and key == "base_lr"):
        if value is None and like is None:
            return None
        if type(value) not in (int, float) or math.isnan(value):
            raise TypeError(f"{where} must be a number, got {value!r}")
        return float(value)
    if isinstance(like, str):
        if not isinstance(value, str):
            raise TypeError(f"{where} must be a string, got {value!r}")
        return value
    if isinstance(like, Counter):
        pairs = value.get("counter") if isinstance(value, dict) and len(value) == 1 else None
        if not isinstance(pairs, list) or not all(
                isinstance(p, list) and len(p) == 2 and type(p[0]) is int
                and type(p[1]) is int and p[0] >= 0 and p[1] >= 1 for p in pairs):
            raise TypeError(f"{where} must be a list of [epoch, count] pairs")
        return Counter(dict(pairs))
    if isinstance(like, (list, tuple)):
        if not isinstance(value, list) or len(value) != len(like):
            raise TypeError(f"{where} must be a list of {len(like)} values")
        items = [_from_json(v, w, key) for v, w in zip(value, like)]
        return tuple(items) if isinstance(like, tuple) else items
    if isinstance(like, dict):
        inner = value.get("object") if isinstance(value, dict) and len(value) == 1 else None
        if not isinstance(inner, dict) or set(inner) != set(like):
            raise TypeError(f"{where} must be an object of the keys {sorted(like)}")
        return {k: _from_json(inner[k], like[k], key) for k in like}
    raise TypeError(f"{where}: a {type(like).__name__} cannot be read back")


#: The state a schedule's run changes (every other value follows from its arguments).
_SCHEDULE_RUN_STATE = frozenset({"last_epoch", "base_lr", "_is_initial", "best",
                                 "num_bad_epochs", "cooldown_counter", "use_beta1"})

#: The schedules save_optimizer writes, by class name.
_SCHEDULE_TYPES: dict[str, type[LRScheduler]] = {
    cls.__name__: cls for cls in vars(_schedules).values()
    if isinstance(cls, type) and issubclass(cls, LRScheduler) and cls is not LRScheduler}


class _FileProblem(ValueError):
    """A problem with a member of the file, whose message names the file already."""


def _load_state_entry(archive: NetworkArchive, key: Any, spec: Any,
                      params: dict[str, NDArray[Any]], dtype: np.dtype[Any]) -> Any:
    """One parameter's optimizer state: an array (SGD's velocity) or a dict of arrays
    and step counts, each array of the parameter's shape and the network's dtype."""
    if key not in params:
        raise ValueError(f"state for {key!r}, which the network does not have (it has "
                         f"{sorted(params)})")
    if not isinstance(spec, dict) or set(spec) != {"arrays", "ints"}:
        raise TypeError(f"the state of {key!r} must be an object of 'arrays' and 'ints'")
    arrays, ints = spec["arrays"], spec["ints"]
    if not isinstance(arrays, dict) or not isinstance(ints, dict):
        raise TypeError(f"the state of {key!r}: 'arrays' and 'ints' must be objects")
    if len(arrays) > _MAX_STATE_ARRAYS or len(ints) > 1 or set(ints) - {"step"}:
        raise ValueError(f"the state of {key!r} declares {len(arrays)} arrays and "
                         f"{sorted(ints)}; an optimizer keeps at most {_MAX_STATE_ARRAYS} "
                         "arrays and a step count")
    out: dict[str, Any] = {}
    for name, member in arrays.items():
        if not isinstance(member, str) or not archive.has(member):
            raise ValueError(f"the state array {name!r} of {key!r} has no member {member!r}")
        try:
            value = archive.read_array(member, params[key].shape, dtype)
            out[name] = as_float_array(value, dtype, f"optimizer state {key!r} {name}")
        except ValueError as exc:           # it names the file already
            raise _FileProblem(f"{exc} (the state {name!r} of {key!r}, which must match the "
                               f"network's {key}: {params[key].dtype} of shape "
                               f"{params[key].shape})") from None
    for name, value in ints.items():
        if type(value) is not int or not 0 <= value < 2**63:
            raise ValueError(f"the step count of {key!r} must be an integer in [0, 2**63), "
                             f"got {value!r}")
        out[name] = value
    if set(out) == {""}:                    # a single array (SGD's velocity)
        return out[""]
    if "" in out:
        raise ValueError(f"the state of {key!r} mixes an unnamed array with named values")
    return out


# ------------------------------------------------------------ load's checks
def _load_config(archive: NetworkArchive, kind: str = "fastnn") -> dict[str, Any]:
    """The file's description, a JSON object read within a size limit; ``kind`` is its
    ``format`` (``"fastnn"``: a network, ``"fastnn-optimizer"``: an optimizer)."""
    path = archive.path
    what, writer = ("network", "save") if kind == "fastnn" else ("optimizer", "save_optimizer")
    if not archive.has("config"):
        raise ValueError(f"{path} is not a fastnn {what} file (it has no 'config' member, the "
                         f"{what} description {writer} writes)")
    text = archive.read_text("config")
    try:
        config = json.loads(text)
    except RecursionError:
        raise ValueError(f"{path} is not a fastnn {what} file (its description is nested too "
                         "deeply to be one)") from None
    except ValueError as exc:
        raise ValueError(f"{path} is not a fastnn {what} file ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != kind:
        raise ValueError(f"{path} is not a fastnn {what} file (missing {kind} header)")
    version = config.get("version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise ValueError(f"{path} has format version {version!r}; this fastnn reads version "
                         f"{FORMAT_VERSION}")
    return config


def _config_dtype(value: Any) -> np.dtype[Any]:
    if not isinstance(value, str):
        raise TypeError(f"dtype must be 'float32' or 'float64', got {value!r}")
    return check_dtype(value)


def _config_layers(specs: Any) -> list[Layer]:
    if not isinstance(specs, list):
        raise TypeError(f"layers must be a list, got a {type(specs).__name__}")
    return [_config_layer(i, spec) for i, spec in enumerate(specs)]


def _config_layer(index: int, spec: Any) -> Layer:
    """Layer ``index`` of a description: {"type": name, "config": {argument: value}}.

    Nothing is allocated: a layer's arrays are made when a Network builds it.
    """
    if not isinstance(spec, dict):
        raise TypeError(f"layer {index} is a {type(spec).__name__}, not an object")
    kind = spec.get("type")
    if not isinstance(kind, str) or kind not in LAYER_TYPES:
        raise ValueError(f"unknown layer type {kind!r}")
    args = spec["config"]
    if not isinstance(args, dict):
        raise TypeError(f"layer {index}'s config is a {type(args).__name__}, not an object")
    for name, value in args.items():
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise TypeError(f"layer {index}'s argument {name!r} is a {type(value).__name__}; "
                            "layer arguments are numbers, strings, booleans or null")
    return LAYER_TYPES[kind](**args)


def _param_shapes(layers: list[Layer]) -> list[tuple[str, tuple[int, ...]]]:
    """(key, shape) of each parameter a Network of ``layers`` has, in ``parameters()`` order,
    from the layers' arguments alone (before any array of that size exists)."""
    shapes: list[tuple[str, tuple[int, ...]]] = []
    for i, layer in enumerate(layers):
        if isinstance(layer, Dense):
            shapes.append((f"{i}.W", (layer.n_in, layer.n_out)))
            if layer.bias:
                shapes.append((f"{i}.b", (layer.n_out,)))
        elif isinstance(layer, _Norm):
            if layer.affine:
                shapes.append((f"{i}.weight", (layer.num_features,)))
                shapes.append((f"{i}.bias", (layer.num_features,)))
        elif layer.param_names:
            raise TypeError(f"load cannot tell the parameter shapes of {layer!r}")
    return shapes


def _load_running(archive: NetworkArchive, i: int, layer: BatchNorm1d,
                  dtype: np.dtype[Any]) -> tuple[NDArray[Any], NDArray[Any], int]:
    """A BatchNorm1d's running mean and variance (finite, the variance >= 0) and
    its ``num_batches_tracked`` (int64 (1,), >= 0)."""
    values = []
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        key = f"{i}.{name}"
        if not archive.has(key):
            raise ValueError(f"{archive.path} lacks the array {key!r} (the BatchNorm1d "
                             "layer's running statistics, which save writes)")
        if name == "num_batches_tracked":
            values.append(archive.read_array(key, (1,), np.dtype(np.int64)))
        else:
            values.append(as_float_array(archive.read_array(key, (layer.num_features,), dtype),
                                         dtype, key))
    mean, var, count = values
    if (var < 0).any() or count[0] < 0:
        raise ValueError(f"{archive.path}: layer {i}'s running variance or batch count is "
                         "negative")
    return mean, var, int(count[0])


def _load_rng_state(archive: NetworkArchive, key: str) -> tuple[int, int]:
    """A Dropout layer's (seed, step): a uint64 array of shape (2,)."""
    if not archive.has(key):
        raise ValueError(f"{archive.path} lacks the array {key!r} (the Dropout layer's "
                         "generator state, which save writes)")
    seed, step = (int(v) for v in archive.read_array(key, (2,), np.dtype(np.uint64)))
    if step >= 2**63:
        raise ValueError(f"{archive.path}: {key} holds the step count {step}, beyond any "
                         "training (at most 2**63 - 1)")
    return seed, step


def _create_beside(target: str) -> tuple[int, str]:
    """A new, hidden temporary file in ``target``'s directory: (fd open for writing, path).

    Its permissions are those of ``target`` when it exists, else what
    ``open(target, "w")`` would give (0666 less the umask, applied by the
    system) -- not mkstemp's 0600, which would lock other users out of a
    saved model.  Created with O_EXCL under a random name (retried when
    taken), so it never opens someone else's file.
    """
    directory = os.path.dirname(target)
    try:
        mode: int | None = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = os.path.join(directory, f".fastnn-{secrets.token_hex(8)}.npz.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        if mode is not None:
            try:
                if hasattr(os, "fchmod"):
                    os.fchmod(fd, mode)
                else:                               # Windows: by name
                    os.chmod(tmp, mode)
            except BaseException:
                os.close(fd)
                os.unlink(tmp)
                raise
        return fd, tmp
    raise FileExistsError(errno.EEXIST, "no free temporary file name beside the target",
                          directory)


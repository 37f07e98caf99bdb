"""Persistence: ``save`` and ``load`` of a Network, as an ``.npz`` file without pickles.

Why it is built this way: a saved network is its description (layer types and
arguments, dtype, seed: JSON) and its arrays, each a plain ``.npy`` member, so
a file can be read without running code from it.  ``load`` checks every member
against the description before reading its data (through
``fastnn._archive.NetworkArchive``), so an untrusted file costs no more than
the network it describes.  ``save`` writes beside the target and renames over
it, so a failure never leaves half a file.  The network class is handed in
(``Network.load`` passes itself), so this module does not import the network
module.
"""

from __future__ import annotations

import errno
import json
import numbers
import os
import secrets
import stat
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ._archive import NetworkArchive
from ._validation import as_float_array, check_dtype
from .backends import get_backend
from .backends.numpy_ops import NumpyOps
from .layers import LAYER_TYPES, Dense, Layer

if TYPE_CHECKING:
    from .network import Network

__all__ = ["save", "load", "FORMAT_VERSION"]

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
    return net

# ------------------------------------------------------------ load's checks
def _load_config(archive: NetworkArchive) -> dict[str, Any]:
    """The file's network description, a JSON object read within a size limit."""
    path = archive.path
    if not archive.has("config"):
        raise ValueError(f"{path} is not a fastnn network file (it has no 'config' member, the "
                         "network description save writes)")
    text = archive.read_text("config")
    try:
        config = json.loads(text)
    except RecursionError:
        raise ValueError(f"{path} is not a fastnn network file (its description is nested too "
                         "deeply to be one)") from None
    except ValueError as exc:
        raise ValueError(f"{path} is not a fastnn network file ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != "fastnn":
        raise ValueError(f"{path} is not a fastnn network file (missing fastnn header)")
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
        elif layer.param_names:
            raise TypeError(f"load cannot tell the parameter shapes of {layer!r}")
    return shapes


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


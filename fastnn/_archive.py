"""Reading a network file that may be hostile: member by member, each checked, each bounded.

Why it is built this way: ``Network.load`` is documented as safe on untrusted
files, and ``numpy.load`` of an ``.npz`` is not -- it lists and inflates every
member (one extra member of deflated zeros, a zip bomb, costs gigabytes) and
sizes each array from the member's own header.  So the archive is read with
``zipfile`` directly and only the members the network's description asks for
are opened.  Before any byte of a member's data is read, the zip directory
entry (encryption, compression method, sizes, within the file) and the
member's ``.npy`` header (dtype, shape, order) are checked against what the
description needs; then exactly that many bytes are read, in chunks, into an
array of that shape.  No member can cost more memory than the network the
description declares, a stored member (as ``save`` writes them) no more than
the file holds, and a member the description does not need is never read.
Every problem with the content is a ``ValueError`` naming the file, the member
and what is wrong with it; only the file system's own errors (missing file, no
permission) pass as ``OSError``.
"""

from __future__ import annotations

import contextlib
import math
import zipfile
import zlib
from typing import IO, Any, Iterator

import numpy as np
from numpy.typing import NDArray

__all__ = ["NetworkArchive", "MAX_CONFIG_BYTES"]

#: Largest ``config`` member read (its .npy data: 4 bytes per character of the
#: JSON description).  A network of ten thousand layers takes well under 1 MB.
MAX_CONFIG_BYTES = 8 << 20

#: Largest .npy header read (NumPy's own default limit; ``save`` writes 128 bytes).
_MAX_HEADER = 10000

#: Deflate produces at most 1032 bytes per compressed byte (RFC 1951's longest
#: match, 258 bytes, in a 2-bit code at best); a member that declares more lies.
_MAX_DEFLATE_RATIO = 1032

#: Bytes read from a member at a time.
_CHUNK = 1 << 20

#: The smallest local file header before a member's data (zip's fixed part).
_LOCAL_HEADER = 30

_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate",
            zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma"}

#: what zipfile, zlib and NumPy's .npy reader raise on damaged data (RuntimeError
#: covers RecursionError on an absurdly nested header)
_DAMAGED = (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error, NotImplementedError,
            RuntimeError, SyntaxError, UnicodeError)


class _Refused(ValueError):
    """A member refused by a check here (its message already names the file)."""


class NetworkArchive:
    """The members of a network file (an ``.npz`` archive), read one by one on demand.

    Parameters
    ----------
    f : binary file
        Open for reading and seekable; it stays open while this object is used.
    path : str
        The file's name, for messages.

    Raises
    ------
    ValueError
        If ``f`` is not a readable zip archive.
    """

    def __init__(self, f: IO[bytes], path: str) -> None:
        self.path = path
        f.seek(0, 2)
        self.size = f.tell()
        f.seek(0)
        try:
            self._zip = zipfile.ZipFile(f)
        except _DAMAGED as exc:
            raise ValueError(f"{path} is not a fastnn network file: {exc}") from None
        self._members: dict[str, zipfile.ZipInfo] = {}
        self._duplicates: set[str] = set()
        for info in self._zip.infolist():
            if info.filename in self._members:
                self._duplicates.add(info.filename)
            self._members[info.filename] = info

    def __enter__(self) -> NetworkArchive:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._zip.close()               # the file itself stays open: it is the caller's

    def has(self, key: str) -> bool:
        """Whether the archive has a member for ``key`` (``"0.W"``: ``0.W.npy``)."""
        return key + ".npy" in self._members

    @contextlib.contextmanager
    def _reading(self, key: str) -> Iterator[None]:
        """Reading member ``key``: a refusal or damage becomes a ValueError naming the
        file and the member; KeyError (no such member) passes."""
        try:
            yield
        except KeyError:
            raise
        except _Refused as exc:             # a plain ValueError for the caller
            raise ValueError(str(exc)) from None
        except _DAMAGED as exc:
            raise ValueError(f"{self.path}: the member {key!r} is damaged: {exc}") from None

    def _fail(self, key: str, problem: str) -> ValueError:
        return _Refused(f"{self.path}: the member {key!r} {problem}")

    def _entry(self, key: str, max_bytes: int) -> zipfile.ZipInfo:
        """The zip directory entry of ``key``, checked; its data may take ``max_bytes``."""
        name = key + ".npy"
        if name in self._duplicates:
            raise self._fail(key, f"appears twice in the archive ({name!r}); which one is meant "
                                  "is ambiguous")
        info = self._members[name]
        if info.flag_bits & 0x41:       # bit 0: encrypted, bit 6: strong encryption
            raise self._fail(key, "is encrypted; fastnn reads unencrypted members only "
                                  "(save does not encrypt)")
        if info.flag_bits & 0x20:
            raise self._fail(key, "is compressed patched data (zip flag bit 5), which fastnn "
                                  "does not read")
        method = info.compress_type
        if method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise self._fail(key, f"uses compression method {method} "
                                  f"({_METHODS.get(method, 'unknown')}); fastnn reads stored "
                                  "(0) and deflate (8) members")
        if info.file_size > _MAX_HEADER + max_bytes:
            raise self._fail(key, f"declares {info.file_size} bytes, more than the "
                                  f"{max_bytes} bytes of data (plus a header) it may hold")
        if method == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise self._fail(key, f"is stored uncompressed yet declares {info.file_size} bytes "
                                  f"and {info.compress_size} stored bytes")
        if (method == zipfile.ZIP_DEFLATED
                and info.file_size > _MAX_DEFLATE_RATIO * info.compress_size + 1024):
            raise self._fail(key, f"declares {info.file_size} bytes inflated from "
                                  f"{info.compress_size}, more than deflate can produce")
        if info.header_offset + _LOCAL_HEADER + info.compress_size > self.size:
            raise self._fail(key, f"extends past the end of the file: {info.compress_size} "
                                  f"bytes from offset {info.header_offset} in a file of "
                                  f"{self.size} bytes (truncated?)")
        return info

    def _open(self, key: str, max_bytes: int) -> tuple[Any, np.dtype[Any], tuple[int, ...],
                                                       bool, int]:
        """Open ``key`` and read its .npy header: (stream, dtype, shape, fortran, data bytes)."""
        info = self._entry(key, max_bytes)
        fp = self._zip.open(info)
        try:
            version = np.lib.format.read_magic(fp)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(
                    fp, max_header_size=_MAX_HEADER)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(
                    fp, max_header_size=_MAX_HEADER)
            else:
                raise ValueError(f".npy format version {version[0]}.{version[1]} (save writes "
                                 "1.0)")
            header = fp.tell()
        except BaseException:
            fp.close()
            raise
        nbytes = math.prod(shape) * dtype.itemsize
        if info.file_size != header + nbytes:
            fp.close()
            raise self._fail(key, f"holds {info.file_size} bytes but its header ({header} "
                                  f"bytes) describes {nbytes} bytes of data (shape {shape}, "
                                  f"dtype {dtype})")
        return fp, dtype, shape, fortran, nbytes

    def _read_data(self, key: str, fp: Any, dtype: np.dtype[Any],
                   shape: tuple[int, ...], nbytes: int) -> NDArray[Any]:
        out = np.empty(shape, dtype=dtype)
        view = memoryview(out.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
        done = 0
        while done < nbytes:
            chunk = fp.read(min(nbytes - done, _CHUNK))
            if not chunk:
                raise self._fail(key, f"ends after {done} of its {nbytes} bytes of data "
                                      "(truncated)")
            view[done:done + len(chunk)] = chunk
            done += len(chunk)
        if fp.read(1):
            raise self._fail(key, f"holds more than the {nbytes} bytes of data its header "
                                  "describes")
        return out

    def read_array(self, key: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> NDArray[Any]:
        """Member ``key`` as a C-contiguous array, which must have ``shape`` and ``dtype``.

        Parameters
        ----------
        key : str
            The member's name without ``.npy``, e.g. ``"0.W"``.
        shape : tuple of int
        dtype : numpy.dtype
            Either byte order is accepted; the array returned is in native order.

        Returns
        -------
        ndarray
            Read in full only after its zip entry and header matched ``shape``
            and ``dtype``.

        Raises
        ------
        KeyError
            If the archive has no such member.
        ValueError
            If the member is anything else than such an array, or damaged.
        """
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        with self._reading(key):
            fp, got, got_shape, fortran, _ = self._open(key, nbytes)
            with fp:
                if got.newbyteorder("<") != dtype.newbyteorder("<"):
                    raise self._fail(key, f"has dtype {got}, expected {dtype}")
                if got_shape != shape:
                    # the message load has always given for a wrong shape
                    raise _Refused(f"{self.path}: {key} has shape {got_shape}, "
                                   f"expected {shape}")
                if fortran:
                    raise self._fail(key, "is stored in Fortran order; save writes C order")
                out = self._read_data(key, fp, got, shape, nbytes)
        return out if out.dtype.isnative else out.astype(out.dtype.newbyteorder("="))

    def read_text(self, key: str, max_bytes: int = MAX_CONFIG_BYTES) -> str:
        """Member ``key`` as a string: a 0-d NumPy str array of at most ``max_bytes``.

        Raises
        ------
        KeyError
            If the archive has no such member.
        ValueError
            If the member is anything else, larger, or damaged.
        """
        with self._reading(key):
            fp, got, shape, _, nbytes = self._open(key, max_bytes)
            with fp:
                if got.kind != "U" or shape != ():
                    raise self._fail(key, f"holds an array of dtype {got} and shape {shape}; "
                                          "expected a string")
                raw = self._read_data(key, fp, np.dtype(np.uint8), (nbytes,), nbytes)
            codec = "utf-32-be" if got.str[0] == ">" else "utf-32-le"
            text: str = raw.tobytes().decode(codec).rstrip("\0")
        return text

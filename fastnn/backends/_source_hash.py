"""The fingerprint of the compiled backend's sources.

Why it is built this way: ``setup.py`` records this hash in the extension it
builds (``cython_ops.source_hash()``), and fastnn, when it is imported from a
source tree, compares it with the hash of the sources beside it, so a build
older than the C or Cython code is reported instead of silently tested.  One
function computes it for both, so it is standard library only: ``setup.py``
loads this file by its path, before NumPy or fastnn can be imported.
"""

from __future__ import annotations

import glob
import hashlib
import os

#: the files the extension is compiled from, relative to the source root
PATTERNS = ("csrc/*.c", "csrc/*.h", "fastnn/backends/*.pyx", "fastnn/backends/*.pxd")


def source_files(root: str) -> list[str]:
    """The compiled backend's source files under ``root``, as sorted relative paths.

    Parameters
    ----------
    root : str
        The source tree's root (the directory holding ``setup.py``).

    Returns
    -------
    list of str
        Paths with ``/`` separators, e.g. ``"csrc/gemm.c"``.
    """
    found = set()
    for pattern in PATTERNS:
        for path in glob.glob(os.path.join(root, *pattern.split("/"))):
            found.add(os.path.relpath(path, root).replace(os.sep, "/"))
    return sorted(found)


def source_hash(root: str) -> str:
    """SHA-256 (hex) of the names and bytes of :func:`source_files` under ``root``.

    Parameters
    ----------
    root : str
        The source tree's root.

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    digest = hashlib.sha256()
    for name in source_files(root):
        with open(os.path.join(root, *name.split("/")), "rb") as f:
            data = f.read()
        digest.update(b"%s\0%d\0" % (name.encode(), len(data)))
        digest.update(data)
    return digest.hexdigest()


def source_root(package_dir: str) -> str | None:
    """The source tree holding the ``fastnn`` package directory, or None if it is installed.

    Parameters
    ----------
    package_dir : str
        The directory of the imported ``fastnn`` package.

    Returns
    -------
    str or None
        Its parent when that holds ``setup.py`` and ``csrc/``, else None.
    """
    root = os.path.dirname(os.path.abspath(package_dir))
    if os.path.isfile(os.path.join(root, "setup.py")) and os.path.isdir(os.path.join(root, "csrc")):
        return root
    return None

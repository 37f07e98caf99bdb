"""Build of fastnn's compiled backend: one Cython extension over the C kernels in csrc/.

Why it is built this way: every C file in csrc/ is compiled into the single
extension ``fastnn.backends.cython_ops``, with ``-O3`` and never
``-march=native`` (per-ISA code is selected at run time, so one build runs on
any x86-64).  Threads are the kernels' own pthreads pool (csrc/gemm.c): no
OpenMP runtime.  Cython's directives are set here once.
Environment switches for debugging:

* ``FASTNN_DEBUG=1``    -- Cython bounds checks on, ``-O0 -g``;
* ``FASTNN_SANITIZE=1`` -- AddressSanitizer + UndefinedBehaviorSanitizer, every
  report fatal (load it with ``LD_PRELOAD=$(gcc -print-file-name=libasan.so)``;
  see the README and .ci/run).

Each combination of these builds in its own directory, ``build/<variant>/``
(generated C included): the timestamp checks of Cython and setuptools look at
sources only, so in a shared directory a sanitized build after a normal one
would silently reuse the normal objects.
"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _flag(name):
    return os.environ.get(name, "") not in ("", "0")


DEBUG = _flag("FASTNN_DEBUG")
SANITIZE = _flag("FASTNN_SANITIZE")
VARIANT = "-".join(["release"] * (not DEBUG) + ["debug"] * DEBUG + ["sanitize"] * SANITIZE)
BUILD_DIR = os.path.join("build", VARIANT)


class BuildExt(build_ext):
    """Records the compile flags in the extension (``fastnn.show_config()``)."""

    def build_extensions(self):
        for ext in self.extensions:
            ext.define_macros.append(("FASTNN_CFLAGS", '"%s"' % " ".join(ext.extra_compile_args)))
        super().build_extensions()


# -fno-math-errno: sqrt sets no errno; -fno-trapping-math: no FP traps are ever
# enabled, so a select like x > 0 ? g : a * g may compute both sides.  Both
# let loops vectorize and change no result.
compile_args = ["-std=c11", "-Wall", "-Wno-unused-function", "-fno-math-errno",
                "-fno-trapping-math", "-pthread"]
link_args = ["-pthread"]
if DEBUG:
    compile_args += ["-O0", "-g"]
else:
    compile_args += ["-O3"]
if SANITIZE:
    # -fno-sanitize-recover: a UBSan report stops the process (non-zero exit)
    # instead of printing and going on, so a test run cannot pass over it;
    # -fno-wrapv undoes Python's -fwrapv, under which signed overflow is
    # defined and UBSan does not check it (the kernels never rely on wrapping)
    sanitize = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-wrapv",
                "-fno-omit-frame-pointer", "-g"]
    compile_args += sanitize
    link_args += sanitize

sources = ["fastnn/backends/cython_ops.pyx"] + sorted(glob.glob("csrc/*.c"))
extension = Extension(
    "fastnn.backends.cython_ops",
    sources=sources,
    # a changed header, or a flag changed here, rebuilds too
    depends=sorted(glob.glob("csrc/*.h")) + ["setup.py"],
    include_dirs=["csrc", numpy.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=compile_args,
    extra_link_args=link_args,
)

directives = {"language_level": 3, "boundscheck": DEBUG, "wraparound": DEBUG,
              "cdivision": not DEBUG, "initializedcheck": DEBUG}

setup(
    ext_modules=cythonize([extension], compiler_directives=directives,
                          include_path=["fastnn/backends"],
                          build_dir=os.path.join(BUILD_DIR, "cython")),
    cmdclass={"build_ext": BuildExt},
    options={"build": {"build_base": BUILD_DIR}},
)

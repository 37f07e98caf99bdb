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

The source tree is importable and compiled.  ``pip install .`` builds in the
source directory (pip >= 21.3), and the normal (release) build also places the
extension beside the sources, ``fastnn/backends/cython_ops*.so``, as
``build_ext --inplace`` does: Python imports ``./fastnn`` first when it runs in
the clone (``python -m fastnn demo``, ``python -m pytest``), and that copy must
be the compiled one, not a silent fallback to the reference.  (Written to a
temporary name and renamed, so a process that has the old one loaded keeps
it.)  The FASTNN_DEBUG and FASTNN_SANITIZE variants do NOT place theirs: an
ASan build in the source tree would stop every normal ``python -m pytest``
(the ASan runtime must be preloaded); ask for one there explicitly with
``build_ext --inplace``.  The *.so is ignored by git and excluded from the
sdist (MANIFEST.in).

Staleness: the build records the SHA-256 of its sources (csrc/*.c, csrc/*.h,
the .pyx/.pxd; fastnn/backends/_source_hash.py) in the extension, which
exposes it as ``cython_ops.source_hash()``.  fastnn, imported from a source
tree whose sources no longer match, warns with the command that rebuilds, and
the test suite fails (tests/test_build.py).  A build whose extension lacks the
current hash is redone whatever the timestamps say.

Build time: the C files, and the C that Cython generates, compile in parallel
(a thread pool over the compiler's per-file step, as numpy.distutils did;
setuptools' own ``-j`` only runs separate extensions in parallel), largest
first, one job per CPU (``build_ext -j N`` to change it); ``pip install -v .``
shows each file as it is done.  Cython's own timestamp check re-generates the
C whenever its includes are newer, which they always are in pip's fresh build
environment, so a second ``pip install`` would recompile everything: the C is
regenerated only when the .pyx/.pxd, Cython, NumPy or the directives change
(a key stored beside it), and an unchanged build is reused.
"""

import concurrent.futures
import glob
import importlib.util
import os
import shutil
import sys
import time

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _flag(name):
    return os.environ.get(name, "") not in ("", "0")


DEBUG = _flag("FASTNN_DEBUG")
SANITIZE = _flag("FASTNN_SANITIZE")
VARIANT = "-".join(["release"] * (not DEBUG) + ["debug"] * DEBUG + ["sanitize"] * SANITIZE)
BUILD_DIR = os.path.join("build", VARIANT)


def _source_hash():
    """The hash of fastnn/backends/_source_hash.py, loaded by path (fastnn is not importable yet)."""
    path = os.path.join("fastnn", "backends", "_source_hash.py")
    spec = importlib.util.spec_from_file_location("_fastnn_source_hash", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.source_hash(os.curdir)


SOURCE_HASH = _source_hash()
#: the bytes a built extension holds when it was built from these sources
#: (fastnn_source_marker in cython_ops.pyx)
MARKER = b"fastnn-source-hash:" + SOURCE_HASH.encode()


def _log(message):
    print(f"fastnn build: {message}", flush=True)


def _cythonize(pyx, directives):
    """The C file Cython generates from ``pyx``, regenerated only when its key changes."""
    import Cython
    from Cython.Build import cythonize

    target = os.path.join(BUILD_DIR, "cython", os.path.splitext(pyx)[0] + ".c")
    key = (f"sources {SOURCE_HASH}, Cython {Cython.__version__}, NumPy {numpy.__version__}, "
           f"directives {sorted(directives.items())}\n")
    key_file = target + ".key"
    if os.path.exists(target) and os.path.exists(key_file):
        with open(key_file) as f:
            if f.read() == key:
                _log(f"{target} is up to date")
                return target
    start = time.perf_counter()
    extension = Extension("fastnn.backends.cython_ops", [pyx])
    (generated,) = cythonize([extension], compiler_directives=directives,
                             include_path=["fastnn/backends"], force=True,
                             build_dir=os.path.join(BUILD_DIR, "cython"))
    (c_file,) = generated.sources
    assert os.path.abspath(c_file) == os.path.abspath(target), (c_file, target)
    with open(key_file, "w") as f:
        f.write(key)
    _log(f"cythonized {pyx} in {time.perf_counter() - start:.0f} s")
    return target


def _compile_in_parallel(compiler, jobs):
    """Make ``compiler.compile`` compile its sources ``jobs`` at a time, largest first.

    The body is distutils' ``CCompiler.compile`` with its loop over sources
    run by a thread pool (each compile is a child process).
    """
    def compile(sources, output_dir=None, macros=None, include_dirs=None, debug=False,
                extra_preargs=None, extra_postargs=None, depends=None):
        macros, objects, extra_postargs, pp_opts, build = compiler._setup_compile(
            output_dir, macros, include_dirs, sources, depends, extra_postargs)
        cc_args = compiler._get_cc_args(pp_opts, debug, extra_preargs)
        todo = sorted((obj for obj in objects if obj in build),
                      key=lambda obj: -os.path.getsize(build[obj][0]))
        start, done = time.perf_counter(), 0

        def one(obj):
            src, ext = build[obj]
            compiler._compile(obj, src, ext, cc_args, extra_postargs, pp_opts)
            return src

        _log(f"compiling {len(todo)} C files, {jobs} at a time")
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            for future in concurrent.futures.as_completed([pool.submit(one, o) for o in todo]):
                done += 1
                _log(f"[{done}/{len(todo)}] {future.result()} "
                     f"({time.perf_counter() - start:.0f} s)")
        return objects

    compiler.compile = compile


class BuildExt(build_ext):
    """Parallel compiles, the build's flags and source hash recorded in the extension,
    and the release build placed beside the sources as well."""

    def build_extensions(self):
        if isinstance(self.parallel, int) and not isinstance(self.parallel, bool):
            jobs = self.parallel
        else:
            jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
                os.cpu_count() or 1)
        _compile_in_parallel(self.compiler, max(1, jobs))
        for ext in self.extensions:
            ext.sources = [_cythonize(s, DIRECTIVES) if s.endswith(".pyx") else s
                           for s in ext.sources]
            ext.define_macros += [
                ("FASTNN_CFLAGS", '"%s"' % " ".join(ext.extra_compile_args)),
                ("FASTNN_SOURCE_HASH", '"%s"' % SOURCE_HASH)]
            built = self.get_ext_fullpath(ext.name)
            if not self.force and os.path.exists(built):
                with open(built, "rb") as f:
                    if MARKER not in f.read():
                        _log(f"{built} was built from other sources: rebuilding it")
                        self.force = True
        # setuptools' -j runs whole extensions in parallel; there is one, and
        # its files are already compiled in parallel above
        self.parallel = None
        super().build_extensions()

    def run(self):
        super().run()
        editable = getattr(self, "editable_mode", False)
        if VARIANT == "release" and not self.inplace and not editable:
            self._place_beside_sources()

    def _place_beside_sources(self):
        for ext in self.extensions:
            filename = self.get_ext_filename(self.get_ext_fullname(ext.name))
            built, beside = os.path.join(self.build_lib, filename), filename
            if not os.path.isdir(os.path.dirname(beside)):
                continue                # not run from the source root
            partial = f"{beside}.{os.getpid()}.tmp"
            try:
                shutil.copy2(built, partial)
                os.replace(partial, beside)
            except OSError as exc:
                # the installed package is complete; the source tree then says
                # at first use that it has no compiled extension
                print(f"fastnn build: warning: could not place the extension beside the "
                      f"sources ({beside}): {exc}", file=sys.stderr)
                if os.path.exists(partial):
                    os.remove(partial)
            else:
                _log(f"placed {beside} beside the sources")


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

DIRECTIVES = {"language_level": 3, "boundscheck": DEBUG, "wraparound": DEBUG,
              "cdivision": not DEBUG, "initializedcheck": DEBUG}

extension = Extension(
    "fastnn.backends.cython_ops",
    # the .pyx is cythonized by BuildExt (_cythonize), only when a build needs it
    sources=["fastnn/backends/cython_ops.pyx"] + sorted(glob.glob("csrc/*.c")),
    # a changed header, or a flag changed here, rebuilds too
    depends=sorted(glob.glob("csrc/*.h")) + ["setup.py"],
    include_dirs=["csrc", numpy.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=compile_args,
    extra_link_args=link_args,
)

setup(
    ext_modules=[extension],
    cmdclass={"build_ext": BuildExt},
    options={"build": {"build_base": BUILD_DIR}},
)

"""The README, read as a newcomer reads it: its order, its commands, its examples.

Why it is built this way: the README is the first thing a new user runs, so
its promises are tested like code -- the sections come in the order a newcomer
needs them, the install and test commands are the ones CI types, the quick
start prints what it says, and the tutorial translations it gives reproduce
the tutorials' own updates (tests/test_seeds.py has the full transcriptions).
The docstrings users read name the tutorials by what they are, not by the
project's internal file names.
"""

import contextlib
import io
import os
import re

import numpy as np

import fastnn

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _readme():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        return f.read()


def _sections(text):
    return [m.group(1).strip() for m in re.finditer(r"^## (.+)$", text, re.M)]


def _block_after(text, heading):
    """The first ```python or ```bash block of the section ``heading``."""
    section = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```(?:python|bash)\n(.*?)```", section, re.S).group(1)


def test_sections_in_a_newcomers_order():
    order = ["Install", "Quick start", "The API at a glance", "Backends", "The tutorials",
             "Moving to PyTorch", "Coming from scikit-learn", "When one machine is not enough",
             "Performance", "Contributing"]
    sections = _sections(_readme())
    positions = []
    for name in order:
        found = [i for i, s in enumerate(sections) if s.startswith(name)]
        assert found, f"the README has no section starting with {name!r}: {sections}"
        positions.append(found[0])
    assert positions == sorted(positions), f"sections out of order: {sections}"
    # the contributor material (sanitizers, valgrind, CI) comes after everything a user needs
    text = _readme()
    for word in ("valgrind", "AddressSanitizer", "FASTNN_SANITIZE"):
        assert text.index(word) > text.index("## Performance"), word


def test_install_commands_are_the_ones_ci_runs():
    block = _block_after(_readme(), "Install")
    commands = [line.split("#")[0].strip() for line in block.splitlines()]
    assert 'pip install ".[test]"' in commands
    assert "python -m fastnn demo" in commands
    assert "pytest" in commands
    with open(os.path.join(REPO, ".ci", "run"), encoding="utf-8") as f:
        ci = f.read()
    assert 'pip install ".[test]"' in ci and "python -m fastnn demo" in ci
    assert re.search(r"^pytest\b", ci, re.M)


def test_torch_note_is_for_users_anywhere():
    text = _readme()
    assert "local CPU wheel" not in text
    assert re.search(r"pip install torch==[\d.]+ --index-url \S+/cpu", text)


def test_quick_start_prints_what_it_says():
    code = _block_after(_readme(), "Quick start")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README quick start", "exec"), {})
    lines = out.getvalue().splitlines()
    assert 1e-4 < float(lines[0]) < 1e-3                       # "~4e-4"
    printed = np.array([float(v) for v in re.findall(r"[\d.]+", " ".join(lines[1:]))])
    np.testing.assert_allclose(printed, [0.015, 0.983, 0.978, 0.021], atol=2e-3)


def test_tutorial_translation_of_the_2_layer_class():
    # the README: the lesson's NeuralNetwork class (no factor 2 in its MSE gradient,
    # W ~ 0.01 N(0, 1), learning_rate=1.0) is SGD(lr=0.5) + MSELoss() + init="small_normal"
    text = _readme()
    assert "SGD(lr=0.5)" in text and 'init="small_normal"' in text
    X, y = fastnn.datasets.xor()
    net = fastnn.Network([fastnn.Dense(2, 4, init="small_normal"), fastnn.Sigmoid(),
                          fastnn.Dense(4, 1, init="small_normal"), fastnn.Sigmoid()], seed=5)
    W1, b1, W2, b2 = (a.copy() for a in (net.layers[0].W, net.layers[0].b,
                                          net.layers[2].W, net.layers[2].b))
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731 -- the tutorial's
    for _ in range(50):                    # the class's forward/backward, learning_rate=1.0
        a1 = sig(X @ W1 + b1)
        a2 = sig(a1 @ W2 + b2)
        m = X.shape[0]
        out_delta = (a2 - y) * a2 * (1 - a2)
        hid_delta = out_delta @ W2.T * a1 * (1 - a1)
        W2 -= 1.0 * a1.T @ out_delta / m
        b2 -= 1.0 * out_delta.sum(0) / m
        W1 -= 1.0 * X.T @ hid_delta / m
        b1 -= 1.0 * hid_delta.sum(0) / m
    net.fit(X, y, loss=fastnn.MSELoss(), optimizer=fastnn.SGD(lr=0.5), epochs=50, shuffle=False)
    np.testing.assert_allclose(net.layers[0].W, W1, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(net.layers[2].b, b2, rtol=1e-12, atol=1e-15)


def test_docstrings_name_tutorials_not_internal_files():
    # "seed 001's", "seed 002's table": words of the project's own files, not a user's
    pattern = re.compile(r"\bseeds?(?:\s+0\d\d|'s?)", re.I)
    found = []
    for root, _, files in os.walk(os.path.join(REPO, "fastnn")):
        for name in files:
            if name.endswith((".py", ".pyx")):
                path = os.path.join(root, name)
                with open(path, encoding="utf-8") as f:
                    for number, line in enumerate(f, 1):
                        if pattern.search(line):
                            found.append(f"{os.path.relpath(path, REPO)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


def test_writing_your_own_pieces_example_runs_and_agrees():
    """The example of "Writing your own layer, loss or optimizer" runs as printed: each
    piece's code runs, the two backends train the same weights (it prints True), and
    the compiled backend says once that it runs the Python training loop."""
    import warnings
    code = _block_after(_readme(), "Writing your own layer, loss or optimizer")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    assert out.getvalue().strip() == "True"
    said = [str(w.message) for w in caught if "Python training loop" in str(w.message)]
    assert len(said) == 1, said
    for words in ("Softsign.forward", "Scale.forward", "HalfMSE.compute", "ClippedSGD.step",
                  "on the 'cython' backend"):
        assert words in said[0]


def test_coming_from_scikit_learn_prints_the_same_model_twice():
    """The README's example: scikit-learn's MLPClassifier and fastnn's print the same
    score, epochs and final loss, the line its comment shows."""
    import warnings

    import pytest
    pytest.importorskip("sklearn")
    text = _readme()
    code = _block_after(text, "Coming from scikit-learn")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings():
        warnings.simplefilter("ignore")               # the ConvergenceWarning it mentions
        exec(compile(code, "README scikit-learn", "exec"), {})
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0] == lines[1]
    assert f"# {lines[0]}   (twice;" in code

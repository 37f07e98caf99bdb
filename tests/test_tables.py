"""One table per concept: the C tables agree with the reference's, and C has no silent default.

Why it is built this way: each activation, loss, optimizer, reduction and ISA
is declared once in C (csrc/fastnn.h's X-macros) and once in the Python
reference (fastnn/backends/numpy_ops.py and the loss / optimizer classes),
the spec.  Nothing keeps the two in step but these tests: they read C's tables
at run time (``cython_ops._c_tables``) and compare them with Python's, name by
name and property by property.  Then every C entry point reachable from
Python gets out-of-range codes (``cython_ops._probe_code``) and must refuse
them with a clear error, and a scan of csrc/ checks that no ``default:``
branch computes anything.
"""

import inspect
import os
import re

import numpy as np
import pytest

from fastnn import losses, optimizers
from fastnn.backends.numpy_ops import (ACTIVATIONS, METRICS, NEEDS_PREACTIVATION, REDUCTIONS,
                                       NumpyOps)

from tests_conftest import REPO, compiled_problem  # noqa: E402 (conftest.py registers the name)


@pytest.fixture(scope="module")
def co():
    """The compiled module; the test fails, naming the cause, when it cannot be tested."""
    if compiled_problem() is not None:
        pytest.fail(f"the compiled backend cannot be tested: {compiled_problem()}",
                    pytrace=False)
    from fastnn.backends import cython_ops
    return cython_ops


@pytest.fixture(scope="module")
def tables(co):
    return co._c_tables()


# ------------------------------------------------------------ the tables agree
def test_activation_names_match_the_reference_in_order(tables):
    assert [row["name"] for row in tables["activations"]] == list(ACTIVATIONS)


def test_needs_preactivation_matches_the_reference(tables):
    c_needs = {row["name"] for row in tables["activations"] if row["needs_z"]}
    assert c_needs == set(NEEDS_PREACTIVATION)


def test_rowwise_activations_are_those_the_reference_computes_by_row(tables):
    # the reference's rowwise activations: those whose output on a 2-D array
    # is not their output on its rows laid end to end
    R = NumpyOps()
    X = np.array([[0.5, -1.0, 2.0], [3.0, 0.25, -0.5]])
    by_row = {kind for kind in ACTIVATIONS
              if not np.array_equal(R.activation_forward(X, kind),
                                    R.activation_forward(X.reshape(1, -1), kind).reshape(X.shape))}
    assert {row["name"] for row in tables["activations"] if row["rowwise"]} == by_row


def test_losses_match_the_python_losses(tables):
    kernels = {cls.kernel for cls in losses._LOSSES.values()}
    rows = tables["losses"]
    # scikit-learn's softmax loss takes class labels only
    labels_only = {"sk_softmax"}
    # every other Python loss has exactly one C row for targets shaped like the output
    for kernel in kernels:
        count = [r["python_name"] for r in rows if not r["labels"]].count(kernel)
        assert count == (0 if kernel in labels_only else 1), kernel
    assert {r["python_name"] for r in rows} == kernels
    # and class labels only where the Python loss accepts them
    assert {r["python_name"] for r in rows if r["labels"]} == {"cross_entropy"} | labels_only
    assert len({r["name"] for r in rows}) == len(rows)


def test_loss_parameters_match_the_python_losses(co, tables):
    # each C row's params and weight vector are the Python loss's, by name, and
    # the Python loss's kernel takes them under those names
    import inspect
    by_kernel = {cls.kernel: cls for cls in losses._LOSSES.values()}
    for row in tables["losses"]:
        cls = by_kernel[row["python_name"]]
        assert tuple(row["params"]) == cls.params, row
        assert row["vector"] == cls.vector, row
        assert len(row["params"]) <= co.LOSS_MAX_PARAM     # fastnn_loss_args.param
        kernel = inspect.signature(getattr(NumpyOps, cls.kernel)).parameters
        for name in (*row["params"], *([row["vector"]] if row["vector"] else [])):
            assert name in kernel and kernel[name].kind is inspect.Parameter.KEYWORD_ONLY
            assert hasattr(cls(), name)
        assert "sample_weight" in kernel


def _full_state_instance(cls):
    """An instance of optimizer ``cls`` that uses all of its state (momentum, amsgrad,
    centered on)."""
    params = inspect.signature(cls).parameters
    on = {"momentum": 0.9, "amsgrad": True, "centered": True}
    return cls(**{k: v for k, v in on.items() if k in params})


def test_optimizers_match_the_python_optimizers(tables):
    rows = {row["name"]: row for row in tables["optimizers"]}
    assert set(rows) == set(optimizers._OPTIMIZERS)
    ops = NumpyOps()
    param = np.zeros((2, 3))
    for name, cls in optimizers._OPTIMIZERS.items():
        row = rows[name]
        opt = _full_state_instance(cls)
        spec = opt._spec()
        assert spec["optimizer"] == name
        # every hyper-parameter C reads is in the Python optimizer's spec
        assert len(row["hypers"]) == row["n_hyper"]
        assert set(row["hypers"]) <= set(spec), (name, row["hypers"], sorted(spec))
        # as many state arrays as the Python optimizer keeps per parameter
        state = opt._state_arrays(ops, "0.W", param)
        assert sum(s is not None for s in state) == row["n_state"], name
        assert all(s is None for s in state[row["n_state"]:]), name


def test_reductions_match_the_reference(tables):
    assert tables["reductions"] == list(REDUCTIONS)


def test_metrics_match_the_reference(tables):
    assert [(row["name"], row["labels"]) for row in tables["metrics"]] == list(METRICS.items())


def test_isa_names_come_from_the_c_table(co, tables):
    assert tables["isas"][0] == "generic"
    assert co.supported_isas() == tables["isas"][:len(co.supported_isas())]
    assert co.get_isa() in tables["isas"]


# ------------------------------------------------------- unknown codes refused
ENTRIES = ("act_forward", "act_backward", "dense_forward", "dense_backward", "mse", "bce",
           "xent_labels", "xent_probs", "loss", "set_isa", "optimizer_update", "trainer_new_loss",
           "trainer_new_optimizer", "trainer_new_reduction", "trainer_new_stage",
           "trainer_new_act", "train_run_loss", "train_run_optimizer", "train_run_reduction",
           "train_run_stage", "train_run_act", "metric")

#: the table an entry's code is a row of (None: the stage kinds, 0..4)
TABLE_OF = {"act": "activations", "forward": "activations", "backward": "activations",
            "mse": "reductions", "bce": "reductions", "labels": "reductions",
            "probs": "reductions", "reduction": "reductions", "isa": "isas",
            "loss": "losses", "optimizer": "optimizers", "update": "optimizers",
            "stage": None, "metric": "metrics"}


def _count(tables, entry):
    table = TABLE_OF[entry.rsplit("_", 1)[-1]]
    return 5 if table is None else len(tables[table])


def test_the_probe_covers_every_entry(co):
    assert tuple(co._PROBE_ENTRIES) == ENTRIES


@pytest.mark.parametrize("entry", ENTRIES)
def test_every_known_code_is_accepted(co, tables, entry):
    for code in range(_count(tables, entry)):
        if entry.startswith(("trainer_new_loss", "train_run_loss")) and \
                tables["losses"][code]["labels"]:
            continue          # the probe's targets are values, not labels
        if entry == "train_run_act" and tables["activations"][code]["needs_z"]:
            continue          # the trainer keeps Z only for what it was made with
        if entry == "trainer_new_stage" and code != 0:
            continue          # a network without a dense stage has nothing to train
        if entry == "train_run_stage" and code >= 3:
            continue          # a norm stage's workspace is made with the trainer
        assert co._probe_code(entry, code) == 0, (entry, code)


@pytest.mark.parametrize("entry", ENTRIES)
def test_an_unknown_code_raises_a_clear_error(co, tables, entry):
    n = _count(tables, entry)
    for code in (-1, n, n + 1, 1 << 20):
        with pytest.raises(ValueError, match=rf"{entry} with code {code}: invalid argument"):
            co._probe_code(entry, code)


# ----------------------------------------------------- no default computes
def _c_sources():
    root = os.path.join(REPO, "csrc")
    for name in sorted(os.listdir(root)):
        if name.endswith((".c", ".h")):
            with open(os.path.join(root, name), encoding="utf-8") as f:
                yield name, f.read()


#: what a ``default:`` may do: refuse the code (or name no row)
ALLOWED_DEFAULT = re.compile(r'default\s*:\s*(\{\s*)?return\s+(FASTNN_EINVAL|NULL|"unknown")\s*;')


def test_no_default_branch_computes_something():
    offenders = []
    for name, text in _c_sources():
        text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)       # comments out
        text = text.replace("\\\n", " ")                          # macro lines joined
        for m in re.finditer(r"\bdefault\s*:", text):
            if not ALLOWED_DEFAULT.match(text, m.start()):
                line = text.count("\n", 0, m.start()) + 1
                offenders.append(f"{name}:{line}: {text[m.start():m.start() + 60]!r}")
    assert not offenders, "default: branches that compute instead of refusing:\n" + \
        "\n".join(offenders)


def test_no_two_way_choice_on_a_code():
    # e.g. `spec->optimizer == FASTNN_OPT_SGD ? sgd : adam`: any other code would
    # silently run the second branch
    pattern = re.compile(r"[!=]=\s*FASTNN_(OPT|LOSS|STAGE)_[A-Z0-9_]+\s*\?")
    offenders = [f"{name}: {m.group(0)!r}" for name, text in _c_sources()
                 for m in pattern.finditer(text)]
    assert not offenders, offenders


def test_the_scan_sees_every_dispatch():
    # the scan is not vacuous: the C sources have dispatches on every table
    text = "".join(t for _, t in _c_sources())
    for table in ("FASTNN_ACTIVATIONS", "FASTNN_LOSSES", "FASTNN_OPTIMIZERS", "FASTNN_ISAS"):
        assert text.count(table + "(") >= 2, table
    assert len(re.findall(r"\bdefault\s*:", text)) >= 10


# ------------------------------------------- a missing state is not skipped
@pytest.mark.parametrize("spec", [
    {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0, "nesterov": False,
     "step": 0},
    {"optimizer": "adam", "lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
     "weight_decay": 0.0, "amsgrad": False, "step": 0},
    {"optimizer": "adamw", "lr": 0.1, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
     "weight_decay": 0.01, "amsgrad": True, "step": 0},
    {"optimizer": "rmsprop", "lr": 0.1, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0.0,
     "momentum": 0.0, "centered": True, "step": 0},
    {"optimizer": "adagrad", "lr": 0.1, "lr_decay": 0.0, "weight_decay": 0.0, "eps": 1e-10,
     "step": 0},
], ids=lambda s: s["optimizer"])
def test_an_optimizer_without_its_state_arrays_is_refused_not_substituted(co, spec):
    # SGD with momentum but no velocity used to train as plain SGD (and Adam
    # without m, v to read NULL): the trainer must refuse, changing nothing
    rng = np.random.default_rng(0)
    X = rng.random((4, 3))
    T = rng.random((4, 2))
    W, b = rng.random((3, 2)), rng.random(2)
    W0, b0 = W.copy(), b.copy()
    stage = {"kind": "dense", "W": W, "b": b, "dW": np.zeros_like(W), "db": np.zeros_like(b),
             "activation": "identity", "alpha": 0.0, "beta": 0.0,
             "state_W": [None] * 3, "state_b": [None] * 3}
    trainer = co.CythonOps().make_trainer([stage], "mse", "mean", spec, X, T, 4)
    try:
        with pytest.raises(ValueError, match="train: invalid argument"):
            trainer.run(None, 0, 0, 1, np.zeros(1))
    finally:
        trainer.close()
    assert np.array_equal(W, W0) and np.array_equal(b, b0)

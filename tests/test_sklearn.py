"""fastnn.sklearn: MLPClassifier / MLPRegressor as scikit-learn estimators.

Why it is built this way: scikit-learn's own ``check_estimator`` suite is run
in full (one test per check, via ``parametrize_with_checks``) on every
available backend, then the behaviour scikit-learn users rely on is checked
directly: meta-estimators, the convergence rule against scikit-learn's own
MLP, exact equivalence with a hand-written ``Network.fit`` loop (which pins
down what ``alpha`` does), partial_fit / warm_start / early stopping, pickling
and the errors.  The whole module is skipped only when scikit-learn is not
installed.
"""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn is not installed "
                                      '(pip install "fastnn[sklearn]")')

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import (ConvergenceWarning, DataConversionWarning,  # noqa: E402
                                NotFittedError)
from sklearn.model_selection import (GridSearchCV, cross_val_score,  # noqa: E402
                                     train_test_split)
from sklearn.neural_network import MLPClassifier as SkMLPClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils import check_random_state  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastnn  # noqa: E402
from fastnn.backends import available_backends  # noqa: E402
from fastnn.sklearn import MLPClassifier, MLPRegressor, _sklearn_initial_weights  # noqa: E402

BACKENDS = available_backends()
no_convergence_warning = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")


def _blobs(n=120, n_features=4, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(n_classes, n_features))
    y = np.arange(n) % n_classes
    return centers[y] + rng.normal(size=(n, n_features)), y


def _regression(n=150, n_features=3, n_outputs=1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, n_features))
    W = rng.normal(size=(n_features, n_outputs))
    Y = np.sin(X @ W) + 0.5 * X @ W
    return X, (Y[:, 0] if n_outputs == 1 else Y)


# ----------------------------------------------------- scikit-learn's suite
# Every check of scikit-learn's check_estimator, each its own test, on each
# available backend (both run in about a second per estimator).
@no_convergence_warning
@parametrize_with_checks([cls(backend=backend) for backend in BACKENDS
                          for cls in (MLPClassifier, MLPRegressor)])
def test_sklearn_check_estimator(estimator, check, monkeypatch):
    # check_array_api_input (NumPy namespace) runs only with SCIPY_ARRAY_API=1;
    # scikit-learn reads it when the check runs, so set it for the check alone.
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    check(estimator)


# ------------------------------------------------------- optional import
def _run(code, tmp_path):
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)


def test_import_fastnn_does_not_import_sklearn(tmp_path):
    result = _run("import sys, fastnn; print('sklearn' in sys.modules)", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_missing_sklearn_gives_install_hint(tmp_path):
    result = _run("import sys; sys.modules['sklearn'] = None; import fastnn.sklearn", tmp_path)
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert 'pip install "fastnn[sklearn]"' in result.stderr


# ------------------------------------------------------- meta-estimators
@no_convergence_warning
def test_pipeline_cross_val_score_and_grid_search():
    X, y = _blobs(n=90)
    X = X * 50 + 7                                   # badly scaled: the scaler matters
    pipe = make_pipeline(StandardScaler(),
                         MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.02,
                                       max_iter=60, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.85
    same = {k: v for k, v in pipe[-1].get_params().items() if k not in ("backend", "dtype")}
    theirs = make_pipeline(StandardScaler(), SkMLPClassifier(**same))
    np.testing.assert_array_equal(scores, cross_val_score(theirs, X, y, cv=3))
    grid = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1e-2],
                               "mlpclassifier__hidden_layer_sizes": [(8,), (16, 8)]}, cv=3)
    grid.fit(X, y)
    assert set(grid.best_params_) == {"mlpclassifier__alpha",
                                      "mlpclassifier__hidden_layer_sizes"}
    assert grid.best_score_ > 0.9
    assert grid.best_estimator_[-1].n_features_in_ == 4
    assert grid.score(X, y) > 0.9

    Xr, yr = _regression()
    reg = make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(32,),
                                                       learning_rate_init=0.01,
                                                       max_iter=150, random_state=0))
    assert cross_val_score(reg, Xr, yr, cv=3).min() > 0.8


def test_get_params_set_params_clone():
    clf = MLPClassifier(hidden_layer_sizes=(7, 3), alpha=0.5, backend="numpy", dtype="float32")
    params = clf.get_params()
    assert params["hidden_layer_sizes"] == (7, 3) and params["alpha"] == 0.5
    assert params["backend"] == "numpy" and params["dtype"] == "float32"
    assert params["solver"] == "adam" and params["batch_size"] == "auto"
    assert params["max_iter"] == 200 and params["n_iter_no_change"] == 10
    clf.set_params(alpha=0.1, solver="sgd")
    twin = clone(clf)
    assert twin is not clf and twin.get_params() == clf.get_params()
    # no validation in __init__ / set_params: bad values fail in fit
    MLPClassifier(solver="nope").set_params(activation="nope")


# ------------------------------------------------------------- backends
@no_convergence_warning
@pytest.mark.skipif(len(BACKENDS) < 2, reason="the compiled backend is not built")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_backends_give_the_same_model(dtype):
    X, y = _blobs()
    kw = dict(hidden_layer_sizes=(10, 6), max_iter=30, batch_size=16, random_state=3,
              dtype=dtype)
    ref = MLPClassifier(backend="numpy", **kw).fit(X, y)
    fast = MLPClassifier(backend="cython", **kw).fit(X, y)
    rtol = 1e-9 if dtype == "float64" else 1e-3
    for a, b in zip(ref.coefs_ + ref.intercepts_, fast.coefs_ + fast.intercepts_):
        assert a.dtype == np.dtype(dtype)
        np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(fast.loss_curve_, ref.loss_curve_, rtol=rtol)
    assert (fast.predict(X) == ref.predict(X)).mean() > 0.99

    Xr, yr = _regression(n_outputs=2)
    kw["max_iter"] = 20
    ref = MLPRegressor(backend="numpy", **kw).fit(Xr, yr)
    fast = MLPRegressor(backend="cython", **kw).fit(Xr, yr)
    np.testing.assert_allclose(fast.predict(Xr), ref.predict(Xr), rtol=rtol, atol=rtol)


# --------------------------------------------------------------- digits
@no_convergence_warning
@pytest.mark.parametrize("backend", BACKENDS)
def test_digits_held_out_accuracy(backend):
    X, y = fastnn.datasets.load_digits()
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0,
                                                        stratify=y)
    clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=100, random_state=0,
                        backend=backend).fit(X_train, y_train)
    accuracy = clf.score(X_test, y_test)
    assert accuracy >= 0.95, accuracy


def test_alpha_shrinks_the_weights():
    X, y = _blobs(n=60)
    norms = []
    for alpha in (0.0, 30.0):
        clf = MLPClassifier(hidden_layer_sizes=(8,), alpha=alpha, learning_rate_init=0.05,
                            max_iter=60, tol=0.0, random_state=0, backend=BACKENDS[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, y)
        norms.append(sum(float((c ** 2).sum()) for c in clf.coefs_))
    assert norms[1] < 0.2 * norms[0]


# ------------------------------------------------------------ attributes
@no_convergence_warning
def test_fitted_attributes():
    X, y = _blobs(n=60, n_features=5, n_classes=4)
    labels = np.array(["ant", "bee", "cat", "dog"], dtype=object)[y]
    clf = MLPClassifier(hidden_layer_sizes=(7, 3), max_iter=15, random_state=0).fit(X, labels)
    assert list(clf.classes_) == ["ant", "bee", "cat", "dog"]
    assert [c.shape for c in clf.coefs_] == [(5, 7), (7, 3), (3, 4)]
    assert [b.shape for b in clf.intercepts_] == [(7,), (3,), (4,)]
    assert clf.n_features_in_ == 5 and clf.n_layers_ == 4 and clf.n_outputs_ == 4
    assert clf.out_activation_ == "softmax"
    assert len(clf.loss_curve_) == clf.n_iter_ == 15 and clf.t_ == 15 * 60
    assert clf.best_loss_ == min(clf.loss_curve_) and clf.loss_ == clf.loss_curve_[-1]
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None
    assert isinstance(clf.network_, fastnn.Network)
    # coefs_ / intercepts_ are the network's own arrays: writing them changes the model
    assert clf.coefs_[0] is clf.network_.layers[0].W
    proba = clf.predict_proba(X)
    assert proba.shape == (60, 4) and np.allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba), rtol=1e-10)
    assert set(clf.predict(X)) <= set(clf.classes_)
    clf.coefs_[-1][...] = 0.0
    clf.intercepts_[-1][...] = [0.0, 0.0, 5.0, 0.0]
    assert (clf.predict(X) == "cat").all()


@no_convergence_warning
def test_binary_and_regressor_shapes():
    X, y = _blobs(n=40, n_classes=2)
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=20, random_state=0).fit(X, y == 1)
    assert list(clf.classes_) == [False, True] and clf.n_outputs_ == 1   # one logistic output
    assert clf.out_activation_ == "logistic" and clf.coefs_[-1].shape == (5, 1)
    assert clf.predict_proba(X).shape == (40, 2) and clf.predict(X).dtype == bool

    X, y = _regression(n=40)
    reg = MLPRegressor(hidden_layer_sizes=(5,), max_iter=20, random_state=0)
    assert reg.fit(X, y).predict(X).shape == (40,)
    assert reg.out_activation_ == "identity" and reg.n_outputs_ == 1
    with pytest.warns(DataConversionWarning):                 # as scikit-learn: raveled
        assert reg.fit(X, y[:, None]).predict(X).shape == (40,)
    X, Y = _regression(n=40, n_outputs=3)
    reg.fit(X, Y)
    assert reg.predict(X).shape == (40, 3) and reg.coefs_[-1].shape == (5, 3)


@no_convergence_warning
def test_regressor_learns_a_smooth_function():
    X, y = _regression(n=300)
    reg = MLPRegressor(hidden_layer_sizes=(32,), learning_rate_init=0.01, max_iter=200,
                       random_state=0).fit(X, y)
    assert reg.score(X, y) > 0.95
    assert reg.loss_curve_[-1] < 0.1 * reg.loss_curve_[0]


# ------------------------------------------------------------ convergence
@pytest.mark.parametrize("n_iter_no_change", [1, 3])
def test_convergence_rule_matches_sklearn(n_iter_no_change):
    """With a huge tol no epoch after the first counts as an improvement, so both
    fastnn and scikit-learn stop after 1 + n_iter_no_change + 1 epochs."""
    X, y = _blobs(n=40)
    kw = dict(hidden_layer_sizes=(4,), tol=1e6, n_iter_no_change=n_iter_no_change,
              max_iter=50, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ours = MLPClassifier(**kw).fit(X, y)
        theirs = SkMLPClassifier(**kw).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ == n_iter_no_change + 2
    assert len(ours.loss_curve_) == ours.n_iter_


def test_max_iter_warns_and_stopping_does_not():
    X, y = _blobs(n=40)
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\)"):
        clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(X, y)
    assert clf.n_iter_ == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=500, tol=1e-2,
                            random_state=0).fit(X, y)
    assert clf.n_iter_ < 500


def test_chunked_epochs_equal_epoch_by_epoch(capsys):
    """Without verbose, epochs that cannot trigger a stop run as one Network.fit call;
    verbose runs one call per epoch.  Both must give the same model."""
    X, y = _blobs(n=60)
    kw = dict(hidden_layer_sizes=(8,), learning_rate_init=0.01, max_iter=200, tol=1e-3,
              n_iter_no_change=4, random_state=1)
    quiet = MLPClassifier(**kw).fit(X, y)
    loud = MLPClassifier(verbose=True, **kw).fit(X, y)
    out = capsys.readouterr().out
    assert out.startswith("Iteration 1, loss = ")
    assert f"Iteration {loud.n_iter_}, loss = " in out and "did not improve" in out
    assert quiet.n_iter_ == loud.n_iter_ < 200
    assert quiet.loss_curve_ == loud.loss_curve_
    for a, b in zip(quiet.coefs_, loud.coefs_):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------- partial_fit
def test_partial_fit_classifier():
    X, y = _blobs(n=60)
    clf = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    clf = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    clf.partial_fit(X[y != 2], y[y != 2], classes=[0, 1, 2])   # not every class in y
    assert list(clf.classes_) == [0, 1, 2] and clf.n_outputs_ == 3
    assert clf.n_iter_ == 1 and len(clf.loss_curve_) == 1
    for _ in range(4):
        clf.partial_fit(X, y)
    assert len(clf.loss_curve_) == 5 and clf.n_iter_ == 1 and clf.t_ == 40 + 4 * 60
    with pytest.raises(ValueError, match="not the same"):
        clf.partial_fit(X, y, classes=[0, 1, 2, 3])
    with pytest.raises(ValueError, match="classes not in"):
        clf.partial_fit(X, np.where(y == 2, 7, y))
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:, :3], y)
    with pytest.raises(ValueError, match="early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])


# ----------------------------------------------------------- warm start
@no_convergence_warning
def test_warm_start():
    X, y = _blobs(n=60)
    kw = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    clf = MLPClassifier(warm_start=True, **kw).fit(X, y)
    first = [c.copy() for c in clf.coefs_]
    loss_after_first = clf.loss_curve_[-1]
    network = clf.network_
    clf.fit(X, y)
    assert clf.network_ is network and clf.n_iter_ == 5 and len(clf.loss_curve_) == 10
    assert clf.loss_curve_[5] < clf.loss_curve_[0]            # continued, not restarted
    assert abs(clf.loss_curve_[5] - loss_after_first) < 0.5 * clf.loss_curve_[0]
    assert not np.allclose(first[0], clf.coefs_[0])
    with pytest.raises(ValueError, match="same classes"):
        clf.fit(X[y != 2], y[y != 2])
    clf.set_params(hidden_layer_sizes=(9,))
    with pytest.raises(ValueError, match="warm_start=False"):
        clf.fit(X, y)

    cold = MLPClassifier(**kw).fit(X, y)
    cold_curve = list(cold.loss_curve_)
    cold.fit(X, y)                                             # warm_start=False: restart
    assert cold.loss_curve_ == cold_curve and len(cold.loss_curve_) == 5


@no_convergence_warning
@pytest.mark.parametrize("backend", BACKENDS)
def test_warm_start_and_partial_fit_after_a_new_dtype_train_in_that_dtype(backend):
    """set_params(dtype="float32") after a fit: the warm-started fit goes on
    from the fitted weights in float32 -- the same model as going on in
    float64, to float32's precision."""
    X, y = _blobs(n=60)
    kw = dict(hidden_layer_sizes=(6,), activation="tanh", batch_size=16,
              learning_rate_init=0.01, max_iter=3, warm_start=True, random_state=0,
              backend=backend)
    clf, twin = MLPClassifier(**kw).fit(X, y), MLPClassifier(**kw).fit(X, y)
    clf.set_params(dtype="float32")
    clf.fit(X, y)
    twin.fit(X, y)
    assert clf.network_.dtype == np.float32 and twin.network_.dtype == np.float64
    for a, b in zip(clf.coefs_ + clf.intercepts_, twin.coefs_ + twin.intercepts_):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert clf.predict_proba(X).shape == (60, 3)

    reg = MLPRegressor(hidden_layer_sizes=(5,), random_state=0, backend=backend)
    Xr, yr = _regression(n=40)
    reg.partial_fit(Xr, yr)
    reg.set_params(dtype="float32")
    reg.partial_fit(Xr, yr)                    # the optimizer's state goes along
    assert reg.network_.dtype == np.float32 and reg.coefs_[0].dtype == np.float32
    assert all(st["m"].dtype == np.float32 for st in reg._optimizer.state.values())


# ------------------------------------------------------- early stopping
def test_early_stopping():
    X, y = fastnn.datasets.load_digits()
    X, y = X[:600], y[:600]
    kw = dict(hidden_layer_sizes=(32,), early_stopping=True, validation_fraction=0.2,
              random_state=0, backend=BACKENDS[-1])
    clf = MLPClassifier(n_iter_no_change=3, max_iter=300, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf.fit(X, y)
    assert clf.n_iter_ < 300 and clf.best_loss_ is None
    assert len(clf.validation_scores_) == len(clf.loss_curve_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    # the best weights are restored: rebuild scikit-learn's held-out split and score it
    rs = check_random_state(0)
    _sklearn_initial_weights(rs, [64, 32, 10], "relu")        # the initial draws come first
    _, X_val, _, y_val = train_test_split(X, y, random_state=rs, test_size=0.2)
    assert clf.score(X_val, y_val) == clf.best_validation_score_
    # ... and they are the weights after the best epoch: a run stopped there has them
    best_epoch = int(np.argmax(clf.validation_scores_)) + 1
    assert best_epoch < clf.n_iter_
    short = MLPClassifier(n_iter_no_change=1000, max_iter=best_epoch, **kw)
    with pytest.warns(ConvergenceWarning):
        short.fit(X, y)
    for a, b in zip(clf.coefs_ + clf.intercepts_, short.coefs_ + short.intercepts_):
        np.testing.assert_array_equal(a, b)

    Xr, yr = _regression(n=200)
    reg = MLPRegressor(hidden_layer_sizes=(16,), early_stopping=True, n_iter_no_change=2,
                       learning_rate_init=0.01, max_iter=500, random_state=0).fit(Xr, yr)
    assert reg.n_iter_ < 500 and reg.best_validation_score_ == max(reg.validation_scores_)

    with pytest.raises(ValueError, match="validation set is too small"):
        MLPRegressor(early_stopping=True, validation_fraction=0.1).fit(Xr[:10], yr[:10])


# --------------------------------------------------------------- pickle
@pytest.mark.parametrize("backend", BACKENDS)
def test_pickle_keeps_the_optimizer_state(backend):
    X, y = _blobs(n=50)
    clf = MLPClassifier(hidden_layer_sizes=(6,), random_state=0, backend=backend)
    clf.partial_fit(X, y, classes=[0, 1, 2])
    twin = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(twin.predict_proba(X), clf.predict_proba(X))
    assert twin.coefs_[0] is twin.network_.layers[0].W
    clf.partial_fit(X, y)
    twin.partial_fit(X, y)                # Adam's moments and step survive the round trip
    for a, b in zip(twin.coefs_, clf.coefs_):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------- errors
@pytest.mark.parametrize("params, error, match", [
    ({"solver": "newton"}, ValueError, "solver must be one of"),
    ({"learning_rate": "cyclic"}, ValueError, "learning_rate must be one of"),
    ({"power_t": -1.0}, ValueError, "power_t must be >= 0"),
    ({"max_fun": 0}, ValueError, "max_fun must be >= 1"),
    ({"activation": "softplus"}, ValueError, "activation must be one of"),
    ({"hidden_layer_sizes": (10, 0)}, ValueError, "integers >= 1"),
    ({"hidden_layer_sizes": "wide"}, ValueError, "integers >= 1"),
    ({"hidden_layer_sizes": None}, TypeError, "int or a sequence"),
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"alpha": -1.0}, ValueError, "alpha must be >= 0"),
    ({"learning_rate_init": 0.0}, ValueError, "learning_rate_init must be > 0"),
    ({"max_iter": 0}, ValueError, "max_iter must be >= 1"),
    ({"max_iter": 2.5}, TypeError, "max_iter must be an integer"),
    ({"momentum": 1.5}, ValueError, "momentum must be <= 1"),
    ({"validation_fraction": 1.0}, ValueError, "validation_fraction must be < 1"),
    ({"beta_2": 1.0}, ValueError, "beta_2 must be < 1"),
    ({"n_iter_no_change": 0}, ValueError, "n_iter_no_change must be >= 1"),
    ({"shuffle": "yes"}, TypeError, "shuffle must be True or False"),
    ({"backend": "fortran"}, ValueError, "backend must be None or one of"),
    ({"dtype": "int32"}, ValueError, "dtype must be None"),
])
def test_bad_parameters_raise_in_fit(params, error, match):
    X, y = _blobs(n=20)
    clf = MLPClassifier(**params)                 # accepted here: checked in fit
    with pytest.raises(error, match=match):
        clf.fit(X, y)


@no_convergence_warning
def test_data_errors():
    X, y = _blobs(n=30)
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(X)
    with pytest.raises(NotFittedError):
        MLPRegressor().predict(X)
    one_class = MLPClassifier(max_iter=2).fit(X, np.zeros(30))   # as scikit-learn: fits,
    np.testing.assert_array_equal(one_class.predict(X), np.zeros(30))   # predicts the class
    with pytest.raises(ValueError, match="Unknown label type"):
        MLPClassifier().fit(X, np.linspace(0, 1, 30))
    with pytest.raises(ValueError, match="NaN"):
        MLPClassifier().fit(np.where(X > 2, np.nan, X), y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        MLPRegressor().fit(X, y[:-1])
    clf = MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
    with pytest.warns(ConvergenceWarning):
        clf.fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but MLPClassifier is expecting 4"):
        clf.predict(X[:, :3])
    with pytest.warns(UserWarning, match="clipped"):
        MLPClassifier(batch_size=100, max_iter=1).fit(X, y)

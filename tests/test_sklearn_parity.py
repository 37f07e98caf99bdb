"""fastnn.sklearn against scikit-learn's own MLPs: the same fitted model.

Why it is built this way: the promise is "change one import, get the same
model", so each test fits scikit-learn's estimator and fastnn's with the same
parameters and ``random_state`` on the same data, and compares every fitted
attribute scikit-learn has: ``coefs_``, ``intercepts_`` (to 1e-9 relative in
float64, 1e-7 for L-BFGS, measured as the largest difference over the largest
magnitude of each array), ``loss_curve_``, ``best_loss_``,
``validation_scores_``, ``best_validation_score_``, ``n_iter_``, ``t_`` and
``loss_``.  The configurations cover every solver and learning-rate schedule,
the binary, multiclass and multi-label classifier, one and several regression
outputs, the penalty, uneven last batches, no shuffling, early stopping,
warm_start, partial_fit, sample weights and a passed-in ``RandomState``.  The
last tests show the differences the module docstring lists.
"""

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn is not installed "
                                      '(pip install "fastnn[sklearn]")')

from sklearn import neural_network as sk  # noqa: E402

from fastnn import sklearn as fk  # noqa: E402

RTOL = {"adam": 1e-9, "sgd": 1e-9, "lbfgs": 1e-7}


def _classes(n=150, n_features=5, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=1.5, size=(n_classes, n_features))
    y = rng.integers(0, n_classes, n)
    return centers[y] + rng.normal(size=(n, n_features)), y


def _multilabel(n=140, n_features=5, n_labels=3, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features))
    Y = (X @ rng.normal(size=(n_features, n_labels)) + 0.3 * rng.normal(size=(n, n_labels))) > 0
    return X, Y.astype(int)


def _regression(n=130, n_features=4, n_outputs=1, seed=2):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, n_features))
    Y = np.sin(X @ rng.normal(size=(n_features, n_outputs))) + 0.1
    return X, (Y[:, 0] if n_outputs == 1 else Y)


def _fit_both(cls_name, X, y, backend=None, fit_params=None, **params):
    """scikit-learn's and fastnn's estimator, each fitted with the same parameters."""
    out = []
    for module, extra in ((sk, {}), (fk, {"backend": backend} if backend else {})):
        est = getattr(module, cls_name)(**params, **extra)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est.fit(X, y, **(fit_params or {}))
        est.warned_ = sorted({type(w.message).__name__ for w in caught})
        out.append(est)
    return out[1], out[0]


def _largest_difference(ours, theirs):
    """max |ours - theirs| / max |theirs| over each array; the largest."""
    worst = 0.0
    for a, b in zip(ours, theirs):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        assert a.shape == b.shape
        worst = max(worst, float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)))
    return worst


def assert_same_model(ours, theirs, rtol):
    """Every fitted attribute of scikit-learn's estimator, on fastnn's."""
    assert len(ours.coefs_) == len(theirs.coefs_)
    diff = _largest_difference(ours.coefs_ + ours.intercepts_,
                               theirs.coefs_ + theirs.intercepts_)
    assert diff <= rtol, f"coefs_/intercepts_ differ by {diff:.2e} (relative)"
    assert ours.n_iter_ == theirs.n_iter_
    for name in ("t_", "n_layers_", "n_outputs_", "out_activation_", "n_features_in_"):
        if hasattr(theirs, name):
            assert getattr(ours, name) == getattr(theirs, name), name
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=rtol)
    for name in ("loss_curve_", "best_loss_", "validation_scores_", "best_validation_score_"):
        mine, their = getattr(ours, name, "absent"), getattr(theirs, name, "absent")
        if their is None or isinstance(their, str):
            assert mine is None or mine == their, name
        else:
            np.testing.assert_allclose(mine, their, rtol=rtol, err_msg=name)
    assert ours.warned_ == theirs.warned_
    if hasattr(theirs, "classes_"):
        np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    return diff


# ------------------------------------------------------------ the classifier
CLASSIFIER_CASES = {
    # name: (data, params)
    "multiclass-adam-relu": ("multiclass", dict(solver="adam", activation="relu")),
    "multiclass-adam-tanh-alpha": ("multiclass", dict(solver="adam", activation="tanh",
                                                      alpha=0.05)),
    "binary-adam-logistic": ("binary", dict(solver="adam", activation="logistic")),
    "binary-sgd-nesterov": ("binary", dict(solver="sgd", learning_rate_init=0.05)),
    "multiclass-sgd-momentum": ("multiclass", dict(solver="sgd", nesterovs_momentum=False,
                                                   learning_rate_init=0.05, alpha=0.01)),
    "multiclass-sgd-invscaling": ("multiclass", dict(solver="sgd", learning_rate="invscaling",
                                                     learning_rate_init=0.3, power_t=0.3)),
    "multiclass-sgd-adaptive": ("multiclass", dict(solver="sgd", learning_rate="adaptive",
                                                   learning_rate_init=0.05, tol=1e-2,
                                                   n_iter_no_change=2, max_iter=40)),
    "multiclass-identity-noshuffle": ("multiclass", dict(activation="identity", shuffle=False)),
    "multilabel-adam": ("multilabel", dict(solver="adam", activation="tanh")),
    "multilabel-sgd": ("multilabel", dict(solver="sgd", learning_rate_init=0.1)),
    "two-hidden-layers": ("multiclass", dict(hidden_layer_sizes=(6, 5), alpha=1e-3)),
    "no-hidden-layer": ("binary", dict(hidden_layer_sizes=())),
    "early-stopping-binary": ("binary", dict(early_stopping=True, validation_fraction=0.2,
                                             n_iter_no_change=3, tol=1e-3, max_iter=60)),
    "early-stopping-multiclass": ("multiclass", dict(early_stopping=True, n_iter_no_change=4,
                                                     max_iter=60, learning_rate_init=0.01)),
    "converges-by-tol": ("multiclass", dict(tol=5e-2, n_iter_no_change=2, max_iter=60,
                                            learning_rate_init=0.02)),
    "lbfgs-multiclass": ("multiclass", dict(solver="lbfgs", max_iter=30)),
    "lbfgs-binary-alpha": ("binary", dict(solver="lbfgs", alpha=0.1, activation="tanh",
                                          max_iter=25)),
    "lbfgs-multilabel-maxfun": ("multilabel", dict(solver="lbfgs", max_fun=12, max_iter=50)),
}


def _classifier_data(kind):
    if kind == "multilabel":
        return _multilabel()
    X, y = _classes(n_classes=2 if kind == "binary" else 3)
    labels = np.array(["ant", "bee", "cat"])
    return X, labels[y]


@pytest.mark.parametrize("case", list(CLASSIFIER_CASES))
def test_classifier_is_scikit_learns(case, backend):
    kind, params = CLASSIFIER_CASES[case]
    X, y = _classifier_data(kind)
    base = dict(hidden_layer_sizes=(7,), batch_size=32, max_iter=15, random_state=3)
    base.update(params)
    ours, theirs = _fit_both("MLPClassifier", X, y, backend, **base)
    assert_same_model(ours, theirs, RTOL[base.get("solver", "adam")])
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-7,
                               atol=1e-12)


# ------------------------------------------------------------- the regressor
REGRESSOR_CASES = {
    "adam-one-output": (1, dict(solver="adam")),
    "adam-three-outputs-alpha": (3, dict(solver="adam", alpha=0.1, activation="tanh")),
    "sgd-three-outputs": (3, dict(solver="sgd", learning_rate_init=0.02)),
    "sgd-invscaling": (1, dict(solver="sgd", learning_rate="invscaling",
                               learning_rate_init=0.1)),
    "early-stopping": (2, dict(early_stopping=True, n_iter_no_change=3, max_iter=50,
                               learning_rate_init=0.01)),
    "lbfgs": (2, dict(solver="lbfgs", max_iter=40, activation="logistic")),
}


@pytest.mark.parametrize("case", list(REGRESSOR_CASES))
def test_regressor_is_scikit_learns(case, backend):
    n_outputs, params = REGRESSOR_CASES[case]
    X, y = _regression(n_outputs=n_outputs)
    base = dict(hidden_layer_sizes=(8,), batch_size=25, max_iter=15, random_state=5)
    base.update(params)
    ours, theirs = _fit_both("MLPRegressor", X, y, backend, **base)
    assert_same_model(ours, theirs, RTOL[base.get("solver", "adam")])
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-7, atol=1e-10)


# ------------------------------------------------------- weights and calls
@pytest.mark.parametrize("cls_name, solver", [("MLPClassifier", "adam"),
                                              ("MLPClassifier", "sgd"),
                                              ("MLPClassifier", "lbfgs"),
                                              ("MLPRegressor", "adam")])
def test_sample_weight_is_scikit_learns(cls_name, solver, backend):
    X, y = _classes() if cls_name == "MLPClassifier" else _regression()
    w = np.random.default_rng(7).uniform(0.2, 3.0, X.shape[0])
    base = dict(hidden_layer_sizes=(6,), batch_size=40, max_iter=12, random_state=0,
                solver=solver, alpha=0.01)
    ours, theirs = _fit_both(cls_name, X, y, backend, fit_params={"sample_weight": w}, **base)
    assert_same_model(ours, theirs, RTOL[solver])
    unweighted, _ = _fit_both(cls_name, X, y, backend, **base)
    assert _largest_difference(unweighted.coefs_, ours.coefs_) > 1e-3   # the weights count


@pytest.mark.parametrize("early_stopping", [False, True])
def test_sample_weight_with_early_stopping(early_stopping):
    X, y = _classes(n=200)
    w = np.random.default_rng(8).uniform(0.5, 2.0, X.shape[0])
    base = dict(hidden_layer_sizes=(6,), batch_size=50, max_iter=30, random_state=1,
                early_stopping=early_stopping, n_iter_no_change=3)
    ours, theirs = _fit_both("MLPClassifier", X, y, fit_params={"sample_weight": w}, **base)
    assert_same_model(ours, theirs, 1e-9)


@pytest.mark.parametrize("cls_name", ["MLPClassifier", "MLPRegressor"])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_warm_start_is_scikit_learns(cls_name, early_stopping, backend):
    """Three warm-started fits: the counter, best loss and curve carry over, the
    optimizer restarts, n_iter_ counts each call's epochs."""
    X, y = _classes() if cls_name == "MLPClassifier" else _regression()
    params = dict(hidden_layer_sizes=(6,), batch_size=32, max_iter=8, random_state=2,
                  warm_start=True, early_stopping=early_stopping, n_iter_no_change=4,
                  tol=1e-3)
    ests = [getattr(sk, cls_name)(**params), getattr(fk, cls_name)(backend=backend, **params)]
    for call in range(3):
        for est in ests:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                est.fit(X[call * 10:], y[call * 10:])
            est.warned_ = sorted({type(w.message).__name__ for w in caught})
        assert_same_model(ests[1], ests[0], 1e-9)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_partial_fit_is_scikit_learns(solver, backend):
    """partial_fit in chunks, with classes on the first call only and a chunk that
    lacks a class: the optimizer's state and t_ carry over, n_iter_ is 1."""
    X, y = _classes(n=160)
    params = dict(hidden_layer_sizes=(6,), batch_size=20, random_state=4, solver=solver,
                  learning_rate="invscaling", learning_rate_init=0.05)
    ests = [sk.MLPClassifier(**params), fk.MLPClassifier(backend=backend, **params)]
    chunks = [slice(0, 50), slice(50, 100), slice(100, 160)]
    for i, part in enumerate(chunks * 2):
        Xc, yc = X[part], y[part]
        if i == 1:
            Xc, yc = Xc[yc != 2], yc[yc != 2]
        for est in ests:
            est.partial_fit(Xc, yc, classes=np.arange(3) if i == 0 else None)
            est.warned_ = []
        assert_same_model(ests[1], ests[0], 1e-9)


def test_partial_fit_regressor_after_fit():
    X, y = _regression(n_outputs=2)
    params = dict(hidden_layer_sizes=(5,), max_iter=5, random_state=6, batch_size=30)
    ests = [sk.MLPRegressor(**params), fk.MLPRegressor(**params)]
    for est in ests:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
        est.partial_fit(X[:70], y[:70])
        est.partial_fit(X[70:], y[70:])
        est.warned_ = []
    assert_same_model(ests[1], ests[0], 1e-9)


def test_random_state_instance_advances_like_scikit_learns():
    """A RandomState passed in is drawn from by every fit, as scikit-learn draws."""
    X, y = _classes()
    ests = [cls(hidden_layer_sizes=(5,), max_iter=4, batch_size=50,
                random_state=np.random.RandomState(9))
            for cls in (sk.MLPClassifier, fk.MLPClassifier)]
    for _ in range(2):
        for est in ests:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(X, y)
            est.warned_ = []
        assert_same_model(ests[1], ests[0], 1e-9)
    assert (ests[0].random_state.randint(10**9) == ests[1].random_state.randint(10**9))


def test_float32_trains_in_float32_like_scikit_learn():
    """X float32: both train in float32 (dtype=None follows X); close to float32's
    precision, not to 1e-9."""
    X, y = _classes()
    ours, theirs = _fit_both("MLPClassifier", X.astype(np.float32), y,
                             hidden_layer_sizes=(6,), max_iter=10, random_state=0)
    assert ours.coefs_[0].dtype == theirs.coefs_[0].dtype == np.float32
    assert _largest_difference(ours.coefs_, theirs.coefs_) < 1e-4


# ----------------------------------------------- the differences, shown
def test_poisson_loss_is_refused_clearly():
    X, y = _regression()
    with pytest.raises(ValueError, match="poisson.*not available"):
        fk.MLPRegressor(loss="poisson").fit(X, np.abs(y))


def test_sparse_X_is_refused_clearly():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    X, y = _classes()
    with pytest.raises(TypeError, match="[Ss]parse"):
        fk.MLPClassifier(max_iter=2).fit(scipy_sparse.csr_matrix(X), y)


def test_negative_sample_weight_is_refused():
    X, y = _classes()
    w = np.ones(X.shape[0])
    w[3] = -1.0
    with pytest.raises(ValueError, match="negative|>= 0"):
        fk.MLPClassifier(max_iter=2).fit(X, y, sample_weight=w)


def test_divergence_keeps_finite_weights_and_raises_scikit_learns_error():
    """scikit-learn trains on to non-finite weights, then raises; fastnn's trainer
    refuses the update that would write them (the weights stay finite) and raises
    the same error."""
    X, y = _regression()
    est = fk.MLPRegressor(solver="sgd", learning_rate_init=1e6, max_iter=50, random_state=0)
    with pytest.raises(ValueError, match="non-finite parameter weights"):
        est.fit(X * 1e3, y * 1e6)
    assert all(np.isfinite(c).all() for c in est.coefs_)


@pytest.mark.parametrize("params", [dict(solver="sgd", learning_rate="adaptive", tol=1e-2,
                                         n_iter_no_change=2, learning_rate_init=0.05),
                                    dict(early_stopping=True, n_iter_no_change=2, tol=1e-2)],
                         ids=["adaptive", "early-stopping"])
def test_verbose_prints_scikit_learns_lines(params, capsys):
    """verbose=True: the same progress lines, in the same order (the numbers agree to
    the printed digits)."""
    X, y = _classes()
    printed = []
    for module in (sk, fk):
        est = module.MLPClassifier(hidden_layer_sizes=(5,), max_iter=25, batch_size=40,
                                   random_state=0, verbose=True, **params)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
        printed.append(capsys.readouterr().out.splitlines())
    assert printed[1] == printed[0]
    assert any("Setting learning rate" in line or "Validation score" in line
               for line in printed[0])


def test_the_batch_orders_are_sklearn_utils_shuffle():
    """_SklearnOrder draws what sklearn.utils.shuffle draws, epoch after epoch, and
    leaves the RandomState where it leaves it."""
    from sklearn.utils import shuffle
    ours, theirs = np.random.RandomState(3), np.random.RandomState(3)
    order = fk._SklearnOrder(ours, 37)
    idx = np.arange(37)
    for _ in range(5):
        idx = shuffle(idx, random_state=theirs)
        np.testing.assert_array_equal(order.permutation(37), idx)
    assert ours.randint(10**9) == theirs.randint(10**9)


def test_lbfgs_warm_start_and_partial_fit():
    """L-BFGS: a warm-started fit goes on from the fitted weights, as scikit-learn's;
    the classifier has no partial_fit (scikit-learn's AttributeError), the
    regressor's runs L-BFGS (scikit-learn 1.9's regressor does)."""
    X, y = _regression(n_outputs=2)
    params = dict(hidden_layer_sizes=(5,), solver="lbfgs", max_iter=10, warm_start=True,
                  random_state=0)
    ests = [sk.MLPRegressor(**params), fk.MLPRegressor(**params)]
    for call in range(3):
        for est in ests:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                est.partial_fit(X, y) if call == 2 else est.fit(X, y)
            est.warned_ = sorted({type(w.message).__name__ for w in caught})
        assert_same_model(ests[1], ests[0], 1e-7)
    Xc, yc = _classes()
    for module in (sk, fk):
        clf = module.MLPClassifier(solver="lbfgs")
        assert not hasattr(clf, "partial_fit")
        with pytest.raises(AttributeError, match="has no attribute 'partial_fit'"):
            clf.partial_fit(Xc, yc, classes=[0, 1, 2])

"""fastnn.sklearn's estimators on a Dask cluster: searches through joblib, Incremental over chunks.

Why it is built this way: a cluster must change where the estimators run,
never what they compute.  So every test here runs the same work twice -- on
one machine, in this process, and on a ``dask.distributed`` LocalCluster of
worker PROCESSES (each its own interpreter, as on other machines: the
estimators travel pickled) -- and asks for equal numbers: the scores of a
``GridSearchCV``/``RandomizedSearchCV`` under ``joblib.parallel_backend("dask")``
split for split, and the weights of dask-ml's ``Incremental`` against
``partial_fit`` over the same chunks in the same order.  The workers also
report which backend they trained on (the compiled one, resolved in the worker
process, unless the estimator names one) and their process ids, so the tests
fail if the work silently stayed in this process.

One cluster for the module (starting worker processes is the slow part);
small data.  The tests skip cleanly without dask, distributed, dask-ml or
scikit-learn.  The regressor's Incremental is scored with
``neg_mean_squared_error``: dask-ml's own r2 over dask arrays is broken with
dask >= 2025.2 for every estimator (dask/dask-ml#1012; the README says so).
"""

import os
import pickle
import re
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("dask")
pytest.importorskip("distributed")
pytest.importorskip("dask_ml")

import dask.array as da  # noqa: E402
import joblib  # noqa: E402
from dask.distributed import Client, LocalCluster, get_task_stream  # noqa: E402
from dask_ml.wrappers import Incremental  # noqa: E402
from scipy.stats import loguniform  # noqa: E402
from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV  # noqa: E402

from fastnn.backends import available_backends, get_backend  # noqa: E402
from fastnn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def client():
    # worker processes inherit this process's environment (PYTHONPATH, FASTNN_*)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as c:
        # each worker's ConvergenceWarnings would go to its stderr: keep the log quiet
        c.run(warnings.filterwarnings, "ignore", category=ConvergenceWarning)
        yield c


def _worker_pids(client):
    return set(client.run(os.getpid).values())


def _classification():
    return make_classification(240, 8, n_informative=5, random_state=0)


def _regression():
    X, y = make_regression(240, 8, noise=5.0, random_state=0)
    return X, y / y.std()


def _local_default():
    """The backend name an estimator with backend=None gets in a process like this one."""
    return get_backend().name


# ------------------------------------------------------- pickling and backends
def test_fitted_estimators_pickle_and_predict_the_same():
    X, y = _classification()
    for est in (MLPClassifier(hidden_layer_sizes=(7,), max_iter=15, random_state=0).fit(X, y),
                MLPRegressor(hidden_layer_sizes=(7,), max_iter=15, random_state=0)
                .fit(*_regression())):
        back = pickle.loads(pickle.dumps(est))
        assert back.network_.backend == est.network_.backend
        np.testing.assert_array_equal(back.predict(X), est.predict(X))
        for a, b in zip(back.coefs_, est.coefs_):
            np.testing.assert_array_equal(a, b)
        back.coefs_[0][0, 0] += 1.0            # coefs_ are still the network's weights
        assert back.network_.layers[0].W[0, 0] == back.coefs_[0][0, 0]


def test_a_worker_process_fits_on_its_compiled_backend(client):
    X, y = _classification()

    def fit_here(est):
        est.fit(X, y)
        return os.getpid(), est.network_.backend, est

    for backend in (None, "numpy"):
        est = MLPClassifier(hidden_layer_sizes=(9,), max_iter=20, random_state=0,
                            backend=backend)
        pid, name, fitted = client.submit(fit_here, est, pure=False).result()
        assert pid in _worker_pids(client) and pid != os.getpid()
        # backend=None resolves in the worker: the compiled backend there, as here
        assert name == (backend or _local_default())
        if backend is None and "cython" in available_backends():
            assert name == "cython"
        local = MLPClassifier(hidden_layer_sizes=(9,), max_iter=20, random_state=0,
                              backend=backend).fit(X, y)
        for a, b in zip(fitted.coefs_, local.coefs_):
            np.testing.assert_array_equal(a, b)
        assert fitted.network_.backend == name       # it came back on the same backend


# ------------------------------------------------------------ joblib searches
def _tagged_scoring(base):
    """``base`` plus two 'scores' that report where and on what each fit ran."""
    def pid(est, X, y):
        return float(os.getpid())

    def compiled(est, X, y):
        return float(est.network_.backend == "cython")

    return {"score": base, "pid": pid, "compiled": compiled}


def _assert_same_scores(local, dist, n_splits):
    for key in ["mean_test_score", *(f"split{i}_test_score" for i in range(n_splits))]:
        np.testing.assert_array_equal(dist.cv_results_[key], local.cv_results_[key], err_msg=key)
    assert dist.best_params_ == local.best_params_
    assert dist.best_score_ == local.best_score_


def test_grid_search_on_the_cluster_scores_as_on_one_machine(client):
    X, y = _classification()
    est = MLPClassifier(hidden_layer_sizes=(8,), max_iter=25, random_state=0)
    grid = {"alpha": [1e-4, 1e-1], "learning_rate_init": [1e-3, 1e-2]}
    scoring = _tagged_scoring("accuracy")
    local = GridSearchCV(est, grid, cv=3, scoring=scoring, refit="score", n_jobs=1).fit(X, y)
    with joblib.parallel_backend("dask"):
        dist = GridSearchCV(est, grid, cv=3, scoring=scoring, refit="score",
                            n_jobs=-1).fit(X, y)
    _assert_same_scores(local, dist, 3)
    pids = {dist.cv_results_[f"split{i}_test_pid"][j] for i in range(3) for j in range(4)}
    assert pids <= {float(p) for p in _worker_pids(client)} and float(os.getpid()) not in pids
    compiled = np.concatenate([dist.cv_results_[f"split{i}_test_compiled"] for i in range(3)])
    expect = float("cython" in available_backends() and _local_default() == "cython")
    assert np.all(compiled == expect)
    np.testing.assert_array_equal(dist.predict(X), local.predict(X))


def test_randomized_search_on_the_cluster_scores_as_on_one_machine(client):
    X, y = _regression()
    est = MLPRegressor(hidden_layer_sizes=(6,), max_iter=20, random_state=0)
    space = {"alpha": loguniform(1e-5, 1e-1), "learning_rate_init": loguniform(1e-3, 3e-2)}
    local = RandomizedSearchCV(est, space, n_iter=4, cv=3, random_state=0, n_jobs=1).fit(X, y)
    with joblib.parallel_backend("dask"):
        dist = RandomizedSearchCV(est, space, n_iter=4, cv=3, random_state=0,
                                  n_jobs=-1).fit(X, y)
    assert dist.cv_results_["params"] == local.cv_results_["params"]
    _assert_same_scores(local, dist, 3)


# --------------------------------------------------- dask-ml's Incremental
def _partial_fit_over_chunks(est, X, y, chunk, **first):
    for start in range(0, len(X), chunk):
        est.partial_fit(X[start:start + chunk], y[start:start + chunk], **first)
        first = {}
    return est


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_incremental_equals_partial_fit_over_the_same_chunks(client, kind):
    if kind == "classifier":
        X, y = _classification()
        make = lambda: MLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=0.01,  # noqa
                                     random_state=0)
        first, scoring = {"classes": [0, 1]}, "accuracy"
    else:
        X, y = _regression()
        make = lambda: MLPRegressor(hidden_layer_sizes=(8,), solver="sgd",  # noqa
                                    learning_rate_init=0.01, random_state=0)
        # dask-ml's own r2 on dask arrays is broken with dask >= 2025.2 (dask/dask-ml#1012)
        first, scoring = {}, "neg_mean_squared_error"
    chunk = 70                                              # 70, 70, 70, 30 rows
    Xd, yd = da.from_array(X, chunks=(chunk, -1)), da.from_array(y, chunks=chunk)
    inc = Incremental(make(), scoring=scoring, shuffle_blocks=False)
    with get_task_stream(client) as tasks:
        inc.fit(Xd, yd, **first)
    ran = [t["worker"] for t in tasks.data if str(t["key"]).startswith("('fit-")]
    assert len(ran) >= 4, tasks.data                # one partial_fit task per chunk, on workers
    fitted = inc.estimator_
    assert fitted.network_.backend == _local_default()
    ref = _partial_fit_over_chunks(make(), X, y, chunk, **first)
    assert fitted.n_iter_ == ref.n_iter_ and fitted.t_ == ref.t_ == len(X)
    for a, b in zip(fitted.coefs_ + fitted.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fitted.loss_curve_, ref.loss_curve_)
    # predictions over the dask array (ParallelPostFit: per chunk, on the workers)
    np.testing.assert_array_equal(inc.predict(Xd).compute(), ref.predict(X))
    if kind == "classifier":
        assert inc.score(Xd, yd) == ref.score(X, y)
    # a second pass continues from the first, as a second loop of partial_fit does
    inc.partial_fit(Xd, yd)
    _partial_fit_over_chunks(ref, X, y, chunk)
    for a, b in zip(inc.estimator_.coefs_, ref.coefs_):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ README
def test_readme_example_runs_and_matches_one_machine(client, capsys):
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text.split("## When one machine is not enough", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    start = "Client(n_workers=2, threads_per_worker=1)"
    assert code.count(start) == 1
    # the example's own cluster is this module's: connect to it rather than start another
    code = code.replace(start, f"Client({client.scheduler.address!r})")
    ns = {"__name__": "readme_dask"}
    exec(compile(code, "README.md", "exec"), ns)
    printed = capsys.readouterr().out.splitlines()
    search, inc = ns["search"], ns["inc"]
    X, y = ns["X"], ns["y"]
    one = GridSearchCV(search.estimator, search.param_grid, n_jobs=1).fit(X, y)
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"],
                                  one.cv_results_["mean_test_score"])
    ref = MLPClassifier(**inc.estimator.get_params())
    first = {"classes": [0, 1]}
    for _ in range(ns["epoch"] + 1):                # the README's passes over the chunks
        _partial_fit_over_chunks(ref, X, y, ns["Xd"].chunks[0][0], **first)
        first = {}
    for a, b in zip(inc.estimator_.coefs_, ref.coefs_):
        np.testing.assert_array_equal(a, b)
    # the lines the README shows as comments are the lines it prints
    shown = re.findall(r"^# -> (.*)$", section, re.M)
    assert printed == shown, (printed, shown)
    ns["client"].close()                            # (the README closes it; twice is harmless)

"""fastnn.datasets' real-data loaders: the 8x8 digits and MNIST's IDX files.

Why it is built this way: the digits come from the file inside scikit-learn
(skipped, with the reason, only when scikit-learn is missing); the IDX reader
is tested on small files written here, raw and gzip-compressed, and on one
damaged file per error the reader promises.
"""

import gzip
import importlib.util
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from fastnn import datasets

needs_sklearn = pytest.mark.skipif(
    importlib.util.find_spec("sklearn") is None,
    reason='scikit-learn is not installed (pip install "fastnn[sklearn]")')


# ----------------------------------------------------------------- digits
@needs_sklearn
def test_load_digits_scaled():
    X, y = datasets.load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64 and X.flags.c_contiguous
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    np.testing.assert_array_equal(X * 16, np.round(X * 16))     # sixteenths
    assert sorted(np.unique(y)) == list(range(10))
    assert np.bincount(y).min() >= 170                          # ~180 of each digit


@needs_sklearn
def test_load_digits_unscaled_is_the_sklearn_data():
    from sklearn.datasets import load_digits
    X, y = datasets.load_digits(scale=False)
    reference = load_digits()
    assert X.dtype == np.float64 and X.max() == 16.0
    np.testing.assert_array_equal(X, reference.data)
    np.testing.assert_array_equal(y, reference.target)
    np.testing.assert_array_equal(datasets.load_digits()[0], X / 16)
    # the first image is a zero: a ring of ink around an empty centre
    image = X[0].reshape(8, 8)
    assert y[0] == 0 and image[3:5, 3:5].max() <= 1 and image.max() == 15


def test_load_digits_without_sklearn_says_how_to_install(tmp_path):
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "from fastnn import datasets\n"
            "try:\n    datasets.load_digits()\n"
            "except ImportError as exc:\n    print(exc)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert 'pip install "fastnn[sklearn]"' in result.stdout


# -------------------------------------------------------------- IDX files
def _idx_bytes(array, code=0x08, magic=None):
    array = np.asarray(array)
    head = magic if magic is not None else bytes([0, 0, code, array.ndim])
    return head + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(">u1").tobytes()


def _write(directory, name, data, gz=False):
    path = os.path.join(directory, name + (".gz" if gz else ""))
    with open(path, "wb") as f:
        f.write(gzip.compress(data) if gz else data)
    return path


def _images_and_labels(n=5, rows=28, cols=28, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, rows, cols), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    return images, rng.integers(0, 10, size=n, dtype=np.uint8)


def _write_set(directory, kind="train", gz=False, n=5, images=None, labels=None):
    img, lab = _images_and_labels(n)
    images = _idx_bytes(img) if images is None else images
    labels = _idx_bytes(lab) if labels is None else labels
    _write(directory, f"{kind}-images-idx3-ubyte", images, gz)
    _write(directory, f"{kind}-labels-idx1-ubyte", labels, gz)
    return img, lab


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_load_mnist_reads_idx(tmp_path, gz):
    images, labels = _write_set(tmp_path, "train", gz)
    X, y = datasets.load_mnist(tmp_path)
    assert X.shape == (5, 784) and X.dtype == np.float64
    assert y.shape == (5,) and y.dtype == np.int64
    np.testing.assert_array_equal(y, labels)
    np.testing.assert_allclose(X, images.reshape(5, 784) / 255.0, rtol=1e-15)
    assert X.min() == 0.0 and X.max() == 1.0
    # row by row: pixel (r, c) of image i is X[i, 28 * r + c]
    assert X[3, 28 * 5 + 7] == images[3, 5, 7] / 255.0


@pytest.mark.parametrize("kind", ["t10k", "test"])
def test_load_mnist_test_set_and_options(tmp_path, kind):
    _write_set(tmp_path, "train", n=4)
    images, labels = _write_set(tmp_path, "t10k", gz=True, n=3)
    X, y = datasets.load_mnist(str(tmp_path), kind=kind, scale=False, dtype=np.float32)
    assert X.shape == (3, 784) and X.dtype == np.float32
    np.testing.assert_array_equal(X, images.reshape(3, 784))
    np.testing.assert_array_equal(y, labels)


def test_load_mnist_other_image_sizes_and_dotted_names(tmp_path):
    img, lab = _images_and_labels(n=2, rows=3, cols=4)
    _write(tmp_path, "train-images.idx3-ubyte", _idx_bytes(img))
    _write(tmp_path, "train-labels.idx1-ubyte", _idx_bytes(lab))
    X, y = datasets.load_mnist(tmp_path)
    assert X.shape == (2, 12)
    np.testing.assert_array_equal(X * 255, img.reshape(2, 12))


def test_load_mnist_empty_set(tmp_path):
    _write_set(tmp_path, images=_idx_bytes(np.zeros((0, 28, 28))),
               labels=_idx_bytes(np.zeros(0)))
    X, y = datasets.load_mnist(tmp_path)
    assert X.shape == (0, 784) and y.shape == (0,)


def test_load_mnist_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        datasets.load_mnist(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError,
                       match=r"train-images-idx3-ubyte, train-images-idx3-ubyte\.gz"):
        datasets.load_mnist(tmp_path)
    _write_set(tmp_path, "train")
    with pytest.raises(FileNotFoundError, match=r"t10k-images-idx3-ubyte.*t10k-images-idx3"):
        datasets.load_mnist(tmp_path, kind="t10k")
    os.remove(tmp_path / "train-labels-idx1-ubyte")
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        datasets.load_mnist(tmp_path)


def test_load_mnist_bad_arguments(tmp_path):
    _write_set(tmp_path)
    with pytest.raises(ValueError, match="kind must be one of"):
        datasets.load_mnist(tmp_path, kind="validation")
    with pytest.raises(TypeError, match="float dtype"):
        datasets.load_mnist(tmp_path, dtype=np.int32)


_IMG, _LAB = _images_and_labels(n=5)
_GOOD_IMAGES = _idx_bytes(_IMG)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize("images, labels, match", [
    (b"\x12\x34\x08\x03" + _GOOD_IMAGES[4:], None, "bad magic number 0x12340803"),
    (b"\x00\x01\x08\x03" + _GOOD_IMAGES[4:], None, "bad magic number"),
    (_idx_bytes(_IMG, code=0x0D), None, r"wrong dtype code 0x0d \(float\)"),
    (_idx_bytes(_IMG, code=0x42), None, r"wrong dtype code 0x42 \(unknown\)"),
    (None, _idx_bytes(_LAB, code=0x0C), r"wrong dtype code 0x0c \(int\).*labels"),
    (_idx_bytes(_IMG.reshape(5, 784)), None, "has 2 dimensions; MNIST images have 3"),
    (None, _idx_bytes(_LAB.reshape(5, 1)), "has 2 dimensions; MNIST labels have 1"),
    (_GOOD_IMAGES[:-1], None, r"truncated: the header says shape \(5, 28, 28\), i.e. 3920 "
                              "bytes of data, but the file has 3919"),
    (_GOOD_IMAGES[:10], None, "truncated: the header needs 16 bytes"),
    (_GOOD_IMAGES[:3], None, "truncated: 3 bytes"),
    (b"", None, "truncated: 0 bytes"),
    (_GOOD_IMAGES + b"\x00", None, "1 bytes after the data"),
    (None, _idx_bytes(_LAB[:4]), "has 5 images but .* has 4 labels"),
])
def test_load_mnist_malformed_files(tmp_path, gz, images, labels, match):
    _write_set(tmp_path, gz=gz, images=images, labels=labels)
    with pytest.raises(ValueError, match=match):
        datasets.load_mnist(tmp_path)


def test_load_mnist_damaged_gzip(tmp_path):
    img, lab = _images_and_labels()
    _write(tmp_path, "train-images-idx3-ubyte.gz", gzip.compress(_idx_bytes(img))[:-12])
    _write(tmp_path, "train-labels-idx1-ubyte.gz", gzip.compress(_idx_bytes(lab)))
    with pytest.raises(ValueError, match="damaged or truncated gzip"):
        datasets.load_mnist(tmp_path)

"""Network.load on hostile files: bounded memory and time, a ValueError naming the file.

Why it is built this way: each test starts from a file ``save`` wrote and
damages one thing in it -- a member replaced, added, dropped, or a field of
the zip headers patched in place -- so the file is otherwise valid and the
one damage is what ``load`` must catch.  Memory is measured in a child
process (its peak RSS before and after ``load``), importing the same fastnn
as these tests, so the test process's own allocations do not blur it.  The
table of simpler damaged files is in tests/test_bad_input.py.
"""

import io
import json
import os
import struct
import subprocess
import sys
import warnings
import zipfile
import zlib

import numpy as np
import pytest

import fastnn
from fastnn import Dense, Dropout, Network, ReLU, Tanh

MiB = 1 << 20


def _net(backend="numpy"):
    return Network([Dense(3, 4), ReLU(), Dropout(0.25), Dense(4, 2), Tanh()], backend=backend,
                   seed=0)


def _npy(arr):
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _members(path):
    """The archive's members, name -> bytes, in order."""
    with zipfile.ZipFile(path) as z:
        return {info.filename: z.read(info) for info in z.infolist()}


def _write(path, members, method=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)


def _saved(tmp_path, **changes):
    """A file ``save`` wrote, with members replaced (bytes) or dropped (None)."""
    path = tmp_path / "net.npz"
    _net().save(path)
    if changes:
        members = _members(path)
        for name, data in changes.items():
            if data is None:
                del members[name]
            else:
                members[name] = data
        _write(path, members)
    return path


def _patch(path, member, local_offset, central_offset, fmt, value):
    """Set a field of ``member``'s local header and its central directory record."""
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(member)
    struct.pack_into(fmt, raw, info.header_offset + local_offset, value)
    pos = raw.find(b"PK\x01\x02")
    while pos >= 0:
        name_len = struct.unpack_from("<H", raw, pos + 28)[0]
        if raw[pos + 46:pos + 46 + name_len] == member.encode():
            struct.pack_into(fmt, raw, pos + central_offset, value)
            break
        pos = raw.find(b"PK\x01\x02", pos + 4)
    else:
        raise AssertionError(f"no central directory record for {member}")
    path.write_bytes(bytes(raw))


def _refused(path, backend, match):
    with pytest.raises(ValueError, match=match) as info:
        Network.load(path, backend=backend)
    assert str(path) in str(info.value)         # the message names the file


# ------------------------------------------------------------ what loads
def test_saved_file_with_an_extra_member_loads_bit_exact(backend, tmp_path):
    net = _net(backend)
    path = tmp_path / "net.npz"
    net.save(path)
    members = _members(path)
    members["notes.txt"] = b"an extra member a network does not need"
    _write(path, members)
    loaded = Network.load(path, backend=backend)
    for (k, p, _), (q, r, _) in zip(net.parameters(), loaded.parameters()):
        assert k == q and p.dtype == r.dtype and np.array_equal(p, r)
    assert (loaded.layers[2].seed, loaded.layers[2].step) == (net.layers[2].seed,
                                                            net.layers[2].step)


def test_deflated_and_big_endian_members_load(backend, tmp_path):
    """An archive recompressed with deflate (as ``numpy.savez_compressed`` writes it)
    and members in the other byte order load to the same numbers."""
    net = _net(backend)
    path = tmp_path / "net.npz"
    net.save(path)
    members = _members(path)
    members["0.W.npy"] = _npy(net.layers[0].W.astype(">f8"))
    _write(path, members, zipfile.ZIP_DEFLATED)
    loaded = Network.load(path, backend=backend)
    for (_, p, _), (_, q, _) in zip(net.parameters(), loaded.parameters()):
        assert np.array_equal(p, q) and q.dtype.isnative


# ------------------------------------------------------- memory and time
_MEASURE = """if True:
    import json, re, sys
    import fastnn

    def peak_mb():      # this process image's own peak RSS (ru_maxrss would include
        with open("/proc/self/status") as f:           # the parent's, kept across exec)
            return int(re.search(r"VmHWM:\\s+(\\d+)", f.read()).group(1)) / 1024

    path, backend, warm = sys.argv[1:4]
    fastnn.Network.load(warm, backend=backend)        # imports and first-use costs
    before = peak_mb()
    try:
        fastnn.Network.load(path, backend=backend)
        result = "loaded"
    except Exception as exc:
        result = f"{type(exc).__name__}: {exc}"
    print(json.dumps({"result": result, "grown_mb": peak_mb() - before}))
"""


def _load_in_child(path, backend, tmp_path):
    warm = tmp_path / "warm.npz"
    _net().save(warm)
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))
    proc = subprocess.run([sys.executable, "-c", _MEASURE, str(path), backend, str(warm)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600,
                          env=dict(os.environ, PYTHONPATH=package_root))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _deflated_zeros(z, name, nbytes, header=None):
    """Add member ``name``: an .npy header (a uint8 array of ``nbytes``, unless given)
    and ``nbytes`` zeros, deflated (~1000:1), written in chunks."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with z.open(info, "w", force_zip64=True) as f:
        if header is None:
            np.lib.format.write_array_header_1_0(
                f, {"descr": "|u1", "fortran_order": False, "shape": (nbytes,)})
        else:
            f.write(header)
        chunk = bytes(16 * MiB)
        for start in range(0, nbytes, len(chunk)):
            f.write(chunk[:min(len(chunk), nbytes - start)])


BOMB = 256 * MiB


def test_zip_bomb_member_is_never_inflated(backend, tmp_path):
    """An extra member of 256 MiB of zeros (~256 KB in the file) is not read."""
    path = tmp_path / "bomb.npz"
    _net().save(path)
    with zipfile.ZipFile(path, "a") as z:
        _deflated_zeros(z, "bomb.npy", BOMB)
    assert path.stat().st_size < 2 * MiB
    out = _load_in_child(path, backend, tmp_path)
    assert out["result"] == "loaded"
    assert out["grown_mb"] < 32, out


def test_needed_member_inflating_to_more_than_its_array_is_refused(backend, tmp_path):
    """0.W's header says (3, 4) float64, then 256 MiB of zeros follow: refused from the
    zip directory's sizes, before inflating any of it."""
    path = tmp_path / "bomb.npz"
    members = _members(_saved(tmp_path))
    good = members.pop("0.W.npy")
    header = good[:len(good) - 3 * 4 * 8]
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
        _deflated_zeros(z, "0.W.npy", BOMB, header=header)
    out = _load_in_child(path, backend, tmp_path)
    assert out["result"].startswith(f"ValueError: {path}: the member '0.W' declares "), out
    assert out["grown_mb"] < 32, out


def test_config_member_bomb_is_refused_before_reading(backend, tmp_path):
    """A description padded to 300 MB of JSON whitespace (the file is small)."""
    path = tmp_path / "bomb.npz"
    members = _members(_saved(tmp_path))
    del members["config.npy"]
    body = json.dumps(json.loads(str(np.load(_saved(tmp_path))["config"]))).encode("utf-32-le")
    n_chars = 75 * MiB                          # 300 MB: 4 bytes a character as a NumPy str
    with zipfile.ZipFile(path, "w") as z:
        info = zipfile.ZipInfo("config.npy")
        info.compress_type = zipfile.ZIP_DEFLATED
        with z.open(info, "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": f"<U{n_chars}", "fortran_order": False, "shape": ()})
            f.write(body)
            left = 4 * n_chars - len(body)
            pad = " ".encode("utf-32-le") * MiB
            while left:
                f.write(pad[:min(left, len(pad))])
                left -= min(left, len(pad))
        for name, data in members.items():
            z.writestr(name, data)
    out = _load_in_child(path, backend, tmp_path)
    assert out["result"].startswith(f"ValueError: {path}: the member 'config' declares "), out
    assert out["grown_mb"] < 32, out


_HUGE = {"format": "fastnn", "version": 1, "dtype": "float64", "seed": 0,
         "layers": [{"type": "Dense", "config": {"n_in": 16000, "n_out": 16000}}]}


def _huge_file(path, method=zipfile.ZIP_STORED, **members):
    with zipfile.ZipFile(path, "w", method) as z:
        z.writestr("config.npy", _npy(np.array(json.dumps(_HUGE))))
        for name, data in members.items():
            z.writestr(name, data)
    assert path.stat().st_size < 2048


def _claim_size(path, member, size):
    """Make the zip headers of a stored ``member`` claim ``size`` bytes (64-bit fields
    are not needed below 4 GiB)."""
    for local, central in ((18, 20), (22, 24)):        # compressed, uncompressed size
        _patch(path, member, local, central, "<I", size)


@pytest.mark.parametrize("variant", ["missing", "small-header", "header-claims-all",
                                     "directory-lies", "deflate-lies"])
def test_small_file_declaring_a_huge_layer_allocates_nothing(backend, tmp_path, variant):
    """A 1 KB file whose description declares Dense(16000, 16000) (2 GB of weights)."""
    path = tmp_path / "huge.npz"
    big = np.lib.format.header_data_from_array_1_0(np.zeros((1, 1)))
    big["shape"] = (16000, 16000)
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, big)
    claim = buf.getvalue()                          # a header for the whole array, no data
    members = {"missing": {},
               "small-header": {"0.W.npy": _npy(np.zeros((2, 2))), "0.b.npy": _npy(np.zeros(2))},
               "header-claims-all": {"0.W.npy": claim + bytes(64)},
               "directory-lies": {"0.W.npy": claim + bytes(64)},
               "deflate-lies": {"0.W.npy": claim + bytes(64)}}[variant]
    if variant == "deflate-lies":
        _huge_file(path, zipfile.ZIP_DEFLATED, **members)
        _patch(path, "0.W.npy", 22, 24, "<I", len(claim) + 16000 * 16000 * 8)
    else:
        _huge_file(path, **members)
    if variant == "directory-lies":
        _claim_size(path, "0.W.npy", len(claim) + 16000 * 16000 * 8)
    match = {"missing": "lacks the array '0.W'",
             "small-header": r"0.W has shape \(2, 2\), expected \(16000, 16000\)",
             "header-claims-all": r"the member '0.W' holds \d+ bytes but its header",
             "directory-lies": r"the member '0.W' extends past the end of the file",
             "deflate-lies": r"the member '0.W' declares \d+ bytes inflated from \d+, more "
                             r"than deflate can produce"}[variant]
    out = _load_in_child(path, backend, tmp_path)
    assert out["result"].startswith("ValueError: "), out
    assert out["grown_mb"] < 32, out
    _refused(path, backend, match)


# ------------------------------------------------------------ zip damage
def test_deeply_nested_description(backend, tmp_path):
    config = '{"format": "fastnn", "version": 1, "layers": ' + "[" * 100000 + "]" * 100000 + "}"
    path = _saved(tmp_path, **{"config.npy": _npy(np.array(config))})
    _refused(path, backend, "is not a fastnn network file .its description is nested too "
                            "deeply")


def test_nested_layer_argument_is_refused(backend, tmp_path):
    config = {"format": "fastnn", "version": 1, "dtype": "float64", "seed": 0,
              "layers": [{"type": "Dense", "config": {"n_in": [[[3]]], "n_out": 2}}]}
    path = _saved(tmp_path, **{"config.npy": _npy(np.array(json.dumps(config)))})
    _refused(path, backend, "damaged network description: TypeError: layer 0's argument "
                            "'n_in' is a list")


def test_unknown_compression_method(backend, tmp_path):
    path = _saved(tmp_path)
    _patch(path, "0.W.npy", 8, 10, "<H", 99)
    _refused(path, backend, r"the member '0.W' uses compression method 99 \(unknown\); fastnn "
                            r"reads stored \(0\) and deflate \(8\) members")


def test_encrypted_member(backend, tmp_path):
    path = _saved(tmp_path)
    _patch(path, "0.b.npy", 6, 8, "<H", 0x1)
    _refused(path, backend, "the member '0.b' is encrypted")


def _data_start(raw, info):
    """Offset of a member's (compressed) data: after its local header, name and extra field."""
    name_len, extra_len = struct.unpack_from("<HH", raw, info.header_offset + 26)
    return info.header_offset + 30 + name_len + extra_len


def test_bad_crc(backend, tmp_path):
    path = _saved(tmp_path)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("3.W.npy")
    raw[_data_start(raw, info) + info.file_size - 1] ^= 0xFF
    path.write_bytes(bytes(raw))
    _refused(path, backend, "the member '3.W' is damaged: Bad CRC-32")


def test_deflate_stream_ending_early(backend, tmp_path):
    """A member whose deflated data ends early, its zip entry claiming the full array."""
    path = _saved(tmp_path)
    _write(path, _members(path), zipfile.ZIP_DEFLATED)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("0.W.npy")
        content = z.read(info)
    start = _data_start(raw, info)
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    short = packer.compress(content[:160]) + packer.flush()     # the header and 32 bytes
    assert len(short) <= info.compress_size
    raw[start:start + info.compress_size] = short.ljust(info.compress_size, b"\0")
    path.write_bytes(bytes(raw))
    _refused(path, backend, "the member '0.W' (is damaged|ends after 32 of its 96 bytes)")


def test_member_listed_twice(backend, tmp_path):
    path = _saved(tmp_path)
    members = _members(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")             # zipfile warns of the duplicate name
        with zipfile.ZipFile(path, "a") as z:
            z.writestr("0.W.npy", _npy(np.ones((3, 4))))
    assert _members(path)["0.W.npy"] != members["0.W.npy"]
    _refused(path, backend, r"the member '0.W' appears twice in the archive")


# ------------------------------------------------------- member content
@pytest.mark.parametrize("array, match", [
    (np.ones((3, 4), np.float32), r"the member '0.W' has dtype float32, expected float64"),
    (np.ones((3, 4), np.int64), r"the member '0.W' has dtype int64, expected float64"),
    (np.asfortranarray(np.ones((3, 4))), r"the member '0.W' is stored in Fortran order"),
    (np.ones((4, 3)), r"0.W has shape \(4, 3\), expected \(3, 4\)"),
    (np.ones(12), r"0.W has shape \(12,\), expected \(3, 4\)"),
], ids=["float32", "int64", "fortran", "transposed", "flat"])
def test_wrong_weight_member(backend, tmp_path, array, match):
    path = _saved(tmp_path, **{"0.W.npy": _npy(array)})
    _refused(path, backend, match)


def test_member_that_is_not_npy(backend, tmp_path):
    path = _saved(tmp_path, **{"0.b.npy": b"\x00" * 64})
    _refused(path, backend, "the member '0.b' is damaged: the magic string is not correct")


def test_member_with_data_shorter_than_its_header(backend, tmp_path):
    path = _saved(tmp_path, **{"0.b.npy": _npy(np.zeros(4))[:-8]})
    _refused(path, backend, r"the member '0.b' holds \d+ bytes but its header \(128 bytes\) "
                            r"describes 32 bytes of data")


@pytest.mark.parametrize("state, match", [
    (np.array([-1, 0], np.int64), "the member '2.rng' has dtype int64, expected uint64"),
    (np.array([5, 0, 1], np.uint64), r"2.rng has shape \(3,\), expected \(2,\)"),
    (np.array(5, np.uint64), r"2.rng has shape \(\), expected \(2,\)"),
    (np.array([1.5, 2.0]), "the member '2.rng' has dtype float64, expected uint64"),
    (np.array(["a", "b"]), "the member '2.rng' has dtype <U1, expected uint64"),
    (np.array([7, 2**64 - 1], np.uint64), "2.rng holds the step count 18446744073709551615"),
    (None, "lacks the array '2.rng'"),
], ids=["negative", "three", "scalar", "float", "str", "step-at-the-end", "missing"])
def test_malformed_dropout_state(backend, tmp_path, state, match):
    path = _saved(tmp_path, **{"2.rng.npy": None if state is None else _npy(state)})
    _refused(path, backend, match)


def test_largest_dropout_state_loads_and_trains(backend, tmp_path):
    state = np.array([2**64 - 1, 2**63 - 2], np.uint64)
    path = _saved(tmp_path, **{"2.rng.npy": _npy(state)})
    net = Network.load(path, backend=backend)
    assert (net.layers[2].seed, net.layers[2].step) == (2**64 - 1, 2**63 - 2)
    X = np.random.default_rng(0).standard_normal((8, 3))
    net.fit(X, np.zeros((8, 2)), loss="mse", optimizer="sgd", epochs=1)


def test_config_that_is_not_a_string(backend, tmp_path):
    path = _saved(tmp_path, **{"config.npy": _npy(np.zeros(3))})
    _refused(path, backend, r"the member 'config' holds an array of dtype float64 and shape "
                            r"\(3,\); expected a string")


def test_config_with_invalid_characters(backend, tmp_path):
    header = np.lib.format.header_data_from_array_1_0(np.array("ab"))
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    path = _saved(tmp_path, **{"config.npy": buf.getvalue() + b"\xff" * 8})
    _refused(path, backend, "the member 'config' is damaged: 'utf-32-le' codec can't decode")


@pytest.mark.parametrize("edit, match", [
    ({"version": True}, "has format version True; this fastnn reads version 1"),
    ({"dtype": {"names": ["a"], "formats": ["f8"]}},
     "damaged network description: TypeError: dtype must be 'float32' or 'float64', got {"),
    ({"layers": [["Dense"]]}, "damaged network description: TypeError: layer 0 is a list"),
    ({"layers": "Dense"}, "damaged network description: TypeError: layers must be a list, "
                          "got a str"),
    ({"layers": [{"type": ["Dense"], "config": {}}]}, "unknown layer type \\['Dense'\\]"),
    ({"layers": [{"type": "Dense", "config": [2, 1]}]}, "layer 0's config is a list"),
], ids=["version-bool", "dtype-dict", "layer-list", "layers-str", "type-list", "config-list"])
def test_malformed_description(backend, tmp_path, edit, match):
    config = {"format": "fastnn", "version": 1, "dtype": "float64", "seed": 0,
              "layers": [{"type": "Dense", "config": {"n_in": 2, "n_out": 1}}], **edit}
    path = tmp_path / "net.npz"
    _write(path, {"config.npy": _npy(np.array(json.dumps(config))),
                  "0.W.npy": _npy(np.zeros((2, 1))), "0.b.npy": _npy(np.zeros(1))})
    _refused(path, backend, match)

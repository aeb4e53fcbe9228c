"""The openpi numpy encoding: what openpi-client sends, stageward reads, and back."""
import msgpack
import numpy as np
import pytest

from stageward_client import msgpack_numpy as mn

DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "float32", "float64", ">f4", ">i8", "<U5", "S3"]


def _sample(dtype, shape):
    rng = np.random.default_rng(0)
    dt = np.dtype(dtype)
    if dt.kind == "U":
        values = rng.choice(["a", "bc", "hello"], size=shape)
    elif dt.kind == "S":
        values = rng.choice([b"x", b"yz", b"abc"], size=shape)
    else:
        values = rng.random(shape) * 100
    return np.asarray(values).astype(dt).reshape(shape)  # a 0-d array for shape (), not a scalar


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2), (5,), (4, 3, 2)])
def test_arrays_of_every_dtype_and_shape_round_trip(dtype, shape):
    a = _sample(dtype, shape)
    b = mn.unpackb(mn.packb({"x": a}))["x"]
    assert isinstance(b, np.ndarray)
    assert b.dtype == a.dtype and b.shape == a.shape
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("make", [
    lambda a: a[:, ::2],            # strided
    lambda a: a.T,                  # transposed
    lambda a: np.asfortranarray(a),
    lambda a: a[::-1, 1:],          # negative stride
])
def test_non_contiguous_arrays_arrive_in_logical_order(make):
    base = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)
    view = make(base)
    out = mn.unpackb(mn.packb(view))
    np.testing.assert_array_equal(out, view)
    assert out.shape == view.shape


def test_wire_form_is_openpis_map_with_binary_keys():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    raw = msgpack.unpackb(mn.packb({"image": a}), raw=False)
    m = raw["image"]
    assert set(m) == {b"__ndarray__", b"data", b"dtype", b"shape"}
    assert m[b"__ndarray__"] is True and m[b"dtype"] == "<f4" and m[b"shape"] == [2, 3]
    assert m[b"data"] == a.tobytes()


@pytest.mark.parametrize("value", [np.int8(-3), np.uint64(2**63 + 5), np.float32(1.5), np.bool_(True),
                                   np.int64(-(2**40)), np.float16(0.25)])
def test_numpy_scalars_round_trip_as_npgeneric(value):
    raw = msgpack.unpackb(mn.packb(value), raw=False)
    assert raw[b"__npgeneric__"] is True and raw[b"dtype"] == value.dtype.str
    out = mn.unpackb(mn.packb(value))
    assert type(out) is type(value) and out == value


def test_float64_scalars_travel_as_plain_floats_like_openpi():
    # np.float64 subclasses float, so msgpack writes it natively (openpi behaves the same).
    assert mn.unpackb(mn.packb(np.float64(2.5))) == 2.5


def test_nested_structures_and_plain_values_are_untouched():
    msg = {"type": "step", "seq": 3, "frames": {"front": np.zeros((2, 2, 3), np.uint8), "side": b"\xff\xd8"},
           "list": [np.int32(1), 2.0, None, "s"]}
    out = mn.unpackb(mn.packb(msg))
    assert out["type"] == "step" and out["seq"] == 3 and out["frames"]["side"] == b"\xff\xd8"
    assert out["frames"]["front"].shape == (2, 2, 3)
    assert out["list"][0] == 1 and out["list"][1:] == [2.0, None, "s"]


def test_packer_instance_matches_packb():
    a = np.ones((3, 3), np.int16)
    assert mn.Packer().pack({"a": a}) == mn.packb({"a": a})


@pytest.mark.parametrize("bad", [np.array([object()]), np.zeros(2, dtype=[("a", "<i4")]), np.zeros(2, np.complex64)])
def test_object_structured_and_complex_arrays_are_refused(bad):
    with pytest.raises(ValueError, match="cannot be sent"):
        mn.packb(bad)


def test_a_short_data_field_is_refused_not_read_past():
    bad = msgpack.packb({b"__ndarray__": True, b"data": b"\x00" * 5, b"dtype": "<f4", b"shape": [2]})
    with pytest.raises(ValueError, match="needs 8 bytes, got 5"):
        mn.unpackb(bad)


def test_decoded_arrays_are_read_only_views():
    out = mn.unpackb(mn.packb(np.zeros(4, np.uint8)))
    assert not out.flags.writeable

"""MessagePack with numpy arrays, in the encoding openpi-client uses (so both servers read both).

An array travels as a map with binary keys::

    {b"__ndarray__": True, b"data": <raw bytes, C order>, b"dtype": "<f4", b"shape": [2, 3]}

and a numpy scalar as ``{b"__npgeneric__": True, b"data": <Python value>, b"dtype": "<i8"}``.
Dtypes without a portable byte form (object, void/structured, complex) are refused on encode.
Never pickles. Decoded arrays are read-only views of the received bytes (copy them to write).

    packb({"image": np.zeros((96, 96, 3), np.uint8)})   -> bytes
    unpackb(data)                                       -> the same structure with numpy values
"""
from __future__ import annotations

import functools
from typing import Any

import msgpack
import numpy as np

__all__ = ["pack_array", "unpack_array", "Packer", "packb", "unpackb"]

_REFUSED_KINDS = ("V", "O", "c")

_ND = b"__ndarray__"
_NG = b"__npgeneric__"


def _check_dtype(dtype: np.dtype) -> None:
    if dtype.kind in _REFUSED_KINDS:
        raise ValueError(f"numpy dtype {dtype} cannot be sent: object, structured and complex arrays "
                         "have no portable byte form")


def pack_array(obj: Any) -> Any:
    """msgpack `default` hook: numpy arrays and scalars to their maps; anything else unchanged."""
    if isinstance(obj, np.ndarray):
        _check_dtype(obj.dtype)
        # tobytes() is C order whatever the strides, which is what `shape` describes.
        return {_ND: True, b"data": obj.tobytes(), b"dtype": obj.dtype.str, b"shape": list(obj.shape)}
    if isinstance(obj, np.generic):
        _check_dtype(obj.dtype)
        return {_NG: True, b"data": obj.item(), b"dtype": obj.dtype.str}
    return obj


def unpack_array(obj: dict) -> Any:
    """msgpack `object_hook`: the maps above back to numpy; other maps unchanged."""
    if _ND in obj:
        dtype = np.dtype(_text(obj[b"dtype"]))
        _check_dtype(dtype)
        shape = tuple(int(n) for n in obj[b"shape"])
        data = obj[b"data"]
        expected = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
        if len(data) != expected:
            raise ValueError(f"array of dtype {dtype} and shape {shape} needs {expected} bytes, got {len(data)}")
        return np.ndarray(shape=shape, dtype=dtype, buffer=data)
    if _NG in obj:
        dtype = np.dtype(_text(obj[b"dtype"]))
        _check_dtype(dtype)
        return dtype.type(obj[b"data"])
    return obj


def _text(value: Any) -> str:
    return value.decode("ascii") if isinstance(value, (bytes, bytearray)) else str(value)


Packer = functools.partial(msgpack.Packer, default=pack_array)
packb = functools.partial(msgpack.packb, default=pack_array)
unpackb = functools.partial(msgpack.unpackb, object_hook=unpack_array, raw=False)

"""`QuantParams`: how the integers of one tensor stand for real values, `real = scale · (q − zero_point)`.

One type covers both schemes a `QuantizedNetwork` uses: the power-of-two scaling of MATLAB's int8
targets (`scale = 2^-f`, zero point 0: `QuantParams.pow2(f)`) and the affine scaling of ONNX Runtime
and LiteRT (any positive float32 scale, an integer zero point), per tensor or per channel along one
axis. Scales are float32, as both runtimes store them; the real value a scale stands for is that
float32 exactly, so `numerictype()` can express it as a slope-bias `fi` type without rounding.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

DTYPES = (np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16), np.dtype(np.int32))


class QuantParams:
    """Affine quantization of one tensor: `real = scale · (q − zero_point)` with stored integers of
    `dtype`. `scale` and `zero_point` are 1-D arrays: one entry (per tensor) or one per channel along
    `axis` of the tensor. Immutable; equal when every field is."""

    __slots__ = ("dtype", "scale", "zero_point", "axis", "_fraction_length")

    def __init__(self, dtype, scale, zero_point=0, axis: int | None = None):
        dt = np.dtype(dtype)
        if dt not in DTYPES:
            raise ValueError(f"quantized dtype must be int8, uint8, int16 or int32, got {dt}")
        s = np.array(scale, dtype=np.float64).reshape(-1)
        if s.size == 0 or not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise ValueError(f"scale must be finite and > 0, got {scale!r}")
        s32 = s.astype(np.float32)
        if np.any(s32 <= 0) or not np.all(np.isfinite(s32)):
            raise ValueError(f"scale {scale!r} does not fit float32 as a positive finite value")
        z = np.array(zero_point).reshape(-1)
        if z.dtype.kind not in "iu" and not (z.dtype.kind == "f" and np.all(z == np.round(z))):
            raise ValueError(f"zero_point must be an integer (or one per channel), got {zero_point!r}")
        info = np.iinfo(dt)
        z = z.astype(np.int64)
        if z.size and (z.min() < info.min or z.max() > info.max):
            raise ValueError(f"zero_point {zero_point!r} outside the range of {dt.name}")
        if z.size == 1 and s32.size > 1:
            z = np.repeat(z, s32.size)
        if s32.size == 1 and z.size > 1:
            s32 = np.repeat(s32, z.size)
        if s32.size != z.size:
            raise ValueError(f"scale has {s32.size} entries but zero_point has {z.size}")
        if s32.size > 1 and axis is None:
            raise ValueError("per-channel scales need the channel axis (axis=...)")
        if axis is not None and (isinstance(axis, bool) or not isinstance(axis, (int, np.integer))):
            raise ValueError(f"axis must be an int or None, got {axis!r}")
        s32.flags.writeable = False
        z.flags.writeable = False
        set_ = object.__setattr__
        set_(self, "dtype", dt)
        set_(self, "scale", s32)
        set_(self, "zero_point", z)
        set_(self, "axis", None if s32.size == 1 else int(axis))
        set_(self, "_fraction_length", _pow2_fraction_length(s32, z))

    def __setattr__(self, name, value):
        raise AttributeError("QuantParams is immutable")

    # --- constructors ----------------------------------------------------------------------------
    @classmethod
    def pow2(cls, fraction_length, dtype=np.int8, axis: int | None = None) -> "QuantParams":
        """Binary-point scaling: scale 2^-f (one f, or one per channel along `axis`), zero point 0."""
        f = np.asarray(fraction_length, dtype=np.int64).reshape(-1)
        return cls(dtype, np.ldexp(1.0, -f), 0, axis if f.size > 1 else None)

    # --- views -----------------------------------------------------------------------------------
    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1

    @property
    def qmin(self) -> int:
        return int(np.iinfo(self.dtype).min)

    @property
    def qmax(self) -> int:
        return int(np.iinfo(self.dtype).max)

    @property
    def fraction_length(self) -> int | None:
        """f when the scale is 2^-f (one f for every channel) and the zero point is 0, else None."""
        return self._fraction_length

    @property
    def is_pow2(self) -> bool:
        return self._fraction_length is not None

    def channel(self, c: int) -> "QuantParams":
        """The per-tensor parameters of channel `c` (the tensor's own for per-tensor parameters)."""
        if not self.per_channel:
            return self
        return QuantParams(self.dtype, self.scale[c], self.zero_point[c])

    def _broadcast(self, values: np.ndarray, ndim: int) -> np.ndarray:
        if not self.per_channel:
            return values[0]
        shape = [1] * ndim
        shape[self.axis] = values.size
        return values.reshape(shape)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """float32((q − zero_point) · scale): the integer difference is exact, the product is rounded
        once to float32, as ONNX DequantizeLinear and TFLite DEQUANTIZE compute it (for a power-of-two
        scale and 8/16-bit integers it is exact)."""
        q = np.asarray(q)
        if self.per_channel and not -q.ndim <= self.axis < q.ndim:
            raise ValueError(f"axis {self.axis} out of range for a tensor of shape {q.shape}")
        diff = q.astype(np.int32) - self._broadcast(self.zero_point.astype(np.int32), q.ndim)
        return (diff.astype(np.float32) * self._broadcast(self.scale, q.ndim)).astype(np.float32, copy=False)

    def numerictype(self):
        """The `fi` numerictype (a tuple, one per channel, for per-channel parameters) whose real
        values are exactly this quantization's: slope = the float32 scale, bias = −scale·zero_point
        (binary-point scaling when the scale is a power of two and the zero point 0)."""
        from ..types import numerictype
        signed = self.dtype.kind == "i"
        bits = self.dtype.itemsize * 8
        types = []
        for s, z in zip(self.scale, self.zero_point):
            slope = Fraction(float(s))
            if int(z) == 0 and slope.numerator == 1 and slope.denominator & (slope.denominator - 1) == 0:
                types.append(numerictype(signed, bits, slope.denominator.bit_length() - 1))
            elif int(z) == 0 and slope.denominator == 1 and slope.numerator & (slope.numerator - 1) == 0:
                types.append(numerictype(signed, bits, -(slope.numerator.bit_length() - 1)))
            else:
                types.append(numerictype(signed, bits, slope=slope, bias=-slope * int(z)))
        return types[0] if len(set(types)) == 1 and not self.per_channel else tuple(types)

    def describe(self) -> str:
        """A short description: "int8, f=7" (power of two), "uint8, scale=0.0392157, zero point=3"."""
        if self.is_pow2:
            return f"{self.dtype.name}, f={self._fraction_length}"
        if self.per_channel:
            return f"{self.dtype.name}, {self.scale.size} scales along axis {self.axis}"
        return f"{self.dtype.name}, scale={float(self.scale[0]):.6g}, zero point={int(self.zero_point[0])}"

    # --- comparison and files --------------------------------------------------------------------
    def __eq__(self, other) -> bool:
        return (isinstance(other, QuantParams) and self.dtype == other.dtype and self.axis == other.axis
                and np.array_equal(self.scale, other.scale)
                and np.array_equal(self.zero_point, other.zero_point))

    def __hash__(self):
        return hash((self.dtype.name, self.axis, self.scale.tobytes(), self.zero_point.tobytes()))

    def to_config(self) -> dict:
        """JSON-able form; the float32 scales are written as float64 numbers, which is exact."""
        return {"dtype": self.dtype.name, "scale": [float(s) for s in self.scale],
                "zero_point": [int(z) for z in self.zero_point], "axis": self.axis}

    @classmethod
    def from_config(cls, config: dict) -> "QuantParams":
        try:
            return cls(config["dtype"], config["scale"], config["zero_point"], config.get("axis"))
        except (KeyError, TypeError) as error:
            raise ValueError(f"not a quantization parameter record: {config!r} ({error})") from None

    def __repr__(self) -> str:
        if self.is_pow2:
            return f"QuantParams.pow2({self._fraction_length}, {self.dtype.name})"
        if not self.per_channel:
            return (f"QuantParams({self.dtype.name}, scale={float(self.scale[0])!r}, "
                    f"zero_point={int(self.zero_point[0])})")
        return (f"QuantParams({self.dtype.name}, {self.scale.size} channels along axis {self.axis}, "
                f"scale {float(self.scale.min()):.4g}..{float(self.scale.max()):.4g})")


def _pow2_fraction_length(scale: np.ndarray, zero_point: np.ndarray) -> int | None:
    if np.any(zero_point != 0) or np.any(scale != scale[0]):
        return None
    mantissa, exponent = math.frexp(float(scale[0]))
    return 1 - exponent if mantissa == 0.5 else None

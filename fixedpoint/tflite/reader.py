"""Safe reading of a .tflite file: the flatbuffer is checked against the part of the TFLite schema
the importer reads, then read with the maintained `tflite` schema package into plain objects.

The `tflite` package's generated accessors (like every Python flatbuffers reader) trust the offsets
in the file: a truncated or corrupt file makes them raise struct errors deep inside, or — offsets
being added to positions — read bytes from somewhere else without complaint. So every table, vector
and string the importer touches is first bounds-checked here (`_Verifier`, a subset of the C++
flatbuffers Verifier), and only then handed to the accessors. Nothing in the file is executed; only
the named file is read (buffers stored past the flatbuffer, for models over 2 GB, are read from the
same bytes).
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class TfliteImportError(ValueError):
    """A .tflite file that cannot be imported: malformed, unsupported, or outside what the importer
    handles (the message names the file, and the operator or tensor concerned)."""


def require_tflite():
    """The `tflite` schema package (a dependency of fixedpoint)."""
    try:
        import tflite
    except ImportError:   # pragma: no cover - a declared dependency
        raise TfliteImportError("reading .tflite files needs the 'tflite' package "
                                "(pip install tflite)") from None
    return tflite


SCHEMA_VERSION = 3            # Model.version of every current .tflite file
MAX_FILE_BYTES = 1 << 34      # 16 GiB: far above any model this emulates; refuse larger

# TFLite TensorType -> numpy dtype (the types the importer can hold as arrays)
TENSOR_TYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool",
                7: "int16", 9: "int8", 10: "float64", 12: "uint64", 15: "uint32", 16: "uint16"}

# field sizes of the flatbuffer scalar kinds
_SIZES = {"i8": 1, "u8": 1, "bool": 1, "i16": 2, "u16": 2, "i32": 4, "u32": 4, "f32": 4,
          "i64": 8, "u64": 8, "f64": 8}

# The builtin options tables the importer reads: field -> (schema field id, kind). Vectors are
# "[i32]". Options of other operators are only bounds-checked as tables.
OPTION_FIELDS = {
    "Conv2DOptions": {"padding": (0, "i8"), "stride_w": (1, "i32"), "stride_h": (2, "i32"),
                      "fused_activation_function": (3, "i8"), "dilation_w_factor": (4, "i32"),
                      "dilation_h_factor": (5, "i32"), "quantized_bias_type": (6, "i8")},
    "DepthwiseConv2DOptions": {"padding": (0, "i8"), "stride_w": (1, "i32"), "stride_h": (2, "i32"),
                               "depth_multiplier": (3, "i32"), "fused_activation_function": (4, "i8"),
                               "dilation_w_factor": (5, "i32"), "dilation_h_factor": (6, "i32")},
    "FullyConnectedOptions": {"fused_activation_function": (0, "i8"), "weights_format": (1, "i8"),
                              "keep_num_dims": (2, "bool"), "asymmetric_quantize_inputs": (3, "bool"),
                              "quantized_bias_type": (4, "i8")},
    "AddOptions": {"fused_activation_function": (0, "i8"), "pot_scale_int16": (1, "bool")},
    "SubOptions": {"fused_activation_function": (0, "i8"), "pot_scale_int16": (1, "bool")},
    "MulOptions": {"fused_activation_function": (0, "i8")},
    "ConcatenationOptions": {"axis": (0, "i32"), "fused_activation_function": (1, "i8")},
    "Pool2DOptions": {"padding": (0, "i8"), "stride_w": (1, "i32"), "stride_h": (2, "i32"),
                      "filter_width": (3, "i32"), "filter_height": (4, "i32"),
                      "fused_activation_function": (5, "i8")},
    "ReducerOptions": {"keep_dims": (0, "bool")},
    "ReshapeOptions": {"new_shape": (0, "[i32]")},
    "SoftmaxOptions": {"beta": (0, "f32")},
    "LeakyReluOptions": {"alpha": (0, "f32")},
    "SqueezeOptions": {"squeeze_dims": (0, "[i32]")},
    "StridedSliceOptions": {"begin_mask": (0, "i32"), "end_mask": (1, "i32"), "ellipsis_mask": (2, "i32"),
                            "new_axis_mask": (3, "i32"), "shrink_axis_mask": (4, "i32"),
                            "offset": (5, "bool")},
    "PackOptions": {"values_count": (0, "i32"), "axis": (1, "i32")},
    "ShapeOptions": {"out_type": (0, "i8")},
}


class _Verifier:
    """Bounds checks of flatbuffer tables, vectors and strings (little-endian, as the format is)."""

    def __init__(self, buf: bytes, what: str):
        self.buf, self.n, self.what = buf, len(buf), what

    def fail(self, message: str):
        raise TfliteImportError(f"{self.what}: malformed .tflite file: {message}")

    def _u(self, fmt: str, pos: int, where: str):
        size = struct.calcsize(fmt)
        if pos < 0 or pos + size > self.n:
            self.fail(f"{where} at byte {pos} lies outside the {self.n}-byte file (truncated?)")
        return struct.unpack_from(fmt, self.buf, pos)[0]

    def table(self, pos: int, where: str) -> tuple[int, int, int, int]:
        """(position, vtable position, vtable size, object size) of the table at `pos`."""
        soffset = self._u("<i", pos, where)
        vtable = pos - soffset
        vt_size = self._u("<H", vtable, f"{where} vtable")
        obj_size = self._u("<H", vtable + 2, f"{where} vtable")
        if vt_size < 4 or vt_size % 2 or vtable + vt_size > self.n:
            self.fail(f"{where}: vtable of size {vt_size} at byte {vtable} is invalid")
        if obj_size < 4 or pos + obj_size > self.n:
            self.fail(f"{where}: table of size {obj_size} at byte {pos} runs past the end of the file")
        return pos, vtable, vt_size, obj_size

    def field(self, table, index: int, size: int, where: str) -> int | None:
        """Position of field `index` (of `size` bytes) in `table`, or None when absent."""
        pos, vtable, vt_size, obj_size = table
        slot = 4 + 2 * index
        if slot + 2 > vt_size:
            return None
        offset = self._u("<H", vtable + slot, where)
        if offset == 0:
            return None
        if offset + size > obj_size:
            self.fail(f"{where}: field {index} at offset {offset} lies outside its {obj_size}-byte table")
        return pos + offset

    def scalar(self, table, index: int, kind: str, where: str):
        pos = self.field(table, index, _SIZES[kind], where)
        return None if pos is None else pos

    def _target(self, table, index: int, where: str) -> int | None:
        pos = self.field(table, index, 4, where)
        if pos is None:
            return None
        return pos + self._u("<I", pos, where)

    def vector(self, table, index: int, elem_size: int, where: str) -> tuple[int, int] | None:
        """(position of the first element, length) of a vector field, or None when absent."""
        start = self._target(table, index, where)
        if start is None:
            return None
        length = self._u("<I", start, f"{where} length")
        if start + 4 + length * elem_size > self.n:
            self.fail(f"{where}: vector of {length} elements at byte {start} runs past the end of the file")
        return start + 4, length

    def string(self, table, index: int, where: str) -> None:
        span = self.vector(table, index, 1, where)
        if span is not None and span[0] + span[1] + 1 > self.n:
            self.fail(f"{where}: string at byte {span[0]} is not terminated inside the file")

    def subtable(self, table, index: int, where: str):
        target = self._target(table, index, where)
        return None if target is None else self.table(target, where)

    def tables(self, table, index: int, where: str) -> list:
        span = self.vector(table, index, 4, where)
        if span is None:
            return []
        start, length = span
        result = []
        for k in range(length):
            element = start + 4 * k
            result.append(self.table(element + self._u("<I", element, where), f"{where}[{k}]"))
        return result


def _read_options(verifier: _Verifier, tflite, table_name: str, table, where: str) -> dict:
    """The fields of OPTION_FIELDS[table_name], bounds-checked, then read with the schema package's
    accessors (absent fields take the schema defaults; vectors become lists)."""
    fields = OPTION_FIELDS.get(table_name)
    if fields is None:
        return {}
    for key, (index, kind) in fields.items():
        if kind.startswith("["):
            verifier.vector(table, index, 4, f"{where} {table_name}.{key}")
        else:
            verifier.scalar(table, index, kind, f"{where} {table_name}.{key}")
    options = getattr(tflite, table_name)()
    options.Init(verifier.buf, table[0])
    values = {}
    for key, (index, kind) in fields.items():
        camel = "".join(part[:1].upper() + part[1:] for part in key.split("_"))
        if kind.startswith("["):
            values[key] = _int_vector(getattr(options, camel + "AsNumpy")())
        else:
            values[key] = getattr(options, camel)()
    return values


@dataclass
class Quantization:
    """A tensor's quantization: float32 scales, int64 zero points, the quantized axis (per channel)."""

    scale: np.ndarray
    zero_point: np.ndarray
    axis: int

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1


@dataclass
class TensorInfo:
    index: int
    name: str
    type_code: int
    dtype: np.dtype | None          # None: a TensorType the importer cannot hold
    shape: tuple                    # as stored (the batch of the file, usually 1)
    signature: tuple                # shape_signature (-1: resizable), else `shape`
    data: np.ndarray | None         # constant value, or None for a run-time tensor
    quantization: Quantization | None
    is_variable: bool = False

    @property
    def type_name(self) -> str:
        from tflite.TensorType import TensorType
        names = {v: k for k, v in vars(TensorType).items() if not k.startswith("_")}
        return names.get(self.type_code, f"type {self.type_code}")


@dataclass
class OperatorInfo:
    index: int
    op: str                         # builtin operator name, e.g. "CONV_2D" (custom: "CUSTOM:<code>")
    version: int
    inputs: tuple                   # tensor indices (-1: an omitted optional input)
    outputs: tuple
    options_table: str | None       # name of the builtin options table, if any
    options: dict = field(default_factory=dict)   # OPTION_FIELDS[options_table], schema defaults filled


@dataclass
class TfliteModel:
    """What the importer needs from a .tflite file, as plain Python values."""

    what: str
    version: int
    description: str
    tensors: list
    operators: list
    inputs: tuple
    outputs: tuple
    subgraphs: int


def read_source(source) -> tuple[bytes, str]:
    """The model bytes and a name for messages, from a path or from bytes."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "the .tflite model"
    if not isinstance(source, (str, Path)):
        raise TfliteImportError(f"a .tflite model must be given as a path or bytes, got "
                                f"{type(source).__name__}")
    path = Path(source)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise TfliteImportError(f"{path}: {size} bytes is larger than the {MAX_FILE_BYTES}-byte limit")
        return path.read_bytes(), str(path)
    except OSError as error:
        raise TfliteImportError(f"cannot read {path}: {error.strerror or error}") from None


def read_model(source) -> TfliteModel:
    """Check and read a .tflite model (path or bytes) into a `TfliteModel`."""
    buf, what = read_source(source)
    tflite = require_tflite()
    v = _Verifier(buf, what)
    if len(buf) < 8:
        v.fail(f"only {len(buf)} bytes; a .tflite flatbuffer has at least 8")
    if buf[4:8] != b"TFL3":
        raise TfliteImportError(f"{what}: not a .tflite model (file identifier {bytes(buf[4:8])!r}, "
                                f"expected b'TFL3')")
    root = v._u("<I", 0, "root offset")
    model_table = v.table(root, "Model")
    pos = v.scalar(model_table, 0, "u32", "Model.version")
    version = 0 if pos is None else struct.unpack_from("<I", buf, pos)[0]
    if version != SCHEMA_VERSION:
        raise TfliteImportError(f"{what}: unsupported .tflite schema version {version} "
                                f"(supported: {SCHEMA_VERSION})")
    codes = v.tables(model_table, 1, "Model.operator_codes")
    for k, code in enumerate(codes):
        v.scalar(code, 0, "i8", f"operator_codes[{k}]")
        v.string(code, 1, f"operator_codes[{k}].custom_code")
        v.scalar(code, 2, "i32", f"operator_codes[{k}].version")
        v.scalar(code, 3, "i32", f"operator_codes[{k}].builtin_code")
    subgraphs = v.tables(model_table, 2, "Model.subgraphs")
    if not subgraphs:
        v.fail("the model has no subgraph")
    v.string(model_table, 3, "Model.description")
    buffers = v.tables(model_table, 4, "Model.buffers")
    for k, b in enumerate(buffers):
        v.vector(b, 0, 1, f"buffers[{k}].data")
        v.scalar(b, 1, "u64", f"buffers[{k}].offset")
        v.scalar(b, 2, "u64", f"buffers[{k}].size")

    model = tflite.Model.GetRootAs(buf, 0)
    # only the first (main) subgraph runs; others exist for control flow, which is not supported
    sub_table = subgraphs[0]
    v.vector(sub_table, 1, 4, "subgraph 0 inputs")
    v.vector(sub_table, 2, 4, "subgraph 0 outputs")
    tensor_tables = v.tables(sub_table, 0, "subgraph 0 tensors")
    operator_tables = v.tables(sub_table, 3, "subgraph 0 operators")
    sub = model.Subgraphs(0)
    n_tensors = len(tensor_tables)

    def check_indices(values, where, allow_omitted):
        for value in values:
            if not (-1 if allow_omitted else 0) <= value < n_tensors:
                v.fail(f"{where} refers to tensor {value}; the subgraph has {n_tensors} tensors")
        return tuple(int(x) for x in values)

    tensors = [_read_tensor(v, model, sub, k, table, buffers) for k, table in enumerate(tensor_tables)]
    inputs = check_indices(_int_vector(sub.InputsAsNumpy()), "subgraph input", False)
    outputs = check_indices(_int_vector(sub.OutputsAsNumpy()), "subgraph output", False)
    names = _operator_names(tflite)
    option_names = {value: name for name, value in vars(tflite.BuiltinOptions).items()
                    if not name.startswith("_")}
    operators = []
    for k, table in enumerate(operator_tables):
        where = f"operator {k}"
        v.scalar(table, 0, "u32", f"{where} opcode_index")
        v.vector(table, 1, 4, f"{where} inputs")
        v.vector(table, 2, 4, f"{where} outputs")
        v.scalar(table, 3, "u8", f"{where} builtin_options_type")
        v.vector(table, 5, 1, f"{where} custom_options")
        op = sub.Operators(k)
        opcode = op.OpcodeIndex()
        if opcode >= len(codes):
            v.fail(f"{where} uses operator code {opcode}; the model defines {len(codes)}")
        code = model.OperatorCodes(opcode)
        builtin = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
        name = names.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            custom = code.CustomCode()
            name = "CUSTOM:" + (custom.decode("utf-8", "replace") if custom else "?")
        op_inputs = check_indices(_int_vector(op.InputsAsNumpy()), f"{where} ({name}) input", True)
        op_outputs = check_indices(_int_vector(op.OutputsAsNumpy()), f"{where} ({name}) output", False)
        table_name, options = None, {}
        options_type = op.BuiltinOptionsType()
        if options_type:
            table_name = option_names.get(options_type, f"options type {options_type}")
            options_table = v.subtable(table, 4, f"{where} builtin options")
            if options_table is None:
                v.fail(f"{where} ({name}) declares {table_name} but has no options table")
            options = _read_options(v, tflite, table_name, options_table, where)
        operators.append(OperatorInfo(k, name, int(code.Version()), op_inputs, op_outputs, table_name,
                                      options))
    description = model.Description()
    return TfliteModel(what, version, description.decode("utf-8", "replace") if description else "",
                       tensors, operators, inputs, outputs, len(subgraphs))


def _int_vector(values) -> list:
    return [] if isinstance(values, int) else [int(x) for x in values]


def _operator_names(tflite) -> dict:
    return {value: name for name, value in vars(tflite.BuiltinOperator).items() if not name.startswith("_")}


def _read_tensor(v: _Verifier, model, sub, k: int, table, buffers) -> TensorInfo:
    where = f"tensor {k}"
    v.vector(table, 0, 4, f"{where} shape")
    v.scalar(table, 1, "i8", f"{where} type")
    v.scalar(table, 2, "u32", f"{where} buffer")
    v.string(table, 3, f"{where} name")
    v.scalar(table, 5, "bool", f"{where} is_variable")
    v.vector(table, 7, 4, f"{where} shape_signature")
    quant_table = v.subtable(table, 4, f"{where} quantization")
    if quant_table is not None:
        v.vector(quant_table, 2, 4, f"{where} quantization scale")
        v.vector(quant_table, 3, 8, f"{where} quantization zero_point")
        v.scalar(quant_table, 4, "u8", f"{where} quantization details_type")
        v.scalar(quant_table, 6, "i32", f"{where} quantization quantized_dimension")
    tensor = sub.Tensors(k)
    raw_name = tensor.Name()
    name = raw_name.decode("utf-8", "replace") if raw_name else f"tensor_{k}"
    where = f"tensor {k} ({name!r})"
    shape = tuple(_int_vector(tensor.ShapeAsNumpy()))
    signature = tuple(_int_vector(tensor.ShapeSignatureAsNumpy())) or shape
    if any(d < 0 for d in shape) or len(signature) != len(shape) or any(
            d < -1 for d in signature) or any(s != -1 and s != d for s, d in zip(signature, shape)):
        v.fail(f"{where} has shape {list(shape)} and shape signature {list(signature)}")
    type_code = int(tensor.Type())
    dtype = np.dtype(TENSOR_TYPES[type_code]) if type_code in TENSOR_TYPES else None
    quantization = None
    q = tensor.Quantization()
    if q is not None and not isinstance(q.ScaleAsNumpy(), int):
        if q.DetailsType():
            v.fail(f"{where} uses custom quantization details, which are not supported")
        scale = np.asarray(q.ScaleAsNumpy(), dtype=np.float32)
        zero_point = q.ZeroPointAsNumpy()
        zero_point = (np.zeros(scale.size, np.int64) if isinstance(zero_point, int)
                      else np.asarray(zero_point, dtype=np.int64))
        axis = int(q.QuantizedDimension())
        if zero_point.size == 1 and scale.size > 1:
            zero_point = np.repeat(zero_point, scale.size)
        if zero_point.size != scale.size:
            v.fail(f"{where} has {scale.size} quantization scales but {zero_point.size} zero points")
        if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            v.fail(f"{where} has quantization scales that are not positive finite numbers: {scale[:8]}")
        if scale.size > 1 and not (0 <= axis < len(shape) and shape[axis] == scale.size):
            v.fail(f"{where}: {scale.size} per-channel scales along axis {axis} do not match its shape "
                   f"{list(shape)}")
        if dtype is not None and dtype.kind in "iu":
            info = np.iinfo(dtype)
            if np.any(zero_point < info.min) or np.any(zero_point > info.max):
                v.fail(f"{where}: zero points {zero_point[:8]} lie outside the {dtype} range")
        quantization = Quantization(scale, zero_point, axis)
    buffer_index = int(tensor.Buffer())
    if buffer_index >= len(buffers):
        v.fail(f"{where} refers to buffer {buffer_index}; the model has {len(buffers)} buffers")
    data = _buffer_data(v, model, buffer_index, where) if buffer_index > 0 else None
    if data is not None:
        if dtype is None:
            v.fail(f"{where}: constant data of tensor type {type_code} cannot be read")
        count = math.prod(shape)
        if len(data) != count * dtype.itemsize:
            v.fail(f"{where}: buffer {buffer_index} holds {len(data)} bytes; shape {list(shape)} of "
                   f"{dtype} needs {count * dtype.itemsize}")
        data = np.frombuffer(data, dtype.newbyteorder("<")).astype(dtype).reshape(shape)
    return TensorInfo(k, name, type_code, dtype, shape, signature, data, quantization,
                      bool(tensor.IsVariable()))


def _buffer_data(v: _Verifier, model, index: int, where: str) -> bytes | None:
    """The bytes of buffer `index`: its data vector, or (models over 2 GB) the span offset/size of
    the same file; None for an empty buffer."""
    buffer = model.Buffers(index)
    offset, size = int(buffer.Offset()), int(buffer.Size())
    if offset > 1:
        if offset + size > v.n:
            v.fail(f"{where}: buffer {index} spans bytes {offset}..{offset + size} of a {v.n}-byte file")
        return v.buf[offset:offset + size]
    length = buffer.DataLength()
    if length == 0:
        return None
    return bytes(buffer.DataAsNumpy().tobytes())

"""Build small .tflite models from numpy arrays, without TensorFlow.

Uses the flatbuffer builder functions of the `tflite` package (the TFLite schema). A model is a
list of tensors (shape, dtype, optional constant data, optional per-tensor or per-channel
quantization) and a list of builtin operators (by name, with their builtin options as a dict);
`build()` returns the model bytes that `ai_edge_litert.interpreter.Interpreter(model_content=...)`
runs.

    b = ModelBuilder()
    x = b.add_tensor("x", (1, 8, 8, 3), np.int8, scale=0.05, zero_point=-3)
    w = b.add_tensor("w", (4, 3, 3, 3), np.int8, data=w_q, scale=w_scales, zero_point=0,
                     quantized_dimension=0)
    bias = b.add_tensor("b", (4,), np.int32, data=b_q, scale=0.05 * w_scales, zero_point=0)
    y = b.add_tensor("y", (1, 8, 8, 4), np.int8, scale=0.1, zero_point=5)
    b.add_operator("CONV_2D", [x, w, bias], [y], padding="SAME", stride_w=1, stride_h=1,
                   fused_activation_function="RELU")
    model = b.build(inputs=[x], outputs=[y])

Options are the snake_case field names of the op's *Options table (Conv2DOptions:
padding, stride_w, fused_activation_function, dilation_h_factor, ...); enum fields take their
names ("SAME", "RELU6") or ints; list fields become int32 vectors. `run_model` runs a model with
one of LiteRT's op resolvers.
"""
import importlib

import flatbuffers
import numpy as np

_TFLITE_TYPES = {
    np.dtype(np.float32): "FLOAT32", np.dtype(np.float16): "FLOAT16", np.dtype(np.int32): "INT32",
    np.dtype(np.uint8): "UINT8", np.dtype(np.int64): "INT64", np.dtype(np.bool_): "BOOL",
    np.dtype(np.int16): "INT16", np.dtype(np.int8): "INT8", np.dtype(np.float64): "FLOAT64",
    np.dtype(np.uint16): "UINT16", np.dtype(np.uint32): "UINT32",
}

# The options table of each builtin operator whose table is not simply <CamelName>Options.
_OPTIONS_TABLE = {
    "CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "MAX_POOL_2D": "Pool2DOptions", "AVERAGE_POOL_2D": "Pool2DOptions", "L2_POOL_2D": "Pool2DOptions",
    "MEAN": "ReducerOptions", "SUM": "ReducerOptions", "REDUCE_MAX": "ReducerOptions",
    "REDUCE_MIN": "ReducerOptions", "REDUCE_PROD": "ReducerOptions", "REDUCE_ANY": "ReducerOptions",
    "PADV2": "PadV2Options", "RESIZE_BILINEAR": "ResizeBilinearOptions",
    "MAXIMUM": "MaximumMinimumOptions", "MINIMUM": "MaximumMinimumOptions",
}
# Operators that take no builtin options table.
_NO_OPTIONS = {"LOGISTIC", "TANH", "RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "PRELU", "FLOOR", "ELU"}
# Enum-valued option fields and the schema enum their names come from.
_ENUM_FIELDS = {"padding": "Padding", "fused_activation_function": "ActivationFunctionType",
                "weights_format": "FullyConnectedOptionsWeightsFormat", "mode": "MirrorPadMode",
                "quantized_bias_type": "TensorType"}


def _schema(name):
    """The generated module tflite.<name> (holding both the class and the builder functions)."""
    return importlib.import_module(f"tflite.{name}")


def _camel(snake):
    return "".join(part[:1].upper() + part[1:] for part in snake.split("_"))


def _enum_value(enum_module, value, field):
    if isinstance(value, str):
        enum = getattr(_schema(enum_module), enum_module)
        try:
            return getattr(enum, value.upper())
        except AttributeError:
            raise ValueError(f"option {field}={value!r} is not a {enum_module} name") from None
    return int(value)


def builtin_operator_code(op):
    """The BuiltinOperator number of `op` (a name such as "CONV_2D", or the number itself)."""
    if isinstance(op, str):
        try:
            return getattr(_schema("BuiltinOperator").BuiltinOperator, op.upper())
        except AttributeError:
            raise ValueError(f"unknown builtin operator {op!r}") from None
    return int(op)


def _builtin_operator_name(code):
    enum = _schema("BuiltinOperator").BuiltinOperator
    return next(k for k, v in vars(enum).items() if v == code and not k.startswith("_"))


class ModelBuilder:
    """One subgraph of tensors and builtin operators, serialised by `build()`."""

    def __init__(self, description="fixedpoint test model"):
        self.description = description
        self.tensors = []     # dicts: name, shape, dtype, buffer, quant
        self.buffers = [b""]  # buffer 0: the empty sentinel every runtime tensor points to
        self.operators = []   # dicts: opcode index, inputs, outputs, options (table name, fields)
        self.opcodes = []     # (builtin code, version)

    def add_tensor(self, name, shape, dtype, *, data=None, scale=None, zero_point=None, quantized_dimension=0):
        """Add a tensor and return its index. `data` makes it a constant (stored in a buffer in
        `dtype`); `scale` (scalar or per-channel array) and `zero_point` (same length or scalar)
        attach quantization along `quantized_dimension`."""
        dt = np.dtype(dtype)
        if dt not in _TFLITE_TYPES:
            raise ValueError(f"dtype {dt} has no TFLite tensor type here")
        shape = tuple(int(s) for s in shape)
        buffer = 0
        if data is not None:
            arr = np.asarray(data)
            if arr.shape != shape:
                raise ValueError(f"tensor {name!r}: data shape {arr.shape} differs from shape {shape}")
            self.buffers.append(np.ascontiguousarray(arr, dtype=dt).tobytes())
            buffer = len(self.buffers) - 1
        quant = None
        if scale is not None:
            s = np.atleast_1d(np.asarray(scale, dtype=np.float32))
            z = np.atleast_1d(np.asarray(0 if zero_point is None else zero_point, dtype=np.int64))
            if z.size == 1 and s.size > 1:
                z = np.repeat(z, s.size)
            if z.size != s.size:
                raise ValueError(f"tensor {name!r}: {s.size} scales but {z.size} zero points")
            quant = (s, z, int(quantized_dimension))
        self.tensors.append(dict(name=name, shape=shape, dtype=dt, buffer=buffer, quant=quant))
        return len(self.tensors) - 1

    def add_operator(self, op, inputs, outputs, *, version=1, options_table=None, **options):
        """Add builtin operator `op` (name or code) reading tensor indices `inputs` (-1: an omitted
        optional input) and writing `outputs`, with its builtin options given as keywords."""
        code = builtin_operator_code(op)
        key = (code, int(version))
        if key not in self.opcodes:
            self.opcodes.append(key)
        name = _builtin_operator_name(code)
        if options_table is None and name not in _NO_OPTIONS:
            options_table = _OPTIONS_TABLE.get(name, _camel(name.lower()) + "Options")
        if options and options_table is None:
            raise ValueError(f"{name} takes no builtin options, got {sorted(options)}")
        self.operators.append(dict(opcode=self.opcodes.index(key), inputs=[int(i) for i in inputs],
                                   outputs=[int(o) for o in outputs], table=options_table, options=options))
        return len(self.operators) - 1

    # -- serialisation ------------------------------------------------------------------------------
    def build(self, inputs, outputs):
        """The model bytes with subgraph inputs/outputs given as tensor indices."""
        b = flatbuffers.Builder(1024)
        M, T, Q, Op, OC, SG, Buf = (_schema(n) for n in
                                    ("Model", "Tensor", "QuantizationParameters", "Operator", "OperatorCode",
                                     "SubGraph", "Buffer"))

        buffer_offsets = []
        for raw in self.buffers:
            data = b.CreateNumpyVector(np.frombuffer(raw, dtype=np.uint8)) if raw else None
            Buf.BufferStart(b)
            if data is not None:
                Buf.BufferAddData(b, data)
            buffer_offsets.append(Buf.BufferEnd(b))

        tensor_offsets = []
        for t in self.tensors:
            name = b.CreateString(t["name"])
            shape = b.CreateNumpyVector(np.array(t["shape"], dtype=np.int32))
            quant = None
            if t["quant"] is not None:
                s, z, dim = t["quant"]
                sv, zv = b.CreateNumpyVector(s), b.CreateNumpyVector(z)
                Q.QuantizationParametersStart(b)
                Q.QuantizationParametersAddScale(b, sv)
                Q.QuantizationParametersAddZeroPoint(b, zv)
                Q.QuantizationParametersAddQuantizedDimension(b, dim)
                quant = Q.QuantizationParametersEnd(b)
            T.TensorStart(b)
            T.TensorAddShape(b, shape)
            T.TensorAddType(b, getattr(_schema("TensorType").TensorType, _TFLITE_TYPES[t["dtype"]]))
            T.TensorAddBuffer(b, t["buffer"])
            T.TensorAddName(b, name)
            if quant is not None:
                T.TensorAddQuantization(b, quant)
            tensor_offsets.append(T.TensorEnd(b))

        op_offsets = []
        for o in self.operators:
            ins = b.CreateNumpyVector(np.array(o["inputs"], dtype=np.int32))
            outs = b.CreateNumpyVector(np.array(o["outputs"], dtype=np.int32))
            opts = self._options(b, o["table"], o["options"]) if o["table"] else None
            Op.OperatorStart(b)
            Op.OperatorAddOpcodeIndex(b, o["opcode"])
            Op.OperatorAddInputs(b, ins)
            Op.OperatorAddOutputs(b, outs)
            if opts is not None:
                Op.OperatorAddBuiltinOptionsType(b, getattr(_schema("BuiltinOptions").BuiltinOptions, o["table"]))
                Op.OperatorAddBuiltinOptions(b, opts)
            op_offsets.append(Op.OperatorEnd(b))

        code_offsets = []
        for code, version in self.opcodes:
            OC.OperatorCodeStart(b)
            OC.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))  # 127: "see builtin_code"
            OC.OperatorCodeAddBuiltinCode(b, code)
            OC.OperatorCodeAddVersion(b, version)
            code_offsets.append(OC.OperatorCodeEnd(b))

        sg_tensors = self._vector(b, SG.SubGraphStartTensorsVector, tensor_offsets)
        sg_inputs = b.CreateNumpyVector(np.array(inputs, dtype=np.int32))
        sg_outputs = b.CreateNumpyVector(np.array(outputs, dtype=np.int32))
        sg_ops = self._vector(b, SG.SubGraphStartOperatorsVector, op_offsets)
        sg_name = b.CreateString("main")
        SG.SubGraphStart(b)
        SG.SubGraphAddTensors(b, sg_tensors)
        SG.SubGraphAddInputs(b, sg_inputs)
        SG.SubGraphAddOutputs(b, sg_outputs)
        SG.SubGraphAddOperators(b, sg_ops)
        SG.SubGraphAddName(b, sg_name)
        subgraph = SG.SubGraphEnd(b)

        codes = self._vector(b, M.ModelStartOperatorCodesVector, code_offsets)
        subgraphs = self._vector(b, M.ModelStartSubgraphsVector, [subgraph])
        buffers = self._vector(b, M.ModelStartBuffersVector, buffer_offsets)
        desc = b.CreateString(self.description)
        M.ModelStart(b)
        M.ModelAddVersion(b, 3)
        M.ModelAddOperatorCodes(b, codes)
        M.ModelAddSubgraphs(b, subgraphs)
        M.ModelAddDescription(b, desc)
        M.ModelAddBuffers(b, buffers)
        b.Finish(M.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    @staticmethod
    def _vector(b, start, offsets):
        start(b, len(offsets))
        for off in reversed(offsets):
            b.PrependUOffsetTRelative(off)
        return b.EndVector()

    @staticmethod
    def _options(b, table, options):
        mod = _schema(table)
        values = {}
        for field, value in options.items():
            if isinstance(value, (list, tuple, np.ndarray)):   # vectors first: not inside a table
                values[field] = b.CreateNumpyVector(np.asarray(value, dtype=np.int32))
            elif field in _ENUM_FIELDS:
                values[field] = _enum_value(_ENUM_FIELDS[field], value, field)
            else:
                values[field] = value
        getattr(mod, f"{table}Start")(b)
        for field, value in values.items():
            adder = getattr(mod, f"{table}Add{_camel(field)}", None)
            if adder is None:
                raise ValueError(f"{table} has no field {field!r}")
            adder(b, value)
        return getattr(mod, f"{table}End")(b)


RESOLVERS = {"reference": "BUILTIN_REF", "optimized": "BUILTIN_WITHOUT_DEFAULT_DELEGATES", "xnnpack": "AUTO"}


def make_interpreter(model, resolver, num_threads=1):
    """An allocated LiteRT interpreter for `model` bytes with op resolver "reference" (BUILTIN_REF),
    "optimized" (BUILTIN_WITHOUT_DEFAULT_DELEGATES) or "xnnpack" (AUTO: XNNPACK takes what it can)."""
    from ai_edge_litert import interpreter as litert

    kind = getattr(litert.OpResolverType, RESOLVERS[resolver])
    interp = litert.Interpreter(model_content=model, experimental_op_resolver_type=kind, num_threads=num_threads)
    interp.allocate_tensors()
    return interp


def run_model(model, inputs, resolver, num_threads=1):
    """Outputs (a list of arrays) of `model` run once on `inputs` (arrays in subgraph input order)."""
    interp = make_interpreter(model, resolver, num_threads)
    for detail, value in zip(interp.get_input_details(), inputs):
        interp.resize_tensor_input(detail["index"], value.shape) if tuple(detail["shape"]) != value.shape else None
    interp.allocate_tensors()
    for detail, value in zip(interp.get_input_details(), inputs):
        interp.set_tensor(detail["index"], value)
    interp.invoke()
    return [interp.get_tensor(d["index"]) for d in interp.get_output_details()]


def delegated_ops(interp):
    """Names of the operators the interpreter still runs itself; an op XNNPACK took appears as
    the delegate node ("DELEGATE") instead of its own name."""
    return [d["op_name"] for d in interp._get_ops_details()]


class T:
    """A tensor spec for `single_op_model`: shape, dtype, quantization, and constant data."""

    def __init__(self, shape, dtype, scale=None, zero_point=None, data=None, quantized_dimension=0):
        self.shape, self.dtype, self.scale, self.zero_point = tuple(shape), np.dtype(dtype), scale, zero_point
        self.data, self.quantized_dimension = data, quantized_dimension


def single_op_model(op, inputs, outputs, *, version=1, **options):
    """Bytes of a model with one operator `op`. `inputs`/`outputs` are `T` specs (or None for an
    omitted optional input); inputs without data become the subgraph inputs, in order."""
    b = ModelBuilder()
    ins, graph_inputs = [], []
    for k, t in enumerate(inputs):
        if t is None:
            ins.append(-1)
            continue
        idx = b.add_tensor(f"in{k}", t.shape, t.dtype, data=t.data, scale=t.scale, zero_point=t.zero_point,
                           quantized_dimension=t.quantized_dimension)
        ins.append(idx)
        if t.data is None:
            graph_inputs.append(idx)
    outs = [b.add_tensor(f"out{k}", t.shape, t.dtype, scale=t.scale, zero_point=t.zero_point,
                         quantized_dimension=t.quantized_dimension) for k, t in enumerate(outputs)]
    b.add_operator(op, ins, outs, version=version, **options)
    return b.build(inputs=graph_inputs, outputs=outs)


def xnnpack_took(model):
    """Whether the default resolver (AUTO) hands the model's operators to XNNPACK: every output
    of the subgraph is produced by a DELEGATE node (one-op models: the op was delegated)."""
    interp = make_interpreter(model, "xnnpack")
    ops = interp._get_ops_details()
    produced = {int(t) for d in ops if d["op_name"] == "DELEGATE" for t in d["outputs"]}
    return all(int(d["index"]) in produced for d in interp.get_output_details())

"""Data movement and shape arithmetic: RESHAPE, SQUEEZE, PAD, CONCATENATION, and SHAPE /
STRIDED_SLICE / PACK evaluated at import time (the batch size stays symbolic)."""
from __future__ import annotations

import numpy as np

from ...nn.layers import ConcatenationLayer, PadLayer, ReshapeLayer
from ..graph import BATCH, TO_NCHW, Batch, same_memory_order
from ..registry import register


def _reshape(imp, op):
    """The file's output shape, reached by a Reshape of the input in TFLite's memory order."""
    t = op.outputs[0]
    out_shape = imp.batch_shape(t, op)
    x = imp.value(op, 0)
    if x.order == "nchw" and not same_memory_order(x.shape):
        x = imp.value(op, 0, "native")
    per_in = int(np.prod(x.shape[1:], dtype=np.int64))
    per_out = int(np.prod(out_shape[1:], dtype=np.int64))
    if per_in != per_out:
        imp.fail(op, f"reshapes {list(x.shape)} to {list(out_shape)}: the batch dimension must stay first "
                     f"and unchanged")
    if x.params != imp.params(t, op):
        imp.fail(op, "input and output quantization differ; a reshape keeps the integers and their meaning")
    imp.output(op, ReshapeLayer(imp.name_for(op), out_shape[1:]), [x], "native", {"tflite_op": op.op})


@register("RESHAPE")
def reshape(imp, op):
    target = None
    if imp.has_input(op, 1):
        target = imp.const(op, 1)
    elif op.options.get("new_shape"):
        target = op.options["new_shape"]
    if target is not None:   # the batch must stay first: -1, the symbolic batch, or the file's batch
        first = list(np.asarray(target, dtype=object).reshape(-1))[:1]
        if first and not (isinstance(first[0], Batch) or first[0] == -1 or first[0] == imp.file_batch):
            imp.fail(op, f"new shape {list(np.asarray(target, dtype=object).reshape(-1))} does not keep the "
                         f"batch dimension first")
    _reshape(imp, op)


@register("SQUEEZE")
def squeeze(imp, op):
    dims = op.options.get("squeeze_dims") or []
    rank = len(imp.tensor(op, 0).shape)
    if any(int(d) % rank == 0 for d in dims) or (not dims and imp.file_batch == 1):
        imp.fail(op, "squeezing the batch dimension is not supported")
    _reshape(imp, op)


@register("PAD")
def pad(imp, op):
    x = imp.value(op, 0, "nchw")
    paddings = np.asarray(imp.const(op, 1)).astype(np.int64)
    rank = len(x.shape)
    if paddings.shape != (rank, 2):
        imp.fail(op, f"paddings of shape {list(paddings.shape)} do not fit a rank-{rank} input")
    if np.any(paddings[0] != 0):
        imp.fail(op, "padding the batch dimension is not supported")
    if np.any(paddings < 0):
        imp.fail(op, f"negative paddings {paddings.tolist()}")
    t = op.outputs[0]
    if x.params != imp.params(t, op):
        imp.fail(op, "input and output quantization differ (TFLite's PAD requires them equal)")
    axes = TO_NCHW if rank == 4 else tuple(range(rank))
    pads = [tuple(paddings[a]) for a in axes[1:]]
    order = "nchw" if rank == 4 else "native"
    imp.output(op, PadLayer(imp.name_for(op), pads), [x], order, {"tflite_op": op.op})


@register("CONCATENATION")
def concatenation(imp, op):
    n = len(op.inputs)
    for k in range(n):
        if imp.tensor(op, k).data is not None:
            imp.fail(op, f"input {k} is a constant; concatenating constants is not supported")
    rank = len(imp.tensor(op, 0).shape)
    order = "nchw" if rank == 4 else "native"
    inputs = [imp.value(op, k, order) for k in range(n)]
    if any(len(v.shape) != rank for v in inputs):
        imp.fail(op, "inputs of different ranks")
    axis = int(op.options.get("axis", 0))
    if not -rank <= axis < rank:
        imp.fail(op, f"axis {axis} is out of range for rank {rank}")
    axis %= rank
    if axis == 0:
        imp.fail(op, "concatenating along the batch dimension is not supported")
    ours = TO_NCHW.index(axis) if rank == 4 else axis
    code = op.options.get("fused_activation_function", 0)
    value = imp.output(op, ConcatenationLayer(imp.name_for(op), ours, n), inputs, order,
                       {"tflite_op": op.op, "activation": imp.activation_name(op, code)})
    imp.activation(op, value, code)


# --- shape arithmetic evaluated at import time ---------------------------------------------------------
def _folded_vector(imp, op, k):
    value = imp.const(op, k)
    if isinstance(value, list):
        return value
    array = np.asarray(value)
    if array.ndim > 1:
        imp.fail(op, f"input {k} of shape {list(array.shape)}: only vectors are supported in shape arithmetic")
    return [int(v) for v in array.reshape(-1)]


@register("SHAPE")
def shape(imp, op):
    t = imp.tensor(op, 0)
    value = imp.values.get(t.index)
    if value is None and t.data is None:
        imp.fail(op, f"input {t.name!r} is produced by no earlier operator")
    dims = t.shape if value is None else value.shape
    imp.folded[op.outputs[0]] = [BATCH if d is None else int(d) for d in dims]


@register("STRIDED_SLICE")
def strided_slice(imp, op):
    o = op.options
    if o.get("ellipsis_mask") or o.get("new_axis_mask"):
        imp.fail(op, "ellipsis and new-axis masks are not supported in shape arithmetic")
    data = _folded_vector(imp, op, 0)
    begin, end = _folded_vector(imp, op, 1), _folded_vector(imp, op, 2)
    strides = _folded_vector(imp, op, 3) if imp.has_input(op, 3) else [1]
    if not (len(begin) == len(end) == len(strides) == 1):
        imp.fail(op, "only 1-D slices are supported in shape arithmetic")
    b, e, s = begin[0], end[0], strides[0]
    if s == 0 or any(isinstance(v, Batch) for v in (b, e, s)):
        imp.fail(op, f"slice {b}:{e}:{s} cannot be evaluated")
    if o.get("offset"):
        e = b + e
    if o.get("shrink_axis_mask", 0) & 1:
        if not -len(data) <= b < len(data):
            imp.fail(op, f"index {b} is out of range for a vector of {len(data)}")
        imp.folded[op.outputs[0]] = data[b]
        return
    lo = None if o.get("begin_mask", 0) & 1 else b
    hi = None if o.get("end_mask", 0) & 1 else e
    imp.folded[op.outputs[0]] = data[lo:hi:s]


@register("PACK")
def pack(imp, op):
    if int(op.options.get("axis", 0)) != 0:
        imp.fail(op, "only packing along axis 0 is supported in shape arithmetic")
    values = []
    for k in range(len(op.inputs)):
        v = imp.const(op, k)
        if isinstance(v, (Batch, int, np.integer)) or (isinstance(v, np.ndarray) and v.ndim == 0):
            values.append(v if isinstance(v, Batch) else int(v))
        else:
            imp.fail(op, f"input {k} is not a scalar; only scalars are packed in shape arithmetic")
    imp.folded[op.outputs[0]] = values

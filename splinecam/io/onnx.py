"""ONNX models (exported from Keras, JAX, PyTorch or any framework) as torch modules.

:func:`load_onnx` turns the piecewise-linear subset of ONNX into a
``torch.fx.GraphModule`` of standard torch layers (``nn.Linear``,
``nn.Conv2d``, ``nn.ReLU``, ``nn.MaxPool2d``, ...), which :func:`splinecam.partition`
traces like any other model.  It needs the ``onnx`` package
(``pip install 'splinecam[onnx]'``) and nothing else (the general converter
``onnx2torch`` requires torchvision, whose compiled ops did not load with the
CPU-only torch this project pins).

Supported ONNX ops: Gemm, MatMul (by a constant), Add, Sub, Mul and Div (by a
constant; Add and Sub of two activations too), Neg, Relu, LeakyRelu, PRelu,
Clip, Abs, Max, Min of an activation and a constant, Conv (1-D and 2-D), MaxPool,
AveragePool, GlobalAveragePool, BatchNormalization, Flatten, Reshape, Transpose,
Concat, Squeeze, Unsqueeze, Identity, Dropout and Constant.  The model must
have one input with a batch axis first and fixed sizes after it.
"""

from __future__ import annotations

import operator
import re

import numpy as np
import torch
from torch import fx, nn

from ..extras import require
from ..errors import UnsupportedModelError

__all__ = ["load_onnx"]

SMOOTH_OPS = {
    "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Softplus", "Softsign", "Elu", "Selu", "Celu", "Gelu", "Erf",
    "Exp", "Log", "Sqrt", "Pow", "Reciprocal", "HardSigmoid", "HardSwish", "Mish", "LayerNormalization",
    "GroupNormalization", "InstanceNormalization", "LpNormalization", "Sin", "Cos", "Swish",
}
FINAL_SQUASH = {"Softmax", "LogSoftmax", "Sigmoid"}


class _Value:
    """A live value: its fx node and its value on an example input (for shapes)."""

    def __init__(self, node: fx.Node, example: torch.Tensor):
        self.node, self.example = node, example


class _Builder:
    """Builds the fx graph and the module that holds its layers and constants."""

    def __init__(self):
        self.root = nn.Module()
        self.graph = fx.Graph()
        self.count = 0

    def _name(self, stem: str) -> str:
        self.count += 1
        return f"{re.sub(r'[^0-9a-zA-Z_]', '_', stem).lower()}_{self.count}"

    def module(self, layer: nn.Module, x: _Value, stem: str) -> _Value:
        name = self._name(stem)
        self.root.add_module(name, layer.eval())
        with torch.no_grad():
            return _Value(self.graph.call_module(name, (x.node,)), layer(x.example))

    def constant(self, array: np.ndarray) -> fx.Node:
        name = self._name("const")
        self.root.register_buffer(name, torch.as_tensor(np.array(array, dtype=np.float32)))
        return self.graph.get_attr(name)

    def call(self, fn, args: list, kwargs: dict | None = None, method: bool = False) -> _Value:
        """fn(*args): live values become their nodes, arrays become constant buffers."""
        nodes, examples = [], []
        for a in args:
            if isinstance(a, _Value):
                nodes.append(a.node)
                examples.append(a.example)
            elif isinstance(a, np.ndarray):
                nodes.append(self.constant(a))
                examples.append(torch.as_tensor(np.array(a, dtype=np.float32)))
            elif isinstance(a, (list, tuple)) and any(isinstance(b, _Value) for b in a):
                nodes.append([b.node for b in a])
                examples.append([b.example for b in a])
            else:
                nodes.append(a)
                examples.append(a)
        kwargs = kwargs or {}
        with torch.no_grad():
            if method:
                node = self.graph.call_method(fn, tuple(nodes), kwargs)
                example = getattr(examples[0], fn)(*examples[1:], **kwargs)
            else:
                node = self.graph.call_function(fn, tuple(nodes), kwargs)
                example = fn(*examples, **kwargs)
        return _Value(node, example)


class _Unsupported(Exception):
    """This node cannot be converted; the message says why."""


def _const(x, what: str) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise _Unsupported(f"{what} must be a constant (an initializer), not computed from the input")
    return x


def _live(x, what: str) -> _Value:
    if not isinstance(x, _Value):
        raise _Unsupported(f"{what} must depend on the input")
    return x


def _gemm(b, ins, at, stem):
    x, w = _live(ins[0], "Gemm's A"), _const(ins[1], "Gemm's B (the product of two activations is not piecewise-linear)")
    if at.get("transA", 0):
        raise _Unsupported("transA=1 (the batch must stay the first axis)")
    w = (w if at.get("transB", 0) else w.T) * at.get("alpha", 1.0)
    layer = nn.Linear(w.shape[1], w.shape[0], bias=len(ins) > 2 and ins[2] is not None)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(w))
        if layer.bias is not None:
            c = _const(ins[2], "Gemm's C")
            layer.bias.copy_(torch.as_tensor(np.broadcast_to(c * at.get("beta", 1.0), (w.shape[0],)).copy()))
    return b.module(layer, x, stem)


def _matmul(b, ins, at, stem):
    x = _live(ins[0], "MatMul's first input")
    w = _const(ins[1], "MatMul's second input (the product of two activations is not piecewise-linear)")
    if w.ndim != 2:
        raise _Unsupported(f"a constant of shape {w.shape}; only 2-D weights are supported")
    layer = nn.Linear(w.shape[0], w.shape[1], bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(w.T))
    return b.module(layer, x, stem)


def _arith(fn):
    def convert(b, ins, at, stem):
        a, c = ins
        if fn in (operator.mul, operator.truediv) and isinstance(a, _Value) and isinstance(c, _Value):
            raise _Unsupported("a product or quotient of two activations is not piecewise-linear")
        if fn is operator.truediv and not isinstance(a, _Value):
            raise _Unsupported("dividing by an activation is not piecewise-linear")
        if not isinstance(a, _Value) and not isinstance(c, _Value):
            raise _Unsupported("both operands are constants")
        if not isinstance(a, _Value):  # constant first: c + x, c - x, c * x
            a, c = c, a
            if fn is operator.sub:
                return b.call(operator.add, [b.call(operator.neg, [a]), c])
        return b.call(fn, [a, c])
    return convert


def _clip(b, ins, at, stem):
    lo = ins[1] if len(ins) > 1 and ins[1] is not None else at.get("min")
    hi = ins[2] if len(ins) > 2 and ins[2] is not None else at.get("max")
    lo, hi = (None if v is None else float(_const(np.asarray(v), "Clip's bounds")) for v in (lo, hi))
    return b.call(torch.clamp, [_live(ins[0], "Clip's input")], {"min": lo, "max": hi})


def _max_min(fn):
    def convert(b, ins, at, stem):
        live = [v for v in ins if isinstance(v, _Value)]
        consts = [v for v in ins if isinstance(v, np.ndarray)]
        if not live:
            raise _Unsupported("all inputs are constants")
        if fn is torch.minimum and (len(live) > 1 or len(consts) != 1):
            raise _Unsupported("Min is supported for one activation and one constant")
        out = live[0]
        for v in live[1:] + consts:
            out = b.call(fn, [out, v])
        return out
    return convert


def _prelu(b, ins, at, stem):
    slope = _const(ins[1], "PRelu's slope").reshape(-1)
    layer = nn.PReLU(num_parameters=slope.size)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(slope))
    return b.module(layer, _live(ins[0], "PRelu's input"), stem)


def _pads(at, n: int) -> tuple[int, ...]:
    if at.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise _Unsupported("auto_pad; export with explicit pads")
    pads = list(at.get("pads", [0] * (2 * n)))
    if pads[:n] != pads[n:]:
        raise _Unsupported(f"asymmetric pads {pads}")
    return tuple(pads[:n])


def _conv(b, ins, at, stem):
    w = _const(ins[1], "Conv's weights")
    n = w.ndim - 2
    if n not in (1, 2):
        raise _Unsupported(f"{n}-D convolution (1-D and 2-D are supported)")
    cls = nn.Conv1d if n == 1 else nn.Conv2d
    groups = at.get("group", 1)
    layer = cls(w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]), stride=tuple(at.get("strides", [1] * n)),
                padding=_pads(at, n), dilation=tuple(at.get("dilations", [1] * n)), groups=groups,
                bias=len(ins) > 2 and ins[2] is not None)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(w))
        if layer.bias is not None:
            layer.bias.copy_(torch.as_tensor(_const(ins[2], "Conv's bias")))
    return b.module(layer, _live(ins[0], "Conv's input"), stem)


def _pool(kind):
    def convert(b, ins, at, stem):
        kernel = tuple(at["kernel_shape"])
        n = len(kernel)
        if n not in (1, 2):
            raise _Unsupported(f"{n}-D pooling (1-D and 2-D are supported)")
        common = {"stride": tuple(at.get("strides", [1] * n)), "padding": _pads(at, n),
                  "ceil_mode": bool(at.get("ceil_mode", 0))}
        if kind == "max":
            layer = (nn.MaxPool1d, nn.MaxPool2d)[n - 1](kernel, dilation=tuple(at.get("dilations", [1] * n)), **common)
        else:
            layer = (nn.AvgPool1d, nn.AvgPool2d)[n - 1](kernel, count_include_pad=bool(at.get("count_include_pad", 0)),
                                                        **common)
        return b.module(layer, _live(ins[0], "the pooling input"), stem)
    return convert


def _global_avg(b, ins, at, stem):
    x = _live(ins[0], "GlobalAveragePool's input")
    n = x.example.ndim - 2
    if n not in (1, 2):
        raise _Unsupported(f"input of rank {x.example.ndim}")
    return b.module((nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)[n - 1](1), x, stem)


def _batchnorm(b, ins, at, stem):
    x = _live(ins[0], "BatchNormalization's input")
    scale, shift, mean, var = (_const(v, "BatchNormalization's parameters") for v in ins[1:5])
    rank = x.example.ndim
    if rank not in (2, 3, 4):
        raise _Unsupported(f"input of rank {rank}")
    layer = (nn.BatchNorm1d if rank < 4 else nn.BatchNorm2d)(scale.size, eps=at.get("epsilon", 1e-5))
    with torch.no_grad():
        for tensor, value in ((layer.weight, scale), (layer.bias, shift), (layer.running_mean, mean),
                              (layer.running_var, var)):
            tensor.copy_(torch.as_tensor(value))
    return b.module(layer, x, stem)


def _flatten(b, ins, at, stem):
    axis = at.get("axis", 1)
    x = _live(ins[0], "Flatten's input")
    if axis % x.example.ndim != 1:
        raise _Unsupported(f"axis={axis} (only axis=1 keeps the batch axis)")
    return b.module(nn.Flatten(), x, stem)


def _reshape(b, ins, at, stem):
    x = _live(ins[0], "Reshape's input")
    shape = [int(s) for s in _const(ins[1], "Reshape's shape")]
    rest = [x.example.shape[i] if s == 0 else s for i, s in enumerate(shape) if i > 0]
    if shape[0] not in (-1, 0, 1) or (shape[0] == -1 and -1 in rest):
        raise _Unsupported(f"shape {shape}: the first axis must stay the batch")
    if -1 in rest:
        rest[rest.index(-1)] = x.example[0].numel() // int(np.prod([s for s in rest if s != -1]))
    return b.call("reshape", [x, -1, *rest], method=True)


def _transpose(b, ins, at, stem):
    x = _live(ins[0], "Transpose's input")
    perm = list(at.get("perm", range(x.example.ndim - 1, -1, -1)))
    if perm[0] != 0:
        raise _Unsupported(f"perm={perm} moves the batch axis")
    return b.call("permute", [x, *perm], method=True)


def _axes(ins, at, x):
    axes = at.get("axes")
    if axes is None and len(ins) > 1 and ins[1] is not None:
        axes = [int(a) for a in _const(ins[1], "the axes")]
    if axes is None:
        raise _Unsupported("no axes given")
    return sorted(a % (x.example.ndim + len(axes)) for a in axes)


def _squeeze(b, ins, at, stem):
    x = _live(ins[0], "Squeeze's input")
    axes = _axes(ins, at, x)
    if 0 in axes:
        raise _Unsupported("squeezing the batch axis")
    for a in reversed(axes):
        x = b.call(torch.squeeze, [x, a])
    return x


def _unsqueeze(b, ins, at, stem):
    x = _live(ins[0], "Unsqueeze's input")
    for a in _axes(ins, at, x):
        if a == 0:
            raise _Unsupported("a new first axis (the batch must stay first)")
        x = b.call(torch.unsqueeze, [x, a])
    return x


def _concat(b, ins, at, stem):
    if not all(isinstance(v, _Value) for v in ins):
        raise _Unsupported("concatenating constants")
    axis = at["axis"] % ins[0].example.ndim
    if axis == 0:
        raise _Unsupported("concatenating along the batch axis")
    return b.call(torch.cat, [list(ins)], {"dim": axis})


def _module(factory):
    def convert(b, ins, at, stem):
        return b.module(factory(at), _live(ins[0], "the input"), stem)
    return convert


CONVERTERS = {
    "Gemm": _gemm, "MatMul": _matmul,
    "Add": _arith(operator.add), "Sub": _arith(operator.sub), "Mul": _arith(operator.mul),
    "Div": _arith(operator.truediv),
    "Neg": lambda b, ins, at, stem: b.call(operator.neg, [_live(ins[0], "Neg's input")]),
    "Relu": _module(lambda at: nn.ReLU()), "LeakyRelu": _module(lambda at: nn.LeakyReLU(at.get("alpha", 0.01))),
    "PRelu": _prelu, "Clip": _clip, "Abs": lambda b, ins, at, stem: b.call(torch.abs, [_live(ins[0], "Abs's input")]),
    "Max": _max_min(torch.maximum), "Min": _max_min(torch.minimum),
    "Conv": _conv, "MaxPool": _pool("max"), "AveragePool": _pool("avg"), "GlobalAveragePool": _global_avg,
    "BatchNormalization": _batchnorm, "Flatten": _flatten, "Reshape": _reshape, "Transpose": _transpose,
    "Squeeze": _squeeze, "Unsqueeze": _unsqueeze, "Concat": _concat,
    "Identity": lambda b, ins, at, stem: ins[0], "Dropout": lambda b, ins, at, stem: ins[0],
}


def _attributes(node, helper) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _read(source, onnx):
    if isinstance(source, onnx.ModelProto):
        return source
    try:
        model = onnx.load(str(source))
    except FileNotFoundError:
        raise
    except Exception as err:  # noqa: BLE001 - protobuf raises its own DecodeError and others
        raise ValueError(f"{source} is not a readable ONNX model ({type(err).__name__}: {err}).") from None
    if not model.graph.node:
        raise ValueError(f"{source} is not an ONNX model with a graph (no nodes found).")
    return model


def _input(graph, constants) -> tuple[str, tuple[int, ...]]:
    inputs = [i for i in graph.input if i.name not in constants]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise UnsupportedModelError(
            f"splinecam slices models with one input and one output; this ONNX graph has inputs "
            f"{[i.name for i in inputs]} and outputs {[o.name for o in graph.output]}.")
    dims = inputs[0].type.tensor_type.shape.dim
    shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
    if len(shape) < 2 or any(s is None or s < 1 for s in shape[1:]):
        raise UnsupportedModelError(
            f"the ONNX input {inputs[0].name!r} has shape {shape}: splinecam needs a batch axis first and "
            f"fixed sizes after it.")
    return inputs[0].name, shape[1:]


def load_onnx(source, logits: bool = False) -> fx.GraphModule:
    """A torch module (float32, eval mode) computing the ONNX model ``source`` (a path or an
    ``onnx.ModelProto``), built from standard torch layers so that splinecam can partition it.

    logits: drop a final Softmax, LogSoftmax or Sigmoid (smooth, so no exact partition
    of them exists; the decision boundary is the same without them).  Raises
    :class:`splinecam.UnsupportedModelError` naming every op it cannot convert, and
    ValueError for a file that is not an ONNX model.  The module's ``input_shape``
    is the input's shape without the batch axis.

    >>> model = sc.load_onnx("classifier.onnx", logits=True)
    >>> part = sc.partition(model, sc.Slice.from_points(x1, x2, x3))
    """
    onnx = require("onnx", "onnx", "load_onnx")
    from onnx import helper, numpy_helper

    model = _read(source, onnx)
    graph = model.graph
    values: dict[str, object] = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in graph.initializer}
    name, input_shape = _input(graph, values)
    nodes = list(graph.node)
    if logits and nodes[-1].op_type in FINAL_SQUASH and list(nodes[-1].output) == [graph.output[0].name]:
        dropped = nodes.pop()
        values[dropped.output[0]] = dropped.input[0]  # an alias, resolved below
    b = _Builder()
    values[name] = _Value(b.graph.placeholder("x"), torch.zeros(2, *input_shape))
    problems, dead = [], object()  # dead: the output of an op that could not be converted
    for i, node in enumerate(nodes):
        label = f"{node.name or f'node {i}'} ({node.op_type})"
        at = _attributes(node, helper)
        if node.op_type == "Constant":
            values[node.output[0]] = numpy_helper.to_array(at["value"]).astype(np.float64)
            continue
        ins = [values.get(n) if n else None for n in node.input]
        try:
            if node.op_type in SMOOTH_OPS:
                raise _Unsupported("smooth, not piecewise-linear, so no exact partition exists" + (
                    "; load_onnx(..., logits=True) drops it at the end of the model"
                    if node.op_type in FINAL_SQUASH else ""))
            if node.op_type not in CONVERTERS:
                raise _Unsupported("not supported")
            if sum(bool(o) for o in node.output) != 1:
                raise _Unsupported("more than one output")
            if any(v is dead for v in ins):  # after an op that failed: its type was fine, say no more
                values[node.output[0]] = dead
                continue
            values[node.output[0]] = CONVERTERS[node.op_type](b, ins, at, f"{node.op_type}")
        except _Unsupported as err:
            problems.append(f"{label}: {err}")
            values.update({o: dead for o in node.output})
    if problems:
        raise UnsupportedModelError("the ONNX model has ops splinecam cannot convert exactly:\n  " + "\n  ".join(problems))
    out = values[graph.output[0].name]
    while isinstance(out, str):
        out = values[out]
    if not isinstance(out, _Value):
        raise UnsupportedModelError("the ONNX model's output does not depend on its input.")
    b.graph.output(out.node)
    module = fx.GraphModule(b.root, b.graph).eval()
    module.input_shape = tuple(input_shape)
    return module

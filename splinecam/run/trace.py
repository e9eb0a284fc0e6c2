"""Model -> graph of ops.  Every unsupported piece is collected and reported at once."""

from __future__ import annotations

import copy
import operator
import os
import re
import weakref
from dataclasses import dataclass, field

import torch
from torch import fx, nn
from torch.utils._pytree import tree_flatten

from ..errors import UnsupportedModelError
from ..ops import REGISTRY, SMOOTH_NAMES, FunctionOp, Live, Op, TrainingMode, Unsupported

__all__ = ["Graph", "Node", "agrees", "frozen", "prepare", "shape_error", "trace"]

SMOOTH = (
    nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Softplus, nn.ELU, nn.SELU, nn.CELU, nn.Mish,
    nn.Softmax, nn.LogSoftmax, nn.Softmin, nn.Hardswish, nn.Hardsigmoid, nn.LogSigmoid,
    nn.Softsign, nn.Tanhshrink, nn.GLU, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm,
)


@dataclass
class Node:
    """One op of the graph.  Value 0 is the network input; node i produces value i + 1."""

    op: Op
    args: tuple[int, ...]
    name: str


@dataclass
class Graph:
    """The ops of a model in order.  Value 0 is the input; node i reads the values ``args``
    and produces value i + 1; the last value is the output."""

    nodes: list[Node]
    _last_use: tuple | None = field(default=None, init=False, repr=False, compare=False)

    def walk(self, values: dict[int, object], start: int = 0, free: bool = True):
        """The one walk over the nodes, from node ``start``, of the live values ``values``
        (value index -> value; any kind: states, forms, plain tensors): yields ``(i, node,
        args)``; the caller stores ``values[i + 1]`` before going on, and then the values node i
        was the last to read are dropped (unless not ``free``).  A caller that stops at node i
        leaves its values in place (:meth:`retire` drops them later)."""
        for i in range(start, len(self.nodes)):
            node = self.nodes[i]
            yield i, node, [values[a] for a in node.args]
            if free:
                self.retire(values, i)

    def retire(self, values: dict[int, object], i: int) -> None:
        """Drop from ``values`` the values node i was the last to read."""
        last = self.last_use()
        for a in self.nodes[i].args:
            if last[a] == i:
                values.pop(a, None)

    def forward(self, x: torch.Tensor, on_split=None, values: bool = False):
        """Evaluate on inputs (B, *shape).  ``on_split(layer, z)`` sees the input of each
        piecewise-linear op (elementwise or max); ``op.code(z)`` is its activation code.
        With ``values``, return every value (list, input first), else the output."""
        out = {0: x}
        layer = 0
        for i, node, args in self.walk(out, free=not values):
            if node.op.splits:
                if on_split is not None:
                    on_split(layer, args[0])
                layer += 1
            out[i + 1] = node.op.forward(*args)
        return list(out.values()) if values else out[len(self.nodes)]

    @property
    def split_nodes(self) -> list[Node]:
        """The nodes whose op splits regions, in order: the layers of the activation codes."""
        return [n for n in self.nodes if n.op.splits]

    def last_use(self) -> dict[int, int]:
        """Value index -> the last node that reads it (values no node reads are absent)."""
        if self._last_use is None or self._last_use[0] != len(self.nodes):
            self._last_use = (len(self.nodes), {a: i for i, node in enumerate(self.nodes) for a in node.args})
        return self._last_use[1]


def _describe(name: str, module: nn.Module) -> str:
    where = name or "<model>"
    if isinstance(module, SMOOTH):
        return f"{where} ({type(module).__name__}): smooth, not piecewise-linear, so no exact partition exists"
    return f"{where} ({type(module).__name__}): not supported"


class _Tracer(fx.Tracer):
    """Does not trace into modules or plain Python functions that have a registered op."""

    def __init__(self, stack_traces: bool):
        super().__init__(autowrap_functions=REGISTRY.plain_functions())
        self.record_stack_traces = stack_traces  # costly: the first one imports torch._dynamo (seconds)

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return REGISTRY.for_module(m) is not None or super().is_leaf_module(m, qualname)


def _location(node: fx.Node) -> str:
    """``file.py:line`` of the model code that made a traced call, if known."""
    torch_dir = os.path.dirname(torch.__file__)
    lines = [f for f in re.findall(r'File "([^"]+)", line (\d+)', node.stack_trace or "") if not f[0].startswith(torch_dir)]
    if not lines:
        return ""
    path, line = lines[-1]
    return f" at {os.path.basename(path)}:{line}"


def _what(node: fx.Node) -> str:
    """A function or method call, named with the module it sits in and its place in the code."""
    stack = node.meta.get("nn_module_stack") or {}
    inside = ""
    if stack:
        path, cls = list(stack.values())[-1]
        inside = f"{path} ({getattr(cls, '__name__', cls)}): "
    return f"{inside}{node.name} ({_target_name(node)}){_location(node)}"


def _target_name(node: fx.Node) -> str:
    if node.op == "call_method":
        return f".{node.target}()"
    return getattr(node.target, "__name__", str(node.target)) + "()"


def _fx_graph(model: nn.Module, stack_traces: bool = False) -> fx.Graph:
    """The fx graph of ``model``; ``stack_traces``: with the model code's place of each call
    (only wanted for error messages)."""
    try:
        return _Tracer(stack_traces).trace(model)
    except Exception as err:  # noqa: BLE001 - fx raises many kinds of errors
        raise UnsupportedModelError(
            f"splinecam could not trace the model with torch.fx ({type(err).__name__}: {err}).  "
            "Models whose forward has control flow that depends on the input values cannot be traced; "
            "write that part without Python branches on tensor values."
        ) from None


def trace(model: nn.Module, input_shape: tuple[int, ...]) -> Graph:
    """Graph of any module built from supported operations, traced with torch.fx.

    The model runs once on a small random batch of shape (3, *input_shape)
    (so pass a copy: eval-mode checks come first but a module may still
    update buffers).  Raises :class:`UnsupportedModelError` naming every
    unsupported module, function or method with where it is in the model,
    and every BatchNorm/Dropout that is in training mode.
    """
    return _build(model, _fx_graph(model), input_shape)


# model -> (its structure, its fx graph): re-partitioning a model whose weights changed (training
# videos, studies) rebuilds the ops from the current weights without tracing again
_FX_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _structure(model: nn.Module) -> tuple:
    """What the fx graph of ``model`` depends on besides tensor values: the registry, and each
    submodule's name, type, plain settings (flags, sizes, modes) and any forward set on it."""
    parts: list = [REGISTRY.version]
    for name, m in model.named_modules():
        settings = tuple(sorted((k, v) for k, v in vars(m).items() if _plain(v)))
        parts.append((name, type(m), settings, id(vars(m).get("forward"))))
    return tuple(parts)


def _plain(value) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


def _cached_fx_graph(model: nn.Module, twin: nn.Module) -> fx.Graph:
    """The fx graph of ``twin`` (a copy of ``model``), traced once per structure of ``model``."""
    key = _structure(model)
    hit = _FX_CACHE.get(model)
    if hit is not None and hit[0] == key:
        return hit[1]
    graph = _fx_graph(twin)
    # a graph that reads attributes the tracer added to the copy (tensor constants) is not reused
    if all(_has(model, n.target) for n in graph.nodes if n.op == "get_attr"):
        _FX_CACHE[model] = (key, graph)
    return graph


def _has(model: nn.Module, target: str) -> bool:
    try:
        _fetch(model, target)
    except AttributeError:
        return False
    return True


def _build(model: nn.Module, graph: fx.Graph, input_shape: tuple[int, ...]) -> Graph:
    """The ops of ``model`` along its fx graph (see :func:`trace`).  Graphs are traced without
    stack traces; when the model is rejected, it is traced again with them, so that the error
    names the places in the model's code."""
    try:
        return _build_ops(model, graph, input_shape)
    except ValueError:  # UnsupportedModelError too
        if any(n.stack_trace for n in graph.nodes):
            raise
    return _build_ops(model, _fx_graph(model, stack_traces=True), input_shape)


def _build_ops(model: nn.Module, graph: fx.Graph, input_shape: tuple[int, ...]) -> Graph:
    modules = dict(model.named_modules())
    first = next(iter(model.parameters()), None)
    dtype = first.dtype if first is not None and first.is_floating_point() else torch.float64
    device = first.device if first is not None else "cpu"
    gen = torch.Generator().manual_seed(0)
    example = torch.randn(3, *input_shape, generator=gen, dtype=torch.float64).to(dtype=dtype, device=device)

    env: dict[fx.Node, object] = {}
    index: dict[fx.Node, int] = {}  # live fx node -> graph value index
    tuples: set[fx.Node] = set()  # nodes whose value is a (values, indices) pair of a max
    nodes: list[Node] = []
    problems: list[str] = []
    dead: set[fx.Node] = set()  # reported nodes that could not even run on the example
    output = None

    def add(op, args, name):
        nodes.append(Node(op, tuple(args), name))
        return len(nodes)

    with torch.no_grad():
        for n in graph.nodes:
            if n.op == "output":
                output = n.args[0]
                break
            live_in = [a for a in n.all_input_nodes if a in index]
            if n.op == "placeholder":
                if index:
                    problems.append(f"{n.name}: a second input; splinecam slices models with one input tensor")
                env[n], index[n] = example, 0
                continue
            if n.op == "get_attr":
                env[n] = _fetch(model, n.target)
                continue
            if any(a in dead for a in live_in):  # after a node that could not run: check its type only
                problem = _unsupported(n, modules)
                if problem:
                    problems.append(problem)
                index[n] = -1
                dead.add(n)
                continue
            args = fx.node.map_arg(n.args, lambda a: env[a])
            kwargs = fx.node.map_arg(n.kwargs, lambda a: env[a])
            try:
                if n.op == "call_module":
                    env[n] = modules[n.target](*args, **kwargs)
                elif n.op == "call_function":
                    env[n] = n.target(*args, **kwargs)
                else:
                    env[n] = getattr(args[0], n.target)(*args[1:], **kwargs)
            except Exception as err:  # noqa: BLE001 - a shape error, most often
                problem = _unsupported(n, modules)
                if problem or any(index[a] == -1 for a in live_in):  # failed because of a reported node
                    if problem:
                        problems.append(problem)
                    index[n] = -1
                    dead.add(n)
                    continue
                if "dtype" in str(err) or "Double" in str(err):
                    raise UnsupportedModelError(
                        f"{n.name}{_location(n)} failed in the float64 copy of the model ({err}): a tensor made "
                        "inside forward has a fixed dtype; create it with x.new_tensor(...) / torch.ones(..., "
                        "dtype=x.dtype), or register it as a buffer."
                    ) from None
                raise shape_error(input_shape, f"{n.name}{_location(n)} failed with {type(err).__name__}: {err}") from None
            value = env[n]
            is_max_pair = isinstance(value, tuple) and hasattr(value, "indices")
            if not live_in or not (isinstance(value, torch.Tensor) or is_max_pair):
                continue  # a constant, or a number such as a size
            if any(a in tuples for a in live_in):
                if n.op == "call_function" and n.target in (operator.getitem, getattr) and n.args[1] in (0, "values"):
                    index[n] = index[n.args[0]]
                else:
                    problems.append(f"{n.name}{_location(n)}: uses the indices of a max, which are not piecewise-linear")
                continue
            ops = _ops_for(n, modules, args, kwargs, index, env, problems)
            if ops is None:
                index[n] = -1  # reported; keep checking what depends on it
                continue
            if is_max_pair:
                tuples.add(n)
                value = value[0]
            if not isinstance(value, torch.Tensor) or value.dim() == 0 or value.shape[0] != example.shape[0]:
                problems.append(f"{n.name}{_location(n)}: its output does not keep dim 0 as the batch dim")
                index[n] = -1
                continue
            if not ops:
                index[n] = index[live_in[0]]
                continue
            if not agrees(ops, [env[a] for a in _live_order(n, index)], value):
                problems.append(f"{n.name}{_location(n)}: the op registered for it does not compute what the "
                                "model computes, or its linear part is not linear (check the factory given to "
                                "splinecam.register_op)")
                index[n] = -1
                continue
            name = n.target if n.op == "call_module" else n.name
            v = add(ops[0], [index[a] for a in _live_order(n, index)], name)
            for op in ops[1:]:
                v = add(op, [v], name)
            index[n] = v
    if not problems:
        if not isinstance(output, fx.Node) or output not in index:
            problems.append("the model's output must be one tensor computed from the input")
        elif index[output] != len(nodes):  # the output must be the last value
            add(FunctionOp(lambda x: x, nonnegative=True), [index[output]], "output")
    if problems:
        raise UnsupportedModelError(
            "splinecam cannot compute an exact partition for this model:\n  - "
            + "\n  - ".join(problems)
            + "\nSupported: Linear, Conv1d/2d, BatchNorm (eval), Dropout (eval), pooling, Flatten, reshapes, "
            "cat, sums and scalings of activations, ReLU, LeakyReLU, PReLU, ReLU6, Hardtanh, abs, clamp, "
            "max-pooling and max, periodic piecewise-linear waves (splinecam.nn: TriangleWave, Sawtooth, PeriodicPWL, "
            "and PositionalEncoding/FourierFeatures with kind='triangle'); add others with splinecam.register_op."
        )
    return Graph(nodes)


def agrees(ops: list[Op], args: list[torch.Tensor], value: torch.Tensor) -> bool:
    """Whether the ops, one after the other, give ``value`` on the activations ``args`` (to the
    rounding of their dtype, relative to the largest magnitude involved), and the linear part
    of each affine op among them is linear (zero at zero: its whole bias is in ``offset``)."""
    vals = args
    for op in ops:
        if not op.splits and op.linear(*[torch.zeros_like(v) for v in vals]).any():
            return False
        vals = [op.forward(*vals)]
    out = vals[0]
    if out.shape != value.shape:
        return False
    scale = max([float(a.abs().max()) for a in args if a.numel()] + [float(value.abs().max()) if value.numel() else 0.0])
    return bool(((out - value).abs() <= 1e3 * torch.finfo(value.dtype).eps * max(scale, 1e-300)).all())


def _fetch(model: nn.Module, target: str):
    obj = model
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _live_order(n: fx.Node, index) -> list[fx.Node]:
    """The live input nodes in the order they appear in the call's arguments."""
    leaves = tree_flatten((n.args, n.kwargs))[0]
    return [a for a in leaves if isinstance(a, fx.Node) and a in index]


def _unsupported(n: fx.Node, modules) -> str | None:
    """Why node ``n`` has no op (None if it has one or is no call)."""
    if n.op == "call_module":
        module = modules[n.target]
        return None if REGISTRY.for_module(module) is not None else _describe(n.target, module)
    if n.op not in ("call_function", "call_method"):
        return None
    target = n.target if n.op == "call_function" else str(n.target)
    if REGISTRY.for_call(target) is not None:
        return None
    what = _what(n)
    base = target if isinstance(target, str) else getattr(target, "__name__", "")
    if base.strip("_") in SMOOTH_NAMES:
        return f"{what}: smooth, not piecewise-linear, so no exact partition exists"
    return f"{what}: not supported"


def _ops_for(n: fx.Node, modules, args, kwargs, index, env, problems) -> list[Op] | None:
    """The ops of one live call (empty list: identity), or None after recording a problem."""
    if n.op == "call_module":
        module = modules[n.target]
        factory = REGISTRY.for_module(module)
        if factory is None:
            problems.append(_describe(n.target, module))
            return None
        try:
            op = factory(module)
        except TrainingMode as err:
            problems.append(f"{n.target} ({type(module).__name__}): {err}; call model.eval() first")
            return None
        except Unsupported as err:
            problems.append(f"{n.target} ({type(module).__name__}): {err}")
            return None
        return [] if op is None else [op]
    target = n.target if n.op == "call_function" else str(n.target)
    factory = REGISTRY.for_call(target)
    what = _what(n)
    if factory is None:
        problems.append(_unsupported(n, modules))
        return None
    slots = {a: i for i, a in enumerate(_live_order(n, index))}
    wrap = lambda a: Live(env[a], slots[a]) if a in slots else env[a]  # noqa: E731
    fargs, fkwargs = fx.node.map_arg(n.args, wrap), fx.node.map_arg(n.kwargs, wrap)
    try:
        out = factory(*fargs, **fkwargs)
    except Unsupported as err:
        problems.append(f"{what}: {err}")
        return None
    if out is None:
        return []
    return list(out) if isinstance(out, (list, tuple)) else [out]


def check_finite(model: nn.Module) -> None:
    """Raise if a floating-point parameter or buffer holds a NaN or an inf (read off its min and
    max, which NaN propagates to: 30 times faster than ``isfinite(t).all()`` on large weights)."""
    bad = [n for n, t in list(model.named_parameters()) + list(model.named_buffers())
           if t.is_floating_point() and t.numel() and not torch.isfinite(torch.stack(t.detach().aminmax())).all()]
    if bad:
        raise ValueError(f"the model has NaN or inf values in: {', '.join(bad)}.")


def shape_error(input_shape: tuple[int, ...], failure: str) -> ValueError:
    """The one message for a model that cannot run on a domain's inputs of ``input_shape``."""
    dims = ", ".join(map(str, input_shape))
    hint = (" If the first dimension of your inputs is a batch of one, give the inputs without it (x[0])."
            if len(input_shape) > 1 and input_shape[0] == 1 else "")
    return ValueError(f"the model cannot run on inputs of the domain's shape {tuple(input_shape)} (a batch of "
                      f"them has shape (N, {dims})): {failure}.{hint}")


def prepare(model: nn.Module, dtype: torch.dtype, device, input_shape) -> tuple[nn.Module, Graph]:
    """A private copy of the model in ``dtype`` on ``device`` and its graph for inputs of one
    sample of shape ``input_shape``.  The user's model is untouched (traced and run as a copy)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    check_finite(model)
    twin = copy.deepcopy(model).to(dtype=dtype, device=device)
    for p in twin.parameters():
        p.requires_grad_(False)
    buffers = {k: v.clone() for k, v in twin.named_buffers()}
    graph = _build(twin, _cached_fx_graph(model, twin), tuple(input_shape))
    for name, buf in twin.named_buffers():  # undo any buffer update made by tracing
        if name in buffers:
            buf.copy_(buffers[name])
    return twin, graph


def frozen(model: nn.Module, dtype: torch.dtype, device, input_shape, state: dict | None = None):
    """A callable that gives ``prepare(model, dtype, device, input_shape)`` for the weights and
    buffers ``model`` has *now*, even if it is trained further before the call: only a copy of
    its tensors is taken here (cheap), or given as ``state`` (name -> a copy no one changes, in
    any dtype that holds the values exactly); the model itself is copied when the callable is
    called."""
    if state is None:
        state = {name: t.detach().clone() for name, t in _tensors(model)}

    def make() -> tuple[nn.Module, Graph]:
        twin = copy.deepcopy(model)
        now = dict(_tensors(twin))
        if now.keys() != state.keys() or any(now[k].shape != v.shape for k, v in state.items()):
            raise ValueError("the model's parameters or buffers changed shape or names since it was partitioned; "
                             "pass the model it was partitioned with: part.verify(model=...).")
        with torch.no_grad():
            for name, t in now.items():
                t.copy_(state[name])
        return prepare(twin, dtype, device, input_shape)

    return make


def _tensors(model: nn.Module):
    """(name, tensor) of every parameter and buffer of ``model``."""
    yield from model.named_parameters()
    yield from model.named_buffers()

"""One plan for both executors, one walk over a graph's nodes, and ops that own their rules."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
import torch
from helpers import random_mlp
from torch import nn
from zoo_models import _setup

import splinecam as sc
from splinecam.run.chain import read_chain
from splinecam.run.plan import Plan, state_bytes_per_region
from splinecam.run.trace import prepare


@pytest.mark.parametrize("chunk_size", [None, 3])
@pytest.mark.parametrize("extras", [False, True])
def test_the_fast_path_and_the_engine_plan_an_mlp_alike(chunk_size, extras):
    """The chain read without tracing and the traced graph give the same plan: shapes, layers,
    chunk sizes, budget and slice frame."""
    model = random_mlp([7, 5], 3, seed=4, extras=extras).eval()
    if extras:  # BatchNorm takes the engine; fold it away to compare plain chains
        model = nn.Sequential(*[m for m in model.modules() if type(m) in (nn.Linear, nn.ReLU)])
    sl = sc.Slice.from_points(*torch.randn(3, 2, generator=torch.Generator().manual_seed(1)))
    graph, shapes = read_chain(model, sl).graph(2)
    _, traced = prepare(model, torch.float64, "cpu", (2,))
    traced_shapes = [tuple(v.shape[1:]) for v in traced.forward(torch.zeros(1, 2, dtype=torch.float64), values=True)]
    plans = [Plan.make(g, s, sl, torch.float64, torch.device("cpu"), 1e-10, 10**6, chunk_size)
             for g, s in ((graph, shapes), (traced, traced_shapes))]
    fast, engine = plans
    assert fast.shapes == engine.shapes and fast.budget == engine.budget
    assert list(fast.chunks.values()) == list(engine.chunks.values())
    assert [(la.units, la.bits) for la in fast.layers.values()] == [(la.units, la.bits) for la in engine.layers.values()]
    for a, b in zip((fast.center, fast.root.verts, fast.extent, fast.state), (engine.center, engine.root.verts, engine.extent, engine.state)):
        assert torch.equal(a, b)
    assert fast.region_bytes() == engine.region_bytes()
    if chunk_size:
        assert set(fast.chunks.values()) == {chunk_size}


@pytest.mark.parametrize("name", ["resnet", "mixed"])
def test_the_walk_drops_each_value_after_its_last_use(name):
    """Graph.walk (the one walk of the forward pass, the engine and the bounds) holds exactly the
    values some later node still reads, and the forward pass built on it is the model's."""
    model, sl, _ = _setup(name)
    twin, graph = prepare(model, torch.float64, "cpu", sl.input_shape)
    x = torch.randn(4, *sl.input_shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    values = {0: x}
    for i, node, args in graph.walk(values):
        still_read = {a for later in graph.nodes[i:] for a in later.args}
        assert set(values) == {v for v in range(i) if v in still_read} | {i}
        assert all(values[a] is arg for a, arg in zip(node.args, args))
        values[i + 1] = node.op.forward(*args)
    assert set(values) == {len(graph.nodes)}
    everything = graph.forward(x, values=True)
    assert len(everything) == len(graph.nodes) + 1 and torch.equal(everything[-1], values[len(graph.nodes)])
    with torch.no_grad():
        torch.testing.assert_close(graph.forward(x), twin(x), rtol=1e-12, atol=1e-12)


def test_no_module_outside_ops_branches_on_an_op_kind():
    """Ops own their rules: outside ``splinecam/ops/`` no ``isinstance`` names an op class."""
    root = Path(sc.__file__).parent
    kinds = {name for name in dir(sc.ops) if isinstance(getattr(sc.ops, name), type) and
             issubclass(getattr(sc.ops, name), sc.ops.Op)}
    found = []
    for path in root.rglob("*.py"):
        if path.parent.name == "ops" and path.parent.parent == root:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance" and len(node.args) == 2:
                names = {getattr(n, "id", getattr(n, "attr", None)) for n in ast.walk(node.args[1])}
                if names & kinds:
                    found.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not found, f"isinstance on op kinds outside ops/: {found}"


@pytest.mark.parametrize("name", ["resnet", "mixed", "vgg", "maxout"])
def test_the_state_bytes_count_every_value_still_read(name):
    """The plan's bytes per region (its running sum of live values) against a direct count."""
    model, sl, _ = _setup(name)
    _, graph = prepare(model, torch.float64, "cpu", sl.input_shape)
    x = torch.zeros(1, *sl.input_shape, dtype=torch.float64)
    shapes = [tuple(v.shape[1:]) for v in graph.forward(x, values=True)]
    sizes = [math.prod(s) for s in shapes]
    worst = sizes[0]
    for i, node in enumerate(graph.nodes):
        live = sum(sizes[v] for v in range(i + 1) if any(v in later.args for later in graph.nodes[i:]))
        worst = max(worst, 3 * (live + sizes[i + 1]) + 8 * max(sizes[a] for a in node.args))
    assert state_bytes_per_region(graph, shapes, torch.float64) == 8 * worst

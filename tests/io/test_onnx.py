"""ONNX models: built with the ``onnx`` package (as another framework would export them), loaded with
sc.load_onnx, and partitioned exactly like the same weights written in torch."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from torch import nn

import splinecam as sc
from helpers import BOX

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def _model(nodes, weights: dict, in_shape, out_dim, path=None):
    graph = helper.make_graph(
        nodes, "net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", out_dim])],
        [numpy_helper.from_array(_stored(w), name) for name, w in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    if path is not None:
        onnx.save(model, str(path))
    return model


def _stored(w) -> np.ndarray:
    """int64 for integer arrays (shapes, axes), float32 for weights."""
    w = np.asarray(w)
    return w.astype(np.int64) if w.dtype.kind in "iu" else w.astype(np.float32)


def _same_partition(a: sc.Partition, b: sc.Partition):
    assert len(a) == len(b)
    for p, q in zip(a.polygons, b.polygons):
        np.testing.assert_allclose(p, q, rtol=0, atol=1e-10)  # float32 attributes (BatchNorm's eps) round
    np.testing.assert_allclose(a.affine, b.affine, rtol=1e-10, atol=1e-10)
    assert np.array_equal(a.codes, b.codes)


def _weights(gen, *shapes):
    return [torch.randn(*s, generator=gen) for s in shapes]


def test_mlp_from_onnx_file_matches_torch(tmp_path):
    gen = torch.Generator().manual_seed(0)
    w1, b1, w2, b2, w3, b3 = _weights(gen, (12, 2), (12,), (12, 12), (12,), (3, 12), (3,))
    torch_model = nn.Sequential(nn.Linear(2, 12), nn.ReLU(), nn.Linear(12, 12), nn.LeakyReLU(0.25), nn.Linear(12, 3))
    with torch.no_grad():
        for layer, w, b in zip(torch_model[::2], (w1, w2, w3), (b1, b2, b3)):
            layer.weight.copy_(w)
            layer.bias.copy_(b)
    nodes = [  # Gemm with transB (as torch exports), MatMul + Add (as Keras and JAX export)
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h1"], transB=1),
        helper.make_node("Relu", ["h1"], ["a1"]),
        helper.make_node("MatMul", ["a1", "w2t"], ["m2"]),
        helper.make_node("Add", ["m2", "b2"], ["h2"]),
        helper.make_node("LeakyRelu", ["h2"], ["a2"], alpha=0.25),  # a float32 in the file: 0.25 is exact
        helper.make_node("Gemm", ["a2", "w3", "b3"], ["y"], transB=1),
    ]
    weights = {"w1": w1, "b1": b1, "w2t": w2.T, "b2": b2, "w3": w3, "b3": b3}
    _model(nodes, {k: v.numpy() for k, v in weights.items()}, [2], 3, path=tmp_path / "mlp.onnx")
    loaded = sc.load_onnx(tmp_path / "mlp.onnx")
    assert loaded.input_shape == (2,)
    x = torch.randn(50, 2, generator=gen)
    torch.testing.assert_close(loaded(x), torch_model(x), rtol=1e-5, atol=1e-5)
    a = sc.partition(loaded, BOX, progress=False)
    b = sc.partition(torch_model, BOX, progress=False)
    _same_partition(a, b)
    assert a.verify(n_points=500).ok
    db_a, db_b = a.decision_boundary(), b.decision_boundary()
    np.testing.assert_allclose(db_a.segments, db_b.segments, atol=1e-12)


def test_cnn_from_onnx_matches_torch():
    gen = torch.Generator().manual_seed(1)
    torch_model = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(3, 2, 2, stride=1), nn.Flatten(), nn.Linear(2, 2),
    ).eval()
    with torch.no_grad():
        for p in torch_model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
        bn = torch_model[1]
        bn.running_mean.copy_(torch.randn(3, generator=gen) * 0.2)
        bn.running_var.copy_(torch.rand(3, generator=gen) + 0.5)
    c1, bn, c2, lin = torch_model[0], torch_model[1], torch_model[4], torch_model[6]
    nodes = [
        helper.make_node("Conv", ["x", "c1w", "c1b"], ["h1"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("BatchNormalization", ["h1", "g", "beta", "mean", "var"], ["h2"], epsilon=bn.eps),
        helper.make_node("Relu", ["h2"], ["h3"]),
        helper.make_node("MaxPool", ["h3"], ["h4"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["h4", "c2w", "c2b"], ["h5"]),
        helper.make_node("Reshape", ["h5", "shape"], ["h6"]),
        helper.make_node("Gemm", ["h6", "lw", "lb"], ["y"], transB=1),
    ]
    weights = {"c1w": c1.weight, "c1b": c1.bias, "g": bn.weight, "beta": bn.bias, "mean": bn.running_mean,
               "var": bn.running_var, "c2w": c2.weight, "c2b": c2.bias, "lw": lin.weight, "lb": lin.bias}
    weights = {k: v.detach().numpy() for k, v in weights.items()}
    weights["shape"] = np.array([-1, 2])
    loaded = sc.load_onnx(_model(nodes, weights, [1, 4, 4], 2))
    sl = sc.Slice.from_points(*torch.randn(3, 1, 4, 4, generator=gen), margin=0.5)
    a = sc.partition(loaded, sl, progress=False)
    b = sc.partition(torch_model, sl, progress=False)
    _same_partition(a, b)
    assert len(a) > 10 and a.verify(n_points=300).ok


def _chain(ops, out_dim=2):
    """x (N, 2) -> Gemm(2 -> 2) -> ops... -> y; each op given as (type, extra inputs, attributes)."""
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["h0"], transB=1)]
    for i, (op, extra, attrs) in enumerate(ops):
        out = "y" if i == len(ops) - 1 else f"h{i + 1}"
        nodes.append(helper.make_node(op, [f"h{i}", *extra], [out], **attrs))
    weights = {"w": np.array([[1.0, 2.0], [-1.0, 0.5]]), "b": np.array([0.1, -0.2]), "c": np.array([0.3, 0.7])}
    return _model(nodes, weights, [2], out_dim)


def test_unsupported_ops_named_at_once():
    model = _chain([("Mul", ["h0"], {}), ("Tanh", [], {}), ("Relu", [], {}), ("Softmax", [], {"axis": 1})])
    with pytest.raises(sc.UnsupportedModelError) as err:
        sc.load_onnx(model)
    msg = str(err.value)
    assert "(Tanh): smooth, not piecewise-linear" in msg and "(Mul): a product" in msg
    assert "(Softmax)" in msg and "logits=True" in msg and "Relu" not in msg


def test_final_softmax_dropped_with_logits():
    model = _chain([("Relu", [], {}), ("Add", ["c"], {}), ("Softmax", [], {"axis": 1})])
    with pytest.raises(sc.UnsupportedModelError, match="logits=True"):
        sc.load_onnx(model)
    loaded = sc.load_onnx(model, logits=True)
    x = torch.randn(20, 2)
    h = torch.relu(x @ torch.tensor([[1.0, 2.0], [-1.0, 0.5]]).T + torch.tensor([0.1, -0.2]))
    torch.testing.assert_close(loaded(x), h + torch.tensor([0.3, 0.7]))
    assert sc.partition(loaded, BOX, progress=False).verify(n_points=200).ok


def test_bad_files(tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"\x00\x01not a protobuf at all" * 10)
    with pytest.raises(ValueError, match="not a readable ONNX model|not an ONNX model"):
        sc.load_onnx(tmp_path / "junk.onnx")
    with pytest.raises(FileNotFoundError):
        sc.load_onnx(tmp_path / "none.onnx")


def test_missing_onnx_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install 'splinecam\[onnx\]'"):
        sc.load_onnx("model.onnx")


def test_more_ops_match_their_torch_meaning():
    """Conv1d, PRelu, AveragePool, Clip, Abs, Max, Sub/Div by constants, Transpose, Unsqueeze/Squeeze,
    Concat, GlobalAveragePool: the loaded module computes what the ONNX ops mean, and partitions exactly."""
    gen = torch.Generator().manual_seed(3)
    cw, cb = torch.randn(2, 1, 3, generator=gen), torch.randn(2, generator=gen)
    slope = torch.tensor([0.125, 0.5])
    lw = torch.randn(8, 2, generator=gen)
    nodes = [
        helper.make_node("Conv", ["x", "cw", "cb"], ["c"], pads=[1, 1], kernel_shape=[3]),
        helper.make_node("PRelu", ["c", "slope"], ["p"]),
        helper.make_node("AveragePool", ["p"], ["a"], kernel_shape=[2], strides=[2]),
        helper.make_node("Clip", ["a", "lo", "hi"], ["k"]),
        helper.make_node("Sub", ["one", "k"], ["s"]),
        helper.make_node("Div", ["s", "two"], ["d"]),
        helper.make_node("Abs", ["d"], ["ab"]),
        helper.make_node("Max", ["ab", "k"], ["m"]),
        helper.make_node("Transpose", ["m"], ["t"], perm=[0, 2, 1]),
        helper.make_node("Unsqueeze", ["t", "ax"], ["u"]),
        helper.make_node("Squeeze", ["u", "ax"], ["q"]),
        helper.make_node("Concat", ["q", "q"], ["cc"], axis=1),
        helper.make_node("GlobalAveragePool", ["cc"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("MatMul", ["f", "lw"], ["y"]),
    ]
    weights = {"cw": cw.numpy(), "cb": cb.numpy(), "slope": slope.numpy().reshape(2, 1), "lo": np.float32(-1.0),
               "hi": np.float32(2.0), "one": np.float32(1.0), "two": np.float32(2.0), "lw": lw.numpy(),
               "ax": np.array([3])}
    loaded = sc.load_onnx(_model(nodes, weights, [1, 8], 2))

    def reference(x):
        c = torch.nn.functional.conv1d(x, cw, cb, padding=1)
        p = torch.where(c > 0, c, c * slope[:, None])
        k = torch.nn.functional.avg_pool1d(p, 2).clamp(-1, 2)
        m = torch.maximum(((1 - k) / 2).abs(), k).permute(0, 2, 1)
        cc = torch.cat([m, m], 1)
        return cc.mean(-1) @ lw

    x = torch.randn(30, 1, 8, generator=gen)
    torch.testing.assert_close(loaded(x), reference(x), rtol=1e-5, atol=1e-5)
    sl = sc.Slice.from_points(*torch.randn(3, 1, 8, generator=gen), margin=0.5)
    part = sc.partition(loaded, sl, progress=False)
    assert len(part) > 5 and part.verify(n_points=300).ok


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.skip = nn.Conv2d(1, 2, 1)
        self.head = nn.Sequential(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 6), nn.LeakyReLU(0.125), nn.Linear(6, 3))

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)) + self.skip(x))


def test_torch_exporter_round_trip(tmp_path):
    """What a real exporter writes (torch's TorchScript-based one: Conv, Relu, Add, MaxPool, Flatten,
    Gemm, LeakyRelu) partitions exactly like the original module."""
    import warnings

    torch.manual_seed(4)
    model = _Residual().eval()
    path = tmp_path / "residual.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(model, torch.zeros(1, 1, 4, 4), str(path), dynamo=False, input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}})
        except Exception as err:  # noqa: BLE001 - an exporter this torch lacks
            pytest.skip(f"torch.onnx.export is not usable here: {err}")
    assert {n.op_type for n in onnx.load(str(path)).graph.node} >= {"Conv", "Add", "MaxPool", "Gemm", "LeakyRelu"}
    loaded = sc.load_onnx(path)
    sl = sc.Slice.from_points(*torch.randn(3, 1, 4, 4), margin=0.3)
    _same_partition(sc.partition(loaded, sl, progress=False), sc.partition(model, sl, progress=False))

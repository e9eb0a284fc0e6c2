"""Partition a model that is not PyTorch code: an ONNX file, as Keras, JAX or any framework exports it.

Writes ``classifier.onnx`` the way a Keras ``Dense`` stack exports (MatMul + Add + Relu, and a
final Softmax), using only the ``onnx`` package, then loads it with ``sc.load_onnx`` (the
Softmax is dropped with ``logits=True``: the decision boundary does not change) and draws the
exact regions with a class legend.  Needs ``pip install 'splinecam[onnx]'``.

    python examples/onnx_example.py [--out onnx-example]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import splinecam as sc  # noqa: E402


def write_classifier(path: Path, seed: int = 7) -> Path:
    """A 2-16-16-3 ReLU classifier with a softmax head, as an ONNX file (random weights)."""
    rng = np.random.default_rng(seed)
    sizes = [2, 16, 16, 3]
    weights, nodes, h = {}, [], "x"
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        weights[f"kernel{i}"] = rng.standard_normal((a, b)).astype(np.float32)  # Keras stores (in, out)
        weights[f"bias{i}"] = (0.3 * rng.standard_normal(b)).astype(np.float32)
        nodes += [helper.make_node("MatMul", [h, f"kernel{i}"], [f"m{i}"]),
                  helper.make_node("Add", [f"m{i}", f"bias{i}"], [f"z{i}"])]
        h = f"z{i}"
        if i < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [h], [f"a{i}"]))
            h = f"a{i}"
    nodes.append(helper.make_node("Softmax", [h], ["probabilities"], axis=-1))
    graph = helper.make_graph(
        nodes, "keras_like_classifier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(w, name) for name, w in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="onnx-example", help="output folder (default: onnx-example)")
    out = Path(parser.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    path = write_classifier(out / "classifier.onnx")
    model = sc.load_onnx(path, logits=True)
    part = sc.partition(model, sc.Slice.box((-3, -3), (3, 3)))
    print(part, part.verify())
    fig, ax = plt.subplots(figsize=(6, 6))
    part.plot(ax=ax, color_by="class", class_names=["cat", "dog", "bird"])
    ax.set_title(f"{path.name}: {len(part):,} exact regions", fontsize=10)
    fig.savefig(out / "onnx_partition.png", dpi=120)
    print(f"wrote {path} and {out / 'onnx_partition.png'}")


if __name__ == "__main__":
    main()

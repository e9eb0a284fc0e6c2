"""Regenerate docs/gallery.md and its figures (docs/gallery/*.png): each figure is made by the
code shown above it on the page, run here as it is shown.

Usage: python docs/make_gallery.py [--only NAME ...]   (the digits CNN needs scikit-learn and takes
a few minutes: about 200,000 regions)
"""

from __future__ import annotations

import argparse
import textwrap
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

DOCS = Path(__file__).parent
OUT = DOCS / "gallery"

SETUP = '''
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn
import splinecam as sc
from splinecam.apps.datasets import two_moons

def fit(model, X, y, steps=800, loss=nn.functional.cross_entropy):
    """Full-batch Adam on (X, y); returns the model in eval mode."""
    torch.manual_seed(0)
    X, y = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _ in range(steps):
        opt.zero_grad(); loss(model(X), y).backward(); opt.step()
    return model.eval()

def mlp(*widths):
    layers = [m for a, b in zip(widths[:-2], widths[1:-1]) for m in (nn.Linear(a, b), nn.ReLU())]
    torch.manual_seed(0)
    return nn.Sequential(*layers, nn.Linear(widths[-2], widths[-1]))

rng = np.random.default_rng(0)
centres = np.array([[0.0, 1.0], [-1.0, -0.6], [1.0, -0.6], [0.0, -0.1]])
X4 = np.concatenate([c + 0.45 * rng.standard_normal((100, 2)) for c in centres])
y4 = np.repeat(np.arange(4), 100)
'''

FIGURES = [
    ("classes", "Classes, exactly",
     "Each linear region is cut along the decision boundary into the cells where each class wins "
     "(`part.class_cells()`), so no colour crosses the boundary.  Classes come from a palette of 24 "
     "distinct colours with no grey; the legend names the classes present, the boundary and the data.",
     '''
model = fit(mlp(2, 32, 32, 4), X4, y4)
part = sc.partition(model, sc.Slice.box((-2.2, -2), (2.2, 2.4)))
fig, ax = plt.subplots(figsize=(6, 5))
part.plot(ax=ax, color_by="class", points=X4[::4], labels=y4[::4],
          class_names=["north", "west", "east", "centre"])
'''),
    ("sign", "A level set of a regression",
     "`color_by=\"sign\"` fills the exact cells of `f >= t` and `f < t` (each region cut along its own "
     "line `f = t`) and draws the level set.",
     '''
Xr = rng.uniform(-2, 2, (500, 2))
yr = np.sin(2 * Xr[:, 0]) * np.cos(Xr[:, 1])
model = fit(mlp(2, 32, 32, 1), Xr, torch.tensor(yr, dtype=torch.float32)[:, None],
            loss=nn.functional.mse_loss)
part = sc.partition(model, sc.Slice.box((-2, -2), (2, 2)))
fig, ax = plt.subplots(figsize=(6, 5))
part.plot(ax=ax, color_by="sign", level=0.3)
'''),
    ("layers", "Which layer made each edge",
     "`color_by=\"layer\"` colours every edge by the layer whose unit carries it; the legend names the "
     "modules.  `edge_layers=[...]` (indices or names of `part.layers`) draws only those layers' edges.",
     '''
X, y = two_moons(300, noise=0.1)
model = fit(mlp(2, 16, 16, 16, 2), X, y)
part = sc.partition(model, sc.Slice.box((-1.5, -1.2), (2.5, 1.7)))
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
part.plot(ax=axes[0], color_by="layer", legend=False)
part.plot(ax=axes[1], color_by="layer", edge_layers=[2], legend=False)  # only the last layer's edges
fig.legend(handles=sc.plot.layer_handles(part), loc="outside lower center", ncol=3)
'''),
    ("code", "Regions across checkpoints",
     "`color_by=\"code\"` colours each region from a hash of its activation code: a region keeps its "
     "colour from one checkpoint to the next for as long as its pattern lives.",
     '''
X, y = two_moons(300, noise=0.1)
sl = sc.Slice.box((-1.5, -1.2), (2.5, 1.7))
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
for ax, steps in zip(axes, (300, 320)):
    part = sc.partition(fit(mlp(2, 12, 12, 2), X, y, steps=steps), sl)
    part.plot(ax=ax, color_by="code", boundary=True)
    ax.set_title(f"after {steps} steps: {len(part)} regions")
'''),
    ("digits", "A CNN on digits, 150,000 regions, with the anchor images",
     "A small CNN trained for a few seconds on scikit-learn's 8x8 digits, on the plane through a 0, "
     "a 1 and a 7 (`anchor_images=True` draws them beside their points).  Edges fade with the size "
     "of their region on the page, so a dense partition stays readable and the boundary stays on top.",
     '''
from sklearn.datasets import load_digits

digits = load_digits()
x = torch.tensor(digits.images / 16.0, dtype=torch.float32)[:, None]
y = torch.tensor(digits.target)
torch.manual_seed(0)
cnn = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
opt = torch.optim.Adam(cnn.parameters(), lr=3e-3)
for epoch in range(15):
    for i in range(0, len(x), 64):
        opt.zero_grad(); nn.functional.cross_entropy(cnn(x[i:i + 64]), y[i:i + 64]).backward(); opt.step()
cnn.eval()
anchors = [x[int(np.flatnonzero(digits.target == k)[0])] for k in (0, 1, 7)]
part = sc.partition(cnn, sc.Slice.from_points(*anchors, margin=0.45))
fig, ax = plt.subplots(figsize=(8, 6.5))
part.plot(ax=ax, color_by="class", anchor_images=True, anchor_labels=["a 0", "a 1", "a 7"],
          class_names=[str(k) for k in range(10)])
ax.set_title(f"{len(part):,} regions")
'''),
    ("partial", "A partial result",
     "A run stopped by a limit (here `max_regions`; small chunks finish regions early) hands back "
     "the regions it finished; the area it did not reach is hatched.",
     '''
model = fit(mlp(2, 32, 32, 4), X4, y4)
try:
    sc.partition(model, sc.Slice.box((-2.2, -2), (2.2, 2.4)), max_regions=900, chunk_size=64)
except sc.RegionLimitError as err:
    part = err.partial
fig, ax = plt.subplots(figsize=(6, 5))
part.plot(ax=ax, color_by="class")
'''),
    ("volume", "A trained SDF in 3-D: its cells and its exact surface",
     "A small ReLU SDF of a sphere, fitted for a few seconds.  Left: its exact cells, shown where they "
     "meet the faces of the box seen from this view (`part.plot()`; `interior=True` adds every edge "
     "inside).  Right: the zero level set as a triangle mesh, exact in every cell "
     "(`part.level_set_mesh()`).",
     '''
torch.manual_seed(0)
pts = torch.rand(4000, 3) * 2 - 1
sdf = fit(mlp(3, 32, 32, 1), pts, pts.norm(dim=1, keepdim=True) - 0.6, steps=300, loss=nn.functional.mse_loss)
part = sc.partition(sdf, sc.Volume.box((-1, -1, -1), (1, 1, 1)))
mesh = part.level_set_mesh()
fig = plt.figure(figsize=(10, 5), layout="constrained")
part.plot(ax=fig.add_subplot(1, 2, 1, projection="3d")).set_title(f"{len(part):,} cells")
mesh.plot(ax=fig.add_subplot(1, 2, 2, projection="3d")).set_title(f"f = 0: {len(mesh.triangles):,} triangles")
'''),
    ("coarse", "Boundary first",
     "`sc.decision_boundary(model, slice)` refines only the cells the boundary can cross; the cells "
     "a bound proved free of it stay coarse (grey, hatched).",
     '''
model = fit(mlp(2, 32, 32, 4), X4, y4)
db = sc.decision_boundary(model, sc.Slice.box((-2.2, -2), (2.2, 2.4)))
fig, ax = plt.subplots(figsize=(6, 5))
db.partition.plot(ax=ax, color_by="class")
'''),
]

HEAD = """# Gallery

The figures splinecam draws, each with the code that makes it (run by
`python docs/make_gallery.py`, which regenerates this page and its pictures).  All of them use
this set-up:

```python
{setup}
```
"""

VIEWER = """
## The interactive viewer

`part.to_html("part.html", color_by="class", points=X, labels=y, class_names=[...])` writes one
self-contained page: the exact class cells, a key of the classes, each layer's edges in its own
colour, the decision boundary on top, the data points and the anchors (made by
`docs/make_viewer_png.py`; see [the viewer](viewer.md)).

![the viewer](viewer.png)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="names of the figures to redraw (the page is always written)")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    setup = textwrap.dedent(SETUP).strip()
    env: dict = {}
    exec(setup, env)  # our own code, shown on the page
    page = [HEAD.format(setup=setup)]
    for name, title, text, code in FIGURES:
        code = textwrap.dedent(code).strip()
        page.append(f"\n## {title}\n\n{text}\n\n```python\n{code}\n```\n\n![{title}](gallery/{name}.png)\n")
        if args.only and name not in args.only:
            continue
        start = time.perf_counter()
        scope = dict(env)
        exec(code, scope)
        fig = scope["fig"]
        fig.savefig(OUT / f"{name}.png", dpi=110 if name != "digits" else 130, bbox_inches="tight")
        plt.close(fig)
        print(f"{name}.png ({time.perf_counter() - start:.1f} s)", flush=True)
    page.append(VIEWER)
    (DOCS / "gallery.md").write_text("".join(page))
    print("wrote", DOCS / "gallery.md")


if __name__ == "__main__":
    main()

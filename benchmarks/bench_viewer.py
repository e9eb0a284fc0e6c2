"""Benchmark the HTML viewer on a large partition: write time, file size, and (with Chromium) page times.

Usage: python benchmarks/bench_viewer.py [--half-width 2.8] [--outputs 1] [--out DIR] [--browser]

The partition is a random 2 -> 256x3 ReLU -> K net (seed 0, outputs shifted to
tie at the origin, K = --outputs) on the square [-w, w]^2; w = 2.8 gives 195,752
regions.  The file holds per region its vertices (20 bytes each), K affine maps (24 bytes
each), a colour index per colouring and the class cells of the regions the boundary cuts,
in base64 (x 4/3): the bytes per region grow with K.  --browser also loads the page in headless Chromium (selenium) and
reports the time to the first complete picture, one full re-render, and one
interactive frame (the last picture moved and scaled, with the overlays).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import splinecam as sc
from splinecam.viz.viewer import encode


def build(half_width: float, outputs: int = 1) -> sc.Partition:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                          nn.Linear(256, outputs))
    with torch.no_grad():
        model[-1].bias -= model(torch.zeros(1, 2))[0]
    return sc.partition(model, sc.Slice.box((-half_width, -half_width), (half_width, half_width)), progress=False)


def browser_times(path: Path) -> dict:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tempfile.mkdtemp()}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 1200, "height": 800, "deviceScaleFactor": 1, "mobile": False})
        start = time.perf_counter()
        driver.get(path.as_uri())
        driver.set_script_timeout(300)
        driver.execute_async_script(
            "const done = arguments[0]; (function wait() { window.splinecamView && window.splinecamView.settled() ? done() : setTimeout(wait, 10); })();")
        first = time.perf_counter() - start
        return {"first picture (load + decode + render)": first, **driver.execute_async_script("""
            const done = arguments[0], sv = window.splinecamView, v = sv.view();
            const t0 = performance.now();
            sv.setView(v.cu + 1 / v.s, v.cv, v.s);            // a new view, rendered progressively
            (function wait() {
              if (!sv.settled()) return setTimeout(wait, 0);
              const full = performance.now() - t0;
              const frames = [];                            // interactive frames: move the view, draw once
              (function drag(i) {
                if (i === 30) { frames.sort((a, b) => a - b); return done({'full re-render': full / 1e3, 'median interactive frame': frames[15] / 1e3}); }
                const t = performance.now();
                const w = sv.view(); sv.setView(w.cu + 3 / w.s, w.cv, w.s);
                requestAnimationFrame(() => { frames.push(performance.now() - t); drag(i + 1); });
              })(0);
            })();
        """)}
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--half-width", type=float, default=2.8)
    parser.add_argument("--outputs", type=int, default=1, help="K, the network's outputs (classes)")
    parser.add_argument("--out", default=tempfile.mkdtemp(), help="folder for the HTML file")
    parser.add_argument("--browser", action="store_true", help="also time the page in headless Chromium")
    args = parser.parse_args()
    start = time.perf_counter()
    part = build(args.half_width, args.outputs)
    print(f"partition: {len(part):,} regions, {part.n_outputs} outputs, {len(part.arrays.vertices):,} vertices ({time.perf_counter() - start:.1f} s)")
    start = time.perf_counter()
    db = part.decision_boundary()
    t_boundary = time.perf_counter() - start
    start = time.perf_counter()
    encode(part)
    t_encode = time.perf_counter() - start
    path = Path(args.out) / "viewer_bench.html"
    start = time.perf_counter()
    part.to_html(path)
    t_write = time.perf_counter() - start
    size = path.stat().st_size
    print(f"boundary: {len(db):,} segments ({t_boundary:.2f} s)")
    print(f"to_html: {t_write:.2f} s in all (encode incl. boundary and colours: {t_encode:.2f} s)")
    print(f"file: {size / 1e6:.1f} MB = {size / len(part):.0f} bytes per region  ({path})")
    if args.browser:
        for name, seconds in browser_times(path).items():
            print(f"chromium {name}: {seconds * 1e3:.0f} ms")


if __name__ == "__main__":
    main()

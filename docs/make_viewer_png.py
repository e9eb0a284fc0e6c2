"""Regenerate docs/viewer.png: a trained 2-64x3-3 ReLU net on three spirals (every 12th training
point drawn), in the viewer, coloured by the exact class cells.

Usage: python docs/make_viewer_png.py   (needs chromium, chromium-driver and selenium)
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import splinecam as sc


def spirals(n=300, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.uniform(0.25, 1, (3, n))
    angle = 3.2 * t + np.arange(3)[:, None] * 2 * np.pi / 3
    x = np.stack([t * np.cos(angle), t * np.sin(angle)], -1).reshape(-1, 2) + rng.normal(0, 0.04, (3 * n, 2))
    return torch.tensor(x, dtype=torch.float32), torch.arange(3).repeat_interleave(n)


def train():
    torch.manual_seed(0)
    x, y = spirals()
    model = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                          nn.Linear(64, 3))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(1500):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval(), x, y


def main():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    model, x, y = train()
    box = sc.Slice.box((-1.25, -1.25), (1.25, 1.25))  # the input plane, with one training point per class marked
    sl = sc.Slice(box.origin, box.basis, box.polygon, anchors_uv=x[[50, 350, 650]].numpy())
    part = sc.partition(model, sl, progress=False)
    print(part)
    path = part.to_html(Path(tempfile.mkdtemp()) / "viewer.html", color_by="class", title="Three spirals, 2-64x3-3 ReLU",
                        points=x[::12].numpy(), labels=y[::12].numpy(), class_names=["arm A", "arm B", "arm C"])
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
                 f"--user-data-dir={tempfile.mkdtemp()}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 1100, "height": 800, "deviceScaleFactor": 1.5, "mobile": False})
        driver.get(path.as_uri())
        sv = "window.splinecamView"
        while not driver.execute_script(f"return {sv}.settled()"):
            time.sleep(0.05)
        pin, hover = part.locate([[0.42, -0.18], [-0.35, 0.55]])  # pin a region, hover another
        for target, click in ((part.centroids[pin], True), (part.centroids[hover], False)):
            xy = driver.execute_script(f"return {sv}.toScreen(arguments[0], arguments[1])", *target)
            act = ActionBuilder(driver)
            act.pointer_action.move_to_location(int(xy[0]), int(xy[1]))
            if click:
                act.pointer_action.click()
            act.perform()
        while not driver.execute_script(f"return {sv}.settled()"):
            time.sleep(0.05)
        out = Path(__file__).with_name("viewer.png")
        out.write_bytes(driver.get_screenshot_as_png())
        print("wrote", out)
    finally:
        driver.quit()


if __name__ == "__main__":
    main()

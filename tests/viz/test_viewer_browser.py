"""Acceptance tests of the HTML viewer in a real headless Chromium (driven by selenium).

Needs Debian's ``chromium`` and ``chromium-driver`` and ``pip install selenium``;
skipped with a reason when any is missing.
"""

from __future__ import annotations

import base64
import io
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib import image as mpimg

import splinecam as sc
from splinecam.viz.viewer import read_data

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WIDTH, HEIGHT = 1000, 700

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip("chromium / chromedriver not installed (apt-get install chromium chromium-driver)", allow_module_level=True)

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.actions.action_builder import ActionBuilder  # noqa: E402
from selenium.webdriver.common.actions.wheel_input import ScrollOrigin  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp_path_factory.mktemp('profile')}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})
    yield driver
    driver.quit()


def _mlp(k: int, seed: int, tie_at) -> torch.nn.Module:
    """A random 2-24-24-k ReLU net whose outputs all equal 0 at ``tie_at`` (so a decision boundary crosses the slice)."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(2, 24), torch.nn.ReLU(), torch.nn.Linear(24, 24), torch.nn.ReLU(),
                                torch.nn.Linear(24, k))
    with torch.no_grad():
        model[-1].bias -= model(torch.as_tensor(tie_at, dtype=torch.float32)[None])[0]
    return model


@pytest.fixture(scope="module", params=[1, 3], ids=["K=1", "K=3"])
def page(request, browser, tmp_path_factory):
    """(driver, partition, html path) with the page loaded and rendered."""
    k = request.param
    sl = sc.Slice.from_points(np.array([0.3, -0.2]), np.array([1.1, 0.4]), np.array([-0.2, 0.9]))
    part = sc.partition(_mlp(k, seed=k, tie_at=[0.4, 0.3]), sl, progress=False)
    path = part.to_html(tmp_path_factory.mktemp("html") / f"view{k}.html", title=f"K={k}")
    browser.get_log("performance")  # drop earlier entries
    browser.get(path.as_uri())
    _settle(browser)
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    return browser, part, path


def _settle(driver, timeout=20.0):
    end = time.time() + timeout
    while not driver.execute_script("return !!(window.splinecamView && window.splinecamView.settled())"):
        assert time.time() < end, "the viewer did not finish rendering"
        time.sleep(0.02)


def _move(driver, x, y):
    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(int(round(x)), int(round(y)))
    actions.perform()


def _screen(driver, u, v):
    return driver.execute_script("return window.splinecamView.toScreen(arguments[0], arguments[1])", u, v)


def _field(driver, box, name):
    return driver.find_element(By.CSS_SELECTOR, f"#{box} dd[data-field='{name}']").text


def _pixel(driver, x, y):
    """RGB of the main canvas at client pixel (x, y)."""
    return driver.execute_script(
        "const c = document.getElementById('view'); const d = window.devicePixelRatio;"
        "return Array.from(c.getContext('2d').getImageData(Math.round(arguments[0] * d), Math.round(arguments[1] * d), 1, 1).data).slice(0, 3);",
        x, y)


def _screenshot(driver) -> np.ndarray:
    return mpimg.imread(io.BytesIO(driver.get_screenshot_as_png()), format="png")


def _close(shown: str, expected: float):
    """The text shown equals ``expected`` to the digits it shows."""
    value = float(shown)
    mantissa = shown.lower().split("e")[0].lstrip("-")
    digits = len(mantissa.replace(".", "").lstrip("0")) or 1
    assert abs(value - expected) <= 0.51 * 10 ** (math.floor(math.log10(abs(expected) or 1)) - digits + 1) + 1e-300


def test_renders_something(page):
    driver, part, _ = page
    img = _screenshot(driver)
    assert img.shape[0] >= HEIGHT * 0.9
    colors = np.unique((img[..., :3] * 255).astype(int).reshape(-1, 3), axis=0)
    assert len(colors) > 50  # many region colours, not a blank page
    inside = _screen(driver, *part.centroids[np.argmax(part.areas)])
    assert _pixel(driver, *inside) != _pixel(driver, 3, HEIGHT // 2)  # regions differ from the background


def test_hover_shows_region_and_output(page):
    driver, part, _ = page
    for r in np.argsort(part.areas)[::-1][:3]:  # the largest regions: the cursor lands well inside
        _move(driver, *_screen(driver, *part.centroids[r]))
        hover = driver.execute_script("return window.splinecamView.hover()")
        uv = np.array([[hover["u"], hover["v"]]])
        assert hover["region"] == r == part.locate(uv)[0]
        assert _field(driver, "hover-box", "region") == str(r)
        assert _field(driver, "hover-box", "vertices") == str(part.vertex_counts[r])
        _close(_field(driver, "hover-box", "area"), part.areas[r])
        out = part.evaluate(uv)[0]
        if part.n_outputs == 1:
            _close(_field(driver, "hover-box", "output"), out[0])
            _close(_field(driver, "hover-box", "slope"), np.linalg.norm(part.affine[r, 0, :2]))
        else:
            top = np.argsort(out)
            assert _field(driver, "hover-box", "class") == str(top[-1])
            _close(_field(driver, "hover-box", "margin"), out[top[-1]] - out[top[-2]])
            _close(_field(driver, "hover-box", "output"), out[top[-1]])


def test_click_pins_region(page):
    driver, part, _ = page
    r = int(np.argsort(part.areas)[-2])
    x, y = _screen(driver, *part.centroids[r])
    before = _pixel(driver, x, y)
    _move(driver, x, y)
    ActionChains(driver).click().perform()
    pinned = driver.execute_script("return window.splinecamView.pinned()")
    assert pinned["region"] == r
    assert _field(driver, "pinned-box", "region") == str(r)
    _move(driver, 5, HEIGHT - 5)  # away from the region: the pinned highlight stays
    assert _pixel(driver, x, y) != before
    _move(driver, x, y)
    ActionChains(driver).click().perform()  # a second click unpins
    assert driver.execute_script("return window.splinecamView.pinned()") is None


def test_wheel_zooms_about_cursor_and_drag_pans(page):
    driver, part, _ = page
    target = part.centroids[np.argmax(part.areas)]
    x, y = (int(round(c)) for c in _screen(driver, *target))
    uv_before = driver.execute_script("return window.splinecamView.toUV(arguments[0], arguments[1])", x, y)
    s0 = driver.execute_script("return window.splinecamView.view().s")
    img0 = _screenshot(driver)
    ActionChains(driver).scroll_from_origin(ScrollOrigin.from_viewport(x, y), 0, -400).perform()
    _settle(driver)
    s1 = driver.execute_script("return window.splinecamView.view().s")
    assert s1 > 1.5 * s0
    uv_after = driver.execute_script("return window.splinecamView.toUV(arguments[0], arguments[1])", x, y)
    assert np.allclose(uv_before, uv_after, atol=1e-9)  # the point under the cursor stays put
    assert np.abs(_screenshot(driver) - img0).mean() > 0.01
    _move(driver, x, y)
    ActionChains(driver).click_and_hold().move_by_offset(-120, 60).release().perform()
    _settle(driver)
    moved = driver.execute_script("return window.splinecamView.toUV(arguments[0], arguments[1])", x - 120, y + 60)
    assert np.allclose(moved, uv_after, atol=2 / s1)
    ActionChains(driver).double_click().perform()  # reset
    _settle(driver)
    assert driver.execute_script("return window.splinecamView.view().s") == pytest.approx(s0)


def test_deep_zoom_draws_exact_geometry(page):
    """Zoomed 1e7 times next to a vertex, each incident region's colour is drawn where it lies
    (a float32 pipeline would be off by tens of pixels here)."""
    driver, part, path = page
    v = part.arrays.vertices
    owners = np.repeat(np.arange(len(part)), part.vertex_counts)
    _, group, n = np.unique(np.round(v / 1e-9).astype(np.int64), axis=0, return_inverse=True, return_counts=True)
    group = group.ravel()
    i = np.flatnonzero(n[group] >= 3)[0]
    vertex, incident = v[i], np.unique(owners[group == group[i]])
    s = driver.execute_script("return window.splinecamView.view().fitScale") * 1e7
    centre = vertex + np.array([37.3, -21.7]) / s
    driver.execute_script("window.splinecamView.setView(arguments[0], arguments[1], arguments[2])", *centre, s)
    _settle(driver)
    view = np.array([driver.execute_script(f"return window.splinecamView.view().{c}") for c in ("cu", "cv", "s")])
    assert view[2] == s
    _move(driver, 5, 5)  # no hover outline near the vertex
    meta, arrays = read_data(path)
    palette, colors = meta["palettes"]["random"], arrays["color_random"]
    checked = 0
    for r in incident:
        d = part.centroids[r] - vertex
        point = vertex + 80 / s * d / np.linalg.norm(d)
        if _edge_distance(part.polygons[r], point) * s < 6:  # too close to an edge to test a pixel
            continue
        x, y = (point - view[:2]) * [s, -s] + [WIDTH / 2, HEIGHT / 2]  # float64 here, not the page's own mapping
        assert part.locate(point[None])[0] == r
        assert np.abs(np.array(_pixel(driver, x, y)) - _hex(palette[colors[r]])).max() <= 2
        _move(driver, x, y)
        assert driver.execute_script("return window.splinecamView.hover().region") == r
        checked += 1
    assert checked >= 2
    ActionChains(driver).double_click().perform()
    _settle(driver)


def _hex(h):
    return np.array([int(h[i:i + 2], 16) for i in (1, 3, 5)])


def _edge_distance(poly, p):
    a, b = poly, np.roll(poly, -1, axis=0)
    e = b - a
    t = np.clip(np.einsum("ij,ij->i", p - a, e) / np.einsum("ij,ij->i", e, e), 0, 1)
    return np.min(np.linalg.norm(a + t[:, None] * e - p, axis=1))


def test_controls_change_the_picture(page):
    driver, part, _ = page
    r = int(np.argmax(part.areas))
    x, y = _screen(driver, *part.centroids[r])
    _move(driver, 5, 5)
    before = _pixel(driver, x, y)
    driver.execute_script("const s = document.getElementById('color-by'); s.value = 'slope';"
                          "s.dispatchEvent(new Event('change'));")
    _settle(driver)
    assert _pixel(driver, x, y) != before
    img = _screenshot(driver)
    for box in driver.find_elements(By.CSS_SELECTOR, "#edges input"):
        box.click()
    _settle(driver)
    assert np.abs(_screenshot(driver) - img).mean() > 1e-4  # edges gone
    for box in driver.find_elements(By.CSS_SELECTOR, "#edges input"):
        box.click()
    driver.find_element(By.ID, "color-by").send_keys("random")
    _settle(driver)


def test_boundary_toggle(page):
    driver, part, _ = page
    db = part.decision_boundary()
    assert len(db)
    longest = db.segments[np.argmax(db.lengths)]
    x, y = _screen(driver, *longest.mean(0))
    _move(driver, 5, 5)
    on = _pixel(driver, x, y)
    assert max(on) < 60  # the boundary is drawn in near-black
    driver.find_element(By.ID, "show-boundary").click()
    _settle(driver)
    end = time.time() + 5.0  # the overlay is redrawn on the next animation frame
    while _pixel(driver, x, y) == on and time.time() < end:
        time.sleep(0.02)
    assert _pixel(driver, x, y) != on
    driver.find_element(By.ID, "show-boundary").click()


def test_download_png(page):
    """The button hands the browser a PNG of the canvas (the download itself is intercepted)."""
    driver, _, _ = page
    driver.execute_script(
        "window.__png = null; const make = URL.createObjectURL;"
        "URL.createObjectURL = (blob) => { window.__png = blob; return make(blob); };"
        "HTMLAnchorElement.prototype.click = function () { window.__name = this.download; };")
    driver.find_element(By.ID, "download").click()
    data = driver.execute_async_script(
        "const done = arguments[0]; (function wait() { if (!window.__png) return setTimeout(wait, 10);"
        "const r = new FileReader(); r.onload = () => done(r.result); r.readAsDataURL(window.__png); })();")
    png = base64.b64decode(data.split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(io.BytesIO(png), format="png")
    assert img.shape[:2] == (HEIGHT, WIDTH) and img[..., :3].std() > 0.05
    assert driver.execute_script("return window.__name").endswith(".png")


def test_no_network_requests(page):
    driver, _, path = page
    driver.get_log("performance")
    driver.get(path.as_uri())
    _settle(driver)
    _move(driver, WIDTH // 2, HEIGHT // 2)
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    assert urls == [path.as_uri()]
    assert driver.execute_script("return performance.getEntriesByType('resource').length") == 0


def test_single_region_page(browser, tmp_path):
    """A linear model: one region, no boundary inside, no anchors."""
    model = torch.nn.Sequential(torch.nn.Linear(2, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.5, -2.0]]))
        model[0].bias.fill_(10.0)
    part = sc.partition(model, sc.Slice.box((-1, -1), (1, 1)), progress=False)
    browser.get(part.to_html(tmp_path / "one.html").as_uri())
    _settle(browser)
    _move(browser, *_screen(browser, 0.25, -0.5))
    hover = browser.execute_script("return window.splinecamView.hover()")
    assert hover["region"] == 0
    _close(_field(browser, "hover-box", "output"), 0.5 * hover["u"] - 2.0 * hover["v"] + 10.0)
    _move(browser, *_screen(browser, 1.05, 0.0))  # just outside the slice
    assert browser.execute_script("return window.splinecamView.hover().region") == -1
    assert _field(browser, "hover-box", "region") == "outside the slice"


def test_coarse_cell_page(browser, tmp_path):
    """A boundary-first partition: hovering a coarse cell says what it is, with no output."""
    db = sc.decision_boundary(_mlp(1, seed=1, tie_at=[0.0, 0.0]), sc.Slice.box((-3, -3), (3, 3)), progress=False)
    part = db.partition
    assert not part.exact.all()
    browser.get(part.to_html(tmp_path / "coarse.html").as_uri())
    _settle(browser)
    assert "coarse cells" in browser.find_element(By.ID, "subtitle").text
    r = int(np.flatnonzero(~part.exact)[np.argmax(part.areas[~part.exact])])
    _move(browser, *_screen(browser, *part.centroids[r]))
    assert browser.execute_script("return window.splinecamView.hover().region") == r
    assert "coarse cell" in _field(browser, "hover-box", "region")
    assert not browser.find_elements(By.CSS_SELECTOR, "#hover-box dd[data-field='output']")


def test_class_colouring_is_exact_with_key_and_points(browser, tmp_path):
    """color_by="class": at points more than a few pixels from the boundary (and off the
    panel), the canvas shows the fill of the class the model predicts; the key names the
    classes present; data points are drawn."""
    from helpers import model_out, random_mlp
    from splinecam.viz.plot import class_color

    model = random_mlp([12, 12], 4, seed=0)
    part = sc.partition(model, sc.Slice.box((-2, -2), (2, 2)), progress=False)
    pts = np.array([[1.5, 1.5], [-1.5, -1.5]])
    path = part.to_html(tmp_path / "class.html", color_by="class", points=pts, labels=np.array([0, 1]),
                        class_names=["cat", "dog", "bird", "fish"])
    browser.get(path.as_uri())
    _settle(browser)
    browser.execute_script("document.querySelectorAll('#edges input').forEach((b) => b.click());")  # fills only
    _settle(browser)
    key = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#class-key label")]
    assert key == [["cat", "dog", "bird", "fish"][c] for c in np.unique(part.class_cells().label)]
    uv = np.random.default_rng(0).uniform(-1.95, 1.95, (400, 2))
    xy = np.array([_screen(browser, u, v) for u, v in uv])
    panel = browser.execute_script("const b = document.getElementById('panel').getBoundingClientRect();"
                                   "return [b.right, b.bottom];")
    db = part.decision_boundary()
    a, b = db.segments[:, 0], db.segments[:, 1]
    d = b - a
    t = np.clip(np.einsum("nsk,sk->ns", uv[:, None] - a, d) / (d * d).sum(1), 0, 1)
    dist = np.linalg.norm(uv[:, None] - (a + t[..., None] * d), axis=2).min(1)
    scale = browser.execute_script("return window.splinecamView.view().s")
    far = (dist * scale > 5) & ~((xy[:, 0] < panel[0] + 5) & (xy[:, 1] < panel[1] + 5))
    far &= np.linalg.norm(uv[:, None] - pts[None], axis=2).min(1) * scale > 8
    assert far.sum() > 150
    img = _screenshot(browser)[..., :3]
    shown = img[np.round(xy[far, 1]).astype(int), np.round(xy[far, 0]).astype(int)]
    nearest = np.linalg.norm(shown[:, None] - class_color(np.arange(4), 0.4)[None], axis=2).argmin(1)
    predicted = model_out(model, part.slice, uv[far]).argmax(1)
    assert (nearest == predicted).all(), f"{(nearest != predicted).sum()} of {far.sum()} pixels show another class"
    x, y = _screen(browser, *pts[0])
    assert np.abs(np.array(_pixel(browser, x, y)) / 255 - class_color([0])[0]).max() < 0.05  # the point's colour

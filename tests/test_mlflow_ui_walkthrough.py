"""What a user sees (issue #22, "Done when"): after a CPU sweep (``make sweep``) and a promotion
(``make promote``) into the embedded store, the MLflow UI that ``make mlflow-ui`` serves, walked in
headless Chromium as the README's "Comparing runs" walks it: the experiment shows its runs table,
the trials' names differ (each names its values), the parent run's description names the best
configuration, and the champion version's page shows its GIF.

Chromium and its driver are Debian's (``tests/helpers/browser.py`` installs them when it can; the
test is skipped with the reason when it cannot). The screenshots go to a temporary folder, or to
``$AMP_SCREENSHOTS`` (``AMP_SCREENSHOTS=docs/screenshots`` refreshes the README's).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests.helpers.browser import require_chromium
from tests.helpers.mlflow_server import free_port
from tests.helpers.sweeping import env_for, run_sweep, tiny_spec

pytestmark = pytest.mark.slow  # a sweep, a promotion, a server and a browser: about 3 minutes on 2 cores

NAME, EXPERIMENT, MODEL = "uiwalk", "amp_sweep_uiwalk", "HumanoidAMP-policy"
#: two configurations of the default (MLP) sweep that differ in two dimensions, one seed each
POINTS = [
    {"train.params.config.bounds_loss_coef": 10, "train.params.config.horizon_length": 16, "sigma": "fixed"},
    {"train.params.config.bounds_loss_coef": 1, "train.params.config.horizon_length": 16, "sigma": "learned"},
]
TRIAL_NAMES = {"blc10-h16-fixed-s42", "blc1-h16-learned-s42"}  # sweeps.space.trial_label of each, seed 42
UI_START_S = 120


def _serve(store: Path, env: dict) -> tuple[subprocess.Popen, str]:
    """``python -m tracking ui`` (``make mlflow-ui``) on the store, once it prints its URL."""
    port = free_port()
    p = subprocess.Popen(
        [sys.executable, "-m", "tracking", "ui", "--dir", str(store), "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    deadline, line = time.monotonic() + UI_START_S, ""
    while "MLflow UI:" not in line:
        if time.monotonic() > deadline or p.poll() is not None:
            os.killpg(p.pid, signal.SIGKILL)
            pytest.fail(f"`python -m tracking ui` printed no URL within {UI_START_S} s (exit {p.poll()})")
        line = p.stdout.readline()
    return p, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def walked(tmp_path_factory):
    from isaacgymenvs.video import offscreen_gl
    from tests.helpers.mlflow_ui import take_screenshots

    paths = require_chromium()  # before the sweep: a machine without a browser skips at once
    if offscreen_gl()[1]:
        pytest.skip(f"the champion's GIF needs offscreen OpenGL: {offscreen_gl()[1]}")
    tmp = tmp_path_factory.mktemp("ui_walk")
    store = tmp / "mlruns"
    env = env_for({"AMP_MLRUNS_DIR": str(store)})  # the embedded store, as `make sweep` and `make promote` use it
    spec = tiny_spec(NAME, epochs=2, points=POINTS, base="default", experiment=EXPERIMENT)
    r = run_sweep(tmp, spec, None, env=env)
    assert r.returncode == 0, r.stdout[-4000:]
    p = subprocess.run(
        [sys.executable, "-m", "sweeps.promote", f"sweep={NAME}", f"storage={tmp / 'out'}"],
        env=env, cwd=tmp, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-4000:]
    promoted = json.loads(p.stdout)
    assert "sim2sim_warning" not in promoted, promoted["sim2sim_warning"]
    ui, url = _serve(store, env)
    try:
        api = f"{url}/api/2.0/mlflow"
        exp = requests.get(f"{api}/experiments/get-by-name", params={"experiment_name": EXPERIMENT}, timeout=10)
        runs = requests.post(
            f"{api}/runs/search", json={"experiment_ids": [exp.json()["experiment"]["experiment_id"]]}, timeout=10
        ).json()["runs"]
        state = json.loads((tmp / "out" / NAME / "sweep.json").read_text())
        parent = next(r for r in runs if r["info"]["run_id"] == state["parent_run_id"])["info"]["run_name"]
        trials = sorted(r["info"]["run_name"] for r in runs if r["info"]["run_id"] != state["parent_run_id"])
        shots = Path(os.environ.get("AMP_SCREENSHOTS") or tmp / "screenshots")
        from tests.helpers.browser import chrome

        with chrome(paths) as driver:
            seen = take_screenshots(driver, url, EXPERIMENT, parent, trials, MODEL, promoted["champion_version"], shots)
        yield {
            "seen": seen,
            "parent": parent,
            "trials": trials,
            "promoted": promoted,
            "store": store,
            "best_line": (tmp / "out" / NAME / "results.txt").read_text().strip().splitlines()[-1],
            "shots": shots,
            "url": url,
        }
    finally:
        os.killpg(ui.pid, signal.SIGINT)
        ui.wait(timeout=30)


def test_the_experiment_shows_its_runs_table_with_trials_named_by_their_values(walked):
    assert re.fullmatch(rf"{NAME}-\d{{8}}-\d{{6}}", walked["parent"])  # the parent: <sweep>-<date>-<time>
    assert set(walked["trials"]) == TRIAL_NAMES  # the names differ, each spells its values
    table = walked["seen"]["table"]  # the rows, top to bottom: the parent, unfolded, then its trials
    assert table[0] == walked["parent"] and sorted(table[1:]) == sorted(TRIAL_NAMES), table


def test_the_parent_runs_description_names_the_best_configuration_first(walked):
    text = walked["seen"]["description"]
    best = walked["best_line"]
    assert best.startswith("best configuration: ")
    # the promoted configuration is the one the description names
    config = walked["promoted"]["configuration"]
    named = best.split(": ")[1]
    assert set(named.split()) == {f"{k.rsplit('.', 1)[-1]}={v}" for k, v in config.items()}
    first = text.split("\n", 3)
    assert any(line.startswith(f"Sweep {NAME} (eval/score, max). Best configuration: {named}") for line in first), first
    for part in ("configurations by mean eval/score over their seeds (max):", "what each dimension did", best):
        assert part in text, part


def test_the_champion_versions_page_shows_its_gif(walked):
    version = walked["seen"]["version"]
    assert "champion" in version["aliases"]
    promoted = walked["promoted"]
    assert promoted["alias_moved"] and promoted["champion_version"] == promoted["version"]
    (image,) = version["images"]
    assert (image["width"], image["height"]) == (480, 360)  # decoded by the browser: VideoRecorder's size
    art = promoted["sim2sim"]["video_artifact"]
    assert (
        image["src"].startswith(f"{walked['url']}/get-artifact?")
        and f"run_uuid={promoted['source_run_id']}" in image["src"]
    )
    stored = next(walked["store"].rglob(f"{promoted['source_run_id']}/artifacts/{art}"))
    assert requests.get(image["src"], timeout=30).content == stored.read_bytes()  # the GIF that promote logged


def test_the_screenshots_are_taken(walked):
    for name in ("runs_table", "charts", "parent_run", "champion_version"):
        with Image.open(walked["shots"] / f"{name}.png") as im:
            assert im.format == "PNG" and im.size == (1400, 900), name

"""The MLflow UI (3.17, a React app) walked as a person walks it, in headless Chromium: the
"Model training" view, an experiment's runs table, a sweep's parent run, its charts, the model
registry and a model version. Elements are found by their visible text or their role and every
wait is explicit and bounded (``WebDriverWait``); MLflow's first-visit pop-ups (its assistant
panel, the "new Model Registry UI" dialog) are closed by their ``Close`` buttons.

``python -m tests.helpers.mlflow_ui --url URL --experiment NAME --model NAME --out docs/screenshots``
takes the README's screenshots of a running UI (``make mlflow-ui``) after ``make sweep`` and
``make promote``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from selenium.common.exceptions import StaleElementReferenceException, TimeoutException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

WAIT_S = 45  # one page of the UI on a loaded 2-core machine answers in a few seconds
WIDTH, HEIGHT = 1400, 900  # the screenshots' size


def _text(s: str) -> str:
    """An XPath string literal of ``s``."""
    return f'"{s}"' if '"' not in s else "concat('" + s.replace("'", "', \"'\", '") + "')"


class MlflowUi:
    def __init__(self, driver, url: str):
        self.d, self.url = driver, url.rstrip("/")
        self.d.execute_cdp_cmd(  # the page itself WIDTH x HEIGHT, whatever the window's frame takes
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
        )

    # ------------------------------------------------------------------ waiting and finding
    def wait(self, condition, what: str, timeout: float = WAIT_S):
        try:
            return WebDriverWait(self.d, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(condition)
        except TimeoutException:
            raise AssertionError(
                f"the MLflow UI did not show {what} within {timeout:.0f} s (at {self.d.current_url})"
            ) from None

    def by_text(self, text: str, tag: str = "*", clickable: bool = False):
        """The element ``tag`` whose visible text is ``text`` (whitespace normalized)."""
        loc = (By.XPATH, f"//{tag}[normalize-space(.)={_text(text)}]")
        cond = ec.element_to_be_clickable(loc) if clickable else ec.visibility_of_element_located(loc)
        return self.wait(cond, repr(text))

    def link(self, text: str):
        return self.by_text(text, "a", clickable=True)

    def click(self, element) -> None:
        try:
            element.click()
        except WebDriverException:  # covered by an animation or a tooltip: the same click, in the page
            self.d.execute_script("arguments[0].click()", element)

    def close_popups(self) -> None:
        """MLflow's assistant panel and first-visit dialogs (each has a ``Close`` button)."""
        for b in self.d.find_elements(By.CSS_SELECTOR, "button[aria-label='Close']"):
            try:
                if b.is_displayed():
                    self.click(b)
            except StaleElementReferenceException:
                pass
        time.sleep(0.3)  # their closing animations

    def shot(self, path: Path | None) -> None:
        """A screenshot of the page as PNG, its colours reduced (text stays sharp) to keep the file small."""
        if path is None:
            return
        from PIL import Image

        path.parent.mkdir(parents=True, exist_ok=True)
        self.d.save_screenshot(str(path))
        Image.open(path).convert("RGB").quantize(colors=128).save(path, optimize=True)

    # ------------------------------------------------------------------ the walk
    def open_model_training(self) -> None:
        """The UI's home with the "Model training" view (MLflow opens in its GenAI view the first time)."""
        self.d.get(self.url + "/")
        self.click(self.by_text("Model training", clickable=True))
        self.close_popups()

    def open_experiment(self, name: str, parent_run: str) -> None:
        """Experiments, then the experiment by its name: its runs table, the sweep's parent run in it."""
        self.click(self.link("Experiments"))
        self.click(self.link(name))
        self.wait(ec.visibility_of_element_located((By.CSS_SELECTOR, "[role='grid']")), "the runs table")
        self.link(parent_run)
        self.close_popups()

    def expand(self, run_name: str, children: list[str]) -> None:
        """Unfold a parent run's row (the button in its Run Name cell) until its children's rows show."""
        cell = self.link(run_name).find_element(By.XPATH, "./ancestor::*[@role='gridcell'][1]")
        self.click(cell.find_element(By.TAG_NAME, "button"))
        for child in children:
            self.link(child)

    def fit_run_names(self) -> None:
        """Widen the Run Name column to its longest name (a double click on its header's resize
        handle, as in any ag-grid table)."""
        from selenium.webdriver.common.action_chains import ActionChains

        header = self.wait(
            ec.visibility_of_element_located(
                (By.XPATH, "//*[@role='columnheader'][.//*[normalize-space(text())='Run Name']]")
            ),
            "the Run Name column",
        )
        handles = header.find_elements(By.CSS_SELECTOR, ".ag-header-cell-resize")
        if handles:
            ActionChains(self.d).double_click(handles[0]).perform()

    def toggle_sidebar(self) -> None:
        """Fold (or unfold) the left sidebar: room for the table's columns."""
        self.click(
            self.wait(
                ec.element_to_be_clickable((By.CSS_SELECTOR, "button[aria-label='Toggle sidebar']")),
                "the sidebar's toggle",
            )
        )
        time.sleep(0.5)

    def table_run_names(self) -> list[str]:
        """The run names of the runs table's rows, top to bottom."""
        cells = self.d.find_elements(By.CSS_SELECTOR, "[role='gridcell'][col-id*='Run Name'] a")
        return [c.get_attribute("textContent").strip() for c in cells]

    def show_columns(self, labels: list[str], hide: list[str] = ()) -> None:
        """The Columns menu: tick ``labels`` (metrics, and params by their keys) and untick ``hide``."""
        self.click(self.by_text("Columns", "button", clickable=True))
        for label in [*hide, *labels]:
            self.click(
                self.wait(
                    ec.element_to_be_clickable(
                        (By.XPATH, f"//*[contains(@class, 'tree-title')][normalize-space(.)={_text(label)}]")
                    ),
                    f"the column {label!r} in the Columns menu",
                )
            )
        self.d.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
        for label in labels:
            self.wait(
                ec.visibility_of_element_located(
                    (By.XPATH, f"//*[@role='columnheader'][normalize-space(.)={_text(label)}]")
                ),
                f"the column {label!r}",
            )

    def open_charts(self, search: str, chart: str) -> None:
        """The runs' chart view (the view switch beside the table's), its charts searched for
        ``search``, scrolled to the section of the chart titled ``chart``."""
        radio = self.d.find_element(By.CSS_SELECTOR, "input[name='runs-view-mode'][value='CHART']")
        self.click(radio.find_element(By.XPATH, "./ancestor::label[1]"))
        box = self.wait(
            ec.element_to_be_clickable((By.CSS_SELECTOR, "input[placeholder='Search metric charts']")),
            "the charts' search box",
        )
        box.send_keys(search)
        title = self.by_text(chart)
        self.d.execute_script(  # the chart's row to the top of its scrolling panel, below the panel's search bar
            "const e = arguments[0]; e.scrollIntoView({block: 'start'}); let p = e.parentElement;"
            "while (p && !(p.scrollHeight > p.clientHeight && /auto|scroll/.test(getComputedStyle(p).overflowY)))"
            "  p = p.parentElement;"
            "if (p) p.scrollBy(0, -90);",
            title,
        )
        time.sleep(1.5)  # the charts draw after their titles

    def open_table(self) -> None:
        radio = self.d.find_element(By.CSS_SELECTOR, "input[name='runs-view-mode'][value='TABLE']")
        self.click(radio.find_element(By.XPATH, "./ancestor::label[1]"))
        self.wait(ec.visibility_of_element_located((By.CSS_SELECTOR, "[role='grid']")), "the runs table")

    def open_run(self, name: str) -> str:
        """A run's page (from the runs table): its whole description, unfolded ("Show more")."""
        self.click(self.link(name))
        self.by_text("Description")
        more = self.d.find_elements(By.XPATH, "//*[normalize-space(.)='Show more']")
        if more:
            self.click(more[0])
            self.by_text("Show less")
        heading = self.by_text("Description")
        section = heading.find_element(
            By.XPATH, "./ancestor::*[.//*[normalize-space(.)='Show less' or normalize-space(.)='Show more']][1]"
        )
        return section.get_attribute("innerText")

    def open_model_version(self, model: str, version: int) -> dict:
        """Model registry, the model, its version: the version page's aliases and images (each
        image's address and its size once the browser decoded it)."""
        self.click(self.link("Model registry"))
        self.close_popups()  # the "new Model Registry UI" dialog
        self.click(self.link(model))
        self.close_popups()
        self.click(self.link(f"Version {version}"))
        self.by_text("Source Run")  # the version's page (not the model's)
        images = self.wait(
            lambda d: d.execute_script(
                "const imgs = Array.from(document.querySelectorAll('img')).filter(i => !i.src.startsWith('data:'));"
                "return imgs.length && imgs.every(i => i.complete) ? imgs.map(i => ({src: i.src, width: i.naturalWidth, height: i.naturalHeight})) : null"
            ),
            "the version's image, loaded",
        )
        # an alias shows as a tag "@ NAME" (a no-break space after the @)
        tags = self.d.find_elements(By.XPATH, "//span[not(*)][starts-with(normalize-space(.), '@')]")
        aliases = [t.get_attribute("textContent").replace("\xa0", " ").lstrip("@ ").strip() for t in tags]
        return {"images": images, "aliases": [a for a in aliases if a]}


def take_screenshots(
    driver, url: str, experiment: str, parent_run: str, trials: list[str], model: str, version: int, out: Path
) -> dict:
    """The README's walk ("Comparing runs"), a screenshot of each screen into ``out``; returns what it read."""
    ui = MlflowUi(driver, url)
    ui.open_model_training()
    ui.open_experiment(experiment, parent_run)
    ui.expand(parent_run, trials)
    ui.show_columns(
        [
            "eval/score",
            "eval/fall_rate",
            "train.params.config.bounds_loss_coef",
            "train.params.config.horizon_length",
            "sigma",
        ],
        hide=["Dataset", "Source"],
    )
    ui.toggle_sidebar()
    ui.fit_run_names()
    seen = {"table": ui.table_run_names()}
    ui.shot(out / "runs_table.png")
    ui.open_charts("eval/", "eval/score")
    ui.shot(out / "charts.png")
    ui.open_table()
    ui.toggle_sidebar()
    seen["description"] = ui.open_run(parent_run)
    ui.shot(out / "parent_run.png")
    seen["version"] = ui.open_model_version(model, version)
    ui.shot(out / "champion_version.png")
    return seen


def main(argv=None) -> int:
    import json

    import requests

    from tests.helpers.browser import chrome, install

    ap = argparse.ArgumentParser(prog="python -m tests.helpers.mlflow_ui", description=__doc__)
    ap.add_argument("--url", default="http://127.0.0.1:5000")
    ap.add_argument("--experiment", default="amp_sweep_default")
    ap.add_argument("--model", default="HumanoidAMP-policy")
    ap.add_argument("--out", default="docs/screenshots")
    a = ap.parse_args(argv)
    api = f"{a.url}/api/2.0/mlflow"
    exp = requests.get(f"{api}/experiments/get-by-name", params={"experiment_name": a.experiment}, timeout=10).json()[
        "experiment"
    ]
    runs = requests.post(
        f"{api}/runs/search", json={"experiment_ids": [exp["experiment_id"]], "max_results": 1000}, timeout=10
    ).json()["runs"]
    tags = lambda r: {t["key"]: t["value"] for t in r["data"].get("tags", [])}  # noqa: E731
    parents = [r for r in runs if "mlflow.parentRunId" not in tags(r)]
    parent = max(parents, key=lambda r: r["info"]["start_time"])
    trials = [r["info"]["run_name"] for r in runs if tags(r).get("mlflow.parentRunId") == parent["info"]["run_id"]]
    rm = requests.get(f"{api}/registered-models/get", params={"name": a.model}, timeout=10).json()["registered_model"]
    version = int(next(x["version"] for x in rm["aliases"] if x["alias"] == "champion"))
    paths, why = install()
    if paths is None:
        print(f"no headless Chromium: {why}", file=sys.stderr)
        return 1
    with chrome(paths) as driver:
        seen = take_screenshots(
            driver, a.url, a.experiment, parent["info"]["run_name"], trials, a.model, version, Path(a.out)
        )
    print(json.dumps({"table": seen["table"], "version": seen["version"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The MLflow model registry behind ``make promote`` and ``sim2sim policy=models:/...``.

* the finished trial runs of a sweep (children of its parent run), ranked by a metric that is
  comparable between runs (``eval/*``; ``disc/*`` and ``reward/*`` are refused);
* a trial's checkpoint artifact (``checkpoints/best.pth``, else ``checkpoints/latest.pth``);
* a model version per promoted checkpoint: registered model ``<task>-policy``, the export folder
  as the files of an MLflow pyfunc model (``artifacts/policy/``; ``predict`` runs ``policy.onnx``
  with onnxruntime, see :mod:`tracking.pyfunc_policy`), logged as a LoggedModel of the trial's
  run (the version's run), identified by the tags ``source_run_id`` + ``checkpoint_sha256``;
* the alias ``champion`` and the rule that moves it;
* for sim2sim: ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` resolved and downloaded, and the
  evaluation (JSON, video) logged back to the version's run; the video's artifact path becomes the
  version's tag ``sim2sim.video`` and an image in its description, so the version's page in the
  MLflow UI shows it (a trial run's evaluation: the same on the run, :meth:`Registry.log_run_evaluation`).

Every request goes through :class:`tracking.mlflow_tracker.MlflowTracker` (bounded retries and
timeouts; an unreachable store is a :class:`TrackingUnavailableError` naming the URI). What the
registry cannot serve as asked is a :class:`RegistryError` whose message names the fix.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from urllib.parse import quote

import mlflow
from mlflow.exceptions import MlflowException

from tracking.base import TrackingError, TrackingRejectedError, TrackingUnavailableError
from tracking.mlflow_tracker import MlflowTracker
from tracking.params import MAX_TAG_VALUE, clip
from tracking.store import is_http, redact
from tracking.sweep_runs import PARENT_TAG

CHAMPION = "champion"
POLICY_DIR = "policy"  # the export folder inside a model version: artifacts/policy/
CHECKPOINTS = (
    "checkpoints/best.pth",
    "checkpoints/latest.pth",
)  # what tracking.session uploads, in order of preference
NOT_COMPARABLE = ("disc/", "reward/")
MODEL_CODE = Path(__file__).with_name("pyfunc_policy.py")
#: The tag (of a model version, or of a trial run) that names the artifact path of its evaluation video
VIDEO_TAG = "sim2sim.video"
#: How the description line that shows the evaluation video begins (replaced by the next one)
VIDEO_IMAGE = "![sim2sim"
#: The sim2sim numbers that become tags
SIM2SIM_NUMBERS = ("fall_rate", "survival", "motion_nn_dist", "score", "mean_episode_length", "episodes")


class RegistryError(TrackingError):
    """The store answered, but what was asked for is not there (sweep run, metric, model, alias)."""


class MissingCheckpointError(RegistryError):
    """A run has no checkpoint artifact (trained with tracking off, or stopped before its first checkpoint)."""


def model_name(task: str) -> str:
    return f"{task}-policy"


def check_metric(metric: str) -> None:
    if metric.startswith(NOT_COMPARABLE):
        raise RegistryError(
            f"metric {metric!r} cannot rank runs: each run trains its own discriminator, so its disc/* and reward/* "
            "values are on that run's own scale and are not comparable between runs; use eval/score, eval/fall_rate, "
            "eval/survival or eval/motion_nn_dist"
        )


def better(value: float, than: float, mode: str) -> bool:
    """Strictly better under ``mode`` (min or max)."""
    return value < than if mode == "min" else value > than


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def artifact_link(run_id: str, path: str) -> str:
    """The address of a run's artifact as the MLflow UI fetches it, relative to the UI's own address
    (``get-artifact?path=...&run_uuid=...``): in a description it works behind any host, port or
    static prefix, and the server checks the viewer's credentials as it does for the UI."""
    return f"get-artifact?path={quote(path, safe='')}&run_uuid={quote(run_id, safe='')}"


def with_video(description: str | None, run_id: str, path: str, caption: str) -> str:
    """``description`` (markdown, as the MLflow UI renders it) ending with an image of the run's
    artifact ``path``; an earlier evaluation's image line is replaced, the rest kept."""
    kept = [line for line in (description or "").splitlines() if not line.startswith(VIDEO_IMAGE)]
    text = "\n".join(kept).rstrip()
    image = f"{VIDEO_IMAGE}: {caption}]({artifact_link(run_id, path)})"
    return f"{text}\n\n{image}" if text else image


def parse_models_uri(uri: str) -> tuple[str, str | None, str | None]:
    """``models:/NAME@ALIAS`` -> (NAME, ALIAS, None); ``models:/NAME/VERSION`` -> (NAME, None, VERSION)."""
    rest = uri[len("models:/") :].strip("/")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        if name and alias and "/" not in alias:
            return name, alias, None
    elif "/" in rest:
        name, version = rest.rsplit("/", 1)
        if name and version.isdigit():
            return name, None, version
    raise RegistryError(
        f"{uri!r} is not a model URI this tool reads: use models:/NAME@ALIAS (e.g. "
        f"models:/HumanoidAMP-policy@{CHAMPION}) or models:/NAME/VERSION"
    )


@contextmanager
def _quiet():
    """MLflow's progress bars and logging-time advice (input example, type hints) are noise here."""
    old = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        if old is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = old


@contextmanager
def _global_uri(uri: str):
    """MLflow's fluent functions (Model.log, download_artifacts of models:/) read the global tracking URI."""
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    with _use_tracking_uri(uri):
        yield


class Registry:
    """One tracking store (runs, artifacts and the model registry)."""

    def __init__(self, uri: str):
        self.uri = uri
        self.t = MlflowTracker(uri, http_retries=2, http_timeout_s=10, artifact_timeout_s=300)
        if is_http(uri) and not self.t.probe():
            raise TrackingUnavailableError(
                f"tracking store {redact(uri)} cannot be reached; start it (`make mlflow-ui` serves the embedded "
                "store) or point MLFLOW_TRACKING_URI at a server that runs"
            )
        db = self.t._sqlite_path()
        if db is not None and not db.exists():
            raise RegistryError(
                f"tracking store {redact(uri)} does not exist (no file {db}): nothing was tracked there; "
                "run `make sweep` and `make promote`, or point MLFLOW_TRACKING_URI at the store that "
                "holds the runs"
            )

    @property
    def client(self):
        return self.t.client

    def _call(self, fn, *args, **kwargs):
        return self.t._call(fn, *args, **kwargs)

    def _get(self, fn, *args):
        """``fn(*args)``, or None where the store says the thing does not exist."""
        try:
            return self._call(fn, *args)
        except TrackingRejectedError as e:
            cause = e.__cause__
            if isinstance(cause, MlflowException) and cause.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                return None
            raise

    # ------------------------------------------------------------------ sweep trials
    def sweep_trials(self, experiment: str, parent_run_id: str) -> list:
        """The child runs of a sweep's parent run (every status)."""
        exp = self._call(self.client.get_experiment_by_name, experiment)
        if exp is None:
            raise RegistryError(
                f"experiment {experiment!r} is not in the tracking store {redact(self.uri)}: the sweep "
                "was tracked elsewhere (pass uri=... or set MLFLOW_TRACKING_URI)"
            )
        if self._get(self.client.get_run, parent_run_id) is None:
            raise RegistryError(
                f"the sweep's parent run {parent_run_id} is not in the tracking store {redact(self.uri)} "
                "(deleted, or tracked elsewhere: pass uri=...)"
            )
        return self._call(
            self.client.search_runs,
            [exp.experiment_id],
            filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
            max_results=1000,
        )

    @staticmethod
    def rank(runs: list, metric: str, mode: str, sweep: str = "") -> list[tuple[float, object]]:
        """FINISHED runs that logged ``metric`` (finite), best first, as (latest value, run)."""
        check_metric(metric)
        if mode not in ("min", "max"):
            raise RegistryError(f"mode must be min or max, got {mode!r}")
        finished = [r for r in runs if r.info.status == "FINISHED"]
        what = f"sweep {sweep!r}" if sweep else "the sweep"
        if not finished:
            statuses = (
                ", ".join(f"{r.info.run_name or r.info.run_id}: {r.info.status}" for r in runs)
                or "no trial runs at all"
            )
            raise RegistryError(
                f"{what} has no finished trial ({statuses}); let it finish (make sweep RESUME=1) or run it again"
            )
        scored = [
            (float(r.data.metrics[metric]), r)
            for r in finished
            if metric in r.data.metrics and math.isfinite(float(r.data.metrics[metric]))
        ]
        if not scored:
            logged = sorted({k for r in finished for k in r.data.metrics if not k.startswith(NOT_COMPARABLE)})
            raise RegistryError(
                f"no finished trial of {what} logged the metric {metric!r}; comparable metrics logged: "
                f"{', '.join(k for k in logged if k.startswith('eval/')) or 'none'} (pass metric=...)"
            )
        scored.sort(key=lambda vr: vr[0], reverse=(mode == "max"))
        return scored

    def download_checkpoint(self, run, dst, artifacts=CHECKPOINTS) -> tuple[Path, str]:
        """The first of ``artifacts`` the run has (default: its best checkpoint, else its latest):
        (local path, artifact path)."""
        rid = run.info.run_id
        present = {f.path for f in self._call(self.client.list_artifacts, rid, "checkpoints")}
        for art in artifacts:
            if art in present:
                with _quiet():
                    local = self._call(
                        self.client.download_artifacts, rid, art, str(dst), timeout_s=self.t.artifact_timeout_s
                    )
                return Path(local), art
        raise MissingCheckpointError(
            f"run {rid} ({run.info.run_name}) has no checkpoint artifact ({' or '.join(artifacts)}); it was trained with "
            "tracking off, stopped before its first checkpoint, or its upload failed (python -m tracking sync runs/<run>)"
        )

    # ------------------------------------------------------------------ model versions
    def versions(self, name: str) -> list:
        if self._get(self.client.get_registered_model, name) is None:
            return []
        return self._call(self.client.search_model_versions, f"name = '{name}'")

    def find_version(self, name: str, source_run_id: str, checkpoint_sha256: str):
        """The version registered from this run and checkpoint, if any (what makes promote idempotent)."""
        for mv in self.versions(name):
            if mv.tags.get("source_run_id") == source_run_id and mv.tags.get("checkpoint_sha256") == checkpoint_sha256:
                return mv
        return None

    def register(self, name: str, export_dir, run, tags: dict, description: str = ""):
        """Log ``export_dir`` as a pyfunc model of ``run`` and register it as a new version of ``name``."""
        import numpy as np
        from mlflow.models import Model, ModelSignature
        from mlflow.types import Schema, TensorSpec

        info = json.loads((Path(export_dir) / "policy.json").read_text())
        f32 = np.dtype(np.float32)
        ports = (info.get("policy") or {}).get("onnx")
        if ports and len(ports["inputs"]) > 1:  # an LSTM policy: named obs, h0, c0 in; actions, h1, c1 out
            shape = lambda dims: tuple(-1 if d == "batch" else int(d) for d in dims)  # noqa: E731
            signature = ModelSignature(
                inputs=Schema([TensorSpec(f32, shape(dims), name) for name, dims in ports["inputs"].items()]),
                outputs=Schema([TensorSpec(f32, shape(dims), name) for name, dims in ports["outputs"].items()]),
            )
        else:
            signature = ModelSignature(
                inputs=Schema([TensorSpec(f32, (-1, int(info["observation"]["size"])))]),
                outputs=Schema([TensorSpec(f32, (-1, int(info["action"]["size"])))]),
            )
        reqs = [f"{p}=={metadata.version(p)}" for p in ("mlflow", "onnxruntime", "numpy")]
        tags = {k: clip(str(v), MAX_TAG_VALUE) for k, v in tags.items()}
        rid = run.info.run_id
        lm = self._call(
            self.client.create_logged_model,
            run.info.experiment_id,
            POLICY_DIR,
            rid,
            {k: tags[k] for k in ("task", "sweep", "trial_name", "checkpoint_sha256") if k in tags},
            None,
            "onnx-policy",
        )
        with _quiet(), _global_uri(self.uri):
            self._call(
                Model.log,
                None,
                name=POLICY_DIR,
                flavor=mlflow.pyfunc,
                run_id=rid,
                model_id=lm.model_id,
                python_model=str(MODEL_CODE),
                artifacts={POLICY_DIR: str(export_dir)},
                signature=signature,
                pip_requirements=reqs,
                timeout_s=self.t.artifact_timeout_s,
            )
        if self._get(self.client.get_registered_model, name) is None:
            try:
                self._call(
                    self.client.create_registered_model,
                    name,
                    description="Exported AMP policies (raw observations in, actions out), one version per "
                    "promoted checkpoint; alias champion = the best so far. Created by make promote.",
                )
            except TrackingRejectedError:
                if (
                    self._get(self.client.get_registered_model, name) is None
                ):  # not created meanwhile by another promote
                    raise
        with _global_uri(self.uri):  # a sqlite registry looks the LoggedModel up through the global URI
            return self._call(
                self.client.create_model_version,
                name,
                f"models:/{lm.model_id}",
                rid,
                tags,
                None,
                description,
                model_id=lm.model_id,
            )

    def alias_version(self, name: str, alias: str = CHAMPION):
        """The version ``alias`` points at, or None (no such model, or no such alias)."""
        rm = self._get(self.client.get_registered_model, name)
        version = (getattr(rm, "aliases", None) or {}).get(alias) if rm is not None else None
        return self._call(self.client.get_model_version, name, str(version)) if version is not None else None

    def set_alias(self, name: str, version, alias: str = CHAMPION) -> None:
        self._call(self.client.set_registered_model_alias, name, alias, str(version))

    def run_metric(self, run_id: str, metric: str) -> float | None:
        run = self._get(self.client.get_run, run_id)
        v = run.data.metrics.get(metric) if run is not None else None
        return float(v) if v is not None and math.isfinite(float(v)) else None

    # ------------------------------------------------------------------ models:/ for sim2sim
    def resolve(self, models_uri: str):
        """The model version a ``models:/`` URI names; a RegistryError that lists what exists when it does not."""
        name, alias, version = parse_models_uri(models_uri)
        if self._get(self.client.get_registered_model, name) is None:
            names = sorted(m.name for m in self._call(self.client.search_registered_models, max_results=100))
            raise RegistryError(
                f"no registered model {name!r} in the tracking store {redact(self.uri)} (registered models: "
                f"{', '.join(names) or 'none'}); run `make promote` (after `make sweep`) to register one, or point "
                "MLFLOW_TRACKING_URI at the store that has it"
            )
        if alias is not None:
            mv = self.alias_version(name, alias)
            if mv is None:
                rm = self._call(self.client.get_registered_model, name)
                have = (
                    ", ".join(f"@{a} -> v{v}" for a, v in sorted((getattr(rm, "aliases", None) or {}).items()))
                    or "none"
                )
                raise RegistryError(
                    f"registered model {name!r} has no alias {alias!r} (aliases: {have}); "
                    f"`make promote` sets @{CHAMPION}, or use models:/{name}/VERSION"
                )
            return mv
        mv = self._get(self.client.get_model_version, name, version)
        if mv is None:
            have = ", ".join(sorted((v.version for v in self.versions(name)), key=int)) or "none"
            raise RegistryError(f"registered model {name!r} has no version {version} (versions: {have})")
        return mv

    def download_policy(self, mv, dst) -> Path:
        """The version's export folder (policy.onnx, policy.json, ...), downloaded into ``dst``."""
        with _quiet(), _global_uri(self.uri):
            root = self._call(
                mlflow.artifacts.download_artifacts,
                artifact_uri=f"models:/{mv.name}/{mv.version}",
                dst_path=str(dst),
                tracking_uri=self.uri,
                registry_uri=self.uri,
                timeout_s=self.t.artifact_timeout_s,
            )
        policy = Path(root) / "artifacts" / POLICY_DIR
        if not (policy / "policy.onnx").is_file():
            raise RegistryError(
                f"model version {mv.name}/{mv.version} has no {POLICY_DIR}/policy.onnx in its files: it "
                "was not registered by `make promote`"
            )
        return policy

    def _log_result(self, run_id: str, art: str, result: dict, files) -> str | None:
        """``result`` as ``<art>/sim2sim.json`` and ``files`` into ``<art>/`` of the run; the video's
        artifact path (the first ``.gif`` of ``files``), or None."""
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "sim2sim.json"
            out.write_text(json.dumps(result, indent=2))
            self._call(self.client.log_artifact, run_id, str(out), art, timeout_s=self.t.artifact_timeout_s)
        video = None
        for f in files:
            self._call(self.client.log_artifact, run_id, str(f), art, timeout_s=self.t.artifact_timeout_s)
            if video is None and Path(f).suffix.lower() == ".gif":
                video = f"{art}/{Path(f).name}"
        return video

    @staticmethod
    def _number_tags(result: dict) -> dict:
        prefix = "sim2sim."
        tags = {prefix + k: str(result[k]) for k in SIM2SIM_NUMBERS if k in result}
        tags[prefix + "time"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        return tags

    def log_evaluation(self, mv, result: dict, files=()) -> str | None:
        """Log a sim2sim result (JSON and files, e.g. the video) to the version's run under
        ``sim2sim/v<version>/`` and its numbers as tags of the version; a GIF among ``files`` becomes
        the version's tag ``sim2sim.video`` (its artifact path in the run) and the image that ends the
        version's description. Returns the run id (None: a version without a run, tags only)."""
        tags = self._number_tags(result)
        video = self._log_result(mv.run_id, f"sim2sim/v{mv.version}", result, files) if mv.run_id else None
        if video:
            tags[VIDEO_TAG] = video
        for k, v in tags.items():
            self._call(self.client.set_model_version_tag, mv.name, str(mv.version), k, v)
        if video:
            current = self._call(self.client.get_model_version, mv.name, str(mv.version))
            caption = f"version {mv.version} in {result.get('mjcf') or 'its evaluation model'}"
            self._call(
                self.client.update_model_version,
                mv.name,
                str(mv.version),
                with_video(current.description, mv.run_id, video, caption),
            )
        return mv.run_id or None

    def log_run_evaluation(self, run_id: str, result: dict, files=(), art: str = "sim2sim/latest") -> str | None:
        """A sim2sim result of a run's own checkpoint (the end of a GPU sweep): JSON and files under
        ``art``, its numbers as run tags; a GIF among ``files`` becomes the run's tag ``sim2sim.video``
        and the image that ends the run's description. Returns the video's artifact path, or None."""
        video = self._log_result(run_id, art, result, files)
        tags = self._number_tags(result)
        if video:
            tags[VIDEO_TAG] = video
            run = self._call(self.client.get_run, run_id)
            note = run.data.tags.get("mlflow.note.content")
            tags["mlflow.note.content"] = with_video(note, run_id, video, f"{run.info.run_name or run_id}, {art}")
        for k, v in tags.items():
            self._call(self.client.set_tag, run_id, k, v)
        return video

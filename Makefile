# One door for users and CI. `make sweep` and `make test` install what they need first.
PY      ?= python3.11
VENV    ?= .venv
VPY     := $(VENV)/bin/python
VPIP    := $(VPY) -m pip
STAMP   := $(VENV)/.installed
TORCH   := torch==2.13.0

.PHONY: install install-gpu warmup test assets train sweep clean-venv benchmark-cpu benchmark-gpu

install: $(STAMP)

# torch first: anything that depends on it (rl-games) would otherwise pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPIP) install --quiet --upgrade pip
	$(VPIP) install --quiet $(TORCH)
	$(VPIP) install --quiet -e '.[test]'
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
# RESUME=1 continues an interrupted sweep from sweeps_out/$(SWEEP) (same MLflow runs).
HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q GPU && echo 1)
SWEEP   ?= $(if $(HAS_GPU),humanoid_gpu,default)
RESUME  ?=
sweep: install
	$(VPY) -m sweeps $(SWEEP) $(if $(filter 1 yes true,$(RESUME)),--resume)

test: install
	$(VPY) -m pytest tests

assets: install
	$(VPY) -m isaacgymenvs.assets fetch

train: install
	$(VPY) isaacgymenvs/train.py task=HumanoidAMP headless=True

benchmark-cpu: install
	$(VPY) benchmarks/cpu_env_steps.py

clean-venv:
	rm -rf $(VENV)

# Browse tracked runs: the embedded store (sqlite + artifact folder under mlruns/) served by
# `mlflow server` on 127.0.0.1 only (AMP_MLRUNS_DIR or MLFLOW_DIR=/path: another store; MLFLOW_PORT=5001).
MLFLOW_DIR  ?= $(if $(AMP_MLRUNS_DIR),$(AMP_MLRUNS_DIR),$(CURDIR)/mlruns)
MLFLOW_PORT ?= 5000
.PHONY: mlflow-ui
mlflow-ui: install
	mkdir -p $(MLFLOW_DIR)/artifacts
	@echo "MLflow UI: http://127.0.0.1:$(MLFLOW_PORT)  (store sqlite:///$(MLFLOW_DIR)/mlflow.db; Ctrl+C stops it)"
	$(VENV)/bin/mlflow server --backend-store-uri sqlite:///$(MLFLOW_DIR)/mlflow.db \
	  --default-artifact-root $(MLFLOW_DIR)/artifacts --host 127.0.0.1 --port $(MLFLOW_PORT)

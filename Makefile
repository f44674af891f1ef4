# One door for users and CI. `make sweep` and `make test` install what they need first.
PY      ?= python3.11
VENV    ?= .venv
VPY     := $(VENV)/bin/python
VPIP    := $(VPY) -m pip
STAMP   := $(VENV)/.installed
TORCH   := torch==2.13.0

.PHONY: install test assets train sweep clean-venv benchmark-cpu

install: $(STAMP)

# torch first: anything that depends on it (rl-games) would otherwise pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPIP) install --quiet --upgrade pip
	$(VPIP) install --quiet $(TORCH)
	$(VPIP) install --quiet -e '.[test]'
	touch $(STAMP)

test: install
	$(VPY) -m pytest tests -q

assets: install
	$(VPY) -m isaacgymenvs.assets fetch

train: install
	$(VPY) isaacgymenvs/train.py task=HumanoidAMP headless=True

benchmark-cpu: install
	$(VPY) benchmarks/cpu_env_steps.py

clean-venv:
	rm -rf $(VENV)

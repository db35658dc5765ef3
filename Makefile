# gbmseg: the two commands a fresh machine needs are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .venv-tools
PIP_FLAGS := --disable-pip-version-check --progress-bar off --no-compile -c constraints.txt
export GBMSEG_ROOT := $(CURDIR)

.PHONY: help venv tools browser demo test test-fast lint data repro constraints clean pipeline

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/gbmseg: pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_FLAGS) -e '.[dev]'
	@# bytecode once, on both cores: every later dvc/gbmseg start reads it instead of compiling
	@# its imports again (where PYTHONDONTWRITEBYTECODE is set, nothing would ever write it);
	@# a few template files in site-packages are not Python, hence || true
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib src > /dev/null || true
	@touch $@

venv: $(BIN)/gbmseg  ## create .venv and install gbmseg with its dev tools

$(TOOLS)/bin/checkov: tools/checkov-requirements.txt
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --disable-pip-version-check --progress-bar off --no-compile --no-deps -r $<
	@touch $@

tools: $(TOOLS)/bin/checkov  ## checkov (infra scanner) in its own venv: its pins clash with ours

# The demo's own overrides (params.yaml keeps the budget of a real run): the synthetic sets
# are small, so fewer epochs and one augmented copy per image are enough to show the loop.
DEMO_SET := -S train.epochs=20 -S train.baseline_epochs=20 -S finetune.epochs=20 -S train.steps_per_epoch=25 -S augment.copies=1

data: venv  ## generate the synthetic demo data: data/raw/{source,target} (byte-identical to data.dvc)
	$(BIN)/gbmseg synth
	$(BIN)/dvc commit -f -q data.dvc

repro: venv  ## run the DVC pipeline with params.yaml as it is
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dvc repro

demo: data  ## set up, generate data, run source -> pretrain -> fine-tune -> evaluate -> register
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dvc exp run $(DEMO_SET)
	@PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dvc metrics show
	@echo
	@echo "The demo ran with its own overrides ($(DEMO_SET)); see git diff params.yaml."
	@echo "Fine-tuned vs from scratch on the same test images: reports/evaluate/comparison.png"
	@echo "Why this strategy: models/finetune/transfer_report.md    Registration: reports/register/registration.json"
	@echo "Overlays (green TP, red FP, blue FN): reports/evaluate/overlays/*.png"
	@echo "MLflow UI:  $(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db  (then open http://127.0.0.1:5000)"

browser:  ## headless Chromium (Debian's package) for the tests that open the HTML reports
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { apt-get update -q && apt-get install -y -q --no-install-recommends chromium; } || \
	  { echo "could not install chromium: run 'sudo apt-get install chromium'"; exit 1; }

test: venv tools browser  ## run the whole test suite (what CI runs), two workers: half of it waits on servers
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-fast: venv  ## tests without the slow end-to-end ones
	$(BIN)/python -m pytest -q -m "not slow"

lint: venv  ## ruff
	$(BIN)/ruff check .

constraints: venv  ## re-pin constraints.txt from the current venv
	(echo '# Exact versions known to install together (pip install -c constraints.txt). Regenerate with: make constraints'; \
	 $(BIN)/pip freeze --exclude-editable | sed 's/+cpu//' | sort) > constraints.txt.tmp
	mv constraints.txt.tmp constraints.txt

clean:  ## remove generated outputs (keeps .venv, the DVC cache and the split files)
	rm -rf data/validated data/augmented data/packed models reports metrics mlflow.db mlartifacts

pipeline: venv  ## recompile pipelines/gbmseg_pipeline.yaml (a test fails when it is stale)
	$(BIN)/python -m pipelines.gbmseg_pipeline

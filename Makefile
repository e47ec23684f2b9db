# Two commands do everything: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint typecheck screenshots benchmarks system-deps clean lock

run: system-deps $(STAMP)
	$(BIN)/mlcache-deploy

test: system-deps $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	QT_QPA_PLATFORM=offscreen $(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

typecheck: $(STAMP)
	$(BIN)/mypy

screenshots: $(STAMP)
	./scripts/system-deps.sh --screenshots
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m app.wizard.screenshots docs/screenshots

system-deps:
	@./scripts/system-deps.sh

# The first run installs for a few minutes: say each stage as it starts and keep pip
# quiet (its errors and warnings still show).
# The build backend warns on every editable install that a folder named like the
# package would shadow it; nothing to act on here (the folder is the package).
PIP := PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip
PIP_FLAGS := --quiet --disable-pip-version-check --no-input
# constraints.txt holds the exact versions the suite was run on, so a release made since
# cannot change what a fresh checkout installs.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || { echo "[1/3] Creating the virtual environment in $(VENV)…"; \
		$(PYTHON) -m venv $(VENV); }
	@echo "[2/3] Upgrading pip…"
	@$(PIP) install $(PIP_FLAGS) --upgrade pip
	@echo "[3/3] Installing mlcache-deploy and its dependencies (first time: a few minutes)…"
	@$(PIP) install $(PIP_FLAGS) -c constraints.txt -e '.[dev,sandbox,sample]'
	@touch $(STAMP)
	@echo "Installed. (Later runs skip these steps until pyproject.toml or constraints.txt changes.)"

# Newest versions within pyproject.toml's ranges, in a scratch environment, written to
# constraints.txt; run `make test` on them before committing.
lock:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install $(PIP_FLAGS) --upgrade pip
	PYTHONWARNINGS="ignore:Editable installation" .venv-lock/bin/python -m pip install $(PIP_FLAGS) -e '.[dev,sandbox,sample]'
	{ sed -n '1,2p' constraints.txt; .venv-lock/bin/python -m pip freeze --exclude-editable | grep -v '^#'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache

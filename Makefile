# Two commands on a fresh machine (Python 3.11, make):  `make book`  and  `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
NOTEBOOKS := $(sort $(wildcard book/*.ipynb))

.PHONY: install book test browser-available lint unit notebooks-check book-stored browser slow notebooks notebooks-stress fresh bench train-pde clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	touch $(STAMP)

## make book: execute every notebook (cached by jupyter-cache) and render the HTML book into _build/html.
## The notebooks the cache lacks are executed first, BOOK_JOBS at a time (jupyter-cache's worker, the same nbclient
## execution and cache that myst-nb uses), so the build renders every chapter from the cache. BOOK_JOBS=1: one by one.
BOOK_JOBS ?= 2
book: $(STAMP)
	$(BIN)/python scripts/booktools.py execute-cache _build/.jupyter_cache $(NOTEBOOKS) --jobs $(BOOK_JOBS)
	$(BIN)/jupyter-book build . -W -n --keep-going
	$(BIN)/python scripts/booktools.py timings _build/.jupyter_cache

## make test: lint, unit + property tests, every notebook under nbval, the book built from stored outputs, a real browser.
test: browser-available lint unit notebooks-check book-stored browser

# Fail in the first second, not after ten minutes of other tests, when the browser test cannot run.
browser-available:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  echo "make test needs Chromium for its browser test: run 'apt-get install chromium' (or .ci/run, which does)."; \
	  exit 1; }

## make lint: ruff (pyflakes, import order, pyupgrade, bugbear) and the formatter, configured in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: $(STAMP)
	$(BIN)/python -m pytest tests -q --ignore=tests/browser -m "not slow"

# Every cell has a time limit (and so has the kernel start): a stalled kernel fails the run instead of hanging it.
notebooks-check: $(STAMP)
	$(BIN)/python -m pytest -q --nbval-lax --nbval-current-env --nbval-cell-timeout=300 \
	  --nbval-kernel-startup-timeout=60 $(NOTEBOOKS)

book-stored: $(STAMP)
	rm -rf _build/html
	$(BIN)/python scripts/booktools.py stored-config _config.yml _build/_config_stored.yml
	$(BIN)/jupyter-book build . --all --config _build/_config_stored.yml -W -n --keep-going

browser: $(STAMP)
	$(BIN)/python -m pytest -q tests/browser

## make slow: the tests marked slow (inductor compile checks, fit with compile=True), except the notebook stress runs
## and the clean-venv user check, which have their own commands (make notebooks-stress, scripts/user_check.sh).
## .ci/run calls it after make test. Measured: 10.5 minutes (6 CPU-minutes) on 2 shared cores, cold inductor cache.
slow: $(STAMP)
	$(BIN)/python -m pytest tests -q -m slow --ignore=tests/browser --ignore=tests/test_notebook_runs.py \
	  --ignore=tests/test_user_install.py

## make notebooks: re-execute every notebook in place (refreshes the stored outputs after a change).
notebooks: $(STAMP)
	$(BIN)/python scripts/booktools.py execute $(NOTEBOOKS) --timings book/timings.csv

## make notebooks-stress: execute every chapter 5 times headless (per-cell time limit); fails on a stall or a run
## slower than twice the chapter's median.
notebooks-stress: $(STAMP)
	$(BIN)/python -m pytest -q -rP -m slow tests/test_notebook_runs.py

## make fresh: prove the README's two commands from scratch (clone of HEAD, new venv, no pip cache), with times.
fresh:
	bash scripts/fresh.sh

## make bench: the benchmark tables (one thread), also written for the book's benchmarks page. The peers table
## (deel-torchlip, 3 seeds, a tuning grid) takes about 35 minutes of it; `--only peers` runs it alone.
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py --output book/benchmarks_results.md

## DEVICE=cuda runs bench-authors and train-pde on a GPU (the same code, device-agnostic).
DEVICE ?= cpu

## make bench-authors: companion against the authors' own set-ups (one thread, about 15 minutes on 2 cores).
bench-authors: $(STAMP)
	$(BIN)/python benchmarks/authors_run.py --device $(DEVICE) --output book/authors_results.md

## make train-pde: retrain the 12 networks of chapter 4 in companion/pde/weights (one thread; measured: the two headline
## networks from random initialisation 10 CPU-minutes, all 12 about 42).
train-pde: $(STAMP)
	$(BIN)/python scripts/train_pde.py --device $(DEVICE)
	$(BIN)/python scripts/generalisation_pde.py

clean:
	rm -rf _build

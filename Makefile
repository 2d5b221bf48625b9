# evicap — two commands do all the set-up on a fresh Debian/Ubuntu machine:
#   make demo   virtual environment, evicap, a browser, then a capture of the built-in demo site
#   make test   the same plus test dependencies, then the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# pywb, the replay engine the tests prove our WARCs against, lives in its own environment: it pins older
# cryptography/pyOpenSSL and monkey-patches sockets with gevent, neither of which belongs in evicap's.
PYWB_VENV  ?= .venv-pywb
PYWB_STAMP := $(PYWB_VENV)/.installed

.PHONY: demo test setup browser lint typecheck clean bench

demo: setup
	$(BIN)/evicap doctor
	$(BIN)/evicap demo

test: setup lint $(PYWB_STAMP)
	EVICAP_PYWB_PYTHON=$(CURDIR)/$(PYWB_VENV)/bin/python $(BIN)/python -m pytest -q

setup: $(STAMP) browser

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "python3 is required (apt-get install -y python3 python3-venv)"; exit 2; }
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "creating the virtual environment failed; installing python3-venv"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip
	@scripts/install-media-tools.sh $(PYTHON)  # g++ + Python headers (pdqhash builds from source), ffmpeg
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

$(PYWB_STAMP):
	$(PYTHON) -m venv $(PYWB_VENV)
	$(PYWB_VENV)/bin/python -m pip install -q --upgrade pip
	$(PYWB_VENV)/bin/python -m pip install -q 'pywb>=2.10'
	@touch $(PYWB_STAMP)

# Stock tools the verification recipe (docs/verify-without-evicap.md) and its test use: openssl, jq, sha256sum.
# A browser: one already found (EVICAP_BROWSER, Playwright's, or a system Chromium/Chrome) is kept; otherwise
# Playwright's own download where it is reachable, else the distribution's chromium package.
browser: $(STAMP)
	@scripts/install-browser.sh $(BIN)/python
	@scripts/install-tools.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/bench_capture.py

clean:
	rm -rf $(VENV) $(PYWB_VENV) evidence-demo build dist .pytest_cache .mypy_cache .ruff_cache

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
# py-wacz (`wacz validate`, which the WACZ export tests run) pulls frictionless and its pins: its own environment too.
WACZ_VENV  ?= .venv-wacz
WACZ_STAMP := $(WACZ_VENV)/.installed
# ReplayWeb.page's built files, to replay exported WACZ files offline in the tests (skipped when npm is missing).
RWP_DIR    ?= .replaywebpage
RWP_STAMP  := $(RWP_DIR)/package/sw.js

.PHONY: demo test setup browser browser-user lint typecheck clean bench replaywebpage redis-server

demo: setup
	$(BIN)/evicap doctor
	$(BIN)/evicap demo

test: setup lint redis-server $(PYWB_STAMP) $(WACZ_STAMP) replaywebpage
	EVICAP_PYWB_PYTHON=$(CURDIR)/$(PYWB_VENV)/bin/python EVICAP_WACZ=$(CURDIR)/$(WACZ_VENV)/bin/wacz \
	  $(BIN)/python -m pytest -q

setup: $(STAMP) browser

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "python3 is required (apt-get install -y python3 python3-venv)"; exit 2; }
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "creating the virtual environment failed; installing python3-venv"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip
	@scripts/install-media-tools.sh $(PYTHON)  # g++ + Python headers (pdqhash builds from source), ffmpeg
	$(BIN)/python -m pip install -q -e '.[test,distributed]'
	@touch $(STAMP)

$(PYWB_STAMP):
	$(PYTHON) -m venv $(PYWB_VENV)
	$(PYWB_VENV)/bin/python -m pip install -q --upgrade pip
	$(PYWB_VENV)/bin/python -m pip install -q 'pywb>=2.10'
	@touch $(PYWB_STAMP)

$(WACZ_STAMP):
	$(PYTHON) -m venv $(WACZ_VENV)
	$(WACZ_VENV)/bin/python -m pip install -q --upgrade pip
	$(WACZ_VENV)/bin/python -m pip install -q 'wacz>=0.5'
	@touch $(WACZ_STAMP)

replaywebpage:
	@if [ ! -f $(RWP_STAMP) ] && command -v npm >/dev/null; then \
	  mkdir -p $(RWP_DIR) && cd $(RWP_DIR) && npm pack -q replaywebpage@2.4.6 >/dev/null && \
	  tar xzf replaywebpage-2.4.6.tgz && rm -f replaywebpage-2.4.6.tgz; \
	else true; fi

# Stock tools the verification recipe (docs/verify-without-evicap.md) and its test use: openssl, jq, sha256sum.
# A browser: one already found (EVICAP_BROWSER, Playwright's, or a system Chromium/Chrome) is kept; otherwise
# Playwright's own download where it is reachable, else the distribution's chromium package.
browser: $(STAMP) browser-user
	@scripts/install-browser.sh $(BIN)/python
	@scripts/install-tools.sh

# Debian's redis-server: the distributed batch's tests start their own, on a free 127.0.0.1 port, in a temp dir.
redis-server:
	@command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server; }

# As root, evicap runs the browser as this unprivileged account so that Chromium's sandbox works (docs/safety.md).
browser-user:
	@scripts/install-browser-user.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/bench_capture.py

clean:
	rm -rf $(VENV) $(PYWB_VENV) $(WACZ_VENV) $(RWP_DIR) evidence-demo build dist .pytest_cache .mypy_cache .ruff_cache

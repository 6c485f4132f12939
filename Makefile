# Two commands on a fresh machine: `make run` (the sandbox) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test tools bench clean browser screenshots
JS_STAMP := node_modules/.voiceops-installed

$(STAMP): pyproject.toml
	@echo "voiceops: setting up $(VENV): installing voiceops and its dependencies" \
	      "(a minute or two the first time; pip lists each package as it goes)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install --progress-bar on -e '.[test]'
	touch $@

## run: set up, then run voiceops with the bundled LiveKit emulator (Ctrl-C drains and stops)
run: $(STAMP) $(JS_STAMP)
	$(BIN)/voiceops run --sandbox --config config/voiceops.toml

## tools: the Debian tools the tests use (prometheus, promtool, alertmanager, systemd-analyze)
tools:
	bash scripts/install-tools.sh

## test: set up, then run the whole test suite (the command .ci/run calls)
test: $(STAMP) $(JS_STAMP) tools browser
	bash scripts/run-tests.sh

## lint: ruff (src tests bench), mypy --strict (src), no import cycles in src (.ci/run runs it first)
.PHONY: lint
lint: $(STAMP)
	@rc=0; \
	$(BIN)/ruff check src tests bench || rc=1; \
	$(BIN)/mypy src || rc=1; \
	$(BIN)/python scripts/check-imports.py || rc=1; \
	exit $$rc

## bench: benchmarks, printed as ratios against a baseline measured in the same run
bench: $(STAMP)
	$(BIN)/python -m bench

## the debug page's JS SDK (livekit-client, pinned in package-lock.json) via npm ci
$(JS_STAMP): package.json package-lock.json
	bash scripts/install-js.sh

## browser: Debian's Chromium for the browser tests (scripts/install-browser.sh)
browser:
	bash scripts/install-browser.sh

## screenshots: the browser tests, writing their screenshots into docs/screenshots (README)
screenshots: $(STAMP) $(JS_STAMP) browser
	VOICEOPS_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots bash scripts/run-tests.sh tests/browser

## clean: remove the venv, the tools and what install-tools.sh put outside the checkout
clean:
	-test ! -x .letta/venv/bin/python || bash scripts/letta-server.sh clean
	bash scripts/install-tools.sh --clean
	rm -rf $(VENV) .tools .pytest_cache run .letta node_modules

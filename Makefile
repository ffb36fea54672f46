# medgan: set-up, demo and tests. `make demo` and `make test` work on a fresh machine
# with Python 3.11; both are idempotent and skip the install when nothing changed.

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.medgan-installed
# torch is pinned first: this CPU build lies on the machine's disk; a plain `torch`
# requirement would pull a multi-GB CUDA build.
TORCH_PIN ?= torch==2.13.0
DEMO_OUT ?= demo_out
PYTEST_ARGS ?=

.PHONY: setup demo test lint clean-demo browser

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check $(TORCH_PIN)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/medgan demo --out $(DEMO_OUT)

# The report's browser test opens report.html in Debian's headless chromium through chromedriver.
# Installed with apt when missing (as root, or through sudo); without them that one test is skipped.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "installing chromium + chromedriver for the report's browser test"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
		|| echo "apt could not install chromium: the report's browser test will be skipped"; \
	elif command -v apt-get >/dev/null && command -v sudo >/dev/null; then \
		sudo DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
		|| echo "apt could not install chromium: the report's browser test will be skipped"; \
	else echo "chromium / chromedriver missing and no apt: the report's browser test will be skipped"; fi

# One pytest-xdist worker per core, one torch thread each (tests/conftest.py); worksteal keeps the
# long end-to-end tests from queueing behind each other.
test: setup browser
	$(BIN)/python -m pytest -q -n auto --dist worksteal $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check medgan pipelines tests benchmarks

clean-demo:
	rm -rf $(DEMO_OUT)

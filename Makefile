# CallGuard developer loop. Every target creates .venv and installs the package first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench fuzz chaos lint clean prompts speech

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "CallGuard needs Python 3.11 or newer; this is " + sys.version.split()[0])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP) speech
	$(BIN)/callguard demo

test: $(STAMP) speech
	$(BIN)/python -m pytest -q

fuzz: $(STAMP)
	CALLGUARD_FUZZ_LINES=2000000 $(BIN)/python -m pytest -q tests/modem/test_protocol_fuzz.py

# The daemon on the simulated line under random faults (issue 11), CHAOS_MINUTES long (30).
chaos: $(STAMP)
	$(BIN)/python tests/chaos.py --minutes $${CHAOS_MINUTES:-30}

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

lint: $(STAMP)
	$(BIN)/ruff check callguard tests benchmarks
	$(BIN)/ruff format --check callguard tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis

# Re-render the prompts that ship pre-rendered (callguard/data), after changing their text.
prompts: $(STAMP)
	$(BIN)/python -c 'import subprocess; from callguard.audio.prompts import SHIPPED, DEFAULT_VOICE, DEFAULT_SPEED_WPM, shipped; [subprocess.run(["espeak-ng", "-v", DEFAULT_VOICE, "-s", str(DEFAULT_SPEED_WPM), "-w", str(shipped(n)), t], check=True) for n, t in SHIPPED.items()]'

# espeak-ng renders the spoken warnings. Installed here when this machine allows it (root with
# apt); otherwise CallGuard uses its pre-rendered default warning and the tests that need
# espeak-ng are skipped, saying why.
speech:
	@command -v espeak-ng >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing espeak-ng (apt-get)"; \
	    { apt-get install -y -qq espeak-ng || { apt-get update -qq && apt-get install -y -qq espeak-ng; }; } >/dev/null 2>&1 \
	      || echo "espeak-ng could not be installed: speech tests will be skipped"; \
	  else \
	    echo "espeak-ng is not installed (sudo apt install espeak-ng): speech tests will be skipped"; \
	  fi; }

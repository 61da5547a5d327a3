# CallGuard developer loop. Every target creates .venv and installs the package first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The exact libraries every unit gets (install.sh installs from it with --require-hashes).
LOCK := requirements/callguard.txt

.PHONY: demo test bench fuzz chaos lint clean prompts places speech browser broker lock lock-upgrade lock-check

# The runtime libraries come from the lock, with their hashes checked, so the tests run on what
# the units run; then CallGuard itself (editable) and the developer tools.
$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "CallGuard needs Python 3.11 or newer; this is " + sys.version.split()[0])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP) speech
	$(BIN)/callguard demo

# -n 4 on 2 cores: most tests wait on the simulated line, so four workers keep both busy.
test: $(STAMP) speech browser broker
	$(BIN)/python -m pytest -q -n 4

fuzz: $(STAMP)
	CALLGUARD_FUZZ_LINES=2000000 $(BIN)/python -m pytest -q tests/modem/test_protocol_fuzz.py

# The daemon on the simulated line under random faults (issue 11), CHAOS_MINUTES long (30).
# First the fault suite at length (1000-cycle unplug storms, 20,000 call-machine sequences).
chaos: $(STAMP)
	CALLGUARD_CHAOS_CYCLES=1000 CALLGUARD_CHAOS_EXAMPLES=20000 $(BIN)/python -m pytest -q \
	  tests/modem/test_transport_faults.py tests/core/test_call_properties.py
	$(BIN)/python tests/chaos.py --minutes $${CHAOS_MINUTES:-30}

bench: $(STAMP) broker
	$(BIN)/python benchmarks/run.py

lint: $(STAMP)
	$(BIN)/ruff check callguard tests benchmarks
	$(BIN)/ruff format --check callguard tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_architecture.py  # the import contract

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis

# Re-render the prompts that ship pre-rendered (callguard/data), after changing their text.
prompts: $(STAMP)
	$(BIN)/python -c 'import subprocess; from callguard.audio.prompts import SHIPPED, DEFAULT_VOICE, DEFAULT_SPEED_WPM, shipped; [subprocess.run(["espeak-ng", "-v", DEFAULT_VOICE, "-s", str(DEFAULT_SPEED_WPM), "-w", str(shipped(n)), t], check=True) for n, t in SHIPPED.items()]'

# Re-extract the UK towns by dialling prefix (callguard/data/uk-places.tsv) from the installed
# phonenumbers' geocoder data, after the lock upgrades phonenumbers; commit the result.
places: $(STAMP)
	$(BIN)/python tools/make_places.py

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

# Debian's chromium and chromium-driver run the browser tests (tests/browser.py) headless.
# Installed here when this machine allows it (root with apt); otherwise those tests are skipped,
# saying why.
browser:
	@{ command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium and chromium-driver (apt-get)"; \
	    { apt-get install -y -qq chromium chromium-driver || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver; }; } >/dev/null 2>&1 \
	      || echo "chromium could not be installed: browser tests will be skipped"; \
	  else \
	    echo "chromium is not installed (sudo apt install chromium chromium-driver): browser tests will be skipped"; \
	  fi; }

# Debian's mosquitto is the real MQTT broker the fleet tests start on 127.0.0.1 (tests/broker.py),
# and the fleet benchmark's. Installed here when this machine allows it (root with apt);
# otherwise those tests are skipped, saying why.
broker:
	@{ command -v mosquitto || test -x /usr/sbin/mosquitto; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing mosquitto (apt-get)"; \
	    { apt-get install -y -qq mosquitto || { apt-get update -qq && apt-get install -y -qq mosquitto; }; } >/dev/null 2>&1 \
	      || echo "mosquitto could not be installed: fleet tests will be skipped"; \
	  else \
	    echo "mosquitto is not installed (sudo apt install mosquitto): fleet tests will be skipped"; \
	  fi; }

# The lock: [project].dependencies and [build-system].requires (install.sh builds CallGuard with
# the pinned setuptools, --no-build-isolation), resolved by uv once for every Python the project
# allows (Bookworm's 3.11, Trixie's 3.13) and every platform, with the sha256 of every file,
# wheels only.
# `make lock` keeps every pin that still fits pyproject.toml; `make lock-upgrade` takes the newest.
# Both need PyPI. Commit the lock with the pyproject.toml change that needed it.
UV_COMPILE := $(BIN)/uv pip compile pyproject.toml - --universal --generate-hashes \
	--only-binary :all: --emit-build-options --custom-compile-command 'make lock' --quiet \
	--output-file $(LOCK)
BUILD_REQUIRES := $(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")'

lock: $(STAMP)
	build=$$($(BUILD_REQUIRES)) && printf '%s\n' "$$build" | $(UV_COMPILE)

lock-upgrade: $(STAMP)
	build=$$($(BUILD_REQUIRES)) && printf '%s\n' "$$build" | $(UV_COMPILE) --upgrade

# Offline, in a second: the lock pins (==, with hashes) every dependency pyproject.toml names,
# within its specifier, and nothing it no longer needs (tests/test_version.py). Run by CI.
lock-check: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_version.py

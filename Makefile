# Two entry points, both self-contained on a fresh Debian machine:
#   make demo   set up .venv, then run the main job (outputs/)
#   make test   set up .venv, then run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SYSTEM_PACKAGES := libegl1 libgl1 libosmesa6 libgles2 libusb-1.0-0
PYTEST_ARGS ?=

.PHONY: demo test setup system-deps clean-venv

demo: setup
	$(BIN)/wm4d demo

test: setup
	$(BIN)/python -m pytest -q -n 2 $(PYTEST_ARGS)

setup: system-deps $(STAMP)

# Headless rendering (EGL/OSMesa) and GL libraries; installed only when missing.
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# torch==2.13.0 first: it resolves to the CPU wheel on disk; an unpinned torch would pull CUDA.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

clean-venv:
	rm -rf $(VENV)

# Two commands: `make demo` (set up everything, run the simulated Hi-ORS loop) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl

.PHONY: setup setup-test demo test lint bench clean

setup:
	tools/setup.sh

setup-test:
	tools/setup.sh --with-browser

demo: setup
	ROS_AUTOMATIC_DISCOVERY_RANGE=$${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST} $(VENV)/bin/hiors up tora_one --sim --episodes $${EPISODES:-12}

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: setup-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	$(VENV)/bin/hiors bench all

clean:
	rm -rf build install log $(VENV) runs

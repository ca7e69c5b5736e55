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

# The demo starts from a base policy (behaviour cloning on scripted demonstrations, the goal-state variant, at the
# learning benchmark's small size for raise_hand), pretrained once and reused, and ends by evaluating the starting
# and the final policy without the operator on the same held-out initial states.
DEMO_BASE ?= runs/base-tora_one

demo: setup
	@if [ ! -f $(DEMO_BASE)/policy/hiors_policy.json ]; then \
		rm -rf $(DEMO_BASE) && \
		$(VENV)/bin/hiors pretrain tora_one --goal-state --demos 16 --steps 300 --out $(DEMO_BASE); \
	fi
	ROS_AUTOMATIC_DISCOVERY_RANGE=$${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST} $(VENV)/bin/hiors up tora_one --sim \
		--base $(DEMO_BASE) --episodes $${EPISODES:-12} --eval-states 10

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

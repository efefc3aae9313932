# Two commands do all the set-up: `make demo` and `make test`.
# The virtual environment is made in .venv on first use, with torch pinned
# (constraints.txt) to the CPU build so that set-up never pulls CUDA wheels.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO := sample_projects/quickstart

.PHONY: demo test venv bench lint clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing workbench and its dependencies into $(VENV) ..."
	@$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]' 2>&1 | grep -v 'is ignored: it is neither' || true
	@$(PY) -c "import workbench, torch, textual" || (echo "set-up failed: see the pip output above" && exit 1)
	@touch $(STAMP)

venv: $(STAMP)

# In a terminal: the workbench app on the sample project (launch, watch, compare, resume).
# Without one (CI, a pipe): train SineRegression from the command line with a progress bar.
demo: $(STAMP)
	@if [ -t 0 ] && [ -t 1 ]; then \
		cd $(DEMO) && ../../$(VENV)/bin/workbench; \
	else \
		echo "no terminal: training SineRegression from the command line instead of opening the app"; \
		cd $(DEMO) && ../../$(PY) tasks/sine.py fit -s epochs=3; \
	fi

# --reruns 1: the suite drives ~200 real training processes on two cores at full load; a test
# that fails is run once more, and a pass on the second try is still reported ("R", "N rerun"
# in the summary) so that the flake gets looked at. One that fails twice fails the suite.
# compileall: every run, supervisor and CLI call of the suite is a new Python process; where
# the environment sets PYTHONDONTWRITEBYTECODE each would compile workbench anew (0.5 s here).
test: $(STAMP)
	@$(PY) -m compileall -q workbench > /dev/null
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest -q -n 2 --dist loadscope --reruns 1 --reruns-delay 2 -raR --durations=30

bench: $(STAMP)
	@for f in benchmarks/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache

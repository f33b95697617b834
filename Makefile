# Thin wrappers: every target calls a Python entry point of the package, so
# users without make run the same commands (see README "Without make").
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup lessons test data bench assignments clean

setup: $(STAMP)

# Re-install only when the dependency pins or the package metadata change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -c constraints.txt -e '.[dev]'
	$(PY) -m ipykernel install --user --name bnlesson --display-name "Python 3.11 (bnlesson)" >/dev/null
	touch $(STAMP)

lessons: $(STAMP)
	$(PY) -m bnlesson.lessons

test: $(STAMP)
	$(PY) -m pytest

data: $(STAMP)
	$(PY) -m bnlesson.data fetch

bench: $(STAMP)
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_bn.py

assignments: $(STAMP)
	$(PY) -m bnlesson.assignments

clean:
	rm -rf build .cache

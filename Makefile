# Two commands on a fresh machine (Python 3.11, git, make):
#   make demo   builds .venv, generates a synthetic world, loads it, runs the report
#   make test   builds .venv and runs the test suite (the DuckDB suite beside the Spark equivalence suite)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SPARK_STAMP := $(VENV)/.installed-spark

.PHONY: demo test test-core test-spark test-deep test-spark-deep java browser bytecode bench lab clean

# one pip run installs what a target needs: `make test` (a fresh clone in CI) installs the dev and
# the Spark extras at once and marks both done, rather than resolving the dev extras twice
define install
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[$(1)]'
	$(BIN)/python -m ipykernel install --sys-prefix --name cohortlab --display-name "cohortlab (Python 3)" >/dev/null
endef
WITH_SPARK := dev,spark

$(STAMP): pyproject.toml
	$(call install,dev)
	touch $(STAMP)

$(SPARK_STAMP): pyproject.toml
	$(call install,$(WITH_SPARK))
	touch $(STAMP) $(SPARK_STAMP)

demo: $(STAMP) bytecode
	$(BIN)/cohortlab demo

# cohortlab's modules compiled once (an editable install has no .pyc, and with PYTHONDONTWRITEBYTECODE
# set, as in many containers, every process compiled them again on import: each notebook kernel and
# CLI run of the tests, about 0.35 CPU-s each; docs/DEVELOPING.md#tests); up-to-date files are skipped
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q cohortlab bench

# the two suites run side by side once everything is installed: the Spark suite's JVM keeps about
# one and a half cores busy, so the DuckDB suite (-n 2) fills what it leaves (docs/DEVELOPING.md#tests);
# each suite's output is printed whole when it ends
test: $(SPARK_STAMP) java browser
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-core test-spark

# --dist loadscope: a module's tests go to one worker, so that its module-scoped fixtures (a
# generated world, a report run) are built once rather than once per worker
test-core: $(STAMP) browser bytecode
	$(BIN)/python -m pytest -q -n 2 --dist loadscope

# Spark needs a Java 17 runtime: installed with apt when missing (as root, e.g. in CI).
java:
	@command -v java >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; }

# The report tests look at every page in headless Chromium (skipped, with a message, without it):
# installed with apt when missing and when we may (as root, e.g. in CI); never fatal.
browser:
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || echo "chromium not installed: the browser checks will be skipped"

# the DuckDB suite with many more random worlds (docs/DEVELOPING.md#test-depth); not CI's
test-deep: $(STAMP) browser bytecode
	COHORTLAB_TEST_DEPTH=deep $(BIN)/python -m pytest -q -n 2 --dist loadscope

test-spark: $(SPARK_STAMP) java bytecode
	$(BIN)/python -m pytest -q -p no:xdist -m spark tests/spark

# the Spark suite with every API call of the equivalence test (docs/DEVELOPING.md#test-depth); not CI's
test-spark-deep: $(SPARK_STAMP) java bytecode
	COHORTLAB_TEST_DEPTH=deep $(BIN)/python -m pytest -q -p no:xdist -m spark tests/spark

bench: $(STAMP) bytecode
	$(BIN)/python -m bench

lab: $(STAMP) bytecode
	$(BIN)/cohortlab lab

clean:
	rm -rf $(VENV) build *.egg-info

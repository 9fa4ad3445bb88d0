# LinkMsg: the two commands a newcomer needs.
#   make run   install, migrate, load demo members (first run only), serve on :5000
#   make test  install if needed, run the whole suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test serve lint

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The embedded setup on purpose: SQLite in instance/ and the in-process event transport.
run: $(STAMP)
	env -u DATABASE_URL -u REDIS_URL $(BIN)/flask --app app db upgrade
	env -u DATABASE_URL -u REDIS_URL $(BIN)/flask --app app seed-demo
	env -u DATABASE_URL -u REDIS_URL MAIL_WORKER_THREAD=1 $(BIN)/flask --app app run --host 127.0.0.1 --port 5000 --with-threads

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check linkmsg tests bench
	$(BIN)/ruff format --check linkmsg tests bench

# LinkMsg: the two commands a newcomer needs.
#   make run   install, migrate, load demo members (first run only), serve on :5000
#   make test  install if needed, run the whole suite
#   make serve migrate, then gunicorn on PostgreSQL and Redis (DATABASE_URL, REDIS_URL)
PYTHON ?= python3
PORT ?= 5000
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
	env -u DATABASE_URL -u REDIS_URL MAIL_WORKER_THREAD=1 $(BIN)/flask --app app run --host 127.0.0.1 --port $(PORT) --with-threads

# Production-shaped: PostgreSQL, Redis and gunicorn with gunicorn.conf.py (BIND, default
# 127.0.0.1:8000; WEB_CONCURRENCY, default one gevent worker per core).
serve: $(STAMP)
	@test -n "$$DATABASE_URL" || { echo "make serve needs DATABASE_URL, e.g. DATABASE_URL=postgresql://user@host:5432/linkmsg" >&2; exit 1; }
	@test -n "$$REDIS_URL" || { echo "make serve needs REDIS_URL, e.g. REDIS_URL=redis://127.0.0.1:6379/0 (live events cross workers and hosts through Redis)" >&2; exit 1; }
	@test -n "$$SECRET_KEY" || echo "make serve: SECRET_KEY is not set, so instance/secret_key is used; set the same SECRET_KEY on every host" >&2
	$(BIN)/flask --app app db upgrade
	exec $(BIN)/gunicorn -c gunicorn.conf.py

# The suite runs in parallel (pytest-xdist), one worker per core: most of its time is spent
# waiting on sockets, browsers, servers and subprocesses. Each worker has its own databases
# and Chromium. Tests marked xdist_group (a module's shared demo site) stay on one worker.
# PYTEST_WORKERS=0 runs everything in this one process.
PYTEST_WORKERS ?= auto
test: $(STAMP)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

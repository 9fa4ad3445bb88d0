"""Extension instances, bound to an app in `create_app`."""

import sqlite3

from flask import request
from flask_limiter import Limiter
from flask_login import LoginManager, current_user
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import Engine, MetaData
from sqlalchemy import event as sa_event
from sqlalchemy.orm import DeclarativeBase

# Named constraints so that Alembic can alter and drop them on SQLite and PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()


def member_or_address() -> str:
    """Rate limits count per member when logged in, per address otherwise."""
    if current_user and current_user.is_authenticated:
        return f"member:{current_user.id}"
    return f"addr:{request.remote_addr or 'unknown'}"


limiter = Limiter(key_func=member_or_address, default_limits=[])


def redis_client_options(config) -> dict:
    """Keyword arguments for every Redis client of the app (`redis.Redis.from_url`).

    Without socket timeouts redis-py waits forever on a Redis that accepts connections
    but never answers, and so does every request that needs it.
    """
    timeout = config["REDIS_SOCKET_TIMEOUT"]
    return {"socket_timeout": timeout, "socket_connect_timeout": timeout}


# SQLite: every transaction takes the write lock when it begins (BEGIN IMMEDIATE), so
# overlapping requests queue for it instead of failing with "database is locked" when a
# reader turns writer; a request waits up to SQLITE_BUSY_SECONDS for its turn.
SQLITE_BUSY_SECONDS = 30


@sa_event.listens_for(Engine, "connect")
def _sqlite_connect(dbapi_connection, connection_record):
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.isolation_level = None  # transactions are begun below, not by pysqlite
        dbapi_connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_SECONDS * 1000}")


@sa_event.listens_for(Engine, "begin")
def _sqlite_begin(connection):
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")

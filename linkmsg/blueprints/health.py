"""`/healthz`: can this process reach its database (and Redis, when configured)?
`/ping`: a constant answer, the baseline of the page benchmark (bench/pages.py)."""

from flask import Blueprint, current_app, jsonify

from ..extensions import db

bp = Blueprint("health", __name__)


@bp.route("/healthz")
def healthz():
    checks = {"database": _check_database()}
    if current_app.config.get("REDIS_URL"):
        checks["redis"] = _check_redis(current_app.config["REDIS_URL"])
    healthy = all(value == "ok" for value in checks.values())
    response = jsonify(status="ok" if healthy else "unavailable", checks=checks)
    response.status_code = 200 if healthy else 503
    response.headers["Cache-Control"] = "no-store"
    if not healthy:
        response.headers["Retry-After"] = str(current_app.config["RETRY_AFTER_SECONDS"])
    return response


@bp.route("/ping")
def ping():
    """Answers "pong" through the same app, middleware and headers as every page, with no
    database work: bench/pages.py compares page throughput with this route's."""
    return "pong", 200, {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"}


def _check_database() -> str:
    try:
        db.session.execute(db.text("SELECT 1"))
        return "ok"
    except Exception as error:  # any failure means "unreachable"; the reason is reported
        db.session.rollback()
        return f"error: {type(error).__name__}"


def _check_redis(url: str) -> str:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
        finally:
            client.close()
        return "ok"
    except Exception as error:
        return f"error: {type(error).__name__}"

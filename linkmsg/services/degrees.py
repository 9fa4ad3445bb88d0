"""Degrees of connection: 1st (connected), 2nd, 3rd, or out of network, one pair or a
page at a time; mutual connections."""

from __future__ import annotations

from functools import cache

from sqlalchemy import ARRAY, Integer, and_, bindparam, case, func, text
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import Connection

FIRST, SECOND, THIRD, OUT_OF_NETWORK = 1, 2, 3, None
DEGREE_LABELS = {FIRST: "1st", SECOND: "2nd", THIRD: "3rd", OUT_OF_NETWORK: "Out of network"}


def degree_expression(a, b):
    """The degree from member `a` to `b` (each a member id column or a bound parameter)
    as an SQL expression: 1, 2, 3, or 0 for out of network. Usable alone or as a column
    of a larger query (the profile page asks it with everything else in one statement).
    Building it costs milliseconds of Python: build it once, with bound parameters.

    Meet in the middle: a's neighbours are expanded one step (about 50 x 50 index reads
    on a network of 50 connections each) and met with b's own neighbours through the
    primary key of `connection`. Nothing walks the graph beyond that, and nothing leaves
    SQL.
    """
    x, m, y = aliased(Connection), aliased(Connection), aliased(Connection)
    first = (
        db.select(Connection.member_id)
        .where(Connection.member_id == a, Connection.other_id == b)
        .exists()
    )
    second = (
        db.select(x.member_id)
        .join(y, and_(y.member_id == x.other_id, y.other_id == b))
        .where(x.member_id == a)
        .exists()
    )
    third = (
        db.select(x.member_id)
        .join(m, m.member_id == x.other_id)
        .join(y, and_(y.member_id == b, y.other_id == m.other_id))
        .where(x.member_id == a)
        .exists()
    )
    return case((first, FIRST), (second, SECOND), (third, THIRD), else_=0)


def mutual_expression(a, b):
    """How many connections members `a` and `b` (each a column or a bound parameter)
    share, as an SQL expression."""
    x, y = aliased(Connection), aliased(Connection)
    return (
        db.select(func.count())
        .select_from(x)
        .join(y, and_(y.member_id == x.other_id, y.other_id == b))
        .where(x.member_id == a)
        .scalar_subquery()
    )


# 2nd: a member with a connection who is one of :a's; 3rd: with one who is a connection of
# one of :a's. Both read the members' own connections (each connection is stored once per
# direction). The 2nd degree read from :a's side instead (every connection of each of
# :a's, each compared with the ids) cost PostgreSQL a fifth more for the whole statement.
_BATCH_DEGREE_SQL = text(
    """
    SELECT other_id, 1 FROM connection WHERE member_id = :a AND other_id IN :ids
    UNION ALL
    SELECT DISTINCT c.member_id, 2 FROM connection c
      WHERE c.member_id IN :ids AND c.other_id IN (
        SELECT other_id FROM connection WHERE member_id = :a)
    UNION ALL
    SELECT DISTINCT c.member_id, 3 FROM connection c
      WHERE c.member_id IN :ids AND c.other_id IN (
        SELECT m.other_id FROM connection x JOIN connection m ON m.member_id = x.other_id
        WHERE x.member_id = :a)
    """
).bindparams(bindparam("ids", expanding=True))

# The same on PostgreSQL with the ids as one array: one statement for any number of
# them, which PostgreSQL plans once and keeps (the list spelled out made a statement per
# length, planned anew at every search, 0.24-0.36 ms, and a plan kept for it would build
# the list again for every row it filters).
_BATCH_DEGREE_SQL_ARRAY = text(
    _BATCH_DEGREE_SQL.text.replace("IN :ids", "= ANY(CAST(:ids AS integer[]))")
).bindparams(bindparam("ids", type_=ARRAY(Integer)))


def degree(a_id: int, b_id: int) -> int | None:
    """1, 2 or 3 for the degree between two members, None when out of network (or self)."""
    if a_id == b_id:
        return None
    value = db.session.scalar(_pair_statements()[0], {"a": a_id, "b": b_id})
    return value or None


@cache
def _pair_statements():
    """SELECT of the degree, and of the mutual count, between :a and :b (built once)."""
    a, b = bindparam("a", type_=Integer), bindparam("b", type_=Integer)
    return db.select(degree_expression(a, b)), db.select(mutual_expression(a, b))


def degrees(viewer_id: int, member_ids: list[int]) -> dict[int, int | None]:
    """Degrees from one member to a page of others, in one query."""
    ids = sorted({m for m in member_ids if m != viewer_id})
    result: dict[int, int | None] = dict.fromkeys(member_ids)
    if not ids:
        return result
    array = db.session.get_bind().dialect.name == "postgresql"
    statement = _BATCH_DEGREE_SQL_ARRAY if array else _BATCH_DEGREE_SQL
    rows = db.session.connection().execute(statement, {"a": viewer_id, "ids": ids})
    for member_id, value in rows:
        current = result.get(member_id)
        if current is None or value < current:
            result[member_id] = value
    return result


def degree_column(viewer_id: int, member_id):
    """The viewer's degree to `member_id` (a column of the enclosing query) as a column:
    1, 2, 3 or NULL, by the same three steps as `_DEGREE_SQL`, for a short list of
    members read with their degrees in one statement (a group's header). The member
    themselves come out as 2nd: leave them out."""
    return func.nullif(degree_expression(viewer_id, member_id), 0)


def degree_label(value: int | None) -> str:
    return DEGREE_LABELS[value]


def mutual_count(a_id: int, b_id: int) -> int:
    if a_id == b_id:
        return 0
    return db.session.scalar(_pair_statements()[1], {"a": a_id, "b": b_id})


def are_connected(a_id: int, b_id: int) -> bool:
    return db.session.get(Connection, (a_id, b_id)) is not None

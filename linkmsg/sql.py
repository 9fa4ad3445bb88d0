"""SQL the services share where SQLAlchemy has no portable spelling: a list per row.

`json_rows(query, order_by=...)` is a column holding, for each row of the outer query,
the rows of `query` (correlated to it) as a list of dicts, so that a page whose rows
each show a few things of their own (labels, the first members of a group) is one
statement instead of one per kind of thing. It compiles to
`json_agg(json_build_object(...))` on PostgreSQL and
`json_group_array(json_object(...))` on SQLite.

Values come back as JSON has them: numbers and strings as such, NULL as None, booleans
as true/false on PostgreSQL but 1/0 on SQLite, timestamps as text; select what a row
shows, not whole entities.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from sqlalchemy import func, literal_column, select, type_coerce, types
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement, Select
from sqlalchemy.sql.functions import FunctionElement

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ORDINAL = "_n"  # each row's place in `order_by`: an aggregate keeps no order of its own


class _Spelled(FunctionElement):
    """A function SQLite and PostgreSQL spell differently (`names`, by dialect; SQLite's
    for any other)."""

    inherit_cache = True
    names: dict[str, str] = {}


class _json_object(_Spelled):
    """json_object('key', value, ...)."""

    inherit_cache = True
    names = {"sqlite": "json_object", "postgresql": "json_build_object"}


class _json_array_agg(_Spelled):
    """The aggregate of JSON values into one array."""

    inherit_cache = True
    names = {"sqlite": "json_group_array", "postgresql": "json_agg"}


def _spelled(element, compiler, **kw):
    name = element.names.get(compiler.dialect.name, element.names["sqlite"])
    return f"{name}({compiler.process(element.clauses, **kw)})"


for _element in (_json_object, _json_array_agg):
    compiles(_element)(_spelled)


class JsonRows(types.TypeDecorator):
    """The result of `json_rows`: a list of dicts, in order ([] for no rows)."""

    impl = types.Text
    cache_ok = True

    def process_result_value(self, value, dialect):
        if value is None:
            return []
        if isinstance(value, str | bytes):
            value = json.loads(value)  # SQLite gives text; psycopg decodes json itself
        value.sort(key=lambda row: row.get(_ORDINAL, 0))
        for row in value:
            row.pop(_ORDINAL, None)
        return value


def json_rows(query: Select, *, order_by: Sequence = ()) -> ColumnElement:
    """A scalar subquery: the rows of `query` as a list of dicts keyed by its column
    names (label them), in the order of `order_by` (which `query` is ordered by too, so
    that a LIMIT keeps the first ones). Correlate `query` to the outer query explicitly
    (`.correlate(...)`): it is read from inside a derived table."""
    if order_by:
        query = query.order_by(*order_by).add_columns(
            func.row_number().over(order_by=list(order_by)).label(_ORDINAL)
        )
    rows = query.subquery()
    pairs = []
    for column in rows.c:
        if not _KEY.fullmatch(column.key):
            raise ValueError(f"json_rows needs plain column names, not {column.key!r}")
        pairs += [literal_column(f"'{column.key}'"), column]
    aggregate = select(_json_array_agg(_json_object(*pairs))).select_from(rows)
    return type_coerce(aggregate.scalar_subquery(), JsonRows())

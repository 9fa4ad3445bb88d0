"""Rows folded into one JSON column, on SQLite and PostgreSQL alike: a page asks for a
member's labels, or a thread's, inside a statement it runs anyway (issue 20)."""

from __future__ import annotations

from sqlalchemy import JSON
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class _object(FunctionElement):
    type = JSON()
    inherit_cache = True


class _array_of(FunctionElement):
    type = JSON()
    inherit_cache = True


# The function each dialect calls: (SQLite's, PostgreSQL's).
for _element, (_sqlite, _postgresql) in {
    _object: ("json_object", "json_build_object"),
    _array_of: ("json_group_array", "json_agg"),
}.items():
    for _dialect, _name in ((None, _sqlite), ("postgresql", _postgresql)):

        def _compile(element, compiler, _name=_name, **kw):
            return f"{_name}({compiler.process(element.clauses, **kw)})"

        compiles(_element, *([_dialect] if _dialect else []))(_compile)


def json_rows(**columns):
    """An aggregate of one JSON object per row, keyed as named: use it as the column of
    a `select(...).where(...)` taken as a scalar subquery. Reads back as a list of dicts
    (None for no rows on PostgreSQL: read it with `rows_of`). Order is not kept."""
    pairs = []
    for name, column in columns.items():
        pairs += [_literal(name), column]
    return _array_of(_object(*pairs))


def rows_of(value) -> list[dict]:
    return value or []


def _literal(name: str):
    from sqlalchemy import literal_column

    if not name.isidentifier():
        raise ValueError(name)
    return literal_column(f"'{name}'")

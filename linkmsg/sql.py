"""SQL the services share where SQLAlchemy has no portable spelling (a list per row, a
state as one value) or costs more than the read (entities made from rows read through
Core, at the end of this module).

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
from datetime import datetime

from sqlalchemy import case, cast, func, literal_column, null, select, type_coerce, types
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import class_mapper
from sqlalchemy.orm.attributes import instance_state
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


# ------------------------------------------------------------------ a state as one value
#
# `state_digest(*parts)` is one text value that changes whenever the rows of any part
# change: a cache of something rendered from those rows is keyed by it, read in the
# same statement as what it caches. Each part is a SELECT of one text column, one value
# per row that spells the whole row (so that different rows never spell the same text);
# the parts' rows are joined with ';' in their order, the parts with '|', and on
# PostgreSQL the whole is hashed (md5) so that a member with many rows sends 32 bytes.
# Past `most` rows in a part there is no state (NULL): reading it would cost more than
# what it saves.


class _text_agg(FunctionElement):
    """The values of one text column joined with ';', in the order they are read (that
    of an ordered subquery, in practice on both databases; another order changes the
    text, which is a miss, never a wrong match)."""

    inherit_cache = True
    type = types.Text()


@compiles(_text_agg)
def _text_agg_sqlite(element, compiler, **kw):
    return f"group_concat({compiler.process(element.clauses, **kw)}, ';')"


@compiles(_text_agg, "postgresql")
def _text_agg_postgresql(element, compiler, **kw):
    return f"string_agg({compiler.process(element.clauses, **kw)}, ';')"


class _digest(FunctionElement):
    """md5 on PostgreSQL; the text itself on SQLite (which has no hash function)."""

    inherit_cache = True
    type = types.Text()


@compiles(_digest)
def _digest_sqlite(element, compiler, **kw):
    return compiler.process(element.clauses, **kw)


@compiles(_digest, "postgresql")
def _digest_postgresql(element, compiler, **kw):
    return f"md5({compiler.process(element.clauses, **kw)})"


class spelled(FunctionElement):
    """One row as text that no other row spells the same: on PostgreSQL the row's own
    text form (`CAST(ROW(...) AS TEXT)`: NULL empty, text quoted where it holds a comma,
    a quote or a parenthesis); on SQLite each value cast to text, NULL as '~', joined by
    ','. Put free text (a name) last, or spell it with its length first, so that no two
    rows read the same on SQLite either."""

    inherit_cache = True
    type = types.Text()


@compiles(spelled)
def _spelled_sqlite(element, compiler, **kw):
    text = None
    for value in element.clauses:
        value = func.coalesce(cast(value, types.Text), _NULL)
        text = value if text is None else text.concat(_COMMA).concat(value)
    return compiler.process(text, **kw)


@compiles(spelled, "postgresql")
def _spelled_postgresql(element, compiler, **kw):
    # A short spelling keeps the session loader's statement, which reads a list's
    # state, under the length psycopg caches the conversion of (4,096 characters).
    return f"CAST(ROW({compiler.process(element.clauses, **kw)}) AS TEXT)"


# Constants written into the statement, not bound: a part of a few columns would
# otherwise carry a dozen parameters.
_NULL, _COMMA, _BAR, _EMPTY = (literal_column(f"'{c}'", types.Text) for c in ("~", ",", "|", ""))


def state_digest(*parts: Select, most: int) -> ColumnElement:
    """A scalar subquery: the text (or hash) of all the parts' rows; see above. NULL
    (no state) when any part has more than `most` rows, so that what the state costs to
    read is bounded whoever asks; each part should be ordered (a part read in another
    order gives another value: never a false match, a miss)."""
    whole = None
    for part in parts:
        if len(part.selected_columns) != 1:
            raise ValueError("each part of a state digest selects one text column")
        # Written in, not bound: a bound number costs the statement a dozen characters.
        rows = part.limit(literal_column(str(int(most) + 1))).subquery()
        count, most_rows = func.count(), literal_column(str(int(most)))
        joined = select(
            case((count > most_rows, null()), else_=func.coalesce(_text_agg(rows.c[0]), _EMPTY))
        ).scalar_subquery()
        whole = joined if whole is None else whole.concat(_BAR).concat(joined)
    return _digest(whole)


# ------------------------------------------------------------------ entities through Core
#
# A page's hottest reads spend more in the ORM's loading (a compile state, a row
# processor per entity per execution, the identity map, a unique() pass) than in the
# database. Such a read can select the entities' columns through Core and make the
# instances itself: `CoreEntities(Thread, Member)` gives the columns to select and, from
# a row, the instances as the ORM would have loaded them, detached (outside the session),
# with the relationship values the caller gives. Their column attributes are all loaded;
# an attribute not given (a relationship) is not, and reading it raises, as it does on
# any detached instance. For reads whose objects are only read: a service that changes
# an object loads it through the session.


class CoreEntities:
    """Mapped classes read through Core, their columns selected in order."""

    def __init__(self, *classes):
        self.parts, self.columns = [], []
        for cls in classes:
            mapper = class_mapper(cls)
            keys = [prop.key for prop in mapper.column_attrs]
            identity = [
                keys.index(mapper.get_property_by_column(c).key) for c in mapper.primary_key
            ]
            self.parts.append((mapper, keys, identity))
            self.columns += [prop.columns[0] for prop in mapper.column_attrs]
        self.names = [key for _mapper, keys, _identity in self.parts for key in keys]
        # How a value read back from JSON (`json_rows`) becomes the column's: timestamps
        # come as text, and booleans as 1/0 on SQLite; the rest as they are.
        self.from_json = [_FROM_JSON.get(column.type._type_affinity) for column in self.columns]

    def instances(self, row, start: int = 0, **given) -> list:
        """The instances from `row`'s values from position `start`; None for a class
        whose primary key is NULL there (an outer join that found nothing). `given`:
        values of further attributes (relationships), the same objects for every
        instance of this call."""
        found, position = [], start
        for mapper, keys, identity in self.parts:
            values = row[position : position + len(keys)]
            position += len(keys)
            key = tuple(values[n] for n in identity)
            if None in key:
                found.append(None)
            else:
                found.append(detached(mapper, dict(zip(keys, values, strict=True), **given), key))
        return found

    def labelled(self, prefix: str) -> list:
        """The columns labelled for `json_rows`: `prefix` and the attribute's name."""
        return [c.label(prefix + n) for c, n in zip(self.columns, self.names, strict=True)]

    def instances_from_json(self, values: dict, prefix: str = "", **given) -> list:
        """`instances` from one of `json_rows`' dicts of `labelled(prefix)` columns."""
        row = []
        for name, convert in zip(self.names, self.from_json, strict=True):
            value = values[prefix + name]
            row.append(value if convert is None or value is None else convert(value))
        return self.instances(row, **given)


_FROM_JSON = {types.DateTime: datetime.fromisoformat, types.Boolean: bool}


def detached(mapper, values: dict, key: tuple):
    """An instance of `mapper`'s class with these attribute values, as if loaded and then
    detached: its identity `key` (the primary key's values) set and nothing pending, as
    `make_transient_to_detached` leaves one, at a quarter of its cost (it works out
    which attributes to expire, and nothing was set through them here)."""
    instance = mapper.class_manager.new_instance()
    state = instance_state(instance)
    state.dict.update(values)
    state.key = mapper.identity_key_from_primary_key(key)
    return instance

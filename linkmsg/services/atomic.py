"""The two tools every read-then-write in the services uses to stay correct when
requests overlap.

- `lock_members`: `SELECT ... FOR UPDATE` on member rows, always in id order. A
  transaction that decides something from a count or a balance of a member (a cap, a
  credit) takes that member's lock first, so that overlapping requests decide one after
  another, each on what the previous one committed. Taking every lock a transaction
  needs up front and in id order is what keeps two overlapping transactions from
  waiting on each other (a deadlock).
- `insert_ignoring_conflict`: INSERT ... ON CONFLICT DO NOTHING, for rows a unique
  constraint already guards.

PostgreSQL takes row locks; SQLite ignores FOR UPDATE, its writers are serialized by the
database lock instead.
"""

from __future__ import annotations

from sqlalchemy import literal

from ..extensions import db
from ..models import Member


def lock_members(*member_ids: int | None) -> None:
    """Hold these members' rows until the transaction ends (in id order).

    FOR NO KEY UPDATE: lockers wait for each other, but rows that merely reference the
    member (a message, a ledger entry: a foreign key's KEY SHARE lock) do not, so a
    transaction that inserted such a row earlier never deadlocks against this lock.
    """
    ids = sorted({member_id for member_id in member_ids if member_id is not None})
    if ids:
        db.session.execute(
            db.select(Member.id)
            .where(Member.id.in_(ids))
            .order_by(Member.id)
            .with_for_update(key_share=True)
        ).all()


def insert_ignoring_conflict(
    model, values: dict, index_elements: list[str], index_where=None, *, where=None
):
    """INSERT ... ON CONFLICT DO NOTHING RETURNING id: the id, or None when the row existed.

    Atomic on PostgreSQL and SQLite alike, so concurrent first messages or double
    submits cannot create two rows. With `where` (a condition), the row is inserted only
    when it holds, in the same statement (INSERT ... SELECT ... WHERE).
    """
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = db.session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)
    if where is None:
        insert = insert.values(**values)
    else:
        columns = model.__table__.c
        row = db.select(*(literal(v, columns[k].type) for k, v in values.items())).where(where)
        # (The WHERE is also what lets SQLite read ON CONFLICT after a SELECT.)
        insert = insert.from_select(list(values), row)
    statement = insert.on_conflict_do_nothing(
        index_elements=index_elements, index_where=index_where
    ).returning(model.id)
    return db.session.execute(statement).scalar()

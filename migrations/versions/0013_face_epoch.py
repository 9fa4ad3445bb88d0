"""face epoch: one number that grows whenever any member's name, headline, handle or
avatar changes, kept by a trigger on `member`

A member's Messaging list shows other members' faces (name, headline, avatar); a list
kept rendered (linkmsg/list_pane.py) is keyed by this number among others, so that a
new name is never hidden behind a kept list. A trigger rather than the services: no way
of writing these columns can forget it.

SQLite: a later migration that rebuilds `member` (batch_alter_table) drops the trigger
and must create it again (`tests/test_list_pane.py` renames a member on each database).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 01:15:00.000000

"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

CHANGED = (
    "OLD.name IS DISTINCT FROM NEW.name OR OLD.headline IS DISTINCT FROM NEW.headline"
    " OR OLD.handle IS DISTINCT FROM NEW.handle"
    " OR OLD.avatar_key IS DISTINCT FROM NEW.avatar_key"
)

# One more; the row is made again should it ever be deleted (a test emptying every table).
COUNT = (
    "INSERT INTO face_epoch (id, value) VALUES (1, 1)"
    " ON CONFLICT (id) DO UPDATE SET value = face_epoch.value + 1"
)


def upgrade():
    op.create_table(
        "face_epoch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_face_epoch_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_face_epoch")),
    )
    op.execute("INSERT INTO face_epoch (id, value) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION face_epoch_next() RETURNS trigger LANGUAGE plpgsql AS $$"
            f" BEGIN {COUNT}; RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER member_face_changed AFTER UPDATE ON member FOR EACH ROW"
            f" WHEN ({CHANGED}) EXECUTE FUNCTION face_epoch_next()"
        )
    else:
        op.execute(
            "CREATE TRIGGER member_face_changed AFTER UPDATE ON member FOR EACH ROW"
            f" WHEN {CHANGED.replace('IS DISTINCT FROM', 'IS NOT')}"
            f" BEGIN {COUNT}; END"
        )


def downgrade():
    op.execute(
        "DROP TRIGGER IF EXISTS member_face_changed"
        + (" ON member" if op.get_bind().dialect.name == "postgresql" else "")
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS face_epoch_next()")
    op.drop_table("face_epoch")

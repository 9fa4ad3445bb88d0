"""per-member event sequence

Events were numbered by one global id, handed out at insert, while transactions commit
and publish in another order: a stream that skipped "already seen" ids dropped events.
Each member's events now carry a dense number assigned at commit under a lock on the
member's event_sequence row. Existing events are numbered in id order; a client that
resumes with an old global id is asked to reload.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 09:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "event_sequence",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
            name=op.f("fk_event_sequence_member_id_member"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_event_sequence")),
    )
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
    op.execute(
        """
        UPDATE event SET seq = numbered.seq
        FROM (
            SELECT id, ROW_NUMBER() OVER (PARTITION BY member_id ORDER BY id) AS seq
            FROM event
        ) AS numbered
        WHERE event.id = numbered.id
        """
    )
    op.execute(
        """
        INSERT INTO event_sequence (member_id, last_seq)
        SELECT member_id, MAX(seq) FROM event GROUP BY member_id
        """
    )
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_index("ix_event_member_id")
        batch_op.create_unique_constraint("uq_event_member_id_seq", ["member_id", "seq"])
    op.drop_table("event_horizon")


def downgrade():
    op.create_table(
        "event_horizon",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pruned_through_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_horizon")),
    )
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_constraint("uq_event_member_id_seq", type_="unique")
        batch_op.create_index("ix_event_member_id", ["member_id", "id"], unique=False)
        batch_op.drop_column("seq")
    op.drop_table("event_sequence")

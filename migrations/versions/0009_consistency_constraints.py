"""consistency constraints: one refund per InMail, one allowance per period, who started
a thread (for the daily cap on new conversations); subscription.version goes (the
member row lock serialises credit movements)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 09:10:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("credit_ledger", schema=None) as batch_op:
        batch_op.create_index(
            "uq_credit_ledger_inmail_spend",
            ["ref_id"],
            unique=True,
            sqlite_where=sa.text("reason = 'inmail'"),
            postgresql_where=sa.text("reason = 'inmail'"),
        )
        batch_op.create_index(
            "uq_credit_ledger_inmail_refund",
            ["ref_id"],
            unique=True,
            sqlite_where=sa.text("reason = 'refund'"),
            postgresql_where=sa.text("reason = 'refund'"),
        )
        batch_op.create_index(
            "uq_credit_ledger_allowance_period",
            ["member_id", "created_at"],
            unique=True,
            sqlite_where=sa.text("reason = 'allowance'"),
            postgresql_where=sa.text("reason = 'allowance'"),
        )

    with op.batch_alter_table("thread", schema=None) as batch_op:
        batch_op.add_column(sa.Column("started_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_thread_started_by_id_member"),
            "member",
            ["started_by_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index("ix_thread_started_by", ["started_by_id", "created_at"], unique=False)

    # A member's credit movements are serialised by their member row's lock now.
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.drop_column("version")


def downgrade():
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="0"))

    with op.batch_alter_table("thread", schema=None) as batch_op:
        batch_op.drop_index("ix_thread_started_by")
        batch_op.drop_constraint(batch_op.f("fk_thread_started_by_id_member"), type_="foreignkey")
        batch_op.drop_column("started_by_id")

    with op.batch_alter_table("credit_ledger", schema=None) as batch_op:
        batch_op.drop_index("uq_credit_ledger_allowance_period")
        batch_op.drop_index("uq_credit_ledger_inmail_refund")
        batch_op.drop_index("uq_credit_ledger_inmail_spend")

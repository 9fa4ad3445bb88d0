"""group conversations: threads without a pair, members who leave, spans of history
each member may read, and system lines (added, removed, left, renamed)

Every existing thread keeps its pair, its kind and its members' read state; every
existing message becomes a 'text' message.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 12:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("thread", schema=None) as batch_op:
        batch_op.alter_column("a_id", existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column("b_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("name", sa.String(length=100), nullable=True))
        batch_op.drop_constraint(batch_op.f("ck_thread_kind_known"), type_="check")
        batch_op.create_check_constraint("kind_known", "kind IN ('ordinary', 'inmail', 'group')")
        batch_op.create_check_constraint(
            "pair_unless_group",
            "(kind = 'group' AND a_id IS NULL AND b_id IS NULL)"
            " OR (kind <> 'group' AND a_id IS NOT NULL AND b_id IS NOT NULL)",
        )

    with op.batch_alter_table("thread_member", schema=None) as batch_op:
        batch_op.alter_column("other_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(
            sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.text("true"))
        )

    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), nullable=False, server_default="text")
        )
        batch_op.add_column(sa.Column("subject_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_message_subject_id_member"),
            "member",
            ["subject_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_check_constraint(
            "kind_known", "kind IN ('text', 'created', 'added', 'removed', 'left', 'renamed')"
        )

    op.create_table(
        "group_span",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("thread_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("first_message_id", sa.Integer(), nullable=False),
        sa.Column("last_message_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
            name=op.f("fk_group_span_member_id_member"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["thread.id"],
            name=op.f("fk_group_span_thread_id_thread"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_span")),
    )
    with op.batch_alter_table("group_span", schema=None) as batch_op:
        batch_op.create_index(
            "ix_group_span_thread_member",
            ["thread_id", "member_id", "first_message_id"],
            unique=False,
        )
        batch_op.create_index(
            "uq_group_span_open",
            ["thread_id", "member_id"],
            unique=True,
            sqlite_where=sa.text("last_message_id IS NULL"),
            postgresql_where=sa.text("last_message_id IS NULL"),
        )
        batch_op.create_index(batch_op.f("ix_group_span_member_id"), ["member_id"], unique=False)


def downgrade():
    # Groups cannot be expressed without these columns: they go, with their messages.
    op.execute("DELETE FROM thread WHERE kind = 'group'")
    with op.batch_alter_table("group_span", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_group_span_member_id"))
        batch_op.drop_index("uq_group_span_open")
        batch_op.drop_index("ix_group_span_thread_member")
    op.drop_table("group_span")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_message_kind_known"), type_="check")
        batch_op.drop_constraint(batch_op.f("fk_message_subject_id_member"), type_="foreignkey")
        batch_op.drop_column("subject_id")
        batch_op.drop_column("kind")
    with op.batch_alter_table("thread_member", schema=None) as batch_op:
        batch_op.drop_column("active")
        batch_op.alter_column("other_id", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("thread", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_thread_pair_unless_group"), type_="check")
        batch_op.drop_constraint(batch_op.f("ck_thread_kind_known"), type_="check")
        batch_op.create_check_constraint("kind_known", "kind IN ('ordinary', 'inmail')")
        batch_op.drop_column("name")
        batch_op.alter_column("b_id", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("a_id", existing_type=sa.Integer(), nullable=False)

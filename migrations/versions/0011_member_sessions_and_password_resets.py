"""member sessions and password resets

A login is a row of its own, so that logging out ends it for every copy of the cookie;
the member-wide session_token it replaces is dropped.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 09:10:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "member_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
            name=op.f("fk_member_session_member_id_member"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_session")),
    )
    with op.batch_alter_table("member_session", schema=None) as batch_op:
        batch_op.create_index(
            "ix_member_session_member_id", ["member_id", "ended_at"], unique=False
        )

    op.create_table(
        "password_reset",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
            name=op.f("fk_password_reset_member_id_member"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_reset")),
    )
    with op.batch_alter_table("password_reset", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_password_reset_member_id"), ["member_id"], unique=False
        )

    # Cookies signed with the old token stop working: everyone logs in once more.
    with op.batch_alter_table("member", schema=None) as batch_op:
        batch_op.drop_column("session_token")


def downgrade():
    with op.batch_alter_table("member", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("session_token", sa.String(length=64), nullable=False, server_default="")
        )
    with op.batch_alter_table("password_reset", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_password_reset_member_id"))
    op.drop_table("password_reset")
    with op.batch_alter_table("member_session", schema=None) as batch_op:
        batch_op.drop_index("ix_member_session_member_id")
    op.drop_table("member_session")

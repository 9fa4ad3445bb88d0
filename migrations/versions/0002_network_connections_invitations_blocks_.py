"""network: connections, invitations, blocks, profile views, notifications

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 00:08:41.626359

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        # Trigram indexes for member search (ILIKE '%...%').
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "block",
        sa.Column("blocker_id", sa.Integer(), nullable=False),
        sa.Column("blocked_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("blocker_id <> blocked_id", name=op.f("ck_block_not_self")),
        sa.ForeignKeyConstraint(
            ["blocked_id"],
            ["member.id"],
            name=op.f("fk_block_blocked_id_member"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["blocker_id"],
            ["member.id"],
            name=op.f("fk_block_blocker_id_member"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("blocker_id", "blocked_id", name=op.f("pk_block")),
    )
    with op.batch_alter_table("block", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_block_blocked_id"), ["blocked_id"], unique=False)

    op.create_table(
        "connection",
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("other_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
            name=op.f("fk_connection_member_id_member"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["other_id"],
            ["member.id"],
            name=op.f("fk_connection_other_id_member"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("member_id", "other_id", name=op.f("pk_connection")),
    )
    op.create_table(
        "invitation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sender_id", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("pair_low", sa.Integer(), nullable=False),
        sa.Column("pair_high", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("responded_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'accepted', 'ignored', 'withdrawn')",
            name=op.f("ck_invitation_status_known"),
        ),
        sa.CheckConstraint("pair_low < pair_high", name=op.f("ck_invitation_pair_ordered")),
        sa.CheckConstraint("sender_id <> recipient_id", name=op.f("ck_invitation_not_self")),
        sa.ForeignKeyConstraint(
            ["recipient_id"],
            ["member.id"],
            name=op.f("fk_invitation_recipient_id_member"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["sender_id"],
            ["member.id"],
            name=op.f("fk_invitation_sender_id_member"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitation")),
    )
    with op.batch_alter_table("invitation", schema=None) as batch_op:
        batch_op.create_index(
            "ix_invitation_recipient_status", ["recipient_id", "status", "id"], unique=False
        )
        batch_op.create_index(
            "ix_invitation_sender_created", ["sender_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "uq_invitation_open_pair",
            ["pair_low", "pair_high"],
            unique=True,
            sqlite_where=sa.text("status IN ('pending', 'ignored')"),
            postgresql_where=sa.text("status IN ('pending', 'ignored')"),
        )

    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("ref_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("read_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["member.id"],
            name=op.f("fk_notification_actor_id_member"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["member.id"],
            name=op.f("fk_notification_member_id_member"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification")),
    )
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.create_index("ix_notification_member_id", ["member_id", "id"], unique=False)
        batch_op.create_index(
            "ix_notification_unread",
            ["member_id"],
            unique=False,
            sqlite_where=sa.text("read_at IS NULL"),
            postgresql_where=sa.text("read_at IS NULL"),
        )

    op.create_table(
        "profile_view",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("viewer_id", sa.Integer(), nullable=False),
        sa.Column("viewed_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("viewed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["viewed_id"],
            ["member.id"],
            name=op.f("fk_profile_view_viewed_id_member"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["viewer_id"],
            ["member.id"],
            name=op.f("fk_profile_view_viewer_id_member"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_profile_view")),
        sa.UniqueConstraint("viewed_id", "viewer_id", "day", name="uq_profile_view_once_a_day"),
    )
    with op.batch_alter_table("profile_view", schema=None) as batch_op:
        batch_op.create_index("ix_profile_view_viewed_at", ["viewed_id", "viewed_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_profile_view_viewer_id"), ["viewer_id"], unique=False)

    with op.batch_alter_table("member", schema=None) as batch_op:
        batch_op.create_index(
            "ix_member_headline_trgm",
            ["headline"],
            unique=False,
            postgresql_using="gin",
            postgresql_ops={"headline": "gin_trgm_ops"},
        )
        batch_op.create_index(
            "ix_member_name_trgm",
            ["name"],
            unique=False,
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        )

    # ### end Alembic commands ###


def downgrade():
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table("member", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_member_name_trgm", postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}
        )
        batch_op.drop_index(
            "ix_member_headline_trgm",
            postgresql_using="gin",
            postgresql_ops={"headline": "gin_trgm_ops"},
        )

    with op.batch_alter_table("profile_view", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_profile_view_viewer_id"))
        batch_op.drop_index("ix_profile_view_viewed_at")

    op.drop_table("profile_view")
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_notification_unread",
            sqlite_where=sa.text("read_at IS NULL"),
            postgresql_where=sa.text("read_at IS NULL"),
        )
        batch_op.drop_index("ix_notification_member_id")

    op.drop_table("notification")
    with op.batch_alter_table("invitation", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_invitation_open_pair",
            sqlite_where=sa.text("status IN ('pending', 'ignored')"),
            postgresql_where=sa.text("status IN ('pending', 'ignored')"),
        )
        batch_op.drop_index("ix_invitation_sender_created")
        batch_op.drop_index("ix_invitation_recipient_status")

    op.drop_table("invitation")
    op.drop_table("connection")
    with op.batch_alter_table("block", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_block_blocked_id"))

    op.drop_table("block")
    # ### end Alembic commands ###

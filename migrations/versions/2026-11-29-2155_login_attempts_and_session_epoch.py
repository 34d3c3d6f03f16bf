"""login attempts and session epoch

Revision ID: 9bd0c58140aa
Revises: 2e4b57f5f092
Create Date: 2026-11-29 21:55:07.149064+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9bd0c58140aa"
down_revision: str | None = "2e4b57f5f092"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempts")),
    )
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_login_attempts_attempted_at"), ["attempted_at"], unique=False
        )
        batch_op.create_index(
            "ix_login_attempts_key_attempted_at", ["key", "attempted_at"], unique=False
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_epoch")

    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_login_attempts_key_attempted_at")
        batch_op.drop_index(batch_op.f("ix_login_attempts_attempted_at"))

    op.drop_table("login_attempts")

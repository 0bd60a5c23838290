"""analyzer: rollup backlog (units written since the last catch-up); a plan being built has no
built_at

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table("rollup_backlog", sa.Column("unit_id", sa.Text(), nullable=False))
    op.alter_column(
        "experiment_rollups", "built_at", existing_type=sa.DateTime(timezone=True), nullable=True
    )


def downgrade() -> None:
    op.execute("DELETE FROM experiment_rollups WHERE built_at IS NULL")
    op.alter_column(
        "experiment_rollups", "built_at", existing_type=sa.DateTime(timezone=True), nullable=False
    )
    op.drop_table("rollup_backlog")

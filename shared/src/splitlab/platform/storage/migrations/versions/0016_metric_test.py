"""analyzer: a metric definition names its test (and a bootstrap test its quantile)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "metric_definitions",
        sa.Column("test", sa.Text(), nullable=False, server_default="welch"),
    )
    op.add_column("metric_definitions", sa.Column("quantile", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("metric_definitions", "quantile")
    op.drop_column("metric_definitions", "test")

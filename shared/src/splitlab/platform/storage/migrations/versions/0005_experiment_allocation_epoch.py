"""experiments.allocation_epoch: changes since the start that sticky records must absorb

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "experiments",
        sa.Column("allocation_epoch", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("experiments", "allocation_epoch")

"""analyzer: first exposure per (experiment, unit), per-unit rollups and their plans

``experiment_units`` is backfilled from the exposures already stored (the earliest exposure,
ties broken by event id); ``unit_rollups`` starts empty (the analyzer builds an experiment's
rollups on its next refresh).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SLOTS = 16


def upgrade() -> None:
    op.create_table(
        "experiment_units",
        sa.Column("experiment_key", sa.Text(), nullable=False),
        sa.Column("unit_id", sa.Text(), nullable=False),
        sa.Column("variant", sa.Text(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_event_id", sa.UUID(), nullable=False),
        sa.PrimaryKeyConstraint("experiment_key", "unit_id", name=op.f("pk_experiment_units")),
    )
    op.create_table(
        "experiment_rollups",
        sa.Column("experiment_key", sa.Text(), nullable=False),
        sa.Column("digest", sa.Text(), nullable=False),
        sa.Column("slots", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("experiment_key", name=op.f("pk_experiment_rollups")),
    )
    op.create_table(
        "unit_rollups",
        sa.Column("experiment_key", sa.Text(), nullable=False),
        sa.Column("unit_id", sa.Text(), nullable=False),
        sa.Column("variant", sa.Text(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        *(sa.Column(f"n{i}", sa.Integer(), nullable=True) for i in range(SLOTS)),
        *(sa.Column(f"s{i}", sa.Float(), nullable=True) for i in range(SLOTS)),
        sa.PrimaryKeyConstraint("experiment_key", "unit_id", name=op.f("pk_unit_rollups")),
    )
    op.execute(
        "INSERT INTO experiment_units (experiment_key, unit_id, variant, first_at, "
        "first_event_id) SELECT DISTINCT ON (experiment_key, unit_id) experiment_key, unit_id, "
        "variant, occurred_at, event_id FROM exposures "
        "ORDER BY experiment_key, unit_id, occurred_at, event_id"
    )


def downgrade() -> None:
    op.drop_table("unit_rollups")
    op.drop_table("experiment_rollups")
    op.drop_table("experiment_units")

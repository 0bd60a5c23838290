"""allocation periods: every allocation change after the start begins a period; exposures,
first exposures and rollups carry the period of the unit's (first) exposure

``allocation_periods`` is backfilled with period 0 of every started experiment: its start
time and the split it started with (the registry's audit log of the first start; the current
split when the log has none). Exposures stored before this revision have no period and belong
to period 0, as events without the field do.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PERIOD_TABLES = ("exposures", "experiment_units", "unit_rollups")


def upgrade() -> None:
    op.add_column(
        "experiments",
        sa.Column("allocation_period", sa.Integer(), server_default="0", nullable=False),
    )
    for table in PERIOD_TABLES:
        op.add_column(
            table,
            sa.Column("allocation_period", sa.Integer(), server_default="0", nullable=False),
        )
    op.create_table(
        "allocation_periods",
        sa.Column("experiment_key", sa.Text(), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("weights", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("coverage", sa.Float(), nullable=False),
        sa.Column(
            "changes",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("experiment_key", "period", name=op.f("pk_allocation_periods")),
    )
    op.execute(
        """
        INSERT INTO allocation_periods (experiment_key, period, started_at, weights, coverage)
        SELECT e.key, 0, e.started_at,
               (SELECT jsonb_object_agg(v ->> 'key', (v ->> 'weight')::float8)
                  FROM jsonb_array_elements(coalesce(s.after -> 'variants', e.variants)) v),
               coalesce((s.after ->> 'coverage')::float8, e.coverage)
        FROM experiments e
        LEFT JOIN LATERAL (
            SELECT a.after FROM experiment_audit_log a
            WHERE a.experiment_key = e.key AND a.action = 'start'
            ORDER BY a.at, a.id LIMIT 1
        ) s ON true
        WHERE e.started_at IS NOT NULL
        """
    )


def downgrade() -> None:
    op.drop_table("allocation_periods")
    for table in PERIOD_TABLES:
        op.drop_column(table, "allocation_period")
    op.drop_column("experiments", "allocation_period")

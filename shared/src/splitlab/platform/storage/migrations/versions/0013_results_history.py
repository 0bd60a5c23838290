"""analyzer: results history (a snapshot per scheduled refresh and at stop, with its numbers
per metric and variant)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "results_snapshots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("experiment_key", sa.Text(), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("units", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("srm_p_value", sa.Float(), nullable=True),
        sa.Column("decisions", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_results_snapshots")),
    )
    op.create_index(
        op.f("ix_results_snapshots_experiment_key_taken_at"),
        "results_snapshots",
        ["experiment_key", "taken_at"],
        unique=False,
    )
    floats = (
        "variance_reduction", "mean_control", "mean_treatment", "effect", "ci_lower",
        "ci_upper", "p_value", "cs_lower", "cs_upper", "always_valid_p_value",
    )  # fmt: skip
    op.create_table(
        "results_snapshot_metrics",
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("variant", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("n_control", sa.Integer(), nullable=False),
        sa.Column("n_treatment", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Float(), nullable=True) for name in floats),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["results_snapshots.id"],
            name=op.f("fk_results_snapshot_metrics_snapshot_id_results_snapshots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "snapshot_id", "metric", "variant", name=op.f("pk_results_snapshot_metrics")
        ),
    )


def downgrade() -> None:
    op.drop_table("results_snapshot_metrics")
    op.drop_index(
        op.f("ix_results_snapshots_experiment_key_taken_at"), table_name="results_snapshots"
    )
    op.drop_table("results_snapshots")

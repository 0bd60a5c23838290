"""analyzer: metric definitions, unit features, CUPAC predictions, automatic actions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "analyzer_actions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("experiment_key", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("evidence", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analyzer_actions")),
    )
    op.create_index(
        op.f("ix_analyzer_actions_experiment_key_at"),
        "analyzer_actions",
        ["experiment_key", "at"],
        unique=False,
    )
    op.create_table(
        "cupac_predictions",
        sa.Column("experiment_key", sa.Text(), nullable=False),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("unit_id", sa.Text(), nullable=False),
        sa.Column("prediction", sa.Float(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "experiment_key", "metric", "unit_id", name=op.f("pk_cupac_predictions")
        ),
    )
    op.create_table(
        "metric_definitions",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("outcome_type", sa.Text(), nullable=True),
        sa.Column("aggregation", sa.Text(), nullable=True),
        sa.Column("numerator", sa.Text(), nullable=True),
        sa.Column("denominator", sa.Text(), nullable=True),
        sa.Column("direction", sa.Text(), nullable=False),
        sa.Column("guardrail_margin", sa.Float(), nullable=True),
        sa.Column("attribution_window_seconds", sa.Float(), nullable=True),
        sa.Column("pre_period_days", sa.Float(), nullable=False),
        sa.Column("covariates", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_metric_definitions")),
    )
    op.create_table(
        "unit_features",
        sa.Column("unit_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("unit_id", "name", "observed_at", name=op.f("pk_unit_features")),
    )


def downgrade() -> None:

    op.drop_table("unit_features")
    op.drop_table("metric_definitions")
    op.drop_table("cupac_predictions")
    op.drop_index(op.f("ix_analyzer_actions_experiment_key_at"), table_name="analyzer_actions")
    op.drop_table("analyzer_actions")

"""trainer: the model catalogue (trained_models), training entities, and the model version of
each stored CUPAC prediction

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "training_entities",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("experiments", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("features", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("families", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("in_experiment_every_seconds", sa.Float(), nullable=False),
        sa.Column("pre_experiment_every_seconds", sa.Float(), nullable=False),
        sa.Column("history_days", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_training_entities")),
    )
    op.create_table(
        "trained_models",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("entity", sa.Text(), nullable=False),
        sa.Column("experiment_key", sa.Text(), nullable=False),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("task_id", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("family", sa.Text(), nullable=True),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("features", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("r2", sa.Float(), nullable=True),
        sa.Column("r2_candidates", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("notes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("peak_memory_bytes", sa.BigInteger(), nullable=True),
        sa.Column("schedule_seconds", sa.Float(), nullable=False),
        sa.Column("cutoff_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("artifact", sa.LargeBinary(), nullable=True),
        sa.Column("predicted_units", sa.Integer(), nullable=True),
        sa.Column("experiment_units", sa.Integer(), nullable=True),
        sa.Column("in_use", sa.Boolean(), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("trained_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trained_models")),
    )
    op.create_index(
        op.f("ix_trained_models_experiment_key_metric_id"),
        "trained_models",
        ["experiment_key", "metric", "id"],
    )
    op.create_index(
        "uq_trained_models_in_use",
        "trained_models",
        ["experiment_key", "metric"],
        unique=True,
        postgresql_where=sa.text("in_use"),
    )
    op.add_column("cupac_predictions", sa.Column("model_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("cupac_predictions", "model_id")
    op.drop_index("uq_trained_models_in_use", table_name="trained_models")
    op.drop_index(op.f("ix_trained_models_experiment_key_metric_id"), table_name="trained_models")
    op.drop_table("trained_models")
    op.drop_table("training_entities")

"""first exposures keep the unit's attributes: ``experiment_units.attributes`` is the
``attributes`` of the unit's first exposure (its segment for the results by segment), and
``unit_rollups.attributes`` a copy of it (results by segment read the rollups without a join)

Backfilled from the exposure each row names (``first_event_id``), then into the rollups.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


TABLES = ("experiment_units", "unit_rollups")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(
            table,
            sa.Column(
                "attributes",
                postgresql.JSONB(astext_type=sa.Text()),
                server_default="{}",
                nullable=False,
            ),
        )
    op.execute(
        "UPDATE experiment_units u SET attributes = e.attributes FROM exposures e "
        "WHERE e.event_id = u.first_event_id AND e.attributes <> '{}'::jsonb"
    )
    op.execute(
        "UPDATE unit_rollups r SET attributes = u.attributes FROM experiment_units u "
        "WHERE u.experiment_key = r.experiment_key AND u.unit_id = r.unit_id "
        "AND u.attributes <> '{}'::jsonb"
    )


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, "attributes")

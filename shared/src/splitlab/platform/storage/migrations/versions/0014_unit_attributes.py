"""first exposures keep the unit's attributes: ``experiment_units.attributes`` is the
``attributes`` of the unit's first exposure (its segment for the results by segment)

Backfilled from the exposure each row names (``first_event_id``).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "experiment_units",
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


def downgrade() -> None:
    op.drop_column("experiment_units", "attributes")

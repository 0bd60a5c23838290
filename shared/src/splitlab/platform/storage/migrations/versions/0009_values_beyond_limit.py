"""analyzer: partial indexes of outcome values and unit features beyond the value limit (so the
results count the rows they leave out without scanning the tables)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# splitlab.contracts.values.MAX_ABS_VALUE when this migration was written; the results' count
# query uses the same bound, so Postgres proves it implies the index predicate.
BEYOND = sa.text("abs(value) > 1e12")


def upgrade() -> None:
    op.create_index("ix_outcomes_beyond_limit", "outcomes", ["unit_id"], postgresql_where=BEYOND)
    op.create_index(
        "ix_unit_features_beyond_limit", "unit_features", ["unit_id"], postgresql_where=BEYOND
    )


def downgrade() -> None:
    op.drop_index("ix_unit_features_beyond_limit", table_name="unit_features")
    op.drop_index("ix_outcomes_beyond_limit", table_name="outcomes")

"""A covering index for curves: each bucket's min and max are read from the index alone.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_metrics_curve", "metrics", ["run_id", "name", "step", "value"])


def downgrade() -> None:
    op.drop_index("ix_metrics_curve", table_name="metrics")

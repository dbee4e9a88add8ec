"""Jobs that write words show them as they come (jobs.partial_text). Owned by the text-foundation helper.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: SQLite adds it without rebuilding the table.
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("partial_text", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("partial_text")

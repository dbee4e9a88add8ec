"""Knowledge-base documents are indexed in the background: each has a status (queued, indexing, ready, failed), its
progress (chunks embedded of the total), the failure's error, and the upload waiting to replace it (`pending_*`,
kept apart so the version already indexed keeps answering until the new one is ready). `ingest_id` names the
upload being indexed; `lease_owner`/`lease_until` let a restarted server take over an indexing whose process died.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def columns() -> list[sa.Column[Any]]:
    return [
        # Documents indexed before this migration were indexed in their upload's request: ready.
        sa.Column("status", sa.String(16), nullable=False, server_default="ready"),
        sa.Column("progress_done", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("progress_total", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("error", sa.JSON()),
        sa.Column("pending_data", sa.LargeBinary()),
        sa.Column("pending_sha256", sa.String(64)),
        sa.Column("ingest_id", sa.String(32)),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_until", sa.Float()),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    ]


def upgrade() -> None:
    with op.batch_alter_table("kb_documents") as batch:
        for column in columns():
            batch.add_column(column)
    op.create_index("ix_kb_documents_status", "kb_documents", ["status", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_kb_documents_status", "kb_documents")
    with op.batch_alter_table("kb_documents") as batch:
        for column in reversed(columns()):
            batch.drop_column(column.name)

"""Product knowledge bases: kbs, kb_documents (with the original file), kb_chunks (text and vector),
kb_conversations and kb_messages.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kbs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ux_kbs_owner_name", "kbs", ["owner_id", "name"], unique=True)
    op.create_table(
        "kb_documents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kb_id", sa.String(32), sa.ForeignKey("kbs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("mime", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("title", sa.String(200), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("embedder", sa.String(100), nullable=False),
        sa.Column("ingest_seconds", sa.Float(), nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ux_kb_documents_kb_name", "kb_documents", ["kb_id", "name"], unique=True)
    op.create_table(
        "kb_chunks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("document_id", sa.String(32), sa.ForeignKey("kb_documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kb_id", sa.String(32), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("location", sa.String(200), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_kb_chunks_kb", "kb_chunks", ["kb_id"])
    op.create_index("ix_kb_chunks_document", "kb_chunks", ["document_id", "ordinal"])
    op.create_table(
        "kb_conversations",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("kb_id", sa.String(32), sa.ForeignKey("kbs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_kb_conversations_kb", "kb_conversations", ["kb_id", "updated_at"])
    op.create_table(
        "kb_messages",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "conversation_id",
            sa.String(32),
            sa.ForeignKey("kb_conversations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("citations", sa.JSON(), nullable=True),
        sa.Column("timings", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_kb_messages_conversation", "kb_messages", ["conversation_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_kb_messages_conversation", table_name="kb_messages")
    op.drop_table("kb_messages")
    op.drop_index("ix_kb_conversations_kb", table_name="kb_conversations")
    op.drop_table("kb_conversations")
    op.drop_index("ix_kb_chunks_document", table_name="kb_chunks")
    op.drop_index("ix_kb_chunks_kb", table_name="kb_chunks")
    op.drop_table("kb_chunks")
    op.drop_index("ux_kb_documents_kb_name", table_name="kb_documents")
    op.drop_table("kb_documents")
    op.drop_index("ux_kbs_owner_name", table_name="kbs")
    op.drop_table("kbs")

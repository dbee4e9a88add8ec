"""Database schema (the tables; engines: services/engine.py). SQLite by default; the same tables run on PostgreSQL.

SQLAlchemy Core (not the ORM): rows are small, queries are few and explicit, and the job queue needs
exact control over its UPDATE ... WHERE statements.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("prefix", String(16), nullable=False),  # shown in listings so users can tell keys apart
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("owner_id", String(64), nullable=False),  # whose jobs/assets this key acts on
    Column("created_at", DateTime, nullable=False, default=utcnow),
    Column("last_used_at", DateTime),
    Column("revoked", Boolean, nullable=False, default=False),
)

users = Table(
    "users",
    metadata,
    Column("id", String(32), primary_key=True),  # random; the user's jobs and assets belong to "user-<id>"
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),  # scrypt$N$r$p$salt$hash (see services/users.py)
    Column("role", String(16), nullable=False, default="user"),  # admin | user
    Column("created_at", DateTime, nullable=False, default=utcnow),
    Column("disabled", Boolean, nullable=False, default=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 of the session token; the token itself is never stored
    Column("user_id", String(32), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False, default=utcnow),
    Column("expires_at", DateTime, nullable=False),
    Column("last_seen", DateTime),
    Index("ix_sessions_user", "user_id"),
)

models = Table(
    "models",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("path", Text, nullable=False),
    Column("source", Text),  # what the user gave: a path or a repo id
    Column("format", String(32), nullable=False),  # diffusers | single_file
    Column("kind", String(32), nullable=False),  # checkpoint | lora | controlnet | ...
    Column("family", String(32), nullable=False),  # sd15 | sdxl | ...
    Column("variant", String(32), nullable=False, default="base"),
    Column("config_dir", Text),  # custom diffusers config for a non-standard single file
    Column("size_bytes", Integer, nullable=False, default=0),
    Column("sha256", String(64)),  # single files only: A1111's "Model hash" is its first 10 digits
    Column("embedded", Boolean, nullable=False, default=False),
    Column("added_at", DateTime, nullable=False, default=utcnow),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner_id", String(64), nullable=False),
    Column("op", String(64), nullable=False),
    Column("op_version", Integer, nullable=False, default=1),
    Column("params", JSON, nullable=False),
    Column("state", String(16), nullable=False),  # queued | running | succeeded | failed | cancelled
    Column("idempotency_key", String(200)),
    Column("request_hash", String(64)),  # SHA-256 of the request as sent: idempotent retries must match it
    Column("progress", Float, nullable=False, default=0.0),
    Column("step", Integer, nullable=False, default=0),
    Column("total_steps", Integer, nullable=False, default=0),
    Column("message", Text),
    Column("preview", LargeBinary),  # small JPEG of the current latents
    Column("preview_step", Integer),
    Column("result", JSON),
    Column("error", JSON),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_owner", String(64)),
    Column("lease_expires_at", Float),  # epoch seconds: compared with time.time() across processes
    Column("created_at", DateTime, nullable=False, default=utcnow),
    Column("started_at", DateTime),
    Column("finished_at", DateTime),
    Column("updated_at", Float, nullable=False, default=time.time),
    Column("watched_until", Float),  # epoch seconds: step previews are made while someone follows the job
    Column("timings", JSON),  # seconds per stage, recorded by the worker
    Column("lane", String(8), nullable=False, server_default="cpu"),  # gpu | cpu | quick: which workers run it
    Column("partial_text", Text),  # words ops: the text written so far, while it runs (cleared on success)
    Index("ix_jobs_state_created", "state", "created_at"),
    Index("ix_jobs_owner_created", "owner_id", "created_at"),
    Index("ux_jobs_owner_idem", "owner_id", "idempotency_key", unique=True),
)

assets = Table(
    "assets",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner_id", String(64), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("mime", String(64), nullable=False),
    Column("width", Integer),
    Column("height", Integer),
    Column("size_bytes", Integer, nullable=False),
    Column("origin", String(16), nullable=False),  # generated | upload
    Column("op", String(64)),
    Column("params", JSON),
    Column("model", String(200)),
    Column("seed", Integer),
    Column("zhike_version", String(32)),
    Column("parent_id", String(32), ForeignKey("assets.id", ondelete="SET NULL")),
    Column("job_id", String(32)),
    Column("tags", JSON, nullable=False, default=list),
    Column("created_at", DateTime, nullable=False, default=utcnow),
    Column("name", String(200)),  # an upload's file name without extension; outputs inherit their source's
    Column("folder_id", String(32)),  # its stock_folders row (素材库), or NULL: the top level
    Index("ix_assets_owner_created", "owner_id", "created_at"),
    Index("ix_assets_job", "job_id"),
    Index("ix_assets_sha", "sha256"),
    # the library's lineage (children of an asset) and ON DELETE SET NULL when a parent is deleted
    Index("ix_assets_parent", "parent_id"),
)

# The stock library's folders (素材库), per owner. An asset sits in at most one (assets.folder_id); deleting a
# folder moves its assets back to the top level, in the same transaction (no foreign key: SQLite would rebuild
# the assets table to add one).
stock_folders = Table(
    "stock_folders",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner_id", String(64), nullable=False),
    Column("name", String(100), nullable=False),
    Column("created_at", DateTime, nullable=False, default=utcnow),
    Index("ux_stock_folders_owner_name", "owner_id", "name", unique=True),
)

# One brand kit per owner (品牌): `kit` is design/brand.py BrandKit as JSON (name, logo, colors, fonts).
brand_kits = Table(
    "brand_kits",
    metadata,
    Column("owner_id", String(64), primary_key=True),
    Column("kit", JSON, nullable=False),
    Column("updated_at", DateTime, nullable=False, default=utcnow),
)

# Design templates users saved (bundled ones live in zhike/design/templates/); `body` is the template JSON.
templates = Table(
    "templates",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner_id", String(64), nullable=False),
    Column("body", JSON, nullable=False),
    Column("version", Integer, nullable=False, default=1),  # bumped by every update; batch jobs record it
    Column("created_at", DateTime, nullable=False, default=utcnow),
    Column("updated_at", DateTime, nullable=False, default=utcnow),
    Index("ix_templates_owner_updated", "owner_id", "updated_at"),
)

# Prompt safety: the deployment's word lists (seeded from the bundled defaults, then edited by admins) and the
# audit log of refusals and admin overrides.
safety_terms = Table(
    "safety_terms",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("policy", String(64), nullable=False),
    Column("term", String(200), nullable=False),
    Column("match", String(16), nullable=False),  # exact | word | variant
    Column("added_by", String(64)),
    Column("created_at", DateTime, nullable=False, default=utcnow),
    Index("ux_safety_terms", "policy", "term", unique=True),
)

safety_audit = Table(
    "safety_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", DateTime, nullable=False, default=utcnow),
    Column("owner_id", String(64), nullable=False),
    Column("op", String(64)),
    Column("field", String(64)),
    Column("policy", String(64), nullable=False),
    Column("term", String(200)),  # for admins reading the log; never shown to the refused user
    Column("excerpt", Text),
    Column("overridden", Boolean, nullable=False, default=False),
    Index("ix_safety_audit_created", "created_at"),
)

# Product knowledge bases (商品知识库, services/kb.py), per owner like assets. `revision` is bumped by every document
# change so a cached search index knows it is stale. A document keeps its original file (`data`) so it can be
# downloaded and re-indexed; its chunks carry their embedding as float32 bytes.
kbs = Table(
    "kbs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner_id", String(64), nullable=False),
    Column("name", String(100), nullable=False),
    Column("revision", Integer, nullable=False, default=0),
    Column("created_at", DateTime, nullable=False, default=utcnow),
    Column("updated_at", DateTime, nullable=False, default=utcnow),
    Index("ux_kbs_owner_name", "owner_id", "name", unique=True),
)

kb_documents = Table(
    "kb_documents",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kb_id", String(32), ForeignKey("kbs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),  # the file name as uploaded: re-uploading it replaces the document
    Column("sha256", String(64), nullable=False),
    Column("mime", String(100), nullable=False),
    Column("kind", String(16), nullable=False),  # txt | md | pdf | docx | xlsx | csv (zhike.kb.parse)
    Column("title", String(200)),
    Column("size_bytes", Integer, nullable=False),
    Column("pages", Integer, nullable=False, default=0),
    Column("chunk_count", Integer, nullable=False, default=0),
    Column("embedder", String(100), nullable=False),  # which model made the vectors
    Column("ingest_seconds", Float),
    Column("data", LargeBinary, nullable=False),  # the original file
    Column("created_at", DateTime, nullable=False, default=utcnow),
    Column("updated_at", DateTime, nullable=False, default=utcnow),
    # Indexed in the background (services/kb_indexer.py): queued | indexing | ready | failed, chunks embedded of the
    # total, the failure; an upload replacing an indexed version waits in pending_* until its chunks are ready.
    Column("status", String(16), nullable=False, server_default="ready"),
    Column("progress_done", Integer, nullable=False, server_default="0"),
    Column("progress_total", Integer, nullable=False, server_default="0"),
    Column("error", JSON),
    Column("pending_data", LargeBinary),
    Column("pending_sha256", String(64)),
    Column("ingest_id", String(32)),  # the upload being indexed: an indexing of an older one writes nothing
    Column("lease_owner", String(64)),
    Column("lease_until", Float),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Index("ux_kb_documents_kb_name", "kb_id", "name", unique=True),
    Index("ix_kb_documents_status", "status", "updated_at"),
)

kb_chunks = Table(
    "kb_chunks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("document_id", String(32), ForeignKey("kb_documents.id", ondelete="CASCADE"), nullable=False),
    Column("kb_id", String(32), nullable=False),  # a KB's chunks load with one query
    Column("ordinal", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Column("location", String(200), nullable=False),  # where in the document: "第 3 页", "Sheet1 第 12 行", a heading
    Column("vector", LargeBinary, nullable=False),  # float32, normalised
    Index("ix_kb_chunks_kb", "kb_id"),
    Index("ix_kb_chunks_document", "document_id", "ordinal"),
)

kb_conversations = Table(
    "kb_conversations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kb_id", String(32), ForeignKey("kbs.id", ondelete="CASCADE"), nullable=False),
    Column("owner_id", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False, default=utcnow),
    Column("updated_at", DateTime, nullable=False, default=utcnow),
    Index("ix_kb_conversations_kb", "kb_id", "updated_at"),
)

kb_messages = Table(
    "kb_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("conversation_id", String(32), ForeignKey("kb_conversations.id", ondelete="CASCADE"), nullable=False),
    Column("role", String(16), nullable=False),  # user | assistant
    Column("content", Text, nullable=False),
    Column("citations", JSON),  # the assistant's cited passages: [{n, document_id, document, where, text}]
    Column("timings", JSON),  # retrieval_ms, generation_ms...
    Column("created_at", DateTime, nullable=False, default=utcnow),
    Index("ix_kb_messages_conversation", "conversation_id", "id"),
)

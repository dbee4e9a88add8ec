"""Alembic's environment for Zhike. Run through zhike.services.migrations (configured in code, no alembic.ini),
which always hands over an open connection in `config.attributes["connection"]`."""

from __future__ import annotations

from alembic import context

from zhike.services.db import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through zhike.services.migrations (`zhike db upgrade`), not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things: batch mode copies the table instead
    compare_type=True,
    # set by `python -m zhike.services.migrations revision` to skip writing a revision with nothing in it
    process_revision_directives=context.config.attributes.get("process_revision_directives"),
)
with context.begin_transaction():
    context.run_migrations()

"""Jobs: lane (which workers may run the job: gpu, cpu, quick). Existing rows get their op's lane.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# The built-in operations' lanes when this revision was written (a migration must not follow later code): ops not
# named here (plugins) get "cpu", the default lane.
LANES = {
    "gpu": (
        "txt2img", "img2img", "inpaint", "erase", "material_swap", "outpaint", "control", "hires", "restyle",
        "subject_swap",
    ),
    "quick": ("cutout", "id_photo", "preprocess"),
}  # fmt: skip


def upgrade() -> None:
    # NOT NULL with a server default: SQLite adds such a column without rebuilding the table.
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("lane", sa.String(8), nullable=False, server_default="cpu"))
    jobs = sa.table("jobs", sa.column("op", sa.String), sa.column("lane", sa.String))
    for lane, ops in LANES.items():
        op.execute(jobs.update().where(jobs.c.op.in_(ops)).values(lane=lane))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("lane")

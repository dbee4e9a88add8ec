"""Stock library folders (stock_folders, assets.folder_id) and brand kits (brand_kits).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stock_folders",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ux_stock_folders_owner_name", "stock_folders", ["owner_id", "name"], unique=True)
    op.create_table(
        "brand_kits",
        sa.Column("owner_id", sa.String(64), primary_key=True),
        sa.Column("kit", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    with op.batch_alter_table("assets") as batch:
        batch.add_column(sa.Column("folder_id", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("assets") as batch:
        batch.drop_column("folder_id")
    op.drop_table("brand_kits")
    op.drop_index("ux_stock_folders_owner_name", table_name="stock_folders")
    op.drop_table("stock_folders")

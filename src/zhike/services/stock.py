"""The stock library (素材库): a user's own images in folders, with tags and names, beside the bundled stock
(zhike/design/stock, read-only for everyone).

Folders belong to one owner, like assets: another owner's folder or asset is a 404, never moved or shown. An asset
sits in at most one folder (assets.folder_id, NULL: the top level); deleting a folder moves its assets back to the
top level in the same transaction and never deletes an image.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, String, cast, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from zhike.core.errors import Conflict, InvalidInput, NotFound, TooLarge
from zhike.core.rows import AssetRow
from zhike.services.assets.service import asset_name, page_query
from zhike.services.db import assets, stock_folders, utcnow

MAX_FOLDERS = 200  # per owner
MAX_TAGS = 50  # per asset, as an upload's tags
MAX_TAG_CHARS = 50
MAX_BATCH = 500  # assets moved or tagged in one request
TOP = "none"  # `folder=none`: the assets in no folder


@dataclass(frozen=True)
class Folder:
    id: str
    name: str
    created_at: datetime
    count: int = 0

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "count": self.count, "created_at": self.created_at.isoformat() + "Z"}


def folder_name(name: Any, *, field: str = "name") -> str:
    text = " ".join(str(name or "").split())
    if not text or len(text) > 100:
        raise InvalidInput(
            f"{field}: a folder name is 1-100 characters", code="validation_failed", field=field, kind="string_length"
        )
    return text


def tag_list(tags: Any, *, field: str) -> list[str]:
    """Tags as stored: trimmed, non-empty, each once, in the order given."""
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InvalidInput(f"{field}: a list of tags", code="validation_failed", field=field, kind="list_type")
    out = list(dict.fromkeys(t.strip() for t in tags if t.strip()))
    if len(out) > MAX_TAGS or any(len(t) > MAX_TAG_CHARS for t in out):
        raise InvalidInput(
            f"{field}: at most {MAX_TAGS} tags of {MAX_TAG_CHARS} characters",
            code="validation_failed",
            field=field,
            limit=MAX_TAGS,
        )
    return out


def _folder_missing(folder_id: str, field: str) -> NotFound:
    return NotFound(f"folder {folder_id!r} not found", code="folder_not_found", field=field, ctx={"id": folder_id})


class StockLibrary:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- folders ---------------------------------------------------------------------------------------
    def folders(self, owner_id: str) -> tuple[list[Folder], int]:
        """The owner's folders by name, each with its image count, and the count of images in no folder."""
        counts = (
            select(assets.c.folder_id, func.count().label("n"))
            .where(assets.c.owner_id == owner_id, assets.c.origin == "upload")
            .group_by(assets.c.folder_id)
        )
        q = select(stock_folders).where(stock_folders.c.owner_id == owner_id).order_by(stock_folders.c.name)
        with self.engine.connect() as conn:
            n = {r.folder_id: r.n for r in conn.execute(counts)}
            rows = conn.execute(q).mappings().all()
        return [Folder(r["id"], r["name"], r["created_at"], n.get(r["id"], 0)) for r in rows], n.get(None, 0)

    def folder(
        self, owner_id: str, folder_id: str, *, field: str = "folder_id", conn: Connection | None = None
    ) -> Folder:
        q = select(stock_folders).where(stock_folders.c.id == folder_id, stock_folders.c.owner_id == owner_id)
        if conn is None:
            with self.engine.connect() as c:
                row = c.execute(q).mappings().first()
        else:
            row = conn.execute(q).mappings().first()
        if row is None:
            raise _folder_missing(folder_id, field)
        return Folder(row["id"], row["name"], row["created_at"])

    def create_folder(self, owner_id: str, name: Any) -> Folder:
        text = folder_name(name)
        with self.engine.begin() as conn:
            n = conn.execute(select(func.count()).where(stock_folders.c.owner_id == owner_id)).scalar_one()
            if n >= MAX_FOLDERS:
                raise TooLarge(
                    f"at most {MAX_FOLDERS} folders each", code="too_many_folders", field="name", limit=MAX_FOLDERS
                )
            folder = Folder(f"f{secrets.token_hex(8)}", text, utcnow())
            row = {"id": folder.id, "owner_id": owner_id, "name": text, "created_at": folder.created_at}
            self._write(conn, insert(stock_folders).values(**row), text)
        return folder

    def rename_folder(self, owner_id: str, folder_id: str, name: Any) -> Folder:
        text = folder_name(name)
        with self.engine.begin() as conn:
            self.folder(owner_id, folder_id, conn=conn)
            stmt = update(stock_folders).where(stock_folders.c.id == folder_id).values(name=text)
            self._write(conn, stmt, text)
        return self.folder(owner_id, folder_id)

    def delete_folder(self, owner_id: str, folder_id: str) -> int:
        """Remove the folder; its images move to the top level. Returns how many moved."""
        with self.engine.begin() as conn:
            self.folder(owner_id, folder_id, conn=conn)
            moved = conn.execute(
                update(assets)
                .where(assets.c.owner_id == owner_id, assets.c.folder_id == folder_id)
                .values(folder_id=None)
            ).rowcount
            conn.execute(delete(stock_folders).where(stock_folders.c.id == folder_id))
        return moved

    @staticmethod
    def _write(conn: Connection, stmt: Any, name: str) -> None:
        try:
            with conn.begin_nested():
                conn.execute(stmt)
        except IntegrityError:
            raise Conflict(
                f"you have a folder called {name!r} already", code="folder_name_taken", field="name", ctx={"name": name}
            ) from None

    # -- images ----------------------------------------------------------------------------------------
    def list(
        self,
        owner_id: str,
        *,
        folder: str | None = None,
        tag: str | None = None,
        q: str | None = None,
        origin: str | None = "upload",
        limit: int = 100,
        before: str | None = None,
    ) -> list[tuple[AssetRow, str | None]]:
        """(asset, its folder id), newest first. `folder`: a folder id, or `none` for the top level; `q`: text in
        the name or a tag (any case); `origin`: upload (the default), generated, or None for both."""
        cond = [assets.c.owner_id == owner_id]
        if origin:
            cond.append(assets.c.origin == origin)
        if folder == TOP:
            cond.append(assets.c.folder_id.is_(None))
        elif folder:
            self.folder(owner_id, folder, field="folder")
            cond.append(assets.c.folder_id == folder)
        if tag:
            cond.append(cast(assets.c.tags, String).contains(json.dumps(tag), autoescape=True))
        if q and q.strip():
            text = q.strip()
            # Tags are stored as JSON text (Chinese as \\uXXXX): match the escaped form of the words.
            escaped = json.dumps(text)[1:-1]
            cond.append(
                or_(
                    assets.c.name.icontains(text, autoescape=True),
                    cast(assets.c.tags, String).icontains(escaped, autoescape=True),
                )
            )
        with self.engine.connect() as conn:
            query = page_query(conn, cond, before, limit)
            return [(AssetRow.from_row(r), r["folder_id"]) for r in conn.execute(query).mappings()]

    def tags(self, owner_id: str) -> list[tuple[str, int]]:
        """The owner's uploads' tags with how many images carry each, most used first."""
        counts: dict[str, int] = {}
        q = select(assets.c.tags).where(assets.c.owner_id == owner_id, assets.c.origin == "upload")
        with self.engine.connect() as conn:
            for (tags,) in conn.execute(q):
                for t in tags or []:
                    counts[t] = counts.get(t, 0) + 1
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    def _owned(self, conn: Connection, owner_id: str, ids: list[str], field: str) -> dict[str, dict[str, Any]]:
        """The rows of `ids`, all the owner's; 404 naming the first that is not (nothing is changed then)."""
        if not ids or len(ids) > MAX_BATCH:
            raise InvalidInput(
                f"{field}: 1-{MAX_BATCH} asset ids", code="validation_failed", field=field, limit=MAX_BATCH
            )
        q = select(assets.c.id, assets.c.tags).where(assets.c.owner_id == owner_id, assets.c.id.in_(set(ids)))
        found = {r["id"]: dict(r) for r in conn.execute(q).mappings()}
        for aid in ids:
            if aid not in found:
                raise NotFound(f"asset {aid!r} not found", code="asset_not_found", field=field, ctx={"id": aid})
        return found

    def move(self, owner_id: str, ids: list[str], folder_id: str | None) -> int:
        """Put the owner's assets into their folder (None: the top level). All or nothing."""
        with self.engine.begin() as conn:
            if folder_id is not None:
                self.folder(owner_id, folder_id, conn=conn)
            self._owned(conn, owner_id, ids, "assets")
            stmt = update(assets).where(assets.c.owner_id == owner_id, assets.c.id.in_(set(ids)))
            return conn.execute(stmt.values(folder_id=folder_id)).rowcount

    def retag(self, owner_id: str, ids: list[str], add: list[str], remove: list[str]) -> dict[str, list[str]]:
        """Add and remove tags on the owner's assets; returns each asset's tags after."""
        add, remove = tag_list(add, field="add"), tag_list(remove, field="remove")
        out: dict[str, list[str]] = {}
        with self.engine.begin() as conn:
            for aid, row in self._owned(conn, owner_id, ids, "assets").items():
                tags = [t for t in row["tags"] or [] if t not in remove]
                tags = tag_list(tags + [t for t in add if t not in tags], field="add")
                conn.execute(update(assets).where(assets.c.id == aid).values(tags=tags))
                out[aid] = tags
        return out

    def rename(self, owner_id: str, asset_id: str, name: Any) -> str:
        # The upload rule for names (printable, no characters file systems refuse, 100 at most); the suffix
        # stands for an extension, so a dot in the new name ("礼盒 1.5 版") is kept.
        text = str(name or "").strip(" .")
        cleaned = asset_name(text + ".name") if text else None
        if cleaned is None:
            raise InvalidInput(
                "name: 1-100 characters, not only dots or spaces", code="validation_failed", field="name"
            )
        with self.engine.begin() as conn:
            self._owned(conn, owner_id, [asset_id], "asset_id")
            conn.execute(update(assets).where(assets.c.id == asset_id).values(name=cleaned))
        return cleaned

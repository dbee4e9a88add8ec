"""Design templates and data files (the template JSON itself is described by GET /api/v1/ops: batch_design)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from zhike.api.schemas.common import LocalText, Out


class TemplateColumns(Out):
    required: list[str]
    optional: list[str]


class TemplateSummary(Out):
    id: str
    name: LocalText
    description: LocalText | None
    width: int
    height: int
    bundled: bool
    version: int
    columns: TemplateColumns = Field(description="The data columns its layers read")
    category: str | None = Field(description="A key of `categories` in the list (主图, 详情页, ...)")
    tags: list[str]
    sample: dict[str, str] = Field(description="A data row that shows it off (every required column)")
    thumb: str = Field(description="URL of a small WebP drawn with the sample row; changes with the template")
    created_at: str | None
    updated_at: str | None


class TemplatePublic(TemplateSummary):
    template: dict[str, Any] = Field(description="The template JSON (schema_version, name, width, layers, ...)")


class TemplateCategory(Out):
    zh: str
    en: str
    size: str = Field(description="The sizes its templates are made at, e.g. 800×800 or 750×3000+ (long images)")


class TemplateList(Out):
    templates: list[TemplateSummary]
    categories: dict[str, TemplateCategory] = Field(description="Gallery categories by key, with zh/en labels")


class RowProblem(Out):
    row: int = Field(description="1-based: the first data row under the header is row 1")
    column: str | None
    message: str = Field(description="In English; the studio words the problem from `code`")
    code: str = Field(description="column_missing | value_empty | photo_not_sent | image_ref_invalid | image_unknown")
    value: str | None = Field(None, description="The offending cell, cut to 80 characters")


class DataFile(Out):
    format: Literal["csv", "xlsx", "json"]
    encoding: str | None = Field(description="CSV only: utf-8 | utf-8-sig | gb18030")
    columns: list[str]
    row_count: int
    rows: list[dict[str, str]]
    preview: list[dict[str, str]]
    errors: list[RowProblem]
    # With `template` only:
    missing_columns: list[str] | None = None
    unused_columns: list[str] | None = None
    rows_ok: int | None = None

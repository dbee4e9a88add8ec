"""The CLI run in-process through Typer's runner against one Zhike home (a fixture body)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from zhike.cli.main import app as cli_app
from zhike.settings import get_settings


def cli_for(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Yields `invoke(*args) -> Result` for the `zhike` CLI with ZHIKE_HOME=home on the CPU, Chinese prompts
    untranslated; settings re-read."""
    monkeypatch.setenv("ZHIKE_HOME", str(home))
    monkeypatch.setenv("ZHIKE_DEVICE", "cpu")
    monkeypatch.setenv("ZHIKE_TRANSLATE_PROMPTS", "false")  # as make_settings: no real LLM for a Chinese prompt
    get_settings.cache_clear()
    runner = CliRunner()
    yield lambda *args: runner.invoke(cli_app, list(args), catch_exceptions=False)
    get_settings.cache_clear()

"""/api/v1/fonts: the renderer's font families and their files, for the design editor's @font-face."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_settings
from zhike import fonts

PW = "correct horse battery"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    from zhike.api.app import create_app

    app = create_app(make_settings(tmp_path / "home"), start_worker=False)
    app.state.zhike.users.create_user("alice", PW)
    with TestClient(app) as c:
        yield c
    app.state.zhike.engine.dispose()


def test_the_bundled_font_files_are_served_to_the_signed_in(client: TestClient) -> None:
    assert client.get("/api/v1/fonts").status_code == 401
    assert client.post("/api/v1/auth/login", json={"username": "alice", "password": PW}).status_code == 200
    listed = {f["family"]: f for f in client.get("/api/v1/fonts").json()["fonts"]}
    assert list(listed) == list(fonts.installed())  # the renderer's families, in its order
    src = listed[fonts.BUNDLED_FAMILY]
    assert src["bundled"] and src["regular"] and src["bold"]
    regular, bold = fonts.installed()[fonts.BUNDLED_FAMILY]
    for url, face in ((src["regular"], regular), (src["bold"], bold)):
        r = client.get(quote(url))
        assert r.status_code == 200 and r.headers["content-type"] == "font/otf"
        assert r.content == Path(face.path).read_bytes()  # the very file the server renders with
        assert "max-age" in r.headers["cache-control"]
    for family, info in listed.items():
        faces = fonts.installed()[family]
        if faces[0].path.endswith((".ttc", ".otc")):  # collections are no use to @font-face
            assert info["regular"] is None
    missing = client.get(quote("/api/v1/fonts/No Such Font/regular"))
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "family"
    assert client.get(quote(f"/api/v1/fonts/{fonts.BUNDLED_FAMILY}/italic")).status_code == 422

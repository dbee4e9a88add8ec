"""The API contract: /openapi.json types every JSON body, real answers match it, and every error code the
server can send has a Chinese and an English sentence in the studio (src/zhike/web/errors.js)."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import make_settings
from tests.helpers.server import wait_job
from zhike.api.app import create_app
from zhike.core.errors import ErrorCode, ZhikeError
from zhike.services.users import owner_id

SRC = Path(__file__).resolve().parent.parent / "src" / "zhike"
# Every JSON body is typed; a route may be listed here only with a reason (none today).
UNTYPED_FOR_NOW: set[tuple[str, str]] = set()
PASSWORD = "correct horse battery"
SMALL = {"prompt": "a paper lantern", "width": 64, "height": 64, "steps": 2}


# -- a small JSON Schema checker (jsonschema is not a dependency): the subset pydantic's schemas use ----------
def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        schema = spec["components"]["schemas"][name]
    return schema


TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
}


def problems(spec: dict[str, Any], schema: Any, value: Any, path: str = "$") -> list[str]:
    """Where `value` breaks `schema` (empty: it conforms)."""
    if schema is True or schema == {}:
        return []
    schema = resolve(spec, schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [problems(spec, s, value, path) for s in schema[key]]
            return [] if any(not p for p in options) else [f"{path}: no option of {key} fits {value!r:.80}"]
    out: list[str] = []
    for sub in schema.get("allOf", []):
        out += problems(spec, sub, value, path)
    if "const" in schema and value != schema["const"]:
        return [f"{path}: {value!r} is not {schema['const']!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{path}: {value!r} not in {schema['enum']}"]
    kind = schema.get("type")
    if kind is not None:
        want = TYPES[kind]
        if isinstance(value, bool) and kind in ("integer", "number") or not isinstance(value, want):
            return [f"{path}: {value!r:.80} is not {kind}"]
    if isinstance(value, dict):
        props = schema.get("properties", {})
        out += [f"{path}: missing {k!r}" for k in schema.get("required", []) if k not in value]
        extra = schema.get("additionalProperties", True)
        for k, v in value.items():
            if k in props:
                out += problems(spec, props[k], v, f"{path}.{k}")
            elif extra is False:
                out.append(f"{path}: key {k!r} is not in the schema")
            else:
                out += problems(spec, extra, v, f"{path}.{k}")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            out += problems(spec, schema["items"], v, f"{path}[{i}]")
    return out


def response_schema(spec: dict[str, Any], method: str, template: str, status: int) -> dict[str, Any]:
    responses = spec["paths"][template][method]["responses"]
    entry = responses.get(str(status)) or responses[f"{str(status)[0]}XX"]
    return entry["content"]["application/json"]["schema"]


class SpecClient:
    """Calls the app and checks every JSON answer against the schema /openapi.json gives for that path,
    method and status, the way a client generated from the spec would read it."""

    def __init__(self, client: TestClient, spec: dict[str, Any]) -> None:
        self.client = client
        self.spec = spec
        self.seen: set[tuple[str, str]] = set()

    def call(self, method: str, template: str, status: int, *, path: str | None = None, **kw: Any) -> Any:
        r = self.client.request(method.upper(), path or template, **kw)
        assert r.status_code == status, (method, path or template, r.text)
        assert r.headers["content-type"].startswith("application/json"), r.headers
        body = r.json()
        found = problems(self.spec, response_schema(self.spec, method, template, status), body)
        assert not found, (method, template, status, found[:10])
        self.seen.add((method, template))
        return body


ACTIVE_DOC = ("queued", "indexing")  # a knowledge-base document not yet indexed


# -- the spec ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    app = create_app(make_settings(tmp_path_factory.mktemp("spec") / "home"), start_worker=False)
    return app.openapi()


def is_untyped(spec: dict[str, Any], schema: dict[str, Any] | None) -> bool:
    if not schema:
        return True
    schema = resolve(spec, schema)
    if "anyOf" in schema or "oneOf" in schema or "allOf" in schema:
        return False
    if schema.get("type") not in (None, "object"):
        return False  # a typed scalar or array
    extra = schema.get("additionalProperties")
    return not schema.get("properties") and not isinstance(extra, dict)


def test_every_json_success_body_has_a_typed_schema(spec: dict[str, Any]) -> None:
    untyped = []
    for template, methods in spec["paths"].items():
        for method, op in methods.items():
            for status, resp in op["responses"].items():
                json_body = resp.get("content", {}).get("application/json")
                if not status.startswith("2") or json_body is None or (method, template) in UNTYPED_FOR_NOW:
                    continue
                if is_untyped(spec, json_body.get("schema")):
                    untyped.append(f"{method.upper()} {template} {status}")
    assert untyped == []


def test_binary_answers_declare_their_media_types(spec: dict[str, Any]) -> None:
    want = {
        ("get", "/api/v1/assets/{asset_id}/file"): "image/png",
        ("get", "/api/v1/assets/{asset_id}/thumb"): "image/webp",
        ("get", "/api/v1/jobs/{job_id}/preview"): "image/jpeg",
        ("get", "/api/v1/jobs/{job_id}/events"): "text/event-stream",
        ("post", "/api/v1/templates/preview"): "image/png",
        ("get", "/api/v1/templates/{template_id}/thumb"): "image/webp",
        ("get", "/api/v1/jobs/{job_id}/archive"): "application/zip",
    }
    for (method, template), media in want.items():
        content = spec["paths"][template][method]["responses"]["200"]["content"]
        assert media in content and "application/json" not in content, (template, content)


def test_every_route_documents_the_error_body(spec: dict[str, Any]) -> None:
    error = spec["components"]["schemas"]["ErrorDetail"]
    assert set(error["required"]) >= {"code", "type", "message", "param"}
    codes = resolve(spec, error["properties"]["code"])["enum"]
    assert set(codes) == {c.value for c in ErrorCode}
    assert "HTTPValidationError" not in spec["components"]["schemas"]  # FastAPI's own 422 shape is never sent
    for template, methods in spec["paths"].items():
        for method, op in methods.items():
            ref = op["responses"]["4XX"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/ErrorBody"), (method, template)


def test_job_state_is_an_enum(spec: dict[str, Any]) -> None:
    state = resolve(spec, spec["components"]["schemas"]["JobPublic"]["properties"]["state"])
    assert state["enum"] == ["queued", "running", "succeeded", "failed", "cancelled"]


# -- real answers against the spec ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, tiny_sd15: Path) -> Iterator[Any]:
    app = create_app(make_settings(tmp_path_factory.mktemp("contract") / "home"), start_worker=True)
    z = app.state.zhike
    z.catalog.add(str(tiny_sd15), name="tiny")
    z.users.create_user("root", PASSWORD, "admin")
    with TestClient(app):  # the lifespan: database and the embedded worker
        yield app
    z.engine.dispose()


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (48, 32), (200, 40, 40)).save(buf, "PNG")
    return buf.getvalue()


def test_a_client_driven_by_the_spec_reads_every_answer(app: Any, spec: dict[str, Any]) -> None:
    live = app.openapi()
    assert live == spec  # the spec does not depend on the deployment's state
    anon = SpecClient(TestClient(app), live)

    # Sign in (session + CSRF), make a key, and use the key from here on.
    login = anon.call("post", "/api/v1/auth/login", 200, json={"username": "root", "password": PASSWORD})
    session = anon.client
    session.headers["X-CSRF-Token"] = login["csrf_token"]
    assert anon.call("get", "/api/v1/auth/me", 200)["csrf_token"] == login["csrf_token"]
    created = anon.call("post", "/api/v1/keys", 201, json={"name": "contract"})
    c = SpecClient(TestClient(app, headers={"Authorization": f"Bearer {created['key']}"}), live)
    assert "csrf_token" not in c.call("get", "/api/v1/auth/me", 200)  # absent for keys, not null

    asset = c.call("post", "/api/v1/assets", 201, files={"file": ("red.png", png_bytes(), "image/png")})
    job = c.call("post", "/api/v1/jobs", 201, json={"op": "txt2img", "params": SMALL})
    assert "retry_of" not in job
    again = c.call(
        "post", "/api/v1/jobs", 201, json={"op": "txt2img", "params": SMALL}, headers={"Idempotency-Key": "k1"}
    )
    repeat = c.call(
        "post", "/api/v1/jobs", 200, json={"op": "txt2img", "params": SMALL}, headers={"Idempotency-Key": "k1"}
    )
    assert repeat["id"] == again["id"]
    done = wait_job(c.client, job["id"])
    assert done["state"] == "succeeded", done
    wait_job(c.client, again["id"])
    out = done["outputs"][0]["asset_id"]

    queued = c.call("post", "/api/v1/jobs", 201, json={"op": "txt2img", "params": {**SMALL, "steps": 150}})
    c.call("post", "/api/v1/jobs/{job_id}/cancel", 200, path=f"/api/v1/jobs/{queued['id']}/cancel")
    wait_job(c.client, queued["id"])
    retried = c.call("post", "/api/v1/jobs/{job_id}/retry", 201, path=f"/api/v1/jobs/{queued['id']}/retry")
    assert retried["retry_of"] == queued["id"]
    c.call("post", "/api/v1/jobs/{job_id}/cancel", 200, path=f"/api/v1/jobs/{retried['id']}/cancel")

    c.call("get", "/v1/models", 200)  # OpenAI-compatible: the LLM choices (none registered here)
    template = c.call("get", "/api/v1/templates", 200)["templates"][0]["id"]
    # A knowledge base with a document and a conversation (a question it holds no answer to: no LLM runs).
    kb = c.call("post", "/api/v1/kb", 201, json={"name": "店铺"})["id"]
    teapot = {"file": ("teapot.md", "# 紫砂茶壶\n容量 500 毫升，售价 99 元。".encode(), "text/markdown")}
    doc = c.call("post", "/api/v1/kb/{kb_id}/documents", 201, path=f"/api/v1/kb/{kb}/documents", files=teapot)
    docs = f"/api/v1/kb/{kb}/documents"
    while c.call("get", "/api/v1/kb/{kb_id}/documents", 200, path=docs)["documents"][0]["status"] in ACTIVE_DOC:
        time.sleep(0.05)  # indexed in the background (services/kb_indexer.py)
    tyres = {"question": "卖汽车轮胎吗"}
    asked = c.call("post", "/api/v1/kb/{kb_id}/ask", 200, path=f"/api/v1/kb/{kb}/ask", json=tyres)
    paths = {
        "/api/v1/kb/{kb_id}": f"/api/v1/kb/{kb}",
        "/api/v1/kb/{kb_id}/documents": f"/api/v1/kb/{kb}/documents",
        "/api/v1/kb/{kb_id}/documents/{doc_id}": f"/api/v1/kb/{kb}/documents/{doc['document']['id']}",
        "/api/v1/kb/{kb_id}/conversations/{conversation_id}": f"/api/v1/kb/{kb}/conversations/"
        + asked["conversation_id"],
        "/api/v1/jobs/{job_id}": f"/api/v1/jobs/{job['id']}",
        "/api/v1/assets/{asset_id}": f"/api/v1/assets/{out}",
        "/api/v1/templates/{template_id}": f"/api/v1/templates/{template}",
        "/api/v1/ops/{name}": "/api/v1/ops/txt2img",
    }
    binary = {"/api/v1/assets/{asset_id}/file", "/api/v1/assets/{asset_id}/thumb"}
    for template_path, methods in live["paths"].items():
        if (
            "get" not in methods
            or template_path in binary
            or "application/json" not in (methods["get"]["responses"]["200"].get("content", {}))
        ):
            continue
        client = c if template_path not in ("/api/v1/auth/me",) else anon
        client.call("get", template_path, 200, path=paths.get(template_path))
    assert c.call("get", "/api/v1/assets/{asset_id}", 200, path=f"/api/v1/assets/{asset['id']}")["parent"] is None

    # The binary answers carry the media types the spec lists for them.
    for template_path in binary:
        r = c.client.get(template_path.replace("{asset_id}", out))
        assert r.status_code == 200
        assert r.headers["content-type"] in live["paths"][template_path]["get"]["responses"]["200"]["content"]

    # The other main POSTs: verify, a data file, a user, a safety term; then the deletes.
    file = c.client.get(f"/api/v1/assets/{out}/file").content
    report = c.call("post", "/api/v1/verify", 200, files={"file": ("x.png", file, "image/png")})
    assert report["asset"]["id"] == out
    csv = "title,price\n茶壶,99\n".encode()
    c.call("post", "/api/v1/templates/data", 200, files={"file": ("d.csv", csv, "text/csv")})
    c.call(
        "post", "/api/v1/templates/data", 200, files={"file": ("d.csv", csv, "text/csv")}, data={"template": template}
    )
    user = c.call("post", "/api/v1/users", 201, json={"username": "dora", "password": PASSWORD})
    c.call("patch", "/api/v1/users/{user_id}", 200, path=f"/api/v1/users/{user['id']}", json={"disabled": True})
    c.call("post", "/api/v1/safety/terms", 201, json={"policy": "fraud", "term": "假发票测试"})
    c.call("delete", "/api/v1/safety/terms", 200, params={"policy": "fraud", "term": "假发票测试"})
    c.call("delete", "/api/v1/assets/{asset_id}", 200, path=f"/api/v1/assets/{asset['id']}")
    c.call("delete", "/api/v1/keys/{key_id}", 200, path=f"/api/v1/keys/{created['id']}")
    anon.call("post", "/api/v1/auth/logout", 200)

    untested = [
        (m, t)
        for t, methods in live["paths"].items()
        for m, op in methods.items()
        if m == "get" and "application/json" in op["responses"]["200"].get("content", {}) and (m, t) not in c.seen
    ]
    assert untested == []


def test_error_answers_match_the_error_schema(app: Any, spec: dict[str, Any]) -> None:
    c = SpecClient(TestClient(app), spec)
    err = c.call("get", "/api/v1/jobs", 401)["error"]
    assert (err["code"], err["type"], err["field"]) == ("not_authenticated", "unauthorized", "Authorization")
    z = app.state.zhike
    _, key = z.keys.create("errors", owner_id=owner_id(z.users.by_username("root")))
    c.client.headers["Authorization"] = f"Bearer {key}"
    err = c.call("get", "/api/v1/assets/{asset_id}", 404, path="/api/v1/assets/nope")["error"]
    assert (err["code"], err["type"], err["field"], err["ctx"]) == (
        "asset_not_found",
        "not_found",
        "asset_id",
        {"id": "nope"},
    )
    body = {"op": "txt2img", "params": {"prompt": "x", "steps": 999}}
    err = c.call("post", "/api/v1/jobs", 422, json=body)["error"]
    assert (err["code"], err["type"], err["field"], err["kind"]) == (
        "validation_failed",
        "invalid_input",
        "params.steps",
        "less_than_equal",
    )
    err = c.call("post", "/api/v1/jobs", 422, json={"op": "no_such_op"})["error"]
    assert (err["code"], err["ctx"]) == ("unknown_operation", {"name": "no_such_op"})
    err = c.call("post", "/api/v1/users", 422, json={"role": "boss"})["error"]
    assert err["code"] == "validation_failed" and err["fields"] == ["username", "password", "role"], err
    assert err["field"] == "username" and len(err["details"]) == 3
    err = c.call("post", "/api/v1/jobs", 400, content=b"{", headers={"Content-Type": "application/json"})["error"]
    assert err["code"] == "invalid_json"


# -- the codes ---------------------------------------------------------------------------------------------
CODE_ARG = re.compile(r"""\bcode=["']([a-z_]+)["']""")
CLASS_CODE = re.compile(r"""^\s+code(?:: str)? = ["']([a-z_]+)["']""", re.M)
ERROR_CODE_REF = re.compile(r"\bErrorCode\.([A-Z_]+)")


def test_every_code_the_server_sends_is_listed() -> None:
    """`code="..."` at raise sites and the error classes' own codes must be ErrorCode members (clients and the
    studio's table know only those)."""
    listed = {c.value for c in ErrorCode}
    used: dict[str, str] = {}
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for m in [*CODE_ARG.finditer(text), *CLASS_CODE.finditer(text)]:
            used.setdefault(m[1], str(path.relative_to(SRC)))
        for m in ERROR_CODE_REF.finditer(text):
            assert m[1] in ErrorCode.__members__, (path, m[1])
    assert {code: where for code, where in used.items() if code not in listed} == {}
    assert {"asset_not_found", "model_not_installed", "validation_failed", "csrf_missing"} <= set(used)


def test_every_error_class_code_is_listed() -> None:
    import zhike.api.app  # noqa: F401 - imports every route module and with it their error classes

    def walk(cls: type[ZhikeError]) -> Iterator[type[ZhikeError]]:
        for sub in cls.__subclasses__():
            yield sub
            yield from walk(sub)

    classes = [ZhikeError, *walk(ZhikeError)]
    assert len(classes) > 10
    assert [c.__name__ for c in classes if c.code not in {e.value for e in ErrorCode}] == []


def web_error_table() -> dict[str, dict[str, str]]:
    text = (SRC / "web" / "errors.js").read_text(encoding="utf-8")
    body = text.split("export const ERRORS = {", 1)[1].split("\n};", 1)[0]
    table: dict[str, dict[str, str]] = {}
    for m in re.finditer(r'^\s+(\w+): \{ zh: "((?:[^"\\]|\\.)*)", en: "((?:[^"\\]|\\.)*)" \},?$', body, re.M):
        table[m[1]] = {"zh": m[2], "en": m[3]}
    entries = [line for line in body.splitlines() if re.match(r"^\s+\w+: \{", line)]
    assert len(entries) == len(table), 'every entry of ERRORS is one line: code: { zh: "...", en: "..." },'
    return table


def test_the_studio_says_every_code_in_both_languages() -> None:
    table = web_error_table()
    codes = {c.value for c in ErrorCode}
    assert sorted(codes - set(table)) == [], "codes without a zh/en sentence in web/errors.js"
    assert sorted(set(table) - codes) == [], "sentences for codes the server never sends"
    # A placeholder is filled from the error: msg, field, limit, or a key some raise site puts in `ctx`.
    ctx_keys = {
        key
        for path in SRC.rglob("*.py")
        for literal in re.findall(r"ctx=\{([^}]*)\}", path.read_text(encoding="utf-8"))
        for key in re.findall(r'"(\w+)":', literal)
    }
    assert {"name", "id", "path", "seconds", "min", "max"} <= ctx_keys
    for code, texts in table.items():
        assert texts["zh"].strip() and texts["en"].strip(), code
        for lang, text in texts.items():
            unknown = set(re.findall(r"\{(\w+)\}", text)) - ctx_keys - {"msg", "field", "limit"}
            assert not unknown, (code, lang, unknown)


def test_the_studio_no_longer_matches_english_sentences() -> None:
    web = SRC / "web"
    for path in [*web.glob("*.js"), *web.glob("views/*.js")]:
        assert "addMessages" not in path.read_text(encoding="utf-8"), path


def test_a_job_error_carries_the_code_and_the_class() -> None:
    """What a failed job stores (ZhikeError.to_dict) has the same code and type as the API's error bodies."""
    from zhike.core.errors import NotFound

    e = NotFound("asset 'x' not found", code="asset_not_found", field="params.image", ctx={"id": "x"})
    assert e.to_dict() == {
        "code": "asset_not_found",
        "type": "not_found",
        "message": "asset 'x' not found",
        "field": "params.image",
        "ctx": {"id": "x"},
    }
    assert NotFound("gone").to_dict()["code"] == "not_found"  # no specific code: the class's

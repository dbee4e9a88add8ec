"""The A1111-compatible API (/sdapi/v1) driven by a real A1111 client from PyPI (`webuiapi`) against a real
`zhike serve` process: tiny SD 1.5 models, 64x64, 2 steps."""

from __future__ import annotations

import base64
import io
import itertools
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import webuiapi
from PIL import Image, ImageFilter

from tests.conftest import make_settings
from tests.helpers.server import Server, server_fixture
from tests.helpers.tiny_lora import write_kohya_lora
from zhike.api.routes.sdapi_params import SAMPLERS, SCHEDULE_TYPES, zhike_scheduler
from zhike.core.errors import InvalidInput
from zhike.core.samplers import SCHEDULERS
from zhike.services.container import Zhike

SMALL: dict[str, Any] = {"width": 64, "height": 64, "steps": 2}


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    tiny_sd15: Path,
    tiny_sd15_single: tuple[Path, Path],
) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("sdapi")
    for s in server_fixture(request, root, tiny_sd15):
        # A second checkpoint (a single file: its title carries the hash) and a LoRA, registered while it runs.
        single, config = tiny_sd15_single
        lora = write_kohya_lora(tiny_sd15, root / "shine.safetensors", seed=1, scale=3.0)
        z = Zhike(make_settings(s.home))
        z.catalog.add(str(single), name="tiny2", config_dir=str(config))
        z.catalog.add(str(lora), name="shine")
        z.engine.dispose()
        yield s


def port(server: Server) -> int:
    return int(server.base_url.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def api(server: Server) -> webuiapi.WebUIApi:
    """Basic auth, as `--api-auth user:pass` clients send it: any user name, the API key as the password."""
    return webuiapi.WebUIApi(host="127.0.0.1", port=port(server), username="anyone", password=server.key_a)


def bearer_api(server: Server, key: str) -> webuiapi.WebUIApi:
    client = webuiapi.WebUIApi(host="127.0.0.1", port=port(server))
    client.session.headers["Authorization"] = f"Bearer {key}"
    return client


@pytest.fixture(scope="module")
def api_b(server: Server) -> webuiapi.WebUIApi:
    return bearer_api(server, server.key_b)


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.int16)


def noise(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))


def raw_txt2img(server: Server, key: str, **body: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.post(f"{server.base_url}/sdapi/v1/txt2img", json=body, headers=headers, timeout=120)


def test_txt2img_reports_the_real_seed_and_the_seed_remakes_the_pixels(api: webuiapi.WebUIApi) -> None:
    # webuiapi sends every A1111 field (styles, subseed, alwayson_scripts...): the ones Zhike has no use for pass.
    r = api.txt2img(prompt="a red lantern", seed=-1, batch_size=2, sampler_name="DPM++ 2M", scheduler="Karras", **SMALL)
    assert [im.size for im in r.images] == [(64, 64), (64, 64)]
    seed = r.info["seed"]
    assert seed != -1 and r.info["all_seeds"] == [seed, seed + 1]
    assert r.info["sampler_name"] == "DPM++ 2M" and r.info["extra_generation_params"] == {"Schedule type": "Karras"}
    assert r.info["sd_model_name"] == "tiny" and (r.info["steps"], r.info["cfg_scale"]) == (2, 7.0)
    # Each image's parameters text is what its PNG carries, with its own seed: A1111 and Civitai re-make from it.
    for img, text, s in zip(r.images, r.info["infotexts"], r.info["all_seeds"], strict=True):
        assert img.text["parameters"] == text
        assert text.startswith("a red lantern\n") and f"Seed: {s}," in text
        assert "Sampler: DPM++ 2M, Schedule type: Karras" in text
    assert r.parameters["prompt"] == "a red lantern" and r.parameters["seed"] == -1  # the request, echoed

    # The reported seed re-makes the same pixels (same parameters: batch size too; A1111's older sampler spelling)
    again = api.txt2img(prompt="a red lantern", seed=seed, batch_size=2, sampler_name="DPM++ 2M Karras", **SMALL)
    assert again.info["all_seeds"] == [seed, seed + 1]
    for first, second in zip(r.images, again.images, strict=True):
        assert np.array_equal(pixels(first), pixels(second))
    assert not np.array_equal(pixels(r.images[0]), pixels(r.images[1]))


def test_n_iter_continues_the_seeds_and_each_batch_is_a_job(api: webuiapi.WebUIApi, server: Server) -> None:
    r = api.txt2img(prompt="a kite", seed=100, batch_size=2, n_iter=2, sampler_name="Euler a", **SMALL)
    assert r.info["all_seeds"] == [100, 101, 102, 103] and len(r.images) == 4
    jobs = r.info["job_ids"]
    assert len(jobs) == 2
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {server.key_a}"}) as c:
        rows = [c.get(f"/api/v1/jobs/{j}").json() for j in jobs]
        assert [(j["op"], j["state"], j["params"]["seed"]) for j in rows] == [
            ("txt2img", "succeeded", 100),
            ("txt2img", "succeeded", 102),
        ]
        assert rows[0]["params"]["scheduler"] == "Euler a"


def test_the_returned_png_verifies_as_labelled(server: Server) -> None:
    r = raw_txt2img(server, server.key_a, prompt="a teapot", seed=7, **SMALL)
    assert r.status_code == 200, r.text
    body = r.json()
    info = json.loads(body["info"])  # `info` is JSON text, as A1111 sends it
    data = base64.b64decode(body["images"][0])
    report = httpx.post(
        f"{server.base_url}/api/v1/verify",
        files={"file": ("out.png", data, "image/png")},
        headers={"Authorization": f"Bearer {server.key_a}"},
    ).json()
    assert report["implicit"]["status"] == "valid" and report["c2pa"]["status"] == "trusted"
    assert report["asset"]["id"] == info["asset_ids"][0] and report["asset"]["in_deployment"] is True


def test_basic_and_bearer_auth_and_401_without_a_key(server: Server, api_b: webuiapi.WebUIApi) -> None:
    assert api_b.txt2img(prompt="a boat", seed=1, **SMALL).info["seed"] == 1
    for client in (
        webuiapi.WebUIApi(host="127.0.0.1", port=port(server)),  # no credentials
        webuiapi.WebUIApi(host="127.0.0.1", port=port(server), username="anyone", password="zk_wrong"),
    ):
        with pytest.raises(RuntimeError) as info:
            client.txt2img(prompt="a boat", **SMALL)
        assert info.value.args[0] == 401
    url = f"{server.base_url}/sdapi/v1/sd-models"
    no_password = "Basic " + base64.b64encode(b"anyone").decode()
    r = httpx.get(url, headers={"Authorization": no_password})
    assert r.status_code == 401 and r.json()["error"]["code"] == "api_key_invalid"
    assert httpx.get(url).json()["error"]["code"] == "not_authenticated"
    # Basic auth opens /sdapi only: the rest of the API keeps Bearer keys and the session cookie.
    basic = "Basic " + base64.b64encode(f"anyone:{server.key_a}".encode()).decode()
    assert httpx.get(url, headers={"Authorization": basic}).status_code == 200
    assert httpx.get(f"{server.base_url}/api/v1/jobs", headers={"Authorization": basic}).status_code == 401


def test_options_set_the_model_for_this_caller_only(api: webuiapi.WebUIApi, api_b: webuiapi.WebUIApi) -> None:
    models = {m["model_name"]: m for m in api.get_sd_models()}
    assert set(models) == {"tiny", "tiny2"}  # checkpoints only: the LoRA is not one
    single = models["tiny2"]
    assert single["hash"] and single["title"] == f"tiny2 [{single['hash']}]"
    assert api.util_get_current_model() == "tiny"
    api.set_options({"sd_model_checkpoint": single["title"], "sd_vae": "Automatic"})  # other options: ignored
    try:
        assert api.get_options()["sd_model_checkpoint"] == single["title"]
        assert api.get_options()["sd_checkpoint_hash"] == single["sha256"]
        assert api_b.util_get_current_model() == "tiny"  # each key has its own
        r = api.txt2img(prompt="a cup", seed=3, **SMALL)
        assert r.info["sd_model_name"] == "tiny2" and r.info["sd_model_hash"] == single["hash"]
        assert f"Model hash: {single['hash']}, Model: tiny2" in r.info["infotexts"][0]
        once = api.txt2img(prompt="a cup", seed=3, override_settings={"sd_model_checkpoint": "tiny"}, **SMALL)
        assert once.info["sd_model_name"] == "tiny"
        # A1111 clients name checkpoints by title, file name or hash too
        for name in ("tiny2.safetensors", single["hash"]):
            api.set_options({"sd_model_checkpoint": name})
            assert api.util_get_current_model() == single["title"]
    finally:
        api.set_options({"sd_model_checkpoint": "tiny"})
    bad = api.set_options({"sd_model_checkpoint": "nope.safetensors"})
    assert bad["error"]["code"] == "model_not_installed" and bad["error"]["field"] == "sd_model_checkpoint"
    assert bad["detail"][0]["loc"] == ["body", "sd_model_checkpoint"]
    assert api.util_get_current_model() == "tiny"


def test_samplers_and_schedulers_list_what_zhike_runs(api: webuiapi.WebUIApi) -> None:
    names = api.util_get_sampler_names()
    assert {"DPM++ 2M", "Euler a", "Euler", "DDIM", "UniPC"} <= set(names)
    assert api.util_get_scheduler_names() == sorted(SCHEDULE_TYPES)
    # Every listed sampler with every listed schedule is one of Zhike's schedulers, or a clear 422 naming the field.
    made = set()
    for sampler, schedule in itertools.product(names, api.util_get_scheduler_names()):
        try:
            made.add(zhike_scheduler(sampler, schedule))
        except InvalidInput as e:
            assert e.field == "scheduler" and schedule == "karras", (sampler, schedule)
    assert made <= set(SCHEDULERS) and len(made) >= len(SAMPLERS)
    assert zhike_scheduler("DPM++ 2M", "automatic") == "DPM++ 2M Karras"  # A1111's own default schedule for it
    assert zhike_scheduler("Euler Karras", None) == "Euler Karras"
    assert zhike_scheduler("k_euler_a", "normal") == "Euler a"
    r = api.txt2img(prompt="a fan", seed=5, sampler_name="PLMS", **SMALL)
    assert "Sampler: PNDM," in r.info["infotexts"][0] and r.info["sampler_name"] == "PLMS"


def test_img2img_and_inpaint_keep_what_they_must(api: webuiapi.WebUIApi, server: Server) -> None:
    init = noise(9)
    r = api.img2img(images=[init], prompt="a mosaic", denoising_strength=0.5, seed=11, **SMALL)
    assert r.image.size == (64, 64) and r.info["denoising_strength"] == 0.5
    assert r.parameters["init_images"] is None  # not sent back (include_init_images)
    asset = r.info["asset_ids"][0]
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {server.key_a}"}) as c:
        detail = c.get(f"/api/v1/assets/{asset}").json()
        assert detail["op"] == "img2img" and detail["parent"]["id"]  # the uploaded init image is its parent
        parent = c.get(f"/api/v1/assets/{detail['parent']['id']}/file").content
    assert np.array_equal(pixels(Image.open(io.BytesIO(parent))), pixels(init))
    assert not np.array_equal(pixels(r.image), pixels(init))

    mask = Image.new("L", (64, 64))
    mask.paste(255, (16, 16, 40, 40))
    r = api.img2img(images=[init], mask_image=mask, mask_blur=4, prompt="a hole", seed=11, **SMALL)
    out = pixels(r.image)
    keep = np.asarray(mask.filter(ImageFilter.MaxFilter(13))) == 0
    assert np.array_equal(out[keep], pixels(init)[keep])  # outside the mask: the input, exactly
    assert not np.array_equal(out[~keep], pixels(init)[~keep])
    inverted = api.img2img(images=[init], mask_image=mask, inpainting_mask_invert=1, prompt="x", seed=11, **SMALL)
    inside = np.asarray(mask.filter(ImageFilter.MinFilter(13))) == 255
    assert np.array_equal(pixels(inverted.image)[inside], pixels(init)[inside])


def test_hires_fix_enlarges(api: webuiapi.WebUIApi) -> None:
    r = api.txt2img(
        prompt="a tower", seed=2, enable_hr=True, hr_scale=2, hr_upscaler="Latent", hr_second_pass_steps=1, **SMALL
    )
    assert r.image.size == (128, 128) and r.info["all_seeds"] == [2]
    assert r.info["denoising_strength"] == 0.7  # webuiapi's default for the hires pass


def test_png_info_reads_a_zhike_png(api: webuiapi.WebUIApi) -> None:
    r = api.txt2img(prompt="a (blue:1.2) vase", negative_prompt="blurry", seed=21, cfg_scale=5, **SMALL)
    got = api.png_info(r.image)
    assert got.info == r.info["infotexts"][0]
    p = got.parameters
    assert (p["Prompt"], p["Negative prompt"], p["Seed"], p["Steps"], p["CFG scale"]) == (
        "a (blue:1.2) vase",
        "blurry",
        21,
        2,
        5.0,
    )
    assert (p["Size-1"], p["Size-2"], p["Model"]) == (64, 64, "tiny")
    assert "zhike" in got.json["items"]  # the other text chunks
    blank = api.png_info(noise(1))
    assert blank.info == "" and blank.parameters == {}


def test_lora_tags_in_the_prompt(api: webuiapi.WebUIApi) -> None:
    assert [(x["name"], x["alias"]) for x in api.get_loras()] == [("shine", "shine")]
    plain = api.txt2img(prompt="a cup", seed=8, **SMALL)
    styled = api.txt2img(prompt="a cup <lora:shine:0.8>", seed=8, **SMALL)
    assert "<lora:shine:0.8>" in styled.info["infotexts"][0] and styled.info["prompt"] == "a cup <lora:shine:0.8>"
    assert int(np.abs(pixels(plain.image) - pixels(styled.image)).max()) > 12  # the LoRA visibly changes it
    with pytest.raises(RuntimeError) as info:
        api.txt2img(prompt="a cup <lora:nope:1>", **SMALL)
    status, text = info.value.args
    assert status == 422 and json.loads(text)["error"]["field"] == "prompt"


@pytest.mark.parametrize(
    "body,field",
    [
        ({"steps": 999}, "steps"),
        ({"cfg_scale": 99}, "cfg_scale"),
        ({"width": 65}, "width"),
        ({"batch_size": 9}, "batch_size"),
        ({"n_iter": 0}, "n_iter"),
        ({"sampler_name": "Euler z"}, "sampler_name"),
        ({"sampler_name": "Euler a", "scheduler": "karras"}, "scheduler"),
        ({"scheduler": "exponential"}, "scheduler"),
        ({"override_settings": {"sd_model_checkpoint": "nope"}}, "override_settings.sd_model_checkpoint"),
        ({"override_settings": {"CLIP_stop_at_last_layers": 40}}, "override_settings.CLIP_stop_at_last_layers"),
        ({"enable_hr": True, "hr_upscaler": "SwinIR 4x"}, "hr_upscaler"),
        ({"prompt": "  "}, "prompt"),
    ],
)
def test_invalid_values_are_422_naming_the_a1111_field(server: Server, body: dict[str, Any], field: str) -> None:
    r = raw_txt2img(server, server.key_a, **{"prompt": "x", **SMALL, **body})
    assert r.status_code == 422, r.text
    got = r.json()
    assert got["error"]["field"] == field and got["error"]["code"]
    assert got["detail"][0]["loc"] == ["body", *field.split(".")] and got["detail"][0]["msg"]  # A1111's shape


def test_img2img_bad_images_name_the_field(server: Server) -> None:
    url, headers = f"{server.base_url}/sdapi/v1/img2img", {"Authorization": f"Bearer {server.key_a}"}
    r = httpx.post(url, json={"prompt": "x", "init_images": ["not base64!"]}, headers=headers)
    assert r.status_code == 422 and r.json()["error"]["field"] == "init_images.0"
    r = httpx.post(
        url, json={"prompt": "x", "init_images": [base64.b64encode(b"%PDF-1.4 x").decode()]}, headers=headers
    )
    assert r.status_code == 415 and r.json()["error"]["field"] == "init_images.0"
    r = httpx.post(url, json={"prompt": "x", "init_images": []}, headers=headers)
    assert r.status_code == 422 and r.json()["error"]["field"] == "init_images"


def test_progress_and_interrupt(server: Server) -> None:
    caller, watcher = bearer_api(server, server.key_a), bearer_api(server, server.key_a)
    assert watcher.get_progress()["state"]["job_count"] == 0  # idle
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(caller.txt2img, prompt="a long walk", seed=1, n_iter=8, width=64, height=64, steps=150)
        deadline = time.monotonic() + 60
        seen: dict[str, Any] = {}
        while time.monotonic() < deadline and not running.done():
            seen = watcher.get_progress()
            if seen["state"]["sampling_step"] > 0 and seen["current_image"]:
                break
            time.sleep(0.05)
        assert seen["state"]["job_count"] == 8 and seen["state"]["sampling_steps"] == 150, seen
        assert 0 < seen["progress"] < 1 and seen["eta_relative"] > 0
        assert Image.open(io.BytesIO(base64.b64decode(seen["current_image"]))).size[0] > 0  # the step preview
        # Another caller's interrupt stops nothing of ours.
        assert bearer_api(server, server.key_b).interrupt() == {"interrupted": []}
        stopped = watcher.interrupt()["interrupted"]
        started = time.monotonic()
        r = running.result(timeout=60)
    assert time.monotonic() - started < 30
    assert r.info["interrupted"] is True and len(r.images) < 8 and len(r.images) == len(r.info["all_seeds"])
    job = httpx.get(
        f"{server.base_url}/api/v1/jobs/{stopped[0]}", headers={"Authorization": f"Bearer {server.key_a}"}
    ).json()
    assert job["state"] == "cancelled"
    assert watcher.get_progress()["state"]["job_count"] == 0

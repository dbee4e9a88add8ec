"""The photos merchants hold, uploaded through the real API: HEIC, AVIF, TIFF (8/16-bit, CMYK, multi-page), BMP,
animated GIF/WebP, EXIF-rotated JPEG and wide-gamut ICC profiles are accepted, shown upright and in sRGB; SVG and PDF
are refused with a hint; and the budget of decoded pixels in flight makes many large images wait or be refused.

Every file is made here with Pillow / pillow-heif / tifffile. "Shown" is checked where users and operations see the
image: the stored file (converted formats), the thumbnail the studio shows and the pixels an operation gets.
"""

from __future__ import annotations

import io
import re
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pillow_heif
import pytest
import tifffile
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import make_settings
from zhike.api.app import create_app
from zhike.core.errors import TooLarge, UnsupportedMedia
from zhike.services.container import Zhike
from zhike.services.images import DECODING, checked_upload

W, H = 60, 40  # as shown: landscape, so a turn shows in the size
MARK = (0, 0, 255)  # a blue square in the shown image's top-left corner
BASE = (200, 100, 50)  # the rest; in Adobe RGB this is sRGB (227, 100, 42)


# -- files -------------------------------------------------------------------------------------------------------
def scene(colour: tuple[int, int, int] = BASE, size: tuple[int, int] = (W, H)) -> Image.Image:
    img = Image.new("RGB", size, colour)
    img.paste(MARK, (0, 0, size[0] // 4, size[1] // 4))
    return img


def sideways(shown: Image.Image) -> tuple[Image.Image, bytes]:
    """The pixels a phone stores for `shown` with EXIF orientation 6 (turn 90° clockwise to view), and that EXIF."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return shown.transpose(Image.Transpose.ROTATE_90), exif.tobytes()


def saved(img: Image.Image, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def heic(img: Image.Image, **kw: Any) -> bytes:
    buf = io.BytesIO()
    pillow_heif.from_pillow(img).save(buf, quality=95, chroma=444, **kw)
    return buf.getvalue()


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + bytes(4) + _s15(x) + _s15(y) + _s15(z)


def rgb_profile(
    red: tuple[float, float, float], green: tuple[float, float, float], blue: tuple[float, float, float], gamma: float
) -> bytes:
    """A matrix/TRC ICC v2 display profile (what Adobe RGB and Display P3 profiles are): D50 colorants + gamma."""
    name = b"wide gamut test profile\0"
    text = b"desc" + bytes(4) + struct.pack(">I", len(name)) + name + bytes(4 + 4 + 2 + 1 + 67)
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256))
    tags = [(b"desc", text), (b"wtpt", _xyz(0.9642, 1.0, 0.8249)), (b"rXYZ", _xyz(*red)), (b"gXYZ", _xyz(*green))]
    tags += [(b"bXYZ", _xyz(*blue)), (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    offset = 128 + 4 + 12 * len(tags)
    table, body = struct.pack(">I", len(tags)), b""
    for sig, data in tags:
        data += bytes(-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = struct.pack(">I4sI", size, bytes(4), 0x02100000) + b"mntrRGB XYZ " + bytes(12) + b"acsp" + bytes(28)
    header += _xyz(0.9642, 1.0, 0.8249)[8:] + bytes(48)
    return header + table + body


# Adobe RGB (1998): its D50 colorants and gamma 563/256, as Adobe's own profile has them.
ADOBE_RGB = rgb_profile(
    (0.60974, 0.31111, 0.01947), (0.20528, 0.62567, 0.06087), (0.14919, 0.06322, 0.74457), 563 / 256
)


def adobe_to_srgb(rgb: tuple[int, int, int]) -> np.ndarray:
    """The expected sRGB value, by the published matrices (Adobe RGB -> XYZ D65 -> linear sRGB), not by LittleCMS."""
    to_xyz = np.array(
        [[0.5767309, 0.1855540, 0.1881852], [0.2973769, 0.6273491, 0.0752741], [0.0270343, 0.0706872, 0.9911085]]
    )
    to_srgb = np.array(
        [[3.2404542, -1.5371385, -0.4985314], [-0.9692660, 1.8760108, 0.0415560], [0.0556434, -0.2040259, 1.0572252]]
    )
    linear = np.clip(to_srgb @ to_xyz @ ((np.array(rgb) / 255) ** (563 / 256)), 0, 1)
    return np.rint(255 * np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055))


# -- the API -----------------------------------------------------------------------------------------------------
class Api:
    def __init__(self, home: Path, **settings: Any) -> None:
        self.app = create_app(make_settings(home, **settings), start_worker=False)
        self.z: Zhike = self.app.state.zhike
        self.clients = {}
        for name in ("a", "b"):
            _, key = self.z.keys.create(name, owner_id=f"owner-{name}")
            self.clients[name] = TestClient(self.app, headers={"Authorization": f"Bearer {key}"})

    def upload(self, data: bytes, name: str = "photo", who: str = "a") -> Any:
        return self.clients[who].post("/api/v1/assets", files={"file": (name, data, "application/octet-stream")})

    def accepted(self, data: bytes, name: str = "photo") -> dict[str, Any]:
        r = self.upload(data, name)
        assert r.status_code == 201, r.text
        return r.json()

    def stored(self, asset: dict[str, Any]) -> tuple[bytes, str]:
        r = self.clients["a"].get(f"/api/v1/assets/{asset['id']}/file")
        assert r.status_code == 200, r.text
        return r.content, r.headers["content-type"]

    def op_input(self, asset: dict[str, Any]) -> Image.Image:
        """What an operation gets for this asset (img2img's init_image and the others)."""
        return self.z.assets.open_image(asset["id"], owner_id="owner-a", field="params.image")

    def thumb(self, asset: dict[str, Any]) -> Image.Image:
        r = self.clients["a"].get(f"/api/v1/assets/{asset['id']}/thumb", params={"size": 128})
        assert r.status_code == 200, r.text
        return Image.open(io.BytesIO(r.content)).convert("RGB")


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    a = Api(tmp_path_factory.mktemp("formats") / "home")
    yield a
    a.z.engine.dispose()


def assert_upright(img: Image.Image, colour: tuple[int, int, int] | np.ndarray = BASE, tol: int = 6) -> None:
    """The mark is in the top-left corner, the rest is `colour`: not turned, not mirrored."""
    rgb = np.asarray(img.convert("RGB"), dtype=np.int16)
    h, w = rgb.shape[:2]
    assert (w, h) == (W, H) or w / h == pytest.approx(W / H, rel=0.05), (w, h)
    mark = rgb[: h // 8, : w // 8].reshape(-1, 3).mean(0)
    assert mark[2] > 180 and mark[0] < 60, mark
    for corner in (rgb[-h // 8 :, : w // 8], rgb[: h // 8, -w // 8 :], rgb[-h // 8 :, -w // 8 :]):
        assert np.abs(corner.reshape(-1, 3).mean(0) - np.asarray(colour)).max() <= tol, corner.reshape(-1, 3).mean(0)


# -- accepted, stored, shown -------------------------------------------------------------------------------------
def test_heic_from_an_iphone_is_stored_as_jpeg_upright_in_srgb(api: Api) -> None:
    stored, exif = sideways(scene())
    asset = api.accepted(heic(stored, exif=exif, icc_profile=ADOBE_RGB), "IMG_0001.HEIC")
    assert (asset["mime"], asset["width"], asset["height"]) == ("image/jpeg", W, H)
    data, mime = api.stored(asset)
    file = Image.open(io.BytesIO(data))
    assert mime == "image/jpeg" and file.format == "JPEG"
    assert "icc_profile" not in file.info and file.getexif().get(0x0112) is None  # plain sRGB, no EXIF (no GPS)
    expected = adobe_to_srgb(BASE)
    assert np.abs(expected - BASE).max() >= 25  # the profile matters: a forgotten conversion fails
    for shown in (file, api.op_input(asset), api.thumb(asset)):
        assert_upright(shown, expected)


def test_avif_with_exif_orientation(api: Api) -> None:
    stored, exif = sideways(scene())
    asset = api.accepted(saved(stored, "AVIF", quality=95, exif=exif), "photo.avif")
    assert (asset["mime"], asset["width"], asset["height"]) == ("image/jpeg", W, H)
    assert_upright(Image.open(io.BytesIO(api.stored(asset)[0])))
    assert_upright(api.op_input(asset))


def test_tiff_with_adobe_rgb_profile_is_converted_to_srgb_losslessly(api: Api) -> None:
    asset = api.accepted(saved(scene(), "TIFF", icc_profile=ADOBE_RGB), "supplier.tif")
    data, mime = api.stored(asset)
    assert mime == "image/png"  # a lossless original stays lossless
    file = Image.open(io.BytesIO(data))
    assert_upright(file, adobe_to_srgb(BASE), tol=1)
    assert tuple(adobe_to_srgb(BASE)) == (227, 100, 42)


def test_cmyk_tiff_without_profile(api: Api) -> None:
    cmyk = Image.new("CMYK", (W, H), (0, 255, 255, 0))  # pure red ink
    cmyk.paste((255, 255, 0, 0), (0, 0, W // 4, H // 4))  # cyan + magenta = blue
    asset = api.accepted(saved(cmyk, "TIFF", compression="tiff_lzw"), "print.tif")
    file = Image.open(io.BytesIO(api.stored(asset)[0]))
    assert (asset["mime"], file.mode) == ("image/png", "RGB")
    assert_upright(file, (255, 0, 0), tol=0)


def test_sixteen_bit_tiffs_are_scaled_not_clipped(api: Api) -> None:
    ramp = np.array([[0, 257, 1000, 2570, 32768, 65535]], dtype=np.uint16).repeat(4, axis=0)
    buf = io.BytesIO()
    tifffile.imwrite(buf, ramp, photometric="minisblack")
    grey = api.op_input(api.accepted(buf.getvalue(), "scan16.tif"))
    assert grey.mode == "L"
    assert np.asarray(grey)[0].tolist() == [0, 1, 4, 10, 128, 255]  # Pillow's own I;16 -> L gives 0, 255, 255, ...

    rgb = np.zeros((H, W, 3), np.uint16)
    rgb[...] = np.array(BASE, np.uint16) * 257
    rgb[: H // 4, : W // 4] = np.array(MARK, np.uint16) * 257
    buf = io.BytesIO()
    tifffile.imwrite(buf, rgb, photometric="rgb")
    asset = api.accepted(buf.getvalue(), "photo16.tif")
    assert_upright(Image.open(io.BytesIO(api.stored(asset)[0])), tol=0)


def test_multipage_tiff_gives_its_first_page(api: Api) -> None:
    pages = [scene(), scene((10, 200, 10)), scene((10, 10, 10))]
    data = saved(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    assert Image.open(io.BytesIO(data)).n_frames == 3
    asset = api.accepted(data, "catalogue.tif")
    assert_upright(Image.open(io.BytesIO(api.stored(asset)[0])), tol=0)


def test_bmp_is_stored_as_png_with_the_same_pixels(api: Api) -> None:
    asset = api.accepted(saved(scene(), "BMP"), "logo.bmp")
    data, mime = api.stored(asset)
    assert mime == "image/png"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), np.asarray(scene()))


def test_animated_gif_gives_its_first_frame(api: Api) -> None:
    frames = [scene((255, 0, 0)), scene((0, 255, 0)), scene((0, 0, 0))]
    data = saved(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    asset = api.accepted(data, "promo.gif")
    file = Image.open(io.BytesIO(api.stored(asset)[0]))
    assert asset["mime"] == "image/png" and not getattr(file, "is_animated", False)
    assert_upright(file, (255, 0, 0), tol=0)
    assert_upright(api.op_input(asset), (255, 0, 0), tol=0)


def test_animated_webp_is_kept_and_operations_get_the_first_frame(api: Api) -> None:
    frames = [scene((255, 0, 0)), scene((0, 255, 0))]
    data = saved(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100, lossless=True)
    asset = api.accepted(data, "promo.webp")
    assert api.stored(asset) == (data, "image/webp")  # WebP is stored as sent (browsers play it)
    assert_upright(api.op_input(asset), (255, 0, 0), tol=0)
    assert_upright(api.thumb(asset), (255, 0, 0))


def test_sideways_jpeg_is_kept_as_sent_and_shown_upright(api: Api) -> None:
    stored, exif = sideways(scene())
    data = saved(stored, "JPEG", quality=95, exif=exif)
    asset = api.accepted(data, "IMG_0002.JPG")
    assert (asset["mime"], asset["width"], asset["height"]) == ("image/jpeg", W, H)
    assert api.stored(asset) == (data, "image/jpeg")
    assert_upright(api.op_input(asset))
    assert_upright(api.thumb(asset))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_wide_gamut_sideways_photo_is_turned_and_converted(api: Api, fmt: str) -> None:
    stored, exif = sideways(scene())  # an iPhone JPEG: Display P3 and stored sideways
    data = saved(stored, fmt, icc_profile=ADOBE_RGB, exif=exif, **({"quality": 100} if fmt == "JPEG" else {}))
    asset = api.accepted(data, f"adobe.{fmt.lower()}")
    assert (asset["width"], asset["height"]) == (W, H)
    assert api.stored(asset)[0] == data  # kept as sent, with its profile: browsers apply it themselves
    expected = adobe_to_srgb(BASE)
    op = api.op_input(asset)
    assert op.mode == "RGB" and "icc_profile" not in op.info
    assert_upright(op, expected, tol=1 if fmt == "PNG" else 3)
    assert_upright(api.thumb(asset), expected)


def test_plain_and_srgb_tagged_photos_reach_operations_unchanged(api: Api) -> None:
    from PIL import ImageCms

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for data in (saved(scene(), "PNG"), saved(scene(), "PNG", icc_profile=srgb), saved(scene(), "JPEG", quality=90)):
        op = api.op_input(api.accepted(data))
        assert np.array_equal(np.asarray(op), np.asarray(Image.open(io.BytesIO(data))))


# -- refused -----------------------------------------------------------------------------------------------------
SVG = b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'


@pytest.mark.parametrize(
    ("name", "data", "kind"),
    [
        ("logo.svg", SVG, "SVG"),
        ("catalogue.pdf", saved(scene(), "PDF"), "PDF"),
        ("logo.eps", saved(scene(), "EPS"), "EPS"),
    ],
    ids=["svg", "pdf", "eps"],
)
def test_drawings_and_documents_are_refused_with_a_hint(api: Api, name: str, data: bytes, kind: str) -> None:
    r = api.upload(data, name)
    assert r.status_code == 415, r.text
    err = r.json()["error"]
    assert (err["code"], err["field"], err["ctx"]["format"]) == ("image_not_raster", "file", kind)
    assert "export" in err["message"] and "PNG or JPEG" in err["message"]  # the API's English; the studio words
    studio = (Path(__file__).resolve().parents[1] / "src/zhike/web/errors.js").read_text(encoding="utf-8")
    assert re.search(r'image_not_raster: \{ zh: "[^"]*导出为 PNG 或 JPEG', studio)  # the code in Chinese


def test_float_tiff_is_refused(api: Api) -> None:
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.full((8, 8), 0.5, np.float32))
    r = api.upload(buf.getvalue(), "hdr.tif")
    assert r.status_code == 415 and r.json()["error"]["field"] == "file", r.text


def _patched_tiff_tiles(side: int) -> bytes:
    """A 16x16 tiled TIFF whose tags then claim side x side tiles (libtiff would allocate a whole tile)."""
    buf = io.BytesIO()
    tifffile.imwrite(buf, np.zeros((16, 16, 3), np.uint8), photometric="rgb", tile=(16, 16), compression="zlib")
    data = bytearray(buf.getvalue())
    ifd = struct.unpack_from("<I", data, 4)[0]
    for i in range(struct.unpack_from("<H", data, ifd)[0]):
        at = ifd + 2 + 12 * i
        tag, kind = struct.unpack_from("<HH", data, at)
        if tag in (322, 323):
            struct.pack_into("<H" if kind == 3 else "<I", data, at + 8, side)
    return bytes(data)


def test_tiff_tile_bomb_is_refused_from_the_header(api: Api) -> None:
    data = _patched_tiff_tiles(8192)  # 67 MP per tile in a 300-byte file
    assert len(data) < 1000
    r = api.upload(data, "tiles.tif")
    assert r.status_code == 413 and r.json()["error"]["code"] == "image_too_large", r.text


def test_png_chunk_flood_is_refused_before_any_decoder_walks_it(api: Api) -> None:
    """A PNG whose header is followed by a million empty private chunks (12 MB): Pillow walks each in Python."""
    good = saved(scene(size=(64, 64)), "PNG")
    empty = struct.pack(">I", 0) + b"zzZz" + struct.pack(">I", zlib.crc32(b"zzZz"))
    flood = good[:33] + empty * 1_000_000 + good[33:]  # after IHDR (8 + 25 bytes)
    started = time.perf_counter()
    r = api.upload(flood, "flood.png")
    assert r.status_code == 413 and r.json()["error"]["code"] == "metadata_too_large", r.text
    assert time.perf_counter() - started < 2.0
    assert api.upload(good[:33] + empty * 100 + good[33:], "some.png").status_code == 201  # a few extra: fine


@pytest.mark.parametrize(
    "data",
    [
        heic(scene(size=(256, 256))),
        saved(Image.effect_noise((256, 256), 60).convert("RGB"), "JPEG", quality=90),
        saved(Image.effect_noise((256, 256), 60).convert("RGB"), "TIFF", compression="tiff_deflate"),
        saved(scene(size=(256, 256)), "AVIF", quality=90),
    ],
    ids=["heic", "jpeg", "tiff", "avif"],
)
@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")  # Pillow's note on the cut TIFF, before it refuses it
def test_truncated_files_are_damaged_not_errors(api: Api, data: bytes) -> None:
    r = api.upload(data[: len(data) * 3 // 4], "cut")
    assert r.status_code == 422 and r.json()["error"]["code"] == "image_damaged", r.text


def test_a_48_megapixel_phone_photo_fits_the_default_limit(api: Api) -> None:
    data = saved(Image.new("RGB", (8064, 6048), (90, 120, 150)), "JPEG", quality=80)
    asset = api.accepted(data, "IMG_48MP.JPG")
    assert (asset["width"], asset["height"]) == (8064, 6048)
    with pytest.raises(TooLarge) as info:  # and the limit is a limit: a 64 MP phone mode (9248x6936) is not
        checked_upload(
            _jpeg_header(9248, 6936),
            field="file",
            max_bytes=10**8,
            max_pixels=api.z.settings.max_image_pixels,
            owner=None,
        )
    assert info.value.code == "image_too_large" and "9248x6936" in info.value.message


def _jpeg_header(w: int, h: int) -> bytes:
    """A JPEG start (SOI + SOF0 declaring w x h): the size is read from it, nothing is decoded."""
    sof = struct.pack(">BHHB", 8, h, w, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8" + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xd9"


# -- the budget of decoded pixels --------------------------------------------------------------------------------
@pytest.fixture
def small_budget(tmp_path: Path) -> Iterator[Api]:
    """An API whose decodes may hold 10 MP at once, 6 MP per user, waiting 0.3 s (the process-wide budget is put
    back afterwards)."""
    before = (DECODING.total, DECODING.per_owner, DECODING.wait_s)
    a = Api(
        tmp_path / "home", decode_pixels_in_flight=10_000_000, decode_pixels_per_user=6_000_000, decode_wait_seconds=0.3
    )
    a.z.assets  # noqa: B018 - sets the budget
    yield a
    DECODING.configure(*before)
    a.z.engine.dispose()


def flat_png(mp: float, colour: int = 0) -> bytes:
    """A flat PNG of `mp` megapixels: a few KB that decode to mp * 3 MB (the red team's kind of file)."""
    side = int((mp * 1e6) ** 0.5)
    return saved(Image.new("RGB", (side, side), (colour, 80, 160)), "PNG")


def test_full_budget_answers_503_and_a_users_share_429(small_budget: Api) -> None:
    api = small_budget
    photo = flat_png(4)
    with DECODING.hold(10_000_000, owner=None):  # other requests hold everything
        r = api.upload(photo)
    assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
    assert (r.json()["error"]["code"], r.json()["error"]["field"]) == ("server_busy", "file")

    with DECODING.hold(3_000_000, owner="owner-a"):  # a's own other image: 3 + 4 MP > a's 6
        mine = api.upload(photo, who="a")
        theirs = api.upload(photo, who="b")
    assert mine.status_code == 429 and mine.json()["error"]["code"] == "uploads_busy", mine.text
    assert theirs.status_code == 201, theirs.text  # another user is not held up by a's images
    assert api.upload(photo, who="a").status_code == 201  # and once a's other image is done, a's goes through
    assert DECODING.used == 0


def test_a_baseline_jpeg_is_checked_at_an_eighth_of_its_size(small_budget: Api) -> None:
    """Held: 9 of 10 MP. A 4 MP PNG must decode whole (no room); a 4 MP JPEG is read at 1/8 scale (0.06 MP)."""
    api = small_budget
    img = Image.new("RGB", (2000, 2000), (20, 40, 60))
    with DECODING.hold(9_000_000, owner=None):
        assert api.upload(saved(img, "PNG")).status_code == 503
        jpeg = api.upload(saved(img, "JPEG"))
    assert jpeg.status_code == 201 and (jpeg.json()["width"], jpeg.json()["height"]) == (2000, 2000), jpeg.text


def test_concurrent_large_uploads_wait_their_turn_within_the_budget(small_budget: Api) -> None:
    """Eight 4 MP uploads by two users at once under a 10 MP budget: at most two decode at a time (the budget is
    never exceeded), the others wait instead of being refused."""
    api = small_budget
    DECODING.configure(10_000_000, 6_000_000, 30.0)
    files = [flat_png(4, colour=i) for i in range(8)]
    peak, done = [0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], DECODING.used)
            time.sleep(0.0005)

    statuses: list[int] = []

    def send(i: int) -> None:
        statuses.append(api.upload(files[i], who="ab"[i % 2]).status_code)

    watcher = threading.Thread(target=watch)
    watcher.start()
    senders = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    done.set()
    watcher.join()
    assert statuses == [201] * 8
    assert 4_000_000 <= peak[0] <= 10_000_000, peak
    assert DECODING.used == 0


def test_one_image_larger_than_the_budget_still_runs_alone(small_budget: Api) -> None:
    """The limits cap what waits, never what is possible: a 9 MP image (over a user's 6 MP share) is accepted."""
    assert small_budget.upload(flat_png(9)).status_code == 201


def test_unsupported_media_keeps_its_class_for_unknown_formats(api: Api) -> None:
    r = api.upload(saved(scene(), "ICO"), "favicon.ico")
    assert r.status_code == 415 and r.json()["error"]["type"] == UnsupportedMedia.code, r.text

"""Face landmarks for layout work (ID photos): MediaPipe Face Mesh (478 points with refined irises; the model
ships inside the mediapipe 0.10.21 wheel, so it works offline).

Everything is in pixels of the image given. `FaceInfo.transformed` moves the points with an affine matrix (e.g.
after straightening), and `crown_from_alpha` finds the top of the hair from a person matte, which landmarks
cannot see: the mesh ends at the upper forehead (landmark 10).
"""

from __future__ import annotations

import math
import threading
import weakref
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from zhike.backends.loaders import LoadEnv, loader
from zhike.core.errors import InvalidInput
from zhike.core.specs import ModelSpec

if TYPE_CHECKING:
    from zhike.models.manager import ModelManager

FOREHEAD, CHIN = 10, 152  # top of the mesh (upper forehead) and the bottom of the chin (menton)
# Eye corners: (outer, inner) of the eye on the image's left (the person's right) and on the image's right.
EYE_LEFT, EYE_RIGHT = (33, 133), (362, 263)
# Without a usable matte, the crown is put this many face lengths (forehead -> chin) above landmark 10: the
# vertex sits ~0.3 face lengths above it on a bald head, more with hair; 0.42 is a middle guess.
CROWN_ESTIMATE = 0.42
CROP_PX = 512  # the mesh runs on a crop this size around the detected face
SECOND_FACE_MIN = 1 / 3  # faces narrower than this share of the main face are background, not a second sitter
NO_FACE = "no face was found; use a photo of one person facing the camera"
MANY_FACES = "{n} faces were found; use a photo with one face"


@dataclass
class LoadedFaceMesh:
    """MediaPipe's full-range face detector (counts and finds faces, small ones too) and Face Mesh (run on a
    crop around the face found). Not thread-safe: every call goes through `lock`."""

    detector: Any
    mesh: Any
    nbytes: int
    lock: threading.Lock = field(default_factory=threading.Lock)

    def detect(self, rgb: np.ndarray) -> list[tuple[float, float, float, float]]:
        """Face boxes (x0, y0, x1, y1) in pixels."""
        h, w = rgb.shape[:2]
        with self.lock:
            found = self.detector.process(rgb).detections or []
        boxes = []
        for d in found:
            b = d.location_data.relative_bounding_box
            boxes.append((b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h))
        return boxes

    def landmarks(self, rgb: np.ndarray) -> list[np.ndarray]:
        """(478, 2) pixel landmarks of each face the mesh finds."""
        h, w = rgb.shape[:2]
        with self.lock:
            faces = self.mesh.process(rgb).multi_face_landmarks or []
        return [np.array([(p.x * w, p.y * h) for p in f.landmark], np.float64) for f in faces]


def _model_files() -> list[Path]:
    import mediapipe as mp

    root = Path(mp.__file__).parent / "modules"
    return [
        root / "face_detection" / "face_detection_full_range_sparse.tflite",
        root / "face_detection" / "face_detection_short_range.tflite",
        root / "face_landmark" / "face_landmark_with_attention.tflite",
    ]


def load_face_mesh() -> LoadedFaceMesh:
    import mediapipe as mp

    # Full range (model 1): finds faces down to ~5 % of the image width; the mesh's own short-range detector
    # only sees close-ups, so the mesh runs on a crop where the face is large.
    detector = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5)
    mesh = mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True, refine_landmarks=True, max_num_faces=2, min_detection_confidence=0.5
    )
    # Estimate: the weights plus about as much again for the interpreters' tensors.
    nbytes = 2 * sum(p.stat().st_size for p in _model_files() if p.is_file())
    loaded = LoadedFaceMesh(detector=detector, mesh=mesh, nbytes=nbytes)
    weakref.finalize(loaded, detector.close)  # free the native graphs when the cache drops the entry
    weakref.finalize(loaded, mesh.close)
    return loaded


FACE_MESH = ModelSpec.bundled("mediapipe-face-mesh", kind="face_mesh", family="mediapipe", package="mediapipe")


@loader(family="mediapipe", kind="face_mesh", format="bundled")
def _load_registered(spec: ModelSpec, env: LoadEnv) -> LoadedFaceMesh:
    return load_face_mesh()


def use_face_mesh(models: ModelManager) -> Any:
    """Context manager yielding the cached LoadedFaceMesh."""
    return models.use(FACE_MESH)


Point = tuple[float, float]


@dataclass(frozen=True)
class FaceInfo:
    """Key points of one face, in pixels. `crown` is the top of the head including hair (estimated unless
    `crown_from == "matte"`); `crown_clipped` means the hair reaches the photo's edge (the head may be cut)."""

    points: np.ndarray  # (478, 2) all mesh landmarks
    eye_left: Point  # centre of the eye on the image's left (the person's right eye)
    eye_right: Point
    forehead: Point  # landmark 10
    chin: Point  # landmark 152
    crown: Point
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 of the landmarks (forehead to chin, ear to ear)
    roll: float  # degrees; positive when the image-right eye is lower (rotate by +roll to level the eyes)
    crown_from: str = "estimate"  # "estimate" | "matte"
    crown_clipped: bool = False

    @property
    def eye_mid(self) -> Point:
        return ((self.eye_left[0] + self.eye_right[0]) / 2, (self.eye_left[1] + self.eye_right[1]) / 2)

    @property
    def face_length(self) -> float:
        """Forehead (landmark 10) to chin, in pixels."""
        return math.dist(self.forehead, self.chin)

    @property
    def head_height(self) -> float:
        """Crown to chin, in pixels."""
        return math.dist(self.crown, self.chin)

    def transformed(self, matrix: np.ndarray) -> FaceInfo:
        """The same face after the 2x3 affine `matrix` (rotation/scale/shift) is applied to the image."""
        m = np.asarray(matrix, np.float64)

        def move(p: Point) -> Point:
            x, y = m @ np.array([p[0], p[1], 1.0])
            return (float(x), float(y))

        pts = np.asarray(self.points, np.float64) @ m[:, :2].T + m[:, 2]
        info = _from_points(pts)
        return replace(info, crown=move(self.crown), crown_from=self.crown_from, crown_clipped=self.crown_clipped)


def _from_points(pts: np.ndarray) -> FaceInfo:
    def mean(idx: tuple[int, ...]) -> Point:
        x, y = pts[list(idx)].mean(axis=0)
        return (float(x), float(y))

    eye_l, eye_r = mean(EYE_LEFT), mean(EYE_RIGHT)
    forehead, chin = mean((FOREHEAD,)), mean((CHIN,))
    # The crown estimate continues the chin -> forehead line, so it follows the head's tilt.
    crown = (
        forehead[0] + CROWN_ESTIMATE * (forehead[0] - chin[0]),
        forehead[1] + CROWN_ESTIMATE * (forehead[1] - chin[1]),
    )
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    roll = math.degrees(math.atan2(eye_r[1] - eye_l[1], eye_r[0] - eye_l[0]))
    return FaceInfo(
        points=pts.astype(np.float32),
        eye_left=eye_l,
        eye_right=eye_r,
        forehead=forehead,
        chin=chin,
        crown=crown,
        box=(float(x0), float(y0), float(x1), float(y1)),
        roll=roll,
    )


def face_landmarks(loaded: LoadedFaceMesh, image: Image.Image, *, alpha: np.ndarray | None = None) -> FaceInfo:
    """The one face in `image`; InvalidInput(field="params.image") when there is none or more than one.

    With `alpha` (the person matte, 0..1 or 0..255, the image's size) the crown comes from the matte."""
    rgb = np.ascontiguousarray(np.asarray(image.convert("RGB")))
    boxes = loaded.detect(rgb)
    if boxes:
        widths = [b[2] - b[0] for b in boxes]
        sitters = [wd for wd in widths if wd >= SECOND_FACE_MIN * max(widths)]
        if len(sitters) > 1:
            raise InvalidInput(
                MANY_FACES.format(n=len(sitters)), code="many_faces", field="params.image", ctx={"n": len(sitters)}
            )
        pts = _mesh_on_crop(loaded, rgb, boxes[int(np.argmax(widths))])
    else:  # the full-range detector can miss a face that fills the frame: let the mesh look by itself
        found = loaded.landmarks(rgb)
        if len(found) > 1:
            raise InvalidInput(
                MANY_FACES.format(n=len(found)), code="many_faces", field="params.image", ctx={"n": len(found)}
            )
        pts = found[0] if found else None
    if pts is None:
        raise InvalidInput(NO_FACE, code="no_face_found", field="params.image")
    info = _from_points(pts)
    return crown_from_alpha(info, alpha) if alpha is not None else info


def _mesh_on_crop(loaded: LoadedFaceMesh, rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray | None:
    """Landmarks of the face in `box`, found on a square crop (2.2x the box, 512 px) where it is large."""
    import cv2

    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    side = 2.2 * max(box[2] - box[0], box[3] - box[1], 8.0)
    n = CROP_PX
    s = n / side
    m = np.array([[s, 0, n / 2 - s * cx], [0, s, n / 2 - s * cy]])
    crop = cv2.warpAffine(rgb, m, (n, n), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128))  # fmt: skip
    faces = loaded.landmarks(np.ascontiguousarray(crop))
    if not faces:
        return None
    best = min(faces, key=lambda p: float(np.hypot(*(p.mean(axis=0) - n / 2))))  # the one in the middle
    return (best - m[:, 2]) / s


def crown_from_alpha(info: FaceInfo, alpha: np.ndarray, valid: np.ndarray | None = None) -> FaceInfo:
    """Put the crown at the top of the person matte above the forehead, for an upright face.

    Between the eye centres, each column is followed up from landmark 10 while the matte says "person"; the
    crown is the highest such top (5th percentile, so one stray column does not count). Following a connected
    run (not the topmost person pixel) ignores a hand or a second person above the head. `valid` marks real
    image pixels (after a rotation the corners are not): a run that ends at the edge or at invalid pixels means
    the hair is cut off. When the matte is unusable there (no person at the forehead), the estimate stays."""
    a = np.asarray(alpha, np.float32)
    if a.max() > 1.0:
        a = a / 255.0
    h, w = a.shape[:2]
    fl = info.face_length
    x0 = max(0, int(round(min(info.eye_left[0], info.eye_right[0]))))
    x1 = min(w, int(round(max(info.eye_left[0], info.eye_right[0]))) + 1)
    y0 = int(round(info.forehead[1]))
    if fl < 4 or x1 - x0 < 2 or not 0 <= y0 < h:
        return info
    top = max(0, int(y0 - 1.5 * fl))  # hair taller than 1.5 face lengths is a hat or a merge: stop there
    inside = a[top : y0 + 1, x0:x1] >= 0.5
    if valid is not None:
        inside &= np.asarray(valid[top : y0 + 1, x0:x1]) > 0.5
    if inside[-1].mean() < 0.8:  # the matte misses the forehead: it cannot be trusted for the hair
        return info
    # Length of the run of "person" ending at the forehead row, per column (rows counted upwards).
    up = inside[::-1]
    run = np.where(up.all(axis=0), up.shape[0], np.argmin(up, axis=0))
    tops = y0 + 1 - run  # topmost person row per column
    crown_y = float(np.percentile(tops, 5))
    edge = (run >= up.shape[0]) & (top == 0)  # the run went up to the photo's top edge
    if valid is not None:  # or it stopped at rotated-in (invalid) pixels, which is the photo's edge too
        above, cols = tops - 1, np.arange(x0, x1)
        has_above = above >= 0
        edge[has_above] |= np.asarray(valid)[above[has_above], cols[has_above]] <= 0.5
    clipped = bool(edge.mean() > 0.2)
    if clipped:  # the matte's top is only a lower bound for the crown: the estimate may lie above the edge
        if info.crown[1] < crown_y:
            return replace(info, crown_clipped=True)
        return replace(info, crown=_on_face_line(info, crown_y), crown_from="matte", crown_clipped=True)
    if info.forehead[1] - crown_y < 0.1 * fl:  # no hair/skull above the forehead: a bad matte
        return info
    return replace(info, crown=_on_face_line(info, crown_y), crown_from="matte")


def _on_face_line(info: FaceInfo, y: float) -> Point:
    """The point at height `y` on the chin -> forehead line (the head's vertical axis)."""
    dx, dy = info.forehead[0] - info.chin[0], info.forehead[1] - info.chin[1]  # the face's "up"
    x = info.forehead[0] + dx * (y - info.forehead[1]) / dy if abs(dy) > 1e-6 else info.forehead[0]
    return (float(x), float(y))


def person_alpha(models: ModelManager, image: Image.Image) -> np.ndarray:
    """The person matte (float32 0..1, the image's size) from backends.matting."""
    from zhike.backends.matting import alpha_matte

    matte = alpha_matte(models, image, mode="person")
    if matte.size != image.size:
        matte = matte.resize(image.size, Image.Resampling.BILINEAR)
    return np.asarray(matte.convert("L"), np.float32) / 255.0

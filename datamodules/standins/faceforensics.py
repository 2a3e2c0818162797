"""The FaceForensics++ stand-in: face videos animated from LFW faces (``faces.py``), in FF++'s frame layout.

``<out>/<split>/original/<id>/<frame>.png`` and ``<out>/<split>/<manipulation>/<target>_<source>/<frame>.png``,
as FF++ frames are laid out once extracted (faces already cropped and aligned). A real video moves smoothly: the
head drifts, turns and scales slowly, the mouth opens and closes, the eyes blink now and then, all from slow
sinusoids; only sensor noise changes from frame to frame. Each fake keeps its target video's head motion and
background, so its frames look as plausible one by one as the real ones; what differs is how the face's
appearance (its "style") changes over time, one family per FF++ manipulation:

* ``Deepfakes``: the source identity blended into the target face with a weight that jitters every frame
  (identity flicker);
* ``FaceSwap``: the source identity swapped in whole, its expression frozen while the head keeps moving
  (suppressed variation), and its color re-matched to the target frame by frame (skin-tone flicker);
* ``Face2Face``: the target identity driven by the source video's expression plus per-frame jitter (jerky mouth);
* ``NeuralTextures``: the target video with the mouth region's texture redrawn every frame (lower-face flicker).

Every family is rendered frame by frame, as face generators work, so each carries some per-frame jitter of the
face's appearance, in a different attribute each; what they share is the broken smoothness that style-latent
flows look for. Deterministic in ``seed``; people are disjoint between splits.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from datamodules.standins.faces import EYE_LINE, SKIN_TONES, gradient_background, lfw_faces, tinted_face
from datamodules.standins.photos import save_png, standin_folder

STANDIN_VERSION = 2
MANIPULATIONS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")
PRESETS = {
    "tiny": {"people": (6, 3, 3), "frames": 36, "size": 32},
    "small": {"people": (40, 10, 20), "frames": 48, "size": 32},
}
SPLITS = ("train", "val", "test")


@dataclass
class Motion:
    """Per-frame head pose and expression of one video (arrays of length ``frames``)."""

    dx: np.ndarray
    dy: np.ndarray
    scale: np.ndarray
    mouth: np.ndarray  # 0 closed .. 1 open
    blink: np.ndarray  # 0 open .. 1 closed


def smooth_motion(frames: int, rng: np.random.Generator) -> Motion:
    """Slow sinusoidal drift, zoom and mouth movement, and a few two-frame blinks."""
    t = np.arange(frames, dtype=np.float32)

    def wave(amplitude: float, period: tuple[float, float]) -> np.ndarray:
        return amplitude * np.sin(2 * np.pi * t / rng.uniform(*period) + rng.uniform(0, 2 * np.pi))

    mouth = np.clip(0.5 + wave(0.35, (10, 18)) + wave(0.15, (5, 8)), 0, 1)
    blink = np.zeros(frames, dtype=np.float32)
    for start in rng.choice(max(1, frames - 2), size=max(1, frames // 20), replace=False):
        blink[start : start + 2] = (1.0, 0.6)[: len(blink[start : start + 2])]
    return Motion(wave(0.06, (20, 40)), wave(0.04, (25, 45)), 1 + wave(0.04, (30, 50)), mouth, blink)


def render_frame(
    face: np.ndarray,
    background: np.ndarray,
    tone: tuple[int, int, int],
    motion: Motion,
    t: int,
    rng: np.random.Generator,
    mouth: float | None = None,
    mouth_texture: np.ndarray | None = None,
    blink: float | None = None,
) -> np.ndarray:
    """Frame ``t`` (uint8, the background's size): the face at the frame's pose with the given expression."""
    size = background.shape[0]
    side = int(round(0.72 * size * motion.scale[t]))
    painted = tinted_face(face, side, tone)
    open_ = motion.mouth[t] if mouth is None else mouth
    closed = motion.blink[t] if blink is None else blink
    eyes = int(EYE_LINE * side)
    painted[max(0, eyes - side // 12) : eyes + side // 12] *= 1 - 0.6 * closed
    lips = slice(int(0.74 * side), int(0.74 * side) + max(1, int(0.12 * side * (0.3 + open_))))
    painted[lips, int(0.35 * side) : int(0.65 * side)] *= 0.35
    if mouth_texture is not None:
        band = painted[int(0.65 * side) : int(0.92 * side), int(0.25 * side) : int(0.75 * side)]
        band *= mouth_texture[: band.shape[0], : band.shape[1], None]
    frame = background.copy()
    top = int(round((size - side) / 2 + motion.dy[t] * size))
    left = int(round((size - side) / 2 + motion.dx[t] * size))
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(size, top + side), min(size, left + side)
    frame[y0:y1, x0:x1] = painted[y0 - top : y1 - top, x0 - left : x1 - left]
    frame += rng.normal(0, 2.0, size=frame.shape).astype(np.float32)
    return np.clip(frame, 0, 255).astype(np.uint8)


def person_tone(person: int) -> tuple[int, int, int]:
    """A fixed skin tone per person, between the pale and the tan one."""
    mix = (person * 37 % 100) / 100.0
    pale, tan = (np.array(SKIN_TONES[k], dtype=np.float32) for k in ("pale", "tan"))
    return tuple(int(v) for v in pale * mix + tan * (1 - mix))


def render_video(
    kind: str,
    target: int,
    source: int,
    motions: dict[int, Motion],
    backgrounds: dict[int, np.ndarray],
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """The frames of ``original`` video ``target``, or of a fake with ``target``'s motion and ``source``'s face."""
    faces = lfw_faces()
    motion, background, tone = motions[target], backgrounds[target], person_tone(target)
    frames = []
    weights = np.clip(0.65 + rng.normal(0, 0.15, size=len(motion.mouth)), 0.25, 1.0)
    jerky = np.clip(motions[source].mouth + rng.normal(0, 0.3, size=len(motion.mouth)), 0, 1)
    for t in range(len(motion.mouth)):
        face, mouth, texture, blink = faces[target], None, None, None
        if kind == "Deepfakes":
            face = (1 - weights[t]) * faces[target] + weights[t] * faces[source]
        elif kind == "FaceSwap":
            face, mouth, blink = faces[source], float(motion.mouth.mean()), 0.0
            tone = tuple(int(np.clip(c * rng.normal(1, 0.05), 0, 255)) for c in person_tone(target))
        elif kind == "Face2Face":
            mouth = float(jerky[t])
        elif kind == "NeuralTextures":
            texture = rng.uniform(0.75, 1.15, size=(64, 64)).astype(np.float32)
        frames.append(render_frame(face, background, tone, motion, t, rng, mouth, texture, blink))
    return frames


def write_faceforensics_standin(out_dir: str | Path, size: str = "small", seed: int = 0) -> Path:
    """Write the stand-in into ``out_dir`` (atomically) and return it."""
    if size not in PRESETS:
        raise ValueError(f"stand-in size must be one of {sorted(PRESETS)}, got {size!r}")
    preset = PRESETS[size]
    rng = np.random.default_rng(seed)
    people = rng.permutation(len(lfw_faces()))
    bounds = np.cumsum((0, *preset["people"]))
    description = {
        "layout": "faceforensics",
        "version": STANDIN_VERSION,
        "size": size,
        "seed": seed,
        "manipulations": list(MANIPULATIONS),
        "source": "skimage.data.lfw_subset (100 faces)",
    }
    with standin_folder(Path(out_dir), description) as tmp:
        for index, split in enumerate(SPLITS):
            members = [int(p) for p in people[bounds[index] : bounds[index + 1]]]
            motions = {p: smooth_motion(preset["frames"], rng) for p in members}
            backgrounds = {p: gradient_background(preset["size"], preset["size"], rng) for p in members}
            for position, target in enumerate(members):
                source = members[(position + 1) % len(members)]
                videos = {("original", f"{target:03d}"): (target, target)}
                videos |= {(kind, f"{target:03d}_{source:03d}"): (target, source) for kind in MANIPULATIONS}
                for (kind, name), (t, s) in videos.items():
                    for number, frame in enumerate(render_video(kind, t, s, motions, backgrounds, rng)):
                        save_png(frame, tmp / split / kind / name / f"{number:04d}.png")
    return Path(out_dir)


def contact_sheet(video_dirs: list[Path], frames: int = 8) -> np.ndarray:
    """Rows of the first ``frames`` frames of each video (for eyeballing a stand-in)."""
    rows = [
        np.concatenate([np.asarray(Image.open(p)) for p in sorted(d.glob("*.png"))[:frames]], axis=1)
        for d in video_dirs
    ]
    return np.concatenate(rows, axis=0)

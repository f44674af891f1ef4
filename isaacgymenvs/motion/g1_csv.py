"""Unitree G1 clips on disk: the CSV format (read, validate, write) and the motion manifest's fps.

CSV format (``shared/assets/unitree_g1/motions/FORMAT.md``): one row per frame, 36 columns,

* 0-2: root (pelvis body origin) position x, y, z in metres, world frame, z up, floor at z = 0;
* 3-6: root orientation quaternion **x, y, z, w** (scalar last);
* 7-35: the 29 hinge angles in radians, in ``unitree_g1/g1.xml`` qpos order (= actuator order,
  :data:`G1_JOINT_NAMES`).

The shipped files have no header row. A header naming the 36 columns is accepted (and written
with ``header=True``); its joint names, with or without the ``_joint`` suffix, must be the model's
in the model's order. A CSV row carries no fps: it comes from an explicit ``fps=`` or from the
clip's entry in ``unitree_g1/motions/manifest.json`` (found by the file's place in an asset folder
or by its sha256), and it is an error when neither gives one.

The model side (``g1.xml``, keypoints, foot heights) is :mod:`~isaacgymenvs.motion.g1_model`; a CSV
read into a :class:`~isaacgymenvs.motion.clip.MotionClip` is :func:`isaacgymenvs.motion.g1.load_g1_csv`.

Imports: numpy, :mod:`isaacgymenvs.assets` and ``isaacgymenvs.motion.poselib`` (``ClipError``) only; no mujoco.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from isaacgymenvs import assets
from isaacgymenvs.motion.poselib import ClipError

G1_MOTIONS_DIR = "unitree_g1/motions"
G1_MOTION_MANIFEST = "unitree_g1/motions/manifest.json"

#: The 29 hinges in ``g1.xml`` qpos order = CSV columns 7-35 = actuator order.
G1_JOINT_NAMES: tuple[str, ...] = tuple(
    f"{n}_joint"
    for n in (
        "left_hip_pitch",
        "left_hip_roll",
        "left_hip_yaw",
        "left_knee",
        "left_ankle_pitch",
        "left_ankle_roll",
        "right_hip_pitch",
        "right_hip_roll",
        "right_hip_yaw",
        "right_knee",
        "right_ankle_pitch",
        "right_ankle_roll",
        "waist_yaw",
        "waist_roll",
        "waist_pitch",
        "left_shoulder_pitch",
        "left_shoulder_roll",
        "left_shoulder_yaw",
        "left_elbow",
        "left_wrist_roll",
        "left_wrist_pitch",
        "left_wrist_yaw",
        "right_shoulder_pitch",
        "right_shoulder_roll",
        "right_shoulder_yaw",
        "right_elbow",
        "right_wrist_roll",
        "right_wrist_pitch",
        "right_wrist_yaw",
    )
)
NUM_JOINTS = len(G1_JOINT_NAMES)
NUM_COLUMNS = 7 + NUM_JOINTS
#: Column names of the header row :func:`write_g1_csv` writes with ``header=True``.
ROOT_COLUMNS: tuple[str, ...] = ("root_x", "root_y", "root_z", "root_qx", "root_qy", "root_qz", "root_qw")
CSV_COLUMNS: tuple[str, ...] = ROOT_COLUMNS + G1_JOINT_NAMES
CSV_DECIMALS = 6


class G1ClipError(ClipError):
    """A G1 clip that cannot be used; the message names the file, what was expected and the fix."""


# ---------------------------------------------------------------------------------------
# Manifest fps
# ---------------------------------------------------------------------------------------


def _read_motion_manifest() -> dict | None:
    try:
        path = assets.asset_path(G1_MOTION_MANIFEST)
    except assets.AssetError:
        return None
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def manifest_entry(path) -> tuple[str, dict] | None:
    """``(key, entry)`` of a CSV in ``unitree_g1/motions/manifest.json``, or ``None``.

    The file is matched by its place under ``<asset root>/unitree_g1/motions/`` or, for a copy
    elsewhere, by its sha256."""
    doc = _read_motion_manifest()
    if not doc or not isinstance(doc.get("clips"), dict):
        return None
    clips: dict = doc["clips"]
    p = Path(path).resolve()
    try:
        roots = assets.assets_root_candidates()
    except assets.AssetError:
        roots = []
    for root in roots:
        try:
            key = p.relative_to((Path(root) / G1_MOTIONS_DIR).resolve()).as_posix()
        except ValueError:
            continue
        if key in clips:
            return key, clips[key]
    if p.is_file():
        digest = assets.sha256_file(p)
        for key, entry in clips.items():
            if isinstance(entry, dict) and entry.get("sha256") == digest:
                return key, entry
    return None


# ---------------------------------------------------------------------------------------
# Reading and writing CSVs
# ---------------------------------------------------------------------------------------

_FIX_COLUMNS = (
    f"each row must be {NUM_COLUMNS} comma-separated numbers: root position x,y,z (m), root quaternion x,y,z,w "
    f"(scalar last), then the {NUM_JOINTS} joint angles (rad) in unitree_g1/g1.xml qpos order "
    f"({', '.join(n[:-6] for n in G1_JOINT_NAMES)}); see unitree_g1/motions/FORMAT.md"
)


def _is_number(tok: str) -> bool:
    try:
        float(tok)
    except ValueError:
        return False
    return True


def _strip_joint(name: str) -> str:
    name = name.strip()
    return name[:-6] if name.endswith("_joint") else name


def _check_header(path: Path, names: list[str]) -> None:
    if len(names) != NUM_COLUMNS:
        raise G1ClipError(
            path,
            f"the header names {len(names)} columns, expected {NUM_COLUMNS} ({', '.join(CSV_COLUMNS)}); {_FIX_COLUMNS}",
        )
    q = [n.strip().lower() for n in names[3:7]]
    if q[0].endswith("w") and not q[3].endswith("w"):
        raise G1ClipError(
            path,
            f"the header puts the quaternion scalar first ({', '.join(names[3:7])}); this format stores it "
            f"x, y, z, w (scalar last): reorder columns 3-6 as x, y, z, w",
        )
    got = [_strip_joint(n) for n in names[7:]]
    want = [_strip_joint(n) for n in G1_JOINT_NAMES]
    if got == want:
        return
    unknown = [n for n in got if n not in want]
    missing = [n for n in want if n not in got]
    if unknown or missing:
        raise G1ClipError(
            path,
            f"the header's joint columns do not match unitree_g1/g1.xml: unknown {unknown}, missing {missing}; "
            f"expected columns 7-35 to be {list(G1_JOINT_NAMES)}",
        )
    k = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
    raise G1ClipError(
        path,
        f"joint columns are not in the model's order: column {7 + k} is {names[7 + k].strip()!r} where "
        f"{G1_JOINT_NAMES[k]!r} is expected; reorder columns 7-35 to unitree_g1/g1.xml qpos order "
        f"{list(G1_JOINT_NAMES)}",
    )


def read_g1_csv(path) -> np.ndarray:
    """Read and validate a G1 CSV; returns the ``[T, 36]`` float64 table as stored (quaternion xyzw).

    Raises :class:`G1ClipError` (one line naming the file, the problem and the fix) on a missing
    file, a wrong column count, a header whose joint names or order differ from the model, a
    value that is not a number, NaN/inf, fewer than 2 frames, or non-unit quaternions.
    """
    path = Path(path)
    if not path.is_file():
        raise G1ClipError(path, "no such file")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise G1ClipError(path, f"unreadable ({type(e).__name__}: {e})") from None
    rows: list[list[float]] = []
    header_seen = False
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        toks = [t.strip() for t in line.split(",")]
        if not rows and not header_seen and not all(_is_number(t) for t in toks):
            _check_header(path, toks)
            header_seen = True
            continue
        if len(toks) != NUM_COLUMNS:
            raise G1ClipError(path, f"line {lineno} has {len(toks)} columns, expected {NUM_COLUMNS}; {_FIX_COLUMNS}")
        try:
            vals = [float(t) for t in toks]
        except ValueError:
            bad = next(i for i, t in enumerate(toks) if not _is_number(t))
            raise G1ClipError(
                path, f"line {lineno}, column {bad} ({CSV_COLUMNS[bad]}): {toks[bad]!r} is not a number"
            ) from None
        rows.append(vals)
    a = np.array(rows, dtype=np.float64).reshape(-1, NUM_COLUMNS)
    if a.shape[0] < 2:
        raise G1ClipError(path, f"a clip needs at least 2 frames, got {a.shape[0]}")
    bad = ~np.isfinite(a)
    if bad.any():
        t, c = (int(i) for i in np.argwhere(bad)[0])
        raise G1ClipError(
            path,
            f"{int(bad.sum())} NaN or infinite values, the first at frame {t} (line {t + 1 + header_seen}), column {c} "
            f"({CSV_COLUMNS[c]}); fix or drop those frames",
        )
    norm = np.linalg.norm(a[:, 3:7], axis=1)
    worst = int(np.argmax(np.abs(norm - 1.0)))
    if abs(norm[worst] - 1.0) > 1e-3:
        raise G1ClipError(
            path,
            f"columns 3-6 must be a unit quaternion x, y, z, w; frame {worst} has norm {norm[worst]:.6g} "
            f"(is a column missing or shifted?)",
        )
    return a


def xyzw_to_wxyz(q: np.ndarray) -> np.ndarray:
    return np.concatenate((q[..., 3:4], q[..., :3]), axis=-1)


def wxyz_to_xyzw(q: np.ndarray) -> np.ndarray:
    return np.concatenate((q[..., 1:], q[..., :1]), axis=-1)


def _resolve_fps(path: Path, fps) -> tuple[float, str]:
    if fps is not None:
        f = float(fps)
        if not math.isfinite(f) or f <= 0:
            raise G1ClipError(path, f"fps must be a positive number, got {fps!r}")
        return f, "option"
    found = manifest_entry(path)
    if found is None or "fps" not in found[1]:
        raise G1ClipError(
            path,
            "a G1 CSV does not store its fps and this file is not in unitree_g1/motions/manifest.json; "
            "pass fps= (--fps on the command line)",
        )
    return float(found[1]["fps"]), f"manifest:{found[0]}"


def g1_csv_fps(path, fps: float | None = None) -> tuple[float, str]:
    """``(fps, source)`` as :func:`load_g1_csv` resolves it; source is ``option`` or ``manifest:<key>``."""
    return _resolve_fps(Path(path), fps)


def write_g1_csv(path, root_pos, root_quat_wxyz, dof_pos, header: bool = False, decimals: int = CSV_DECIMALS) -> Path:
    """Write a clip in the G1 CSV format (quaternion stored **xyzw**, ``decimals`` places).

    ``header=True`` adds a row naming the columns (:data:`CSV_COLUMNS`); the shipped files have none.
    """
    path = Path(path)
    root_pos = np.asarray(root_pos, dtype=np.float64)
    q = np.asarray(root_quat_wxyz, dtype=np.float64)
    dof_pos = np.asarray(dof_pos, dtype=np.float64)
    T = root_pos.shape[0]
    if root_pos.shape != (T, 3) or q.shape != (T, 4) or dof_pos.shape != (T, NUM_JOINTS):
        raise ValueError(
            f"{path}: expected root_pos [T, 3], root_quat_wxyz [T, 4], dof_pos [T, {NUM_JOINTS}]; got "
            f"{root_pos.shape}, {q.shape}, {dof_pos.shape}"
        )
    norm = np.linalg.norm(q, axis=1, keepdims=True)
    q = np.where(np.abs(norm - 1.0) > 1e-6, q / norm, q)  # leave unit quaternions as they are
    table = np.concatenate((root_pos, wxyz_to_xyzw(q), dof_pos), axis=1)
    if not np.all(np.isfinite(table)):
        raise ValueError(f"{path}: refusing to write NaN or infinite values")
    fmt = f"{{:.{decimals}f}}"
    lines = [",".join(CSV_COLUMNS)] if header else []
    for row in np.round(table, decimals) + 0.0:  # + 0.0 turns -0.0 into 0.0
        lines.append(",".join(fmt.format(v) for v in row))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
    return path

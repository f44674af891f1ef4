"""Unitree G1 clips: the CSV format, the kinematic model and keypoint forward kinematics.

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

:func:`load_g1_csv` returns the same :class:`~isaacgymenvs.motion.clip.MotionClip` as the
humanoid clips, so the MotionLib handles both alike: ``root_quat_wxyz`` is **wxyz** (MuJoCo's
``qpos[3:7]`` order, the order of every torch quaternion in this project), made sign-consistent
over time; velocities are central finite differences at the clip's fps (root linear and angular
velocity in the world frame, as in ``clip.py``).

Keypoint FK (:func:`g1_keypoints`) runs ``mujoco.mj_kinematics`` frame by frame on the kinematic
model (:func:`load_g1_model`, ``g1.xml`` with its mesh geoms dropped: the body tree, joints,
limits and the foot contact spheres are unchanged, and it compiles in milliseconds instead of
about a second). The 15 keypoints mirror the 15 AMP humanoid bodies (:data:`G1_KEYPOINTS`); the
G1 has no head body, so ``head`` is the centroid of the ``head_link`` mesh, a fixed point of
``torso_link`` (:data:`HEAD_OFFSET_IN_TORSO`).
"""

from __future__ import annotations

import functools
import json
import math
import os
from pathlib import Path

import mujoco
import numpy as np
from scipy.ndimage import gaussian_filter1d, minimum_filter1d

from isaacgymenvs import assets
from isaacgymenvs.motion.clip import MotionClip, _angular_velocity_world
from isaacgymenvs.motion.poselib import ClipError, _sha256

G1_MJCF = "unitree_g1/g1.xml"
G1_MOTIONS_DIR = "unitree_g1/motions"
G1_MOTION_MANIFEST = "unitree_g1/motions/manifest.json"

#: The 29 hinges in ``g1.xml`` qpos order = CSV columns 7-35 = actuator order.
G1_JOINT_NAMES: tuple[str, ...] = tuple(
    f"{n}_joint"
    for n in (
        "left_hip_pitch", "left_hip_roll", "left_hip_yaw", "left_knee", "left_ankle_pitch", "left_ankle_roll",
        "right_hip_pitch", "right_hip_roll", "right_hip_yaw", "right_knee", "right_ankle_pitch", "right_ankle_roll",
        "waist_yaw", "waist_roll", "waist_pitch",
        "left_shoulder_pitch", "left_shoulder_roll", "left_shoulder_yaw", "left_elbow",
        "left_wrist_roll", "left_wrist_pitch", "left_wrist_yaw",
        "right_shoulder_pitch", "right_shoulder_roll", "right_shoulder_yaw", "right_elbow",
        "right_wrist_roll", "right_wrist_pitch", "right_wrist_yaw",
    )
)
NUM_JOINTS = len(G1_JOINT_NAMES)
NUM_COLUMNS = 7 + NUM_JOINTS
#: Column names of the header row :func:`write_g1_csv` writes with ``header=True``.
ROOT_COLUMNS: tuple[str, ...] = ("root_x", "root_y", "root_z", "root_qx", "root_qy", "root_qz", "root_qw")
CSV_COLUMNS: tuple[str, ...] = ROOT_COLUMNS + G1_JOINT_NAMES
CSV_DECIMALS = 6

#: Keypoint name -> G1 body whose origin is the keypoint (``head``: see HEAD_OFFSET_IN_TORSO).
#: The order mirrors the AMP humanoid bodies (pelvis, torso, head, right arm, left arm, right
#: leg, left leg); hips are the hip_roll origins, shoulders the shoulder_roll origins (where
#: the joint axes nearly meet), hands the wrist_yaw origins (the wrist), feet the ankle_roll
#: origins (0.035 m above the sole).
G1_KEYPOINTS: dict[str, str] = {
    "pelvis": "pelvis",
    "torso": "torso_link",
    "head": "torso_link",
    "right_shoulder": "right_shoulder_roll_link",
    "right_elbow": "right_elbow_link",
    "right_hand": "right_wrist_yaw_link",
    "left_shoulder": "left_shoulder_roll_link",
    "left_elbow": "left_elbow_link",
    "left_hand": "left_wrist_yaw_link",
    "right_hip": "right_hip_roll_link",
    "right_knee": "right_knee_link",
    "right_foot": "right_ankle_roll_link",
    "left_hip": "left_hip_roll_link",
    "left_knee": "left_knee_link",
    "left_foot": "left_ankle_roll_link",
}
#: ``head`` keypoint in the ``torso_link`` frame: the centroid of the head_link mesh (MuJoCo's
#: compiled geom position of that mesh in g1.xml), about 1.22 m above the floor when standing.
HEAD_OFFSET_IN_TORSO = np.array([0.0076509, 0.0000248, 0.3851318])
#: The sole is this far below the ankle_roll_link origin (foot contact spheres at z = -0.03, r 0.005).
SOLE_BELOW_ANKLE_M = 0.035


class G1ClipError(ClipError):
    """A G1 clip that cannot be used; the message names the file, what was expected and the fix."""


# ---------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _load_model_cached(path: str, kinematic: bool) -> mujoco.MjModel:
    spec = mujoco.MjSpec.from_file(path)
    if kinematic:
        for g in list(spec.geoms):
            if g.type == mujoco.mjtGeom.mjGEOM_MESH:
                spec.delete(g)
        for m in list(spec.meshes):
            spec.delete(m)
    model = spec.compile()
    check_g1_model(model)
    return model


def load_g1_model(kinematic: bool = True, mjcf: str | os.PathLike | None = None) -> mujoco.MjModel:
    """The G1 ``MjModel`` from the asset folder (``unitree_g1/g1.xml``), cached per process.

    ``kinematic=True`` drops the mesh geoms (visual and collision meshes): bodies, joints,
    limits, inertials and the foot contact spheres stay. Treat the returned model as read-only.
    """
    path = Path(mjcf) if mjcf is not None else assets.asset_path(G1_MJCF)
    return _load_model_cached(str(path), kinematic)


def model_joint_names(model: mujoco.MjModel) -> list[str]:
    return [model.joint(j).name for j in range(model.njnt) if model.jnt_type[j] != mujoco.mjtJoint.mjJNT_FREE]


def check_g1_model(model: mujoco.MjModel) -> None:
    """Raise ``ValueError`` unless the model is a free root + the 29 G1 hinges in CSV order."""
    if model.njnt == 0 or model.jnt_type[0] != mujoco.mjtJoint.mjJNT_FREE:
        raise ValueError("the G1 model must start with a free root joint")
    names = model_joint_names(model)
    if model.nq != NUM_COLUMNS or names != list(G1_JOINT_NAMES):
        raise ValueError(
            f"the model has nq={model.nq} and hinges {names}; the G1 CSV format needs nq={NUM_COLUMNS} and the 29 "
            f"hinges {list(G1_JOINT_NAMES)} in that order (unitree_g1/g1.xml)"
        )


def joint_limits(model: mujoco.MjModel) -> np.ndarray:
    """``[29, 2]`` lower/upper hinge limits (rad) in qpos order."""
    return np.array(model.jnt_range[1:], dtype=np.float64)


def count_limit_violations(dof_pos: np.ndarray, limits: np.ndarray, tol: float = 1e-6) -> int:
    """Number of frames x joints outside ``limits`` by more than ``tol`` (rad)."""
    return int(np.sum((dof_pos < limits[:, 0] - tol) | (dof_pos > limits[:, 1] + tol)))


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
        digest = _sha256(p)
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
            path, f"the header names {len(names)} columns, expected {NUM_COLUMNS} ({', '.join(CSV_COLUMNS)}); {_FIX_COLUMNS}"
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


def _sign_consistent(q: np.ndarray) -> np.ndarray:
    q = q.copy()
    for t in range(1, len(q)):
        if np.dot(q[t], q[t - 1]) < 0:
            q[t] = -q[t]
    return q


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


def foot_geom_ids(model: mujoco.MjModel) -> np.ndarray:
    """The foot contact spheres: collision geoms on the two ankle_roll links."""
    feet = {mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, f"{s}_ankle_roll_link") for s in ("left", "right")}
    ids = [
        g for g in range(model.ngeom)
        if model.geom_bodyid[g] in feet and (model.geom_contype[g] or model.geom_conaffinity[g])
        and model.geom_type[g] == mujoco.mjtGeom.mjGEOM_SPHERE
    ]
    if not ids:
        raise ValueError("the model has no foot contact spheres on *_ankle_roll_link (use unitree_g1/g1.xml)")
    return np.array(ids)


def foot_sphere_bottoms(model: mujoco.MjModel, qpos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bottom points of the foot contact spheres per frame ``[T, S, 3]`` and each sphere's side
    ``[S]`` (0 left, 1 right)."""
    data = mujoco.MjData(model)
    geoms = foot_geom_ids(model)
    side = np.array([0 if model.body(model.geom_bodyid[g]).name.startswith("left") else 1 for g in geoms])
    r = model.geom_size[geoms, 0]
    out = np.empty((len(qpos), len(geoms), 3))
    for t, q in enumerate(qpos):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        out[t] = data.geom_xpos[geoms]
    out[..., 2] -= r
    return out, side


def foot_sole_heights(model: mujoco.MjModel, qpos: np.ndarray) -> np.ndarray:
    """``[T, 2]`` lowest contact-sphere bottom of the left and right foot per frame (m)."""
    pts, side = foot_sphere_bottoms(model, qpos)
    return np.stack([pts[:, side == k, 2].min(axis=1) for k in (0, 1)], axis=1)


def foot_contact_speed(model: mujoco.MjModel, qpos: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Per foot and frame: the lowest sphere bottom height ``[T, 2]`` and the horizontal speed
    of that sphere (central differences of its own track) ``[T, 2]``, in m and m/s."""
    pts, side = foot_sphere_bottoms(model, qpos)
    vel = np.linalg.norm(np.gradient(pts[..., :2], axis=0), axis=-1) * fps  # [T, S]
    T = len(qpos)
    height = np.empty((T, 2))
    speed = np.empty((T, 2))
    for k in (0, 1):
        idx = np.flatnonzero(side == k)
        low = idx[np.argmin(pts[:, idx, 2], axis=1)]
        height[:, k] = pts[np.arange(T), low, 2]
        speed[:, k] = vel[np.arange(T), low]
    return height, speed


def ground_offset(model: mujoco.MjModel, qpos: np.ndarray, fps: float, window_s: float = 0.8, sigma_s: float = 0.15) -> np.ndarray:
    """``[T]`` local floor height under the feet: the lowest foot point per frame, its rolling
    minimum over ``window_s`` (flight phases stay in the air) and a Gaussian smoothing (``sigma_s``).
    Subtracting it from the root height puts the lowest sole at z = 0."""
    low = foot_sole_heights(model, qpos).min(axis=1)
    win = max(1, int(round(window_s * fps)) | 1)
    floor = minimum_filter1d(low, size=win, mode="nearest")
    return gaussian_filter1d(floor, sigma=max(1e-6, sigma_s * fps), mode="nearest")


def clip_from_qpos(
    name: str,
    qpos: np.ndarray,
    fps: float,
    model: mujoco.MjModel | None = None,
    ground: str = "none",
    ground_window_s: float = 1.0,
) -> MotionClip:
    """A :class:`MotionClip` from MuJoCo qpos rows ``[T, 36]`` (quaternion wxyz)."""
    if ground not in ("none", "rolling_min"):
        raise ValueError(f"ground must be 'none' or 'rolling_min', got {ground!r}")
    model = model if model is not None else load_g1_model()
    qpos = np.asarray(qpos, dtype=np.float64)
    root_pos = qpos[:, :3].copy()
    quat = qpos[:, 3:7] / np.linalg.norm(qpos[:, 3:7], axis=1, keepdims=True)
    quat = _sign_consistent(quat)
    dof_pos = qpos[:, 7:].copy()
    offset = None
    if ground == "rolling_min":
        offset = ground_offset(model, np.concatenate((root_pos, quat, dof_pos), axis=1), fps, window_s=ground_window_s,
                               sigma_s=0.25)
        root_pos[:, 2] -= offset
    return MotionClip(
        name=name,
        fps=float(fps),
        root_pos=root_pos,
        root_quat_wxyz=quat,
        dof_pos=dof_pos,
        root_lin_vel=np.gradient(root_pos, axis=0) * fps,
        root_ang_vel=_angular_velocity_world(quat, fps),
        dof_vel=np.gradient(dof_pos, axis=0) * fps,
        joint_limit_violations=count_limit_violations(dof_pos, joint_limits(model)),
        ground_offset_m=offset,
    )


def load_g1_csv(
    path,
    fps: float | None = None,
    model: mujoco.MjModel | None = None,
    ground: str = "none",
    ground_window_s: float = 1.0,
) -> MotionClip:
    """Load a G1 CSV clip as a :class:`MotionClip` (root quaternion **wxyz**, SI units).

    Args:
        path: the CSV file.
        fps: frame rate; default: the file's entry in ``unitree_g1/motions/manifest.json``
            (an error when the file is not there).
        model: the G1 model to validate against (default :func:`load_g1_model`); its hinges
            must be the 29 of ``g1.xml`` in CSV order.
        ground: ``"none"`` (default: the files already put the floor at z = 0) or
            ``"rolling_min"``: subtract the smoothed rolling minimum of the lowest foot point.
        ground_window_s: rolling-minimum window for ``ground="rolling_min"``.
    """
    path = Path(path)
    model = model if model is not None else load_g1_model()
    try:
        check_g1_model(model)
    except ValueError as e:
        raise G1ClipError(path, str(e)) from None
    a = read_g1_csv(path)
    rate, _ = _resolve_fps(path, fps)
    qpos = np.concatenate((a[:, :3], xyzw_to_wxyz(a[:, 3:7]), a[:, 7:]), axis=1)
    return clip_from_qpos(path.stem, qpos, rate, model, ground=ground, ground_window_s=ground_window_s)


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


def write_g1_clip(path, clip: MotionClip, header: bool = False) -> Path:
    return write_g1_csv(path, clip.root_pos, clip.root_quat_wxyz, clip.dof_pos, header=header)


# ---------------------------------------------------------------------------------------
# Keypoint forward kinematics
# ---------------------------------------------------------------------------------------


def keypoint_body_ids(model: mujoco.MjModel, names=None) -> tuple[list[str], np.ndarray]:
    names = list(G1_KEYPOINTS) if names is None else list(names)
    unknown = [n for n in names if n not in G1_KEYPOINTS]
    if unknown:
        raise ValueError(f"unknown G1 keypoints {unknown}; known: {list(G1_KEYPOINTS)}")
    ids = np.array([mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, G1_KEYPOINTS[n]) for n in names])
    if (ids < 0).any():
        raise ValueError(f"the model lacks bodies {[G1_KEYPOINTS[n] for n, i in zip(names, ids) if i < 0]}")
    return names, ids


def g1_keypoints(model: mujoco.MjModel, qpos: np.ndarray, names=None) -> tuple[list[str], np.ndarray]:
    """World keypoint positions ``[T, K, 3]`` for MuJoCo qpos rows ``[T, 36]`` (wxyz), by ``mj_kinematics``.

    ``names``: a subset of :data:`G1_KEYPOINTS` (default: all 15, in that order)."""
    names, ids = keypoint_body_ids(model, names)
    head = [k for k, n in enumerate(names) if n == "head"]
    qpos = np.atleast_2d(np.asarray(qpos, dtype=np.float64))
    data = mujoco.MjData(model)
    out = np.empty((len(qpos), len(names), 3))
    for t, q in enumerate(qpos):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        out[t] = data.xpos[ids]
        for k in head:
            out[t, k] = data.xpos[ids[k]] + data.xmat[ids[k]].reshape(3, 3) @ HEAD_OFFSET_IN_TORSO
    return names, out


def stand_qpos(model: mujoco.MjModel) -> np.ndarray:
    """The ``stand`` keyframe's qpos (root z 0.79, elbows 1.28 rad), or zeros with z 0.79."""
    k = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "stand")
    if k >= 0:
        return np.array(model.key_qpos[k], dtype=np.float64)
    q = np.zeros(model.nq)
    q[2], q[3] = 0.79, 1.0
    return q

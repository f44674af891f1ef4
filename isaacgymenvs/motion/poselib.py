"""Reading IsaacGymEnvs poselib clips without poselib, and our pickle-free ``.npz`` form.

An IsaacGymEnvs clip is a ``.npy`` file holding a pickled dict (``SkeletonMotion``):
local joint rotations ``[T, J, 4]`` **xyzw**, the root translation ``[T, 3]``, the skeleton
tree and ``fps`` (stored as a Python int, float or 0-d numpy array depending on the file).

Pickles can run code when loaded. Loading a ``.npy`` clip therefore needs ``trust=True``
(``--trust`` on the command line) unless the file's sha256 is one of the pinned upstream
clips in the asset manifest; even then only the handful of classes such a file needs are
allowed by the unpickler. ``python -m isaacgymenvs.motion convert`` writes the same data to
an ``.npz`` that loads with ``allow_pickle=False``.

Imports: numpy and :mod:`isaacgymenvs.assets` (the pinned checksums) only.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NPZ_FORMAT = "amp-skeleton-motion-v1"


class ClipError(ValueError):
    """A clip that cannot be used; the message names the file and the problem."""

    def __init__(self, path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


class UntrustedClipError(ClipError):
    pass


@dataclass
class SkeletonMotion:
    """A clip in its source skeleton. Rotations are local (parent frame), **xyzw**."""

    path: str
    fps: float
    node_names: list[str]
    #: [J] parent index, -1 for the root.
    parents: np.ndarray
    #: [J, 3] offset of each node in its parent frame (m).
    local_translation: np.ndarray
    #: [T, J, 4] local rotations, xyzw, made sign-consistent frame to frame.
    rotation_xyzw: np.ndarray
    #: [T, 3] world position of the root (m).
    root_translation: np.ndarray
    source_dtype: str = "float32"

    @property
    def num_frames(self) -> int:
        return int(self.rotation_xyzw.shape[0])

    @property
    def duration_s(self) -> float:
        return (self.num_frames - 1) / self.fps

    def global_positions(self) -> np.ndarray:
        """The clip's own forward kinematics: world node positions ``[T, J, 3]``."""
        return self.global_transforms()[0]

    def global_transforms(self) -> tuple[np.ndarray, np.ndarray]:
        """World node positions ``[T, J, 3]`` and rotations ``[T, J, 4]`` (xyzw)."""
        from scipy.spatial.transform import Rotation

        T, J = self.rotation_xyzw.shape[:2]
        pos = np.zeros((T, J, 3))
        quat = np.zeros((T, J, 4))
        rots: list = [None] * J
        for j in range(J):
            r = Rotation.from_quat(self.rotation_xyzw[:, j])
            p = self.parents[j]
            if p < 0:
                rots[j] = r
                pos[:, j] = self.root_translation
            else:
                rots[j] = rots[p] * r
                pos[:, j] = pos[:, p] + rots[p].apply(self.local_translation[j])
            quat[:, j] = rots[j].as_quat()
        return pos, quat


# Classes a poselib SkeletonMotion pickle refers to; nothing else may be constructed.
_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a clip pickle")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _is_pinned_upstream(path: Path) -> bool:
    from isaacgymenvs import assets

    digest = _sha256(path)
    return any(e.sha256 == digest for e in assets.MANIFEST if e.sha256)


def _read_npy_pickle(path: Path) -> dict:
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
        except ValueError as e:
            raise ClipError(path, f"not a .npy file ({e})") from None
        try:
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        except ValueError as e:
            raise ClipError(path, f"corrupt .npy header ({e})") from None
        if dtype != np.dtype(object) or shape != ():
            raise ClipError(path, f"not a poselib clip (a {dtype} array of shape {shape}, expected a pickled dict)")
        payload = f.read()
    try:
        obj = _RestrictedUnpickler(io.BytesIO(payload)).load()
    except pickle.UnpicklingError as e:
        kind = "truncated or corrupt clip" if "truncated" in str(e) else "unreadable clip pickle"
        raise ClipError(path, f"{kind} ({e})") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
        raise ClipError(path, f"truncated or corrupt clip ({type(e).__name__}: {e})") from None
    if isinstance(obj, np.ndarray) and obj.shape == () and obj.dtype == object:
        obj = obj.item()
    if not isinstance(obj, dict):
        raise ClipError(path, f"not a poselib clip (holds a {type(obj).__name__}, expected a dict)")
    return obj


def _arr(d: dict, key: str, path) -> np.ndarray:
    if key not in d:
        raise ClipError(path, f"missing key {key!r} (keys: {sorted(d)})")
    v = d[key]
    if isinstance(v, dict):
        if "arr" not in v:
            raise ClipError(path, f"key {key!r} has no 'arr' entry")
        v = v["arr"]
    return np.asarray(v)


def _sign_consistent(q: np.ndarray) -> np.ndarray:
    """Flip quaternions so each has a non-negative dot product with the previous frame."""
    q = q.copy()
    for t in range(1, q.shape[0]):
        flip = np.sum(q[t] * q[t - 1], axis=-1) < 0
        q[t][flip] *= -1.0
    return q


def validate(m: SkeletonMotion) -> SkeletonMotion:
    path = m.path
    if not np.isfinite(m.fps) or m.fps <= 0:
        raise ClipError(path, f"fps must be a positive number, got {m.fps}")
    R = m.rotation_xyzw
    if R.ndim != 3 or R.shape[-1] != 4:
        raise ClipError(path, f"rotation must be [T, J, 4], got shape {R.shape}")
    T, J = R.shape[:2]
    if T < 2:
        raise ClipError(path, f"a clip needs at least 2 frames, got {T}")
    if len(m.node_names) != J or m.parents.shape != (J,) or m.local_translation.shape != (J, 3):
        raise ClipError(
            path,
            f"skeleton does not match the rotations: {len(m.node_names)} names, parents {m.parents.shape}, "
            f"local_translation {m.local_translation.shape}, rotations for {J} joints",
        )
    if m.root_translation.shape != (T, 3):
        raise ClipError(path, f"root_translation must be [{T}, 3], got {m.root_translation.shape}")
    for j, p in enumerate(m.parents):
        if not (p == -1 and j == 0) and not (0 <= p < j):
            raise ClipError(path, f"parent index {p} of node {m.node_names[j]!r} must come before it (root first)")
    for name, a in (
        ("rotation", R),
        ("root_translation", m.root_translation),
        ("local_translation", m.local_translation),
    ):
        if not np.all(np.isfinite(a)):
            raise ClipError(path, f"{name} holds NaN or infinite values")
    norms = np.linalg.norm(R, axis=-1)
    if np.max(np.abs(norms - 1.0)) > 1e-3:
        raise ClipError(path, f"rotations are not unit quaternions (norm off by up to {np.max(np.abs(norms - 1)):.3g})")
    return m


def load_poselib_npy(path, trust: bool = False) -> SkeletonMotion:
    """Load an IsaacGymEnvs poselib ``.npy`` clip (see the module docstring for ``trust``)."""
    path = Path(path)
    if not path.is_file():
        raise ClipError(path, "no such file")
    if not trust and not _is_pinned_upstream(path):
        raise UntrustedClipError(
            path,
            "a .npy clip is a pickle and can run code when loaded; pass --trust (trust=True) if you trust "
            "its source, or convert it once with `python -m isaacgymenvs.motion convert --trust FILE`",
        )
    d = _read_npy_pickle(path)
    if d.get("__name__", "SkeletonMotion") != "SkeletonMotion":
        raise ClipError(path, f"not a SkeletonMotion (it is a {d.get('__name__')!r})")
    if "is_local" in d and not bool(d["is_local"]):
        raise ClipError(path, "only clips with local rotations (is_local=True) are supported")
    tree = d.get("skeleton_tree")
    if not isinstance(tree, dict):
        raise ClipError(path, "missing 'skeleton_tree'")
    rot = _arr(d, "rotation", path)
    try:
        fps = float(np.asarray(d.get("fps")).item()) if "fps" in d else float("nan")
    except (TypeError, ValueError):
        raise ClipError(path, f"fps is not a number: {d.get('fps')!r}") from None
    names = tree.get("node_names")
    if not isinstance(names, (list, tuple)):
        raise ClipError(path, "skeleton_tree.node_names is missing")
    m = SkeletonMotion(
        path=str(path),
        fps=fps,
        node_names=[str(n) for n in names],
        parents=_arr(tree, "parent_indices", path).astype(np.int64).reshape(-1),
        local_translation=_arr(tree, "local_translation", path).astype(np.float64),
        rotation_xyzw=rot.astype(np.float64),
        root_translation=_arr(d, "root_translation", path).astype(np.float64),
        source_dtype=str(rot.dtype),
    )
    validate(m)
    m.rotation_xyzw = _sign_consistent(m.rotation_xyzw / np.linalg.norm(m.rotation_xyzw, axis=-1, keepdims=True))
    return m


def save_npz(m: SkeletonMotion, out) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez(
        tmp,
        format=np.array(NPZ_FORMAT),
        fps=np.array(m.fps),
        node_names=np.array(m.node_names),
        parent_indices=m.parents,
        local_translation=m.local_translation,
        rotation_xyzw=m.rotation_xyzw,
        root_translation=m.root_translation,
        source_dtype=np.array(m.source_dtype),
    )
    tmp.replace(out)
    return out


def load_npz(path) -> SkeletonMotion:
    path = Path(path)
    if not path.is_file():
        raise ClipError(path, "no such file")
    try:
        with np.load(path, allow_pickle=False) as z:
            if "format" not in z.files or str(z["format"]) != NPZ_FORMAT:
                raise ClipError(path, f"not a converted clip (expected format {NPZ_FORMAT!r})")
            m = SkeletonMotion(
                path=str(path),
                fps=float(z["fps"]),
                node_names=[str(n) for n in z["node_names"]],
                parents=z["parent_indices"].astype(np.int64),
                local_translation=z["local_translation"].astype(np.float64),
                rotation_xyzw=z["rotation_xyzw"].astype(np.float64),
                root_translation=z["root_translation"].astype(np.float64),
                source_dtype=str(z["source_dtype"]) if "source_dtype" in z.files else "float64",
            )
    except ClipError:
        raise
    except Exception as e:  # zipfile/numpy raise many types for damaged archives
        raise ClipError(path, f"truncated or corrupt .npz ({type(e).__name__}: {e})") from None
    validate(m)
    m.rotation_xyzw = _sign_consistent(m.rotation_xyzw / np.linalg.norm(m.rotation_xyzw, axis=-1, keepdims=True))
    return m


def load_skeleton_motion(path, trust: bool = False) -> SkeletonMotion:
    """Load a ``.npy`` (poselib) or ``.npz`` (converted) clip by its extension."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return load_poselib_npy(path, trust=trust)
    if suffix == ".npz":
        return load_npz(path)
    raise ClipError(path, f"unknown clip type {suffix!r}; expected .npy (poselib), .npz (converted) or .yaml (a list)")

"""MotionLib: batched sampling and interpolation of reference clips on a torch device.

One clip, or an IsaacGymEnvs-style YAML list ``motions: [{file, weight}]`` (paths relative
to the YAML). A clip is a poselib ``.npy`` (AMP humanoid) or a G1 ``.csv`` (``motion/g1.py``;
fps from the manifest, from ``fps`` or from the list entry's ``fps``). Clips are drawn in
proportion to their weights, times uniformly over a clip; frames are interpolated (root position
lerp, root rotation slerp, single hinges lerp, the local rotation of a 3-hinge joint slerp and
read back on the branch nearest the neighbouring frames, velocities lerp) and key-body positions
come from forward kinematics of the interpolated pose, so they are exactly what a simulator shows
for the same state.

Imports: mujoco, torch, yaml, ``isaacgymenvs.motion`` and ``isaacgymenvs.utils`` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mujoco
import torch
import yaml

from isaacgymenvs.motion.clip import MotionClip
from isaacgymenvs.motion.hinge_chain import chains_by_axes, interpolate_hinges
from isaacgymenvs.motion.loader import load_clip
from isaacgymenvs.motion.poselib import ClipError
from isaacgymenvs.motion.skeleton import Skeleton
from isaacgymenvs.utils.rotations import quat_slerp


@dataclass
class MotionState:
    """Reference state of a batch ``[N]``; quaternions wxyz, everything in the world frame."""

    root_pos: torch.Tensor  # [N, 3]
    root_quat_wxyz: torch.Tensor  # [N, 4]
    root_lin_vel: torch.Tensor  # [N, 3]
    root_ang_vel: torch.Tensor  # [N, 3]
    dof_pos: torch.Tensor  # [N, D]
    dof_vel: torch.Tensor  # [N, D]
    key_body_pos: torch.Tensor  # [N, K, 3]


def read_motion_list(path) -> list[tuple[Path, float, float | None]]:
    """Parse a motion YAML into ``(file, weight, fps)`` entries (fps: for G1 CSVs, else None);
    files are checked to exist."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ClipError(path, f"unreadable motion list ({type(e).__name__}: {e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("motions"), list) or not doc["motions"]:
        raise ClipError(path, "a motion list needs a non-empty 'motions: [{file, weight}]'")
    out = []
    for i, entry in enumerate(doc["motions"]):
        if not isinstance(entry, dict) or "file" not in entry:
            raise ClipError(path, f"motions[{i}] needs a 'file' key")
        f = Path(entry["file"])
        f = f if f.is_absolute() else path.parent / f
        if not f.is_file():
            raise ClipError(path, f"motions[{i}] names a missing file {str(f)!r}")
        w = entry.get("weight", 1.0)
        if not isinstance(w, (int, float)) or w < 0:
            raise ClipError(path, f"motions[{i}] weight must be a non-negative number, got {w!r}")
        fps = entry.get("fps")
        if fps is not None and (not isinstance(fps, (int, float)) or fps <= 0):
            raise ClipError(path, f"motions[{i}] fps must be a positive number, got {fps!r}")
        out.append((f, float(w), fps))
    if sum(e[1] for e in out) <= 0:
        raise ClipError(path, "the motion weights sum to zero")
    return out


def load_clips(
    motion_file,
    skeleton: Skeleton,
    model: mujoco.MjModel | None,
    trust: bool = False,
    ground: str = "rolling_min",
    fps: float | None = None,
    root_vel_sigma: float = 0.0,
) -> tuple[list[MotionClip], list[float]]:
    motion_file = Path(motion_file)
    if motion_file.suffix.lower() in (".yaml", ".yml"):
        entries = read_motion_list(motion_file)
    else:
        entries = [(motion_file, 1.0, None)]
    clips = [
        load_clip(f, skeleton, model, trust, ground, f_fps if f_fps is not None else fps, root_vel_sigma)
        for f, _, f_fps in entries
    ]
    return clips, [e[1] for e in entries]


class MotionLib:
    def __init__(
        self,
        clips: list[MotionClip],
        weights: list[float],
        skeleton: Skeleton,
        key_bodies: list[str],
        device="cpu",
        dtype=torch.float32,
    ):
        if not clips:
            raise ValueError("MotionLib needs at least one clip")
        self.device = torch.device(device)
        self.dtype = dtype
        self.clips = clips
        self.skeleton = skeleton.to(self.device)
        # a device tensor: indexing with a Python list would copy it from the host on every call
        self.key_body_ids = torch.tensor(skeleton.body_index(key_bodies), device=self.device)
        self._chains = [(axes, torch.as_tensor(idx, device=self.device)) for axes, idx in chains_by_axes(skeleton)]
        f = dict(device=self.device, dtype=dtype)
        cat = lambda name: torch.cat([torch.as_tensor(getattr(c, name), **f) for c in clips])  # noqa: E731
        self._root_pos = cat("root_pos")
        self._root_quat = cat("root_quat_wxyz")
        self._root_lin_vel = cat("root_lin_vel")
        self._root_ang_vel = cat("root_ang_vel")
        self._dof_pos = cat("dof_pos")
        self._dof_vel = cat("dof_vel")
        lengths = torch.tensor([c.num_frames for c in clips], device=self.device)
        self._start = torch.cumsum(lengths, 0) - lengths
        self._num_frames = lengths
        self._fps = torch.tensor([c.fps for c in clips], **f)
        self.durations = torch.tensor([c.duration_s for c in clips], **f)
        w = torch.tensor(weights, dtype=torch.float64)
        self.weights = (w / w.sum()).to(self.device)
        self._cdf = torch.cumsum(self.weights, 0)

    @classmethod
    def from_file(
        cls,
        motion_file,
        skeleton,
        model,
        key_bodies,
        device="cpu",
        trust=False,
        ground="rolling_min",
        fps=None,
        root_vel_sigma: float = 0.0,
    ):
        clips, weights = load_clips(
            motion_file, skeleton, model, trust=trust, ground=ground, fps=fps, root_vel_sigma=root_vel_sigma
        )
        return cls(clips, weights, skeleton, key_bodies, device=device)

    @property
    def num_motions(self) -> int:
        return len(self.clips)

    def sample_motions(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        # inverse CDF: the same distribution as torch.multinomial(weights, n, replacement=True),
        # with shapes fixed by n and no host synchronization (a captured CUDA graph can replay it)
        u = torch.rand(n, device=self.weights.device, dtype=self._cdf.dtype, generator=generator)
        return torch.searchsorted(self._cdf, u * self._cdf[-1], right=True).clamp_max(self._cdf.numel() - 1)

    def sample_time(self, motion_ids: torch.Tensor, truncate_time: float = 0.0, generator=None) -> torch.Tensor:
        u = torch.rand(motion_ids.shape, device=self.device, dtype=self.dtype, generator=generator)
        return u * (self.durations[motion_ids] - truncate_time).clamp_min(0.0)

    def get_motion_state(self, motion_ids: torch.Tensor, times: torch.Tensor) -> MotionState:
        """Interpolated state at ``times`` (s, clamped to the clip) of ``motion_ids`` ``[N]``."""
        fps = self._fps[motion_ids]
        n = self._num_frames[motion_ids]
        ft = times.to(self.dtype).clamp_min(0.0) * fps
        f0 = torch.minimum(ft.floor().long(), n - 2).clamp_min(0)
        blend = (ft - f0.to(self.dtype)).clamp(0.0, 1.0)
        i0 = self._start[motion_ids] + f0
        i1 = i0 + 1
        b = blend.unsqueeze(-1)
        lerp = lambda x: x[i0] + b * (x[i1] - x[i0])  # noqa: E731
        root_pos = lerp(self._root_pos)
        root_quat = quat_slerp(self._root_quat[i0], self._root_quat[i1], blend)
        dof_pos = interpolate_hinges(self._dof_pos[i0], self._dof_pos[i1], blend, self._chains)
        body_pos, _ = self.skeleton.forward_kinematics(root_pos, root_quat, dof_pos)
        return MotionState(
            root_pos=root_pos,
            root_quat_wxyz=root_quat,
            root_lin_vel=lerp(self._root_lin_vel),
            root_ang_vel=lerp(self._root_ang_vel),
            dof_pos=dof_pos,
            dof_vel=lerp(self._dof_vel),
            key_body_pos=body_pos[..., self.key_body_ids, :],
        )

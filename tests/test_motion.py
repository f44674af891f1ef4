"""Clip loading, the Euler mapping, the MotionLib and the motion CLI, on the real clips."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from isaacgymenvs.motion import __main__ as cli
from isaacgymenvs.motion.clip import clip_from_skeleton_motion
from isaacgymenvs.motion.motion_lib import MotionLib, read_motion_list
from isaacgymenvs.motion.poselib import ClipError, UntrustedClipError, load_poselib_npy, load_skeleton_motion


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if out.out.strip() else None), out.err


# ------------------------------------------------------------------ loading
def test_walk_clip_facts(clip_path):
    m = load_poselib_npy(clip_path("walk"))
    assert (m.num_frames, m.fps) == (154, 60.0)
    assert m.duration_s == pytest.approx(153 / 60)
    assert m.node_names[0] == "pelvis" and len(m.node_names) == 15
    # xyzw: the scalar sits last, and is the large component for small joint rotations.
    assert np.mean(np.abs(m.rotation_xyzw[..., 3])) > 0.8
    # frames 2k and 2k+1 hold the same pose (60 fps file, 30 Hz content)
    assert np.allclose(m.root_translation[0], m.root_translation[1])


@pytest.mark.parametrize("name", ["walk", "run", "dance"])
def test_euler_mapping_reproduces_clip_fk(name, clip_path, humanoid):
    model, skeleton = humanoid
    sm = load_poselib_npy(clip_path(name))
    clip = clip_from_skeleton_motion(sm, skeleton, model, ground="none")
    ref = torch.tensor(sm.global_positions())
    pos, _ = skeleton.forward_kinematics(
        torch.tensor(clip.root_pos), torch.tensor(clip.root_quat_wxyz), torch.tensor(clip.dof_pos)
    )
    assert (pos - ref).abs().max().item() < 1e-6


def test_joint_limit_violations_match_the_format_notes(clip_path, humanoid):
    model, skeleton = humanoid
    counts = {
        n: clip_from_skeleton_motion(load_poselib_npy(clip_path(n)), skeleton, model, "none").joint_limit_violations
        for n in ("walk", "run", "dance")
    }
    assert counts == {"walk": 0, "run": 2, "dance": 116}


@pytest.mark.parametrize(
    "fps,dtype,step",
    [
        (16.0, np.float64, 4),
        (60, np.float32, 1),
        (np.asarray(30, dtype=np.int32), np.float32, 2),
        (np.float64(20.0), np.float64, 3),
    ],
)
def test_any_fps_type_and_float_type(make_clip, humanoid, fps, dtype, step):
    path = make_clip(step=step, fps=fps, dtype=dtype)
    sm = load_poselib_npy(path, trust=True)
    assert sm.fps == float(fps)
    assert sm.source_dtype == np.dtype(dtype).name


def test_sign_flips_are_removed(make_clip, clip_path):
    flipped = load_poselib_npy(make_clip(flip_signs=True), trust=True)
    plain = load_poselib_npy(clip_path("walk"))
    dots = np.sum(flipped.rotation_xyzw[1:] * flipped.rotation_xyzw[:-1], axis=-1)
    assert dots.min() > 0
    # the same rotations up to sign
    assert np.allclose(np.abs(np.sum(flipped.rotation_xyzw * plain.rotation_xyzw, -1)), 1.0, atol=1e-6)


def test_untrusted_pickle_is_refused(make_clip):
    path = make_clip(dtype=np.float64)  # a different checksum from every pinned clip
    with pytest.raises(UntrustedClipError, match="--trust"):
        load_poselib_npy(path)


def test_pickle_with_code_is_refused_even_when_trusted(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    arr = np.empty((), dtype=object)
    arr[()] = {"x": Evil()}
    path = tmp_path / "evil.npy"
    np.save(path, arr, allow_pickle=True)
    with pytest.raises(ClipError, match="refusing to load builtins.print"):
        load_poselib_npy(path, trust=True)


@pytest.mark.parametrize(
    "kind,content,match",
    [
        ("truncated", None, "truncated or corrupt"),
        ("text", b"hello, not a clip\n", "not a .npy file"),
        ("array", "float-array", "not a poselib clip"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, clip_path, kind, content, match):
    path = tmp_path / f"{kind}.npy"
    if kind == "truncated":
        data = clip_path("walk").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif content == "float-array":
        np.save(path, np.zeros((3, 4)))
    else:
        path.write_bytes(content)
    with pytest.raises(ClipError, match=match) as e:
        load_poselib_npy(path, trust=True)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_wrong_extension_and_missing_file(tmp_path):
    (tmp_path / "clip.bvh").write_text("HIERARCHY")
    with pytest.raises(ClipError, match="unknown clip type"):
        load_skeleton_motion(tmp_path / "clip.bvh")
    with pytest.raises(ClipError, match="no such file"):
        load_skeleton_motion(tmp_path / "nope.npy")


def test_clip_with_foreign_joints_is_rejected(make_clip, humanoid):
    model, skeleton = humanoid
    names = [
        "pelvis",
        "torso",
        "head",
        "r_arm",
        "right_lower_arm",
        "right_hand",
        "left_upper_arm",
        "left_lower_arm",
        "left_hand",
        "right_thigh",
        "right_shin",
        "right_foot",
        "left_thigh",
        "left_shin",
        "left_foot",
    ]
    sm = load_poselib_npy(make_clip(node_names=names), trust=True)
    with pytest.raises(ClipError, match=r"missing from the clip: \['right_upper_arm'\].*not in the model: \['r_arm'\]"):
        clip_from_skeleton_motion(sm, skeleton, model, "none")


def test_npz_conversion_round_trip(make_clip, tmp_path, capsys):
    src = make_clip(step=2, fps=30.0, dtype=np.float64)
    out = tmp_path / "safe.npz"
    code, res, _ = run_cli(capsys, "convert", src, "--out", out)
    assert code == 2  # untrusted without --trust
    code, res, _ = run_cli(capsys, "convert", src, "--trust", "--out", out)
    assert code == 0 and res["frames"] == 77
    a = load_poselib_npy(src, trust=True)
    b = load_skeleton_motion(out)
    assert b.fps == 30.0 and np.allclose(a.rotation_xyzw, b.rotation_xyzw, atol=1e-12, rtol=0)


# ------------------------------------------------------------------ motion list and MotionLib
def test_motion_yaml_with_missing_file(tmp_path):
    y = tmp_path / "motions.yaml"
    y.write_text("motions:\n  - file: nothere.npy\n    weight: 1.0\n")
    with pytest.raises(ClipError, match="missing file") as e:
        read_motion_list(y)
    assert str(y) in str(e.value)


def test_motion_lib_samples_by_weight(tmp_path, clip_path, humanoid):
    model, skeleton = humanoid
    y = tmp_path / "motions.yaml"
    y.write_text(
        f"motions:\n  - file: {clip_path('walk')}\n    weight: 3.0\n  - file: {clip_path('run')}\n    weight: 1.0\n"
    )
    lib = MotionLib.from_file(y, skeleton, model, ["right_hand", "left_foot"])
    ids = lib.sample_motions(20000, torch.Generator().manual_seed(0))
    share = (ids == 0).float().mean().item()
    assert share == pytest.approx(0.75, abs=0.015)
    t = lib.sample_time(ids, generator=torch.Generator().manual_seed(1))
    assert (t >= 0).all() and (t <= lib.durations[ids]).all()


def test_motion_lib_interpolation(clip_path, humanoid):
    model, skeleton = humanoid
    lib = MotionLib.from_file(clip_path("walk"), skeleton, model, ["right_hand"], ground="none")
    clip = lib.clips[0]
    fps = clip.fps
    # on a frame: exactly the frame; between frames 3 and 4 (different poses): the mid point
    st = lib.get_motion_state(torch.tensor([0, 0]), torch.tensor([3 / fps, 3.5 / fps]))
    assert np.allclose(st.root_pos[0].numpy(), clip.root_pos[3], atol=1e-6)
    mid = 0.5 * (clip.root_pos[3] + clip.root_pos[4])
    assert np.allclose(st.root_pos[1].numpy(), mid, atol=1e-6)
    # single hinges (elbows, knees) blend linearly; 3-hinge joints through their rotations
    # (tests/test_joint_angles.py), which for the walk's small steps is within 1e-3 rad of the blend
    single = [i for i, n in enumerate(skeleton.dof_names) if n.endswith(("elbow", "knee"))]
    mid_dof = 0.5 * (clip.dof_pos[3] + clip.dof_pos[4])
    assert np.allclose(st.dof_pos[1].numpy()[single], mid_dof[single], atol=1e-6)
    assert np.abs(st.dof_pos[1].numpy() - mid_dof).max() < 1e-3
    # times past the end clamp to the last frame
    end = lib.get_motion_state(torch.tensor([0]), torch.tensor([100.0]))
    assert np.allclose(end.root_pos[0].numpy(), clip.root_pos[-1], atol=1e-6)


def test_root_velocity_matches_the_stored_one(clip_path, humanoid):
    """Our central differences agree with the file's own smoothed root velocity (m/s)."""
    model, skeleton = humanoid
    clip = clip_from_skeleton_motion(load_poselib_npy(clip_path("run")), skeleton, model, "none")
    d = np.load(clip_path("run"), allow_pickle=True).item()  # the pinned upstream clip
    stored = d["global_velocity"]["arr"][:, 0]
    mean_speed = np.linalg.norm(stored[:, :2], axis=-1).mean()
    ours = np.linalg.norm(clip.root_lin_vel[:, :2], axis=-1).mean()
    assert ours == pytest.approx(mean_speed, rel=0.05)
    assert mean_speed == pytest.approx(3.45, rel=0.1)


def test_ground_offset_lifts_penetrating_frames(clip_path, humanoid):
    model, skeleton = humanoid
    from isaacgymenvs.motion.clip import lowest_point_per_frame

    sm = load_poselib_npy(clip_path("walk"))
    raw = clip_from_skeleton_motion(sm, skeleton, model, "none")
    fixed = clip_from_skeleton_motion(sm, skeleton, model, "rolling_min")
    assert lowest_point_per_frame(model, raw.qpos()).min() < -0.07  # FORMAT.md: -0.08 m
    assert lowest_point_per_frame(model, fixed.qpos()).min() > -0.01


# ------------------------------------------------------------------ CLI
@pytest.mark.slow
@pytest.mark.parametrize("name", ["walk", "run", "dance"])
def test_cli_check(capsys, clip_path, name):
    code, res, _ = run_cli(capsys, "check", clip_path(name))
    assert code == 0 and res["ok"] and res["max_err_m"] < 0.01


def test_cli_check_fails_over_tolerance(capsys, clip_path):
    code, res, _ = run_cli(capsys, "check", clip_path("walk"), "--tol", "1e-12")
    assert code == 1 and not res["ok"]


def test_cli_check_at_another_timestep(capsys, clip_path):
    """--timestep: the one-step check of the run clip at the default 1/180 s passes (16 rad/s, measured),
    at 1/90 s (3 physics steps per control step) the ankles reach 44 rad/s past the 30 rad/s bound."""
    code, res, _ = run_cli(capsys, "check", clip_path("run"), "--timestep", "0.0111111")
    assert code == 1 and not res["step"]["ok"] and res["step"]["max"] > 40
    assert "ankle" in res["step"]["joint"] and res["step"]["control_dt_s"] == pytest.approx(1 / 30, abs=1e-5)
    code, res, _ = run_cli(capsys, "check", clip_path("run"))
    assert code == 0 and res["step"]["max"] < 20


def test_cli_info(capsys, clip_path):
    code, res, _ = run_cli(capsys, "info", clip_path("run"))
    assert code == 0
    assert res["frames"] == 82 and res["fps"] == 60.0 and res["duration_s"] == pytest.approx(1.35)
    assert res["joint_names"][0] == "pelvis"
    lo, hi = res["root_height_range_m"]
    assert lo == pytest.approx(0.754, abs=1e-3) and hi == pytest.approx(0.870, abs=1e-3)


def test_cli_obs_has_105_numbers(capsys, clip_path):
    code, res, _ = run_cli(capsys, "obs", clip_path("walk"), "--frame", "10")
    assert code == 0 and len(res["obs"]) == 105
    assert sum(b["size"] for b in res["layout"]) == 105
    code, _, err = run_cli(capsys, "obs", clip_path("walk"), "--frame", "999")
    assert code == 2 and "--frame must lie in [0, 153]" in err


def test_cli_error_is_one_line(capsys, tmp_path):
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"\x93NUMPY garbage")
    code, _, err = run_cli(capsys, "info", bad, "--trust")
    assert code == 2 and err.count("\n") == 1 and str(bad) in err


def test_cli_takes_bundled_clip_names(capsys, clip_path, tmp_path, monkeypatch):
    """`motion info amp_humanoid_run.npy` (as in the README) finds the bundled clip; an unknown name
    says where it looked; `convert` of a bundled clip writes into the working directory."""
    code, res, _ = run_cli(capsys, "info", "amp_humanoid_run.npy")
    assert code == 0 and res["frames"] == 82 and res["file"] == str(clip_path("run"))
    code, _, err = run_cli(capsys, "info", "amp_humanoid_nothere.npy")
    assert code == 2 and err.count("\n") == 1
    assert "amp_humanoid/motions/ or unitree_g1/motions/" in err
    monkeypatch.chdir(tmp_path)
    code, res, _ = run_cli(capsys, "convert", "amp_humanoid_run.npy")
    assert code == 0 and res["out"] == "amp_humanoid_run.npz" and (tmp_path / "amp_humanoid_run.npz").exists()


# ------------------------------------------------------------------ layering
@pytest.mark.slow
def test_motion_package_imports_nothing_above_it():
    """Every module of isaacgymenvs.motion imports without the simulator, the tasks, the learner, the
    characters or the task registry; only `python -m isaacgymenvs.motion` (__main__) forwards to
    motion_check, which holds the command line."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import importlib, pkgutil, sys, isaacgymenvs.motion as m; "
        "[importlib.import_module('isaacgymenvs.motion.' + i.name) for i in pkgutil.iter_modules(m.__path__) "
        "if i.name != '__main__']; "
        "up = ('isaacgymenvs.sim', 'isaacgymenvs.tasks', 'isaacgymenvs.learning', 'isaacgymenvs.characters', "
        "'isaacgymenvs.task_registry', 'isaacgymenvs.motion_check'); "
        "bad = sorted(k for k in sys.modules if any(k == u or k.startswith(u + '.') for u in up)); "
        "sys.exit(repr(bad) if bad else 0)"
    )
    repo = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr + r.stdout
    from isaacgymenvs import motion_check

    assert cli.main is motion_check.main

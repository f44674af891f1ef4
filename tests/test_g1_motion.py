"""Unitree G1 clips: the CSV loader and writer, keypoint FK, the retarget and the CLI on G1 CSVs."""

from __future__ import annotations

import dataclasses
import json

import mujoco
import numpy as np
import pytest
import torch

from isaacgymenvs import assets
from isaacgymenvs.motion import __main__ as cli
from isaacgymenvs.motion import g1
from isaacgymenvs.motion import retarget as rt

G1_MOVES = ["B_HandsUp", "J_ShortDance16_JazzWalk", "M_ShortMove12"]


def _asset(rel: str):
    try:
        return assets.asset_path(rel)
    except assets.AssetNotFoundError as e:
        pytest.skip(f"asset missing: {e}")


def _g1_moves(name: str):
    return _asset(f"unitree_g1/motions/g1_moves/{name}.csv")


@pytest.fixture(scope="module")
def model():
    _asset(g1.G1_MJCF)
    return g1.load_g1_model()


@pytest.fixture(scope="module")
def manifest():
    return json.loads(_asset(g1.G1_MOTION_MANIFEST).read_text())["clips"]


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if out.out.strip() else None), out.err


def _rows(path, n=None):
    lines = path.read_text().splitlines()
    return lines if n is None else lines[:n]


# ------------------------------------------------------------------ loading the shipped clips
@pytest.mark.parametrize("name", G1_MOVES)
def test_g1_moves_clips_match_the_manifest(name, model, manifest):
    path = _g1_moves(name)
    entry = manifest[f"g1_moves/{name}.csv"]
    clip = g1.load_g1_csv(path, model=model)
    assert (clip.num_frames, clip.fps) == (entry["frames"], entry["fps"])
    assert clip.duration_s == pytest.approx(entry["duration_s"], abs=1e-3)
    assert clip.name == name
    raw = g1.read_g1_csv(path)
    assert np.abs(np.linalg.norm(raw[:, 3:7], axis=1) - 1).max() < 1e-6  # FORMAT.md: error < 1e-6
    assert np.allclose(np.linalg.norm(clip.root_quat_wxyz, axis=1), 1.0, atol=1e-12)
    assert np.all(np.sum(clip.root_quat_wxyz[1:] * clip.root_quat_wxyz[:-1], axis=1) > 0)  # sign-consistent
    lim = g1.joint_limits(model)
    assert clip.joint_limit_violations == 0
    assert np.all(clip.dof_pos >= lim[:, 0] - 1e-6) and np.all(clip.dof_pos <= lim[:, 1] + 1e-6)
    lo, hi = entry["root_z_range_m"]
    assert clip.root_pos[:, 2].min() == pytest.approx(lo, abs=1e-3) and clip.root_pos[:, 2].max() == pytest.approx(
        hi, abs=1e-3
    )
    # velocities: central differences at the clip's fps, shapes as the humanoid clips
    assert clip.dof_vel.shape == (clip.num_frames, 29) and clip.root_ang_vel.shape == (clip.num_frames, 3)
    assert np.allclose(clip.dof_vel, np.gradient(clip.dof_pos, axis=0) * clip.fps)
    assert clip.qpos().shape == (clip.num_frames, 36)


def test_hand_checked_first_row_of_hands_up(model):
    # B_HandsUp.csv line 1: -0.033898,-0.030727,0.813293,-0.061490,-0.001253,-0.687761,0.723328,0.091409,...,0.005106
    clip = g1.load_g1_csv(_g1_moves("B_HandsUp"), model=model)
    assert np.allclose(clip.root_pos[0], [-0.033898, -0.030727, 0.813293], atol=1e-12)
    q = np.array([0.723328, -0.061490, -0.001253, -0.687761])  # stored xyzw, loaded wxyz
    assert np.allclose(clip.root_quat_wxyz[0], q / np.linalg.norm(q), atol=1e-12)
    assert clip.dof_pos[0, 0] == pytest.approx(0.091409)  # left_hip_pitch_joint
    assert clip.dof_pos[0, 3] == pytest.approx(0.124383)  # left_knee_joint
    assert clip.dof_pos[0, 28] == pytest.approx(0.005106)  # right_wrist_yaw_joint
    # facing about -90 deg yaw (manifest: initial_yaw_deg -86.9)
    w, x, y, z = clip.root_quat_wxyz[0]
    yaw = np.degrees(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))
    assert yaw == pytest.approx(-86.9, abs=0.5)


def test_fps_from_the_manifest_by_checksum_or_the_option(tmp_path, model):
    src = _g1_moves("B_HandsUp")
    copy = tmp_path / "copy.csv"
    copy.write_bytes(src.read_bytes())
    assert g1.g1_csv_fps(copy) == (60.0, "manifest:g1_moves/B_HandsUp.csv")  # matched by sha256
    assert g1.load_g1_csv(copy, fps=30, model=model).fps == 30.0
    other = tmp_path / "other.csv"
    other.write_text("\n".join(_rows(src, 5)) + "\n")
    with pytest.raises(g1.G1ClipError, match=r"does not store its fps.*pass fps=") as e:
        g1.load_g1_csv(other, model=model)
    assert str(other) in str(e.value)
    assert g1.load_g1_csv(other, fps=60, model=model).num_frames == 5


# ------------------------------------------------------------------ bad files
def _write(tmp_path, name, lines):
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def test_missing_column_is_named(tmp_path, model):
    rows = [",".join(r.split(",")[:-1]) for r in _rows(_g1_moves("B_HandsUp"), 4)]
    p = _write(tmp_path, "short.csv", rows)
    with pytest.raises(
        g1.G1ClipError, match=r"line 1 has 35 columns, expected 36.*quaternion x,y,z,w.*FORMAT\.md"
    ) as e:
        g1.load_g1_csv(p, fps=60, model=model)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_swapped_joint_header_is_named(tmp_path, model):
    rows = _rows(_g1_moves("B_HandsUp"), 4)
    names = list(g1.CSV_COLUMNS)
    names[7], names[8] = names[8], names[7]
    p = _write(tmp_path, "swapped.csv", [",".join(names)] + rows)
    with pytest.raises(
        g1.G1ClipError, match=r"column 7 is 'left_hip_roll_joint' where 'left_hip_pitch_joint' is expected"
    ):
        g1.load_g1_csv(p, fps=60, model=model)
    # the right order, with or without the _joint suffix, is accepted
    ok = [n[:-6] if n.endswith("_joint") else n for n in g1.CSV_COLUMNS]
    p = _write(tmp_path, "header.csv", [",".join(ok)] + rows)
    assert g1.load_g1_csv(p, fps=60, model=model).num_frames == 4
    unknown = list(g1.CSV_COLUMNS)
    unknown[27] = "left_wrist_twist_joint"  # column 27 = joint 20, left_wrist_pitch
    p = _write(tmp_path, "unknown.csv", [",".join(unknown)] + rows)
    with pytest.raises(g1.G1ClipError, match=r"unknown \['left_wrist_twist'\], missing \['left_wrist_pitch'\]"):
        g1.load_g1_csv(p, fps=60, model=model)
    wxyz = list(g1.CSV_COLUMNS)
    wxyz[3:7] = ["root_qw", "root_qx", "root_qy", "root_qz"]
    p = _write(tmp_path, "wxyz.csv", [",".join(wxyz)] + rows)
    with pytest.raises(g1.G1ClipError, match=r"scalar first.*x, y, z, w"):
        g1.load_g1_csv(p, fps=60, model=model)


def test_nan_and_too_few_frames_and_text(tmp_path, model):
    rows = _rows(_g1_moves("B_HandsUp"), 4)
    bad = rows[2].split(",")
    bad[10] = "nan"
    p = _write(tmp_path, "nan.csv", rows[:2] + [",".join(bad)] + rows[3:])
    with pytest.raises(
        g1.G1ClipError, match=r"NaN or infinite values, the first at frame 2 \(line 3\), column 10 \(left_knee_joint\)"
    ):
        g1.load_g1_csv(p, fps=60, model=model)
    p = _write(tmp_path, "one.csv", rows[:1])
    with pytest.raises(g1.G1ClipError, match="at least 2 frames, got 1"):
        g1.load_g1_csv(p, fps=60, model=model)
    bad = rows[1].split(",")
    bad[5] = "abc"
    p = _write(tmp_path, "text.csv", rows[:1] + [",".join(bad)])
    with pytest.raises(g1.G1ClipError, match=r"line 2, column 5 \(root_qz\): 'abc' is not a number"):
        g1.load_g1_csv(p, fps=60, model=model)
    with pytest.raises(g1.G1ClipError, match="no such file"):
        g1.load_g1_csv(tmp_path / "nope.csv", fps=60, model=model)


def test_shifted_columns_break_the_quaternion_check(tmp_path, model):
    rows = [",".join(r.split(",")[1:] + ["0.0"]) for r in _rows(_g1_moves("B_HandsUp"), 4)]  # x dropped, zero appended
    p = _write(tmp_path, "shifted.csv", rows)
    with pytest.raises(g1.G1ClipError, match="unit quaternion x, y, z, w"):
        g1.load_g1_csv(p, fps=60, model=model)


def test_a_model_with_other_joints_is_refused(tmp_path):
    from isaacgymenvs import characters

    _asset("amp_humanoid/amp_humanoid.xml")
    humanoid = characters.load_model("amp_humanoid")
    with pytest.raises(g1.G1ClipError, match=r"needs nq=36 and the 29 hinges"):
        g1.load_g1_csv(_g1_moves("B_HandsUp"), model=humanoid)


# ------------------------------------------------------------------ writing
@pytest.mark.parametrize("header", [False, True])
def test_write_read_round_trip(tmp_path, model, header):
    clip = g1.load_g1_csv(_g1_moves("M_ShortMove12"), model=model)
    rng = np.random.default_rng(0)
    lim = g1.joint_limits(model)
    dof = rng.uniform(lim[:, 0], lim[:, 1], size=(20, 29))
    q = rng.normal(size=(20, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)  # w >= 0 ...
    q[1::2] *= -1.0  # ... then every other one flipped: the loader makes them sign-consistent again
    pos = rng.normal(size=(20, 3))
    p = g1.write_g1_csv(tmp_path / "out.csv", pos, q, dof, header=header)
    back = g1.load_g1_csv(p, fps=50, model=model)
    assert np.abs(back.root_pos - pos).max() <= 5e-7 + 1e-12
    assert np.abs(back.dof_pos - dof).max() <= 5e-7 + 1e-12
    assert np.allclose(back.dof_pos, np.round(dof, 6), atol=1e-12, rtol=0)  # exact to the written precision
    sign = np.sign(np.sum(back.root_quat_wxyz * q, axis=1, keepdims=True))
    assert np.abs(back.root_quat_wxyz - sign * q).max() < 2e-6
    # writing what was read gives the same values; the quaternion (which the loader normalizes and
    # makes sign-consistent) to within one unit of the last written digit
    p2 = g1.write_g1_csv(tmp_path / "again.csv", back.root_pos, back.root_quat_wxyz * sign, back.dof_pos, header=header)
    a, b = g1.read_g1_csv(p), g1.read_g1_csv(p2)
    assert np.array_equal(a[:, :3], b[:, :3]) and np.array_equal(a[:, 7:], b[:, 7:])
    assert np.abs(a[:, 3:7] - b[:, 3:7]).max() <= 1.0001e-6
    # a shipped file is reproduced byte for byte
    raw = g1.read_g1_csv(_g1_moves("M_ShortMove12"))
    p3 = g1.write_g1_csv(tmp_path / "ship.csv", raw[:, :3], g1.xyzw_to_wxyz(raw[:, 3:7]), raw[:, 7:])
    assert np.array_equal(g1.read_g1_csv(p3), raw)
    assert clip.num_frames == raw.shape[0]


# ------------------------------------------------------------------ keypoint FK
def test_fk_at_stand_matches_the_model_notes(model):
    q = g1.stand_qpos(model)
    assert q[2] == pytest.approx(0.79) and q[3] == 1.0
    names, kp = g1.g1_keypoints(model, q)
    p = dict(zip(names, kp[0]))
    assert list(g1.G1_KEYPOINTS) == names and len(names) == 15
    for s in ("left", "right"):
        # MODEL_NOTES: the pelvis sits 0.757 m above the ankle_roll origins (the legs are zero at stand)
        assert p["pelvis"][2] - p[f"{s}_foot"][2] == pytest.approx(0.757, abs=1e-3)
    assert g1.foot_sole_heights(model, q[None])[0] == pytest.approx([0.79 - 0.757 - 0.035] * 2, abs=1e-3)
    assert p["head"][2] == pytest.approx(1.22, abs=0.01)
    assert p["left_shoulder"][1] == pytest.approx(0.1406, abs=1e-3) and p["right_hand"][1] < 0
    # zero pose: feet 0.624 m below the hips (the leg length the retarget scales to)
    z = np.zeros(36)
    z[3] = 1.0
    _, kz = g1.g1_keypoints(model, z)
    pz = dict(zip(names, kz[0]))
    assert pz["left_hip"][2] - pz["left_foot"][2] == pytest.approx(0.6237, abs=1e-3)


def test_head_offset_is_the_head_mesh_centroid():
    full = g1.load_g1_model(kinematic=False)
    heads = [
        g
        for g in range(full.ngeom)
        if full.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH and full.mesh(full.geom_dataid[g]).name == "head_link"
    ]
    assert heads and full.body(full.geom_bodyid[heads[0]]).name == "torso_link"
    assert np.allclose(full.geom_pos[heads[0]], g1.HEAD_OFFSET_IN_TORSO, atol=1e-6)


def test_g1_clip_feeds_the_motion_lib(model):
    from isaacgymenvs.motion.motion_lib import MotionLib
    from isaacgymenvs.motion.skeleton import skeleton_from_model

    clip = g1.load_g1_csv(_g1_moves("J_ShortDance16_JazzWalk"), model=model)
    skeleton = skeleton_from_model(model)
    feet = ["left_ankle_roll_link", "right_ankle_roll_link"]
    lib = MotionLib([clip], [1.0], skeleton, feet, dtype=torch.float64)
    st = lib.get_motion_state(torch.tensor([0]), torch.tensor([100 / clip.fps]))
    assert np.allclose(st.root_pos[0].numpy(), clip.root_pos[100], atol=1e-9)
    d = mujoco.MjData(model)
    d.qpos[:] = clip.qpos()[100]
    mujoco.mj_kinematics(model, d)
    ids = [model.body(n).id for n in feet]
    assert np.allclose(st.key_body_pos[0].numpy(), d.xpos[ids], atol=1e-9)


# ------------------------------------------------------------------ retarget
@pytest.fixture(scope="module")
def walk_slice():
    """The first 60 frames (30 distinct poses) of the AMP walk clip."""
    from isaacgymenvs.motion.poselib import load_skeleton_motion

    sm = load_skeleton_motion(_asset("amp_humanoid/motions/amp_humanoid_walk.npy"))
    return dataclasses.replace(sm, rotation_xyzw=sm.rotation_xyzw[:60], root_translation=sm.root_translation[:60])


def test_retarget_walk_slice(walk_slice, model):
    assert rt.held_pairs(walk_slice)
    res = rt.retarget_to_g1(walk_slice, model)
    r = res.report
    assert res.qpos.shape == (30, 36) and res.fps == 30.0 and r["dedup_held_frames"]
    assert r["median_err_m"] < 0.05 and r["max_err_m"] < 0.10
    assert r["joint_limit_violations"] == 0
    assert r["scale_leg"] == pytest.approx(0.750, abs=2e-3) and r["scale_arm"] == pytest.approx(0.691, abs=2e-3)
    assert abs(r["lowest_sole_m"]) < 1e-6  # grounded: the lowest sole touches z = 0
    assert r["self_penetration_frames"] == 0
    assert r["foot_contact_frames"] > 0 and 0 <= r["foot_slip_m_s"] < 0.5
    assert np.allclose(np.linalg.norm(res.qpos[:, 3:7], axis=1), 1.0)


def test_retarget_cli_writes_a_clip_that_checks(tmp_path, capsys, walk_slice):
    from isaacgymenvs.motion.poselib import save_npz

    src = save_npz(
        walk_slice, tmp_path / "amp_humanoid_walk.npz"
    )  # named like the source: compared to the shipped walk
    out = tmp_path / "g1_walk.csv"
    code, res, err = run_cli(capsys, "retarget", src, "--robot", "g1", "--out", out)
    assert code == 0, err
    for key in ("median_err_m", "max_err_m", "joint_limit_violations", "foot_slip_m_s"):
        assert key in res
    assert res["median_err_m"] < 0.05 and res["joint_limit_violations"] == 0 and res["frames"] == 30
    cmp = res["shipped_comparison"]
    assert cmp["file"].endswith("g1_from_amp_walk.csv") and cmp["comparable"] is False  # 30 vs 77 frames
    code, chk, _ = run_cli(capsys, "check", out, "--fps", res["fps"])
    assert code == 0 and chk["ok"] and chk["joint_limit_violations"] == 0 and chk["fk_max_err_m"] < 1e-9
    code, _, err = run_cli(capsys, "check", out)  # no fps: not in the manifest
    assert code == 2 and "pass fps=" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "retarget", src, "--out", tmp_path / "x.npz")
    assert code == 2 and "--out must be a .csv" in err


def test_compare_with_reports_per_joint_rms():
    a = np.zeros((5, 36))
    b = a.copy()
    b[:, 7] = 0.1
    c = rt.compare_with(a, 30.0, b, 30.0, "x")
    assert c["comparable"] and c["per_joint_rms_rad"]["left_hip_pitch"] == pytest.approx(0.1)
    assert c["per_joint_rms_rad"]["right_wrist_yaw"] == 0.0


# ------------------------------------------------------------------ CLI on shipped G1 clips
@pytest.mark.parametrize("name", G1_MOVES)
def test_cli_check_passes_on_g1_moves(capsys, name):
    code, res, _ = run_cli(capsys, "check", _g1_moves(name))
    assert code == 0 and res["ok"], res
    assert res["fps_source"] == f"manifest:g1_moves/{name}.csv"
    assert res["manifest"] == {
        "key": f"g1_moves/{name}.csv",
        "frames_match": True,
        "fps_match": True,
        "sha256_match": True,
    }
    assert res["fk_max_err_m"] < 1e-9 and res["joint_limit_violations"] == 0
    assert -0.006 < res["lowest_sole_m"] < 0.0  # FORMAT.md: -5 mm


def test_cli_info_and_bad_csv(capsys, tmp_path):
    code, res, _ = run_cli(capsys, "info", _g1_moves("B_HandsUp"))
    assert code == 0 and res["frames"] == 442 and res["fps"] == 60.0 and res["robot"] == "g1"
    assert res["model_dof_names"][0] == "left_hip_pitch_joint" and res["quat_order_in_file"] == "xyzw"
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,3\n4,5,6\n")
    code, _, err = run_cli(capsys, "check", bad, "--fps", "30")
    assert code == 2 and err.count("\n") == 1 and str(bad) in err and "expected 36" in err
    code, _, err = run_cli(capsys, "obs", _g1_moves("B_HandsUp"), "--frame", "0")
    assert code == 2 and "not on G1 CSVs" in err

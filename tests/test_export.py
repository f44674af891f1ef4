"""Export: TorchScript, ONNX (normalization inside), npz normalizer and json, checked against the training model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from isaacgymenvs.export import ExportCheckError, ExportError, check_export, export
from isaacgymenvs.export.__main__ import main as export_main
from isaacgymenvs.learning.learner import CheckpointError


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint):
    return tiny_checkpoint


@pytest.mark.slow
def test_export_writes_four_files_that_agree(checkpoint, tmp_path):
    res = export(checkpoint, tmp_path / "out")
    assert res["check"] == "passed"
    assert res["files"] == ["obs_norm.npz", "policy.json", "policy.onnx", "policy.pt"]
    assert res["max_abs_err_policy_onnx"] <= 1e-5 and res["max_abs_err_policy_pt"] <= 1e-5
    ck = torch.load(checkpoint, weights_only=True)
    norm = np.load(tmp_path / "out" / "obs_norm.npz")
    var = ck["model"]["running_mean_std.running_var"].numpy()
    assert norm["std"].dtype == np.float32 and np.allclose(norm["std"], np.sqrt(var + 1e-5), rtol=1e-6)
    info = json.loads((tmp_path / "out" / "policy.json").read_text())
    assert info["task"] == "HumanoidAMP" and info["epoch"] == 1
    assert len(info["joint_order"]) == 28 and info["joint_order"][0] == "abdomen_x"
    assert sum(b["size"] for b in info["observation"]["layout"]) == 105
    e = info["joint_order"].index("right_elbow")
    assert info["action"]["offset"][e] == pytest.approx(np.radians(-80), abs=1e-6)
    assert info["action"]["scale"][e] == pytest.approx(np.radians(112), abs=1e-6)
    assert info["pd_gains"]["kp"][0] == 600 and info["pd_gains"]["kd"][0] == 60
    assert info["pd_gains"]["torque_limit"][info["joint_order"].index("right_hip_y")] == 125
    assert info["control_period_s"] == pytest.approx(6 * 0.00555)


def test_onnx_normalizes_inside_the_graph(checkpoint, tmp_path):
    """Raw observations into ONNX equal normalized-and-clipped observations into policy.pt."""
    import onnxruntime as ort

    export(checkpoint, tmp_path / "o")
    norm = np.load(tmp_path / "o" / "obs_norm.npz")
    obs = (norm["mean"] + 50.0 * norm["std"] * np.linspace(-1, 1, 105)).astype(np.float32)[None]  # far out: clipped
    a_onnx = ort.InferenceSession(str(tmp_path / "o" / "policy.onnx")).run(None, {"obs": obs})[0]
    pt = torch.jit.load(str(tmp_path / "o" / "policy.pt"))
    a_pt = pt(torch.from_numpy(np.clip((obs - norm["mean"]) / norm["std"], -5, 5))).detach().numpy()
    assert np.allclose(a_onnx, a_pt, atol=1e-5)


def test_check_fails_loudly_on_a_wrong_file(checkpoint, tmp_path):
    export(checkpoint, tmp_path / "x")
    norm = dict(np.load(tmp_path / "x" / "obs_norm.npz"))
    norm["mean"] = norm["mean"] + 1.0
    np.savez(tmp_path / "x" / "obs_norm.npz", **norm)
    ck = torch.load(checkpoint, weights_only=True)
    with pytest.raises(ExportCheckError, match="do not deploy"):
        check_export(tmp_path / "x", ck["model"], ck["meta"])


def test_bad_checkpoints(checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        export(tmp_path / "missing.pth")
    bad = tmp_path / "trunc.pth"
    bad.write_bytes(open(checkpoint, "rb").read()[:500])
    with pytest.raises(CheckpointError, match="cannot be read"):
        export(bad)
    ck = torch.load(checkpoint, weights_only=True)
    ck["meta"].pop("network")
    old = tmp_path / "old.pth"
    torch.save(ck, old)
    with pytest.raises(ExportError, match="no network description"):
        export(old)


@pytest.mark.slow
def test_cli(checkpoint, tmp_path, capsys):
    assert export_main([f"checkpoint={checkpoint}", f"out={tmp_path / 'cli'}"]) == 0
    assert json.loads(capsys.readouterr().out)["check"] == "passed"
    assert export_main([f"checkpoint={tmp_path / 'nope.pth'}"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert export_main(["--bogus"]) == 2

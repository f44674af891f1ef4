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
    assert info["policy"]["kind"] == "mlp" and info["policy"]["recurrent_state"] is None
    assert info["policy"]["onnx"] == {"inputs": {"obs": ["batch", 105]}, "outputs": {"actions": ["batch", 28]}}
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


# ------------------------------------------------------------------------------------------ LSTM policies
LSTM_VARIANTS = {
    # lstm_cpu's policy: MLP, then the LSTM; a separate critic with an LSTM of its own
    "mlp_then_lstm": {},
    "lstm_then_mlp_2_layers": {"before_mlp": True, "layers": 2, "concat_output": True},
    "shared_concat_input_layer_norm": {"separate": False, "concat_input": True, "layer_norm": True},
}


def rollout(model, pt, sess, obs: np.ndarray, reset_at: int, reset_envs: list[int]):
    """Mean actions ``[T, B, A]`` of the training model (rl_games' network, its whole state tuple
    carried as the trainer carries it: zeroed where an episode ends), ``policy.pt`` (normalized
    observations, h, c) and ``policy.onnx`` (raw observations, h0, c0) over ``obs [T, B, O]``,
    each from a zero state; the state of ``reset_envs`` zeroed before step ``reset_at``."""
    norm_mean, norm_std = (b.numpy() for b in (model.running_mean_std.running_mean, model.running_mean_std.running_var))
    norm_std = np.sqrt(norm_std + 1e-5)
    T, B, _ = obs.shape
    states = [torch.zeros(s.shape[0], B, s.shape[2]) for s in model.get_default_rnn_state()]
    h = c = torch.zeros_like(states[0])
    h0 = c0 = np.zeros(tuple(states[0].shape), dtype=np.float32)
    ref, a_pt, a_onnx = [], [], []
    for t in range(T):
        if t == reset_at:
            for s in (*states, h, c):
                s[:, reset_envs] = 0.0
            h0[:, reset_envs] = c0[:, reset_envs] = 0.0
        with torch.no_grad():
            res = model(
                {"is_train": False, "obs": torch.from_numpy(obs[t]), "prev_actions": None, "rnn_states": states}
            )
            states = [s.clone() for s in res["rnn_states"]]
            x = torch.from_numpy(np.clip((obs[t] - norm_mean) / norm_std, -5, 5).astype(np.float32))
            a, h, c = pt(x, h, c)
        ref.append(res["mus"].numpy())
        a_pt.append(a.numpy())
        a, h0, c0 = sess.run(["actions", "h1", "c1"], {"obs": obs[t], "h0": h0, "c0": c0})
        a_onnx.append(a)
    return np.stack(ref), np.stack(a_pt), np.stack(a_onnx)


@pytest.mark.parametrize("variant", list(LSTM_VARIANTS))
def test_lstm_export_is_the_training_model_over_an_episode_with_resets(checkpoint, tmp_path, variant):
    """30 steps of 6 envs, state carried, envs 1 and 4 reset at step 15: policy.onnx and policy.pt
    give rl_games' network's mean actions within 1e-5 (float32: measured <= 1e-7). The state matters
    (carried actions differ from zero-state ones by far more than the tolerance) and a reset env's
    action is the zero-state action."""
    import onnxruntime as ort

    from isaacgymenvs.export import _training_model
    from tests.helpers.training import lstm_checkpoint

    rnn = dict(LSTM_VARIANTS[variant])
    ck_path = lstm_checkpoint(checkpoint, tmp_path / "lstm.pth", **rnn)
    res = export(ck_path, tmp_path / "out")
    assert res["check"] == "passed" and res["steps"] == 24
    ck = torch.load(ck_path, weights_only=True)
    meta = ck["meta"]
    layers, units = meta["network"]["rnn"]["layers"], 32
    model = _training_model(ck["model"], meta)
    pt = torch.jit.load(str(tmp_path / "out" / "policy.pt"))
    sess = ort.InferenceSession(str(tmp_path / "out" / "policy.onnx"), providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape) for i in sess.get_inputs()] == [
        ("obs", ["batch", 105]),
        ("h0", [layers, "batch", units]),
        ("c0", [layers, "batch", units]),
    ]
    assert [o.name for o in sess.get_outputs()] == ["actions", "h1", "c1"]
    norm = np.load(tmp_path / "out" / "obs_norm.npz")
    rng = np.random.default_rng(3)
    obs = (norm["mean"] + 2.0 * norm["std"] * rng.standard_normal((30, 6, 105))).astype(np.float32)
    ref, a_pt, a_onnx = rollout(model, pt, sess, obs, reset_at=15, reset_envs=[1, 4])
    assert np.abs(a_pt - ref).max() <= 1e-5 and np.abs(a_onnx - ref).max() <= 1e-5
    fresh = sess.run(
        ["actions"],
        {
            "obs": obs[15],
            "h0": np.zeros((layers, 6, units), np.float32),
            "c0": np.zeros((layers, 6, units), np.float32),
        },
    )[0]
    assert np.abs(a_onnx[15, [1, 4]] - fresh[[1, 4]]).max() <= 1e-6  # reset: as from a zero state
    assert np.abs(a_onnx[15, [0, 2, 3, 5]] - fresh[[0, 2, 3, 5]]).max(axis=1).min() > 1e-2  # carried: not
    info = json.loads((tmp_path / "out" / "policy.json").read_text())["policy"]
    assert info["kind"] == "lstm" and info["onnx"]["inputs"]["h0"] == [layers, "batch", units]
    assert info["recurrent_state"]["initial"] == "zeros" and info["recurrent_state"]["inputs"] == ["h0", "c0"]


def test_lstm_policy_refuses_a_wrong_state_shape(checkpoint, tmp_path):
    """policy.pt names the shape it wants; onnxruntime refuses a state of the wrong size."""
    import onnxruntime as ort

    from tests.helpers.training import lstm_checkpoint

    export(lstm_checkpoint(checkpoint, tmp_path / "lstm.pth"), tmp_path / "out")
    pt = torch.jit.load(str(tmp_path / "out" / "policy.pt"))
    obs = torch.zeros(3, 105)
    a, h, c = pt(obs, torch.zeros(1, 3, 32), torch.zeros(1, 3, 32))
    assert a.shape == (3, 28) and h.shape == c.shape == (1, 3, 32)
    for h_bad, c_bad in ((torch.zeros(1, 2, 32), torch.zeros(1, 3, 32)), (torch.zeros(3, 32), torch.zeros(3, 32))):
        with pytest.raises(Exception, match=r"h and c must be \[layers, batch, units\] = \[1, 3, 32\]"):
            pt(obs, h_bad, c_bad)
    with pytest.raises(Exception, match=r"obs must be \[batch, 105\], got \[3, 104\]"):
        pt(torch.zeros(3, 104), torch.zeros(1, 3, 32), torch.zeros(1, 3, 32))
    sess = ort.InferenceSession(str(tmp_path / "out" / "policy.onnx"), providers=["CPUExecutionProvider"])
    z = np.zeros((1, 3, 32), np.float32)
    with pytest.raises(Exception, match="h0"):
        sess.run(None, {"obs": np.zeros((3, 105), np.float32), "h0": np.zeros((1, 3, 16), np.float32), "c0": z})


def test_an_rnn_export_cannot_write_is_refused_before_any_file(checkpoint, tmp_path):
    from tests.helpers.training import lstm_checkpoint

    ck_path = lstm_checkpoint(checkpoint, tmp_path / "lstm.pth")
    ck = torch.load(ck_path, weights_only=True)
    ck["meta"]["network"]["rnn"]["name"] = "gru"
    torch.save(ck, tmp_path / "gru.pth")
    with pytest.raises(ExportError, match="MLP and LSTM policies only"):
        export(tmp_path / "gru.pth", tmp_path / "gru")
    ck = torch.load(ck_path, weights_only=True)
    ck["model"] = {k: v for k, v in ck["model"].items() if ".a_rnn." not in k}
    torch.save(ck, tmp_path / "norrn.pth")
    with pytest.raises(ExportError, match="has no actor LSTM weights"):
        export(tmp_path / "norrn.pth", tmp_path / "norrn")
    assert not (tmp_path / "gru").exists() and not (tmp_path / "norrn").exists()


def test_lstm_check_fails_loudly_on_a_wrong_file(checkpoint, tmp_path):
    from tests.helpers.training import lstm_checkpoint

    ck_path = lstm_checkpoint(checkpoint, tmp_path / "lstm.pth")
    export(ck_path, tmp_path / "x")
    norm = dict(np.load(tmp_path / "x" / "obs_norm.npz"))
    norm["std"] = norm["std"] * 1.01
    np.savez(tmp_path / "x" / "obs_norm.npz", **norm)
    ck = torch.load(ck_path, weights_only=True)
    with pytest.raises(ExportCheckError, match="over 24 steps.*do not deploy"):
        check_export(tmp_path / "x", ck["model"], ck["meta"])

"""The learner behind its interface: our normalizer against rl_games' numbers, hyperparameters set
through the interface, mean actions, and the rule that only the adapter imports rl_games."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from isaacgymenvs.learning.learner import HYPERPARAMETERS
from isaacgymenvs.learning.normalizer import RunningMeanStd

REPO = Path(__file__).resolve().parents[1]


def test_normalizer_matches_rl_games_running_mean_std_and_its_checkpoint_keys():
    """Same statistics, outputs (clip at 5 std) and state dict as rl_games' RunningMeanStd over
    batches of different sizes and scales, so old checkpoints load into the new discriminator."""
    from rl_games.algos_torch.running_mean_std import RunningMeanStd as RlgRunningMeanStd

    g = torch.Generator().manual_seed(0)
    ours, theirs = RunningMeanStd(5), RlgRunningMeanStd((5,))
    for n, scale in ((7, 1.0), (64, 30.0), (1, 0.1), (300, 5.0)):
        x = torch.randn(n, 5, generator=g) * scale + torch.arange(5.0)
        ours.train(), theirs.train()
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=1e-6)
    ours.eval(), theirs.eval()
    probe = torch.randn(9, 5, generator=g) * 100  # far out: clipped to +-5
    torch.testing.assert_close(ours(probe), theirs(probe), rtol=0, atol=1e-6)
    assert ours(probe).abs().max() == 5.0
    a, b = ours.state_dict(), theirs.state_dict()
    assert a.keys() == b.keys() == {"running_mean", "running_var", "count"}
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-12, atol=1e-12)
    assert float(a["count"]) == 1 + 7 + 64 + 1 + 300  # starts at count 1, as rl_games


def test_normalizer_by_hand():
    """Two batches: mean and population variance of all 1 + 4 rows (the initial count 1 at mean 0, var 1)."""
    n = RunningMeanStd(1)
    n.train()
    n(torch.tensor([[1.0], [3.0]]))
    n(torch.tensor([[5.0], [7.0]]))
    # the initial row is a pseudo-sample at mean 0 with variance 1: M2 = 1 + sum((x - m)^2) over the data
    m = (0 + 1 + 3 + 5 + 7) / 5
    var = (1 + sum((v - 0) ** 2 for v in (0,)) * 0 + (0 - m) ** 2 + sum((v - m) ** 2 for v in (1, 3, 5, 7))) / 5
    assert float(n.running_mean) == pytest.approx(m)
    assert float(n.running_var) == pytest.approx(var)
    n.eval()
    assert float(n(torch.tensor([[m]]))) == pytest.approx(0.0, abs=1e-7)


def test_hyperparameters_through_the_interface(tmp_path):
    """set_hyperparameter changes the optimizer's lr and the loss coefficients; a structural key is refused."""
    from tests.helpers.training import trainer

    agent = trainer(tmp_path).agent
    agent.set_hyperparameter("learning_rate", 1.25e-4)
    assert {g["lr"] for g in agent.optimizer.param_groups} == {1.25e-4} and agent.last_lr == 1.25e-4
    agent.set_hyperparameter("bounds_loss_coef", 3.0)
    agent.set_hyperparameter("e_clip", 0.1)
    assert (agent.bounds_loss_coef, agent.e_clip) == (3.0, 0.1)
    with pytest.raises(ValueError, match="horizon_length.*cannot change"):
        agent.set_hyperparameter("horizon_length", 8)
    assert set(HYPERPARAMETERS) == {"learning_rate", "bounds_loss_coef", "entropy_coef", "e_clip"}

    obs = agent.vec_env.reset()
    a = agent.act(obs)
    assert a.shape == (16, 28) and torch.equal(a, agent.deterministic_policy(16)(obs))
    assert torch.equal(a, agent.act(obs))  # mean actions: no sampling


def _lint_imports(root: Path, *contracts: str) -> subprocess.CompletedProcess:
    lint = Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[check]')")
    args = [str(lint), "--no-cache"] + [a for c in contracts for a in ("--contract", c)]
    return subprocess.run(
        args, cwd=root, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)}
    )


def test_the_import_contract_holds_and_fails_on_an_upward_import(tmp_path):
    """The contracts of pyproject.toml hold on the tree; in a copy of the tree, one added line
    importing rl_games outside the adapter, or tracking from the task, breaks exactly its contract."""
    import shutil

    r = _lint_imports(REPO)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "Contracts: 4 kept, 0 broken." in r.stdout

    for pkg in ("isaacgymenvs", "sweeps", "tracking"):
        shutil.copytree(REPO / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "pyproject.toml", tmp_path)
    terms = tmp_path / "isaacgymenvs" / "tasks" / "terms.py"
    original = terms.read_text()
    terms.write_text(original + "\nimport rl_games  # noqa\n")
    r = _lint_imports(tmp_path, "rl-games-adapter", "packages")
    assert r.returncode == 1 and "isaacgymenvs.tasks.terms -> rl_games" in r.stdout, r.stdout[-2000:]
    assert "Contracts: 1 kept, 1 broken." in r.stdout
    terms.write_text(original + "\nimport tracking  # noqa\n")
    r = _lint_imports(tmp_path, "rl-games-adapter", "packages")
    assert r.returncode == 1 and "isaacgymenvs.tasks.terms -> tracking" in r.stdout, r.stdout[-2000:]
    assert "Contracts: 1 kept, 1 broken." in r.stdout


def test_a_step_on_cpu_tensors_runs_eagerly_and_is_never_captured(capsys):
    """CapturedCall with CPU inputs (a graph of CPU work would replay nothing): every call runs the
    function, each with the right answer, no capture is tried and nothing is printed."""
    from isaacgymenvs.learning.cuda_graph import CapturedCall

    calls = []

    def fn(x, y):
        calls.append(1)
        return (x * y + 1.0,)

    step = CapturedCall(fn, name="the test step")
    for i in range(5):
        x = torch.full((3,), float(i))
        (out,) = step("k", [x, torch.full((3,), 2.0)])
        assert torch.equal(out, 2.0 * x + 1.0)
    assert len(calls) == 5 and step.replays == 0 and step.num_graphs == 0 and step.error is None
    assert capsys.readouterr().out == ""


def test_importing_the_learner_leaves_torch_compile_and_loads_no_dynamo():
    """rl_games' example network is decorated with torch.compile at import; the adapter imports it
    with torch.compile as the identity (5 s of CPU a process) and puts torch.compile back."""
    code = (
        "import sys, torch; c = torch.compile; import isaacgymenvs.learning.rl_games_adapter.agent; "
        "print(torch.compile is c, 'torch._dynamo' in sys.modules, 'torch._inductor' in sys.modules)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["True", "False", "False"]

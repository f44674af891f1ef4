"""Train, resume or play an AMP policy: the IsaacGymEnvs command line on MuJoCo.

python isaacgymenvs/train.py task=HumanoidAMP headless=True
python isaacgymenvs/train.py task=HumanoidAMP checkpoint=runs/<run>/nn/HumanoidAMP_50.pth   # resume
python isaacgymenvs/train.py task=HumanoidAMP test=True checkpoint=... num_envs=2        # play
"""

from __future__ import annotations

import os
import random
import signal
import sys
import tempfile
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

if __package__ in (None, ""):  # `python isaacgymenvs/train.py`: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import hydra
from omegaconf import DictConfig, OmegaConf

from isaacgymenvs.utils import hydra_config

CFG_DIR = str(hydra_config.CFG_DIR)


def _register_resolvers() -> None:
    for name, fn in {
        "resolve_default": lambda default, arg: default if arg in ("", None) else arg,
        "if": lambda cond, a, b: a if cond else b,
        "eq": lambda a, b: str(a).lower() == str(b).lower(),
    }.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


_register_resolvers()

#: IsaacGymEnvs' seq_len (HumanoidAMPPPO.yaml): with an MLP policy only another value is worth a warning
DEFAULT_SEQ_LEN = 4


def resolve_config(c: dict) -> tuple[list[str], list[str]]:
    """``(problems, warnings)`` of a resolved config's key names (``isaacgymenvs.learning.config_check``):
    an unknown key is a problem naming the closest known one, a duplicate of the ``sigma`` knob a
    problem naming it, an IsaacGymEnvs key without effect here a warning (and removed from ``c``)."""
    from isaacgymenvs.learning.config_check import check_config

    return check_config(c)


def resolve_sigma(sigma) -> tuple[str, float | None, list[str]]:
    """The one action-noise knob, ``sigma=fixed|learned|<std>``: ``(scheme, std to set on restore
    or None, problems)``. A number keeps IsaacGymEnvs' meaning (the std on restore) with the fixed
    scheme; '' (older configs) means fixed."""
    if sigma in ("fixed", "learned"):
        return sigma, None, []
    if sigma in ("", None):
        return "fixed", None, []
    try:
        std = float(sigma)
    except (TypeError, ValueError):
        return (
            "fixed",
            None,
            [f"sigma: must be 'fixed', 'learned' or a positive number (std on restore), got {sigma!r}"],
        )
    if not std > 0:
        return "fixed", None, [f"sigma: a std must be positive, got {sigma!r}"]
    return "fixed", std, []


def check_rl_device(rl_device) -> str | None:
    """A problem with ``rl_device`` (not a torch device; CUDA without a visible GPU), else None."""
    import torch

    if not rl_device:
        return None
    try:
        dev = torch.device(rl_device)
    except (RuntimeError, TypeError):
        return f"rl_device={rl_device}: not a device; use rl_device=cpu or rl_device=cuda:N"
    if dev.type == "cuda" and not torch.cuda.is_available():
        return (
            f"rl_device={rl_device}: no CUDA device is visible to torch here; use rl_device=cpu (with sim=mujoco), "
            "or run on a GPU machine (make install-gpu)"
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        return f"rl_device={rl_device}: this machine has {torch.cuda.device_count()} CUDA device(s)"
    return None


class Trainer:
    """Everything between a resolved config and a running agent; usable from Python (sweeps)."""

    def __init__(self, cfg: DictConfig | dict, observers=(), runs_dir: str = "runs", overrides=None):
        """``overrides``: the command line ``cfg`` was composed from (``task=G1AMP num_envs=16 ...``);
        inside ``@hydra.main`` Hydra's own. What the run changed (its MLflow params) is measured
        against the defaults its config-group overrides pick (:meth:`changed_settings`)."""
        import torch

        from isaacgymenvs.learning.config_check import ConfigError, check_train_config
        from isaacgymenvs.learning.learner import load_checkpoint_file

        self.cfg = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg)
        self.overrides = list(overrides) if overrides is not None else _hydra_overrides()
        c = OmegaConf.to_container(self.cfg, resolve=True)
        self.c = c
        # key names first: unknown and replaced keys are problems, no-effect IsaacGymEnvs keys warnings (dropped)
        problems, config_warnings = resolve_config(c)
        train_cfg = c["train"]["params"]["config"]
        net = c["train"]["params"]["network"]
        has_rnn = bool(net.get("rnn"))
        sigma_scheme, self.sigma_override, sigma_problems = resolve_sigma(c.get("sigma", "fixed"))
        problems += sigma_problems
        num_envs = int(c["task"]["env"]["numEnvs"])
        self.test = bool(c.get("test", False))
        if self.test:
            # Playing does not train: make the batch fit whatever num_envs the user plays with.
            train_cfg["minibatch_size"] = num_envs * int(train_cfg.get("horizon_length", 16))
            train_cfg["amp_minibatch_size"] = train_cfg["minibatch_size"]
            if has_rnn:
                train_cfg["seq_len"] = 1
        problems += [] if num_envs >= 1 else [f"num_envs: must be at least 1, got {num_envs}"]
        problems += check_train_config(train_cfg, num_envs, has_rnn)
        if c.get("sim") not in ("mujoco", "mujoco_warp"):
            problems.append(f"sim: must be mujoco or mujoco_warp, got {c.get('sim')!r}")
        if problems:
            raise ConfigError(problems)
        for w in config_warnings:
            print(w, file=sys.stderr)
        # Set here, never in the YAML: the agent's sigma scheme from its one knob (sigma=)
        train_cfg["sigma_scheme"] = sigma_scheme
        if not has_rnn and train_cfg.get("seq_len") not in (None, DEFAULT_SEQ_LEN):  # only when someone set it
            print(
                f"warning: seq_len={train_cfg.get('seq_len')} has no effect with an MLP policy "
                "(it is the truncated-BPTT length of an LSTM policy: set train.params.network.rnn)",
                file=sys.stderr,
            )
        self.checkpoint = c.get("checkpoint") or ""
        self.checkpoint_epoch = 0
        if self.checkpoint:
            self.checkpoint_epoch = int(
                load_checkpoint_file(self.checkpoint).get("epoch", 0)
            )  # fails before the simulator starts
        device_problem = check_rl_device(c.get("rl_device"))
        if device_problem:
            raise ConfigError([device_problem])
        rl_device = c.get("rl_device") or ("cuda:0" if torch.cuda.is_available() else "cpu")
        sim_device = c.get("sim_device") or ("cpu" if c["sim"] == "mujoco" else "cuda:0")
        seed = int(c.get("seed", 42))
        if seed == -1:
            seed = random.randint(0, 10_000)
            print(f"seed=-1: drew seed={seed} (recorded in the run's config.yaml and params)", file=sys.stderr)
            c["seed"] = seed  # what the run's params record
            self.cfg.seed = seed  # what its config.yaml records
        self.seed = seed
        random.seed(seed)
        torch.manual_seed(seed)
        import numpy as np

        np.random.seed(seed)
        from isaacgymenvs.sim import check_backend

        check_backend(c["sim"], sim_device)  # before anything is built
        if torch.device(rl_device).type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True  # TF32 matmuls for the networks (Ampere and newer)
            torch.backends.cudnn.allow_tf32 = True
        self.rl_device, self.sim_device = rl_device, sim_device
        self.train_cfg, self.net = train_cfg, net
        self.observers = list(observers)
        # test=True writes nothing under runs/ (rl_games would create a run folder)
        self.runs_dir = tempfile.mkdtemp(prefix="amp-play-") if self.test else runs_dir
        self.agent = None

    def changed_settings(self) -> dict:
        """``{dotted path: effective value}`` of every setting this run's config changed from the
        defaults of its task and train config (``isaacgymenvs.utils.hydra_config``). A config given
        without its overrides (from Python) is compared with the defaults of its task (``task.name``)."""
        overrides = self.overrides
        if overrides is None:
            name = str(self.c["task"]["name"])
            overrides = [f"task={name}"] if (hydra_config.CFG_DIR / "task" / f"{name}.yaml").exists() else []
        return hydra_config.changed_settings(self.cfg, overrides)

    def nothing_left_to_train(self) -> str | None:
        """Why resuming would train no epoch (the checkpoint is at ``max_iterations`` already), else None."""
        max_epochs = int(self.train_cfg.get("max_epochs", 0))
        if self.test or not self.checkpoint or not 0 < max_epochs <= self.checkpoint_epoch:
            return None
        return (
            f"checkpoint={self.checkpoint} is at epoch {self.checkpoint_epoch} and max_iterations={max_epochs}: "
            f"nothing left to train; resume with max_iterations={self.checkpoint_epoch + max(1, max_epochs)} (or "
            "more), or play it with test=True"
        )

    # -------------------------------------------------------------- building
    def _make_run_dir(self) -> str:
        """Create ``runs/<name>_<date>[_k]`` atomically and return its name: two trainings started in
        the same second get two folders (an exclusive create, a suffix when it is taken)."""
        name = self.train_cfg["name"]
        stem = f"{name}_{datetime.now().strftime('%d-%H-%M-%S')}"
        Path(self.runs_dir).mkdir(parents=True, exist_ok=True)
        run, k = stem, 1
        while True:
            try:
                os.mkdir(Path(self.runs_dir) / run)  # fails if it exists: never write into an existing run
                return run
            except FileExistsError:
                run, k = f"{stem}_{k}", k + 1

    def build(self):
        from isaacgymenvs.learning.config_check import ConfigError
        from isaacgymenvs.learning.rl_games_adapter import build_learner
        from isaacgymenvs.learning.vecenv import AMPVecEnv
        from isaacgymenvs.motion.poselib import ClipError, UntrustedClipError
        from isaacgymenvs.tasks import make_task

        c = self.c
        env_cfg = dict(c["task"]["env"])
        env_cfg["sim_dt"] = float(c["task"].get("sim", {}).get("dt", 1.0 / 60.0))
        env_cfg["mujoco_timestep"] = c["task"].get("sim", {}).get("mujoco_timestep")
        try:
            task = make_task(c["task"]["name"], env_cfg, sim=c["sim"], device=self.sim_device, seed=self.seed)
        except UntrustedClipError as e:  # the fix on this command line is a config key, not --trust
            raise ClipError(
                e.path,
                "a .npy clip is a pickle and can run code when loaded; add task.env.motion_trust=True "
                "if you trust its source, or convert it once with `python -m isaacgymenvs.motion "
                "convert --trust FILE` and train on the .npz",
            ) from None
        except ClipError:
            raise  # names the clip file and what to do
        except ValueError as e:  # a task key the model or the checks refuse (pdGains, numObservations, ...)
            raise ConfigError([f"task {c['task']['name']}: {e}"]) from e
        self.vec_env = AMPVecEnv(task, self.rl_device)
        cfg = dict(self.train_cfg)
        run = self._make_run_dir()
        self.run_dir = Path(self.runs_dir) / run
        cfg.update(
            checkpoint_name=self.train_cfg["name"],
            disc_units=list(self.net.get("disc", {}).get("units", [1024, 512])),
            checkpoint_meta={
                "task": c["task"]["name"],
                "obs": task.num_obs,
                "actions": task.num_actions,
                # enough to rebuild and export the policy without the run folder
                "network": {k: v for k, v in self.net.items() if k != "disc"},
                "normalize_input": bool(self.train_cfg.get("normalize_input", True)),
                "normalize_value": bool(self.train_cfg.get("normalize_value", True)),
                "control_dt": task.dt,
                # how to run the policy outside training (export's policy.json, sim2sim)
                "deploy": task.deploy_info(),
            },
        )
        self.agent = build_learner(
            cfg,
            self.net,
            seed=self.seed,
            run_name=run,
            runs_dir=self.runs_dir,
            device=self.rl_device,
            vec_env=self.vec_env,
            observers=self.observers,
            verbose=bool(c.get("verbose", False)),
        )
        self.agent.evaluator = self._build_evaluator(c, env_cfg, task)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        from isaacgymenvs.utils.secrets import strip_credentials

        (self.run_dir / "config.yaml").write_text(strip_credentials(OmegaConf.to_yaml(self.cfg, resolve=True)))
        if self.checkpoint:
            self.agent.restore_checkpoint(self.checkpoint, self.sigma_override)
            print(f"resumed from {self.checkpoint} at epoch {self.agent.epoch_num}")
        return self.agent

    def _build_evaluator(self, c: dict, env_cfg: dict, task):
        """The deterministic evaluation's own small task (the training task's config and clips), or
        None with ``eval_envs: 0`` and in test (play) mode."""
        from isaacgymenvs.learning.evaluation import Evaluator
        from isaacgymenvs.learning.vecenv import AMPVecEnv
        from isaacgymenvs.tasks import make_task

        n = int(self.train_cfg.get("eval_envs", 32))
        if n <= 0 or self.test:
            return None
        seed = int(self.train_cfg.get("eval_seed", 0))
        eval_task = make_task(
            c["task"]["name"],
            dict(env_cfg, numEnvs=n),
            sim=c["sim"],
            device=self.sim_device,
            seed=seed,
            motion_lib=task.motion_lib,
        )
        return Evaluator(
            AMPVecEnv(eval_task, self.rl_device), ref_size=int(self.train_cfg.get("eval_ref_size", 4096)), seed=seed
        )

    def train(self):
        if self.agent is None:
            self.build()
        _held["target"] = self.agent  # a signal stops the training after its epoch in progress
        try:
            return self.agent.train()
        finally:
            _held["target"] = None


def _hydra_overrides() -> list[str] | None:
    """The command line's overrides when ``@hydra.main`` composed the config, else None."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else None


def open_tracking(trainer: Trainer):
    """The tracking session named by ``cfg.tracking`` (``tracking=mlflow|none``), connected and its
    experiment created before the simulator starts: an unreachable store raises
    ``tracking.TrackingUnavailableError`` naming the URI here (``tracking.required=false``: a
    warning and a disabled session). ``tracking`` is imported here, lazily: nothing else in
    ``isaacgymenvs`` knows about it. Returns None in test (play) mode."""
    if trainer.test:
        return None
    from tracking import open_session

    return open_session(trainer.c)


def run_training(trainer: Trainer, session=None):
    """Build (if not built) and train; with a tracking session, one tracked run around the
    training that ends FINISHED, FAILED (exception) or KILLED (Ctrl+C, SIGTERM)."""
    if trainer.agent is None:
        trainer.build()
    if session is None or not session.enabled:
        return trainer.train()
    with session.ending():
        session.start(
            trainer.run_dir,
            trainer.c,
            device=trainer.rl_device,
            tags={"sim_device": trainer.sim_device},
            changed=trainer.changed_settings(),
        )
        trainer.agent.observers.append(session.on_epoch)
        trainer.agent.checkpoint_observers.append(session.on_checkpoint)
        return trainer.train()


class Terminated(KeyboardInterrupt):
    """Raised in the main thread on SIGTERM, so SIGTERM stops training the way Ctrl+C does
    (the tracked run ends KILLED)."""


#: "target": the agent while it trains (a signal then asks it to stop after the epoch in progress)
_held = {"depth": 0, "pending": None, "target": None}


@contextmanager
def _uninterrupted():
    """Hold Ctrl+C / SIGTERM until the block ends. For code that must not be cut half-way:
    tensorboardX's event queue, interrupted in a ``put``, leaves its writer thread waiting
    forever and the process hangs at exit."""
    _held["depth"] += 1
    try:
        yield
    finally:
        _held["depth"] -= 1
        if _held["depth"] == 0 and _held["pending"] is not None:
            exc, _held["pending"] = _held["pending"], None
            raise exc


def _install_signal_handlers() -> None:
    def _raise(exc: BaseException):
        target = _held["target"]
        if target is not None and not target.stop_requested:  # the first signal: finish and save the epoch
            print(
                f"{exc}: stopping after the epoch in progress, with its checkpoint (again to stop at once)",
                file=sys.stderr,
                flush=True,
            )
            target.request_stop(exc)
            return
        if _held["depth"]:
            _held["pending"] = exc
        else:
            raise exc

    def _on_sigterm(signum, frame):
        if _held["target"] is None or _held["target"].stop_requested:
            # the last one: the cleanup that follows is bounded (tracking.end_timeout_s); SIGKILL still works
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _raise(Terminated("SIGTERM"))

    def _on_sigint(signum, frame):
        _raise(KeyboardInterrupt("KeyboardInterrupt (Ctrl+C)"))

    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, _on_sigint)


def console_observer(epoch: int, frame: int, m: dict) -> None:
    print(
        f"epoch {epoch:5d} | steps {frame:9d} | {m['perf/env_steps_per_s']:8.0f} steps/s | "
        f"disc agent {m['disc/agent_logit']:+.2f} replay {m['disc/agent_replay_logit']:+.2f} demo {m['disc/demo_logit']:+.2f} | "
        f"r_disc {m['reward/disc']:.3f} | rollout nn_dist {m['rollout/motion_nn_dist']:.3f} fall {m['rollout/fall_rate']:.2f}"
        + (f" | unstable {m['sim/unstable_envs']:.0f}" if m.get("sim/unstable_envs") else "")
        + (f" | skipped updates {m['loss/nonfinite_updates']:.0f}" if m.get("loss/nonfinite_updates") else "")
        + (
            f" | eval score {m['eval/score']:.3f} fall {m['eval/fall_rate']:.2f} survival {m['eval/survival']:.2f} "
            f"nn_dist {m['eval/motion_nn_dist']:.2f}"
            if "eval/score" in m
            else ""
        ),
        flush=True,
    )


def tensorboard_observer(agent):
    def _obs(epoch: int, frame: int, m: dict) -> None:
        with _uninterrupted():
            agent.write_summary(epoch, m)

    return _obs


def play(trainer: Trainer, games_num: int, test_steps: int, headless: bool, video: str = "") -> dict:
    """Run the policy's mean action until ``games_num`` episodes ended or ``test_steps`` steps;
    with ``video``, render env 0 offscreen into that GIF (``MUJOCO_GL=egl`` without a display)."""
    import torch

    agent = trainer.agent
    env = trainer.vec_env
    from isaacgymenvs import viewer as live

    sim = env.task.sim
    viewer = None
    if not headless:
        if live.display_available():
            viewer = live.LiveViewer(sim.model, env.task.dt)
        else:
            print("warning: no display found (DISPLAY is unset); playing headless", file=sys.stderr)
    recorder = None
    if video:
        from isaacgymenvs.video import VideoRecorder

        recorder = VideoRecorder(env.task.sim.model, video, fps=1.0 / env.task.dt)
    policy = agent.deterministic_policy(env.num_envs)  # mean actions; carries an LSTM's state
    obs = env.reset()
    games, steps, falls = 0, 0, 0
    while True:
        obs, _, dones, infos = env.step(policy(obs))
        steps += 1
        games += int(dones.sum())
        falls += int(infos["terminate"].sum())
        if viewer is not None or recorder is not None:
            pose = torch.cat((sim.root_pos_w[0], sim.root_quat_w[0], sim.dof_pos[0])).cpu().numpy()  # env 0, [nq]
            if viewer is not None and not viewer.show(pose):
                break  # the user closed the window
            if recorder is not None:
                recorder.capture_qpos(pose)
        if (test_steps and steps >= test_steps) or (not test_steps and games >= games_num):
            break
    if viewer is not None:
        viewer.close()
    out = {"steps": steps, "episodes_ended": games, "falls": falls}
    if recorder is not None:
        out.update(recorder.save())
    print(f"test: {out}")
    return out


@hydra.main(version_base="1.1", config_path=CFG_DIR, config_name="config")
def main(cfg: DictConfig) -> None:
    from isaacgymenvs.learning.config_check import ConfigError
    from isaacgymenvs.learning.learner import CheckpointError, SimulationUnstableError
    from isaacgymenvs.motion.poselib import ClipError
    from isaacgymenvs.sim import BackendUnavailableError
    from isaacgymenvs.video import RenderUnavailableError
    from tracking import TrackingError  # the entry point wires tracking in; the package does not

    os.chdir(hydra.utils.get_original_cwd())
    _install_signal_handlers()
    try:
        trainer = Trainer(cfg)
        if cfg.test:
            if not cfg.checkpoint:
                raise ConfigError(["test=True needs checkpoint=PATH"])
            trainer.build()
            player = trainer.train_cfg.get("player", {})
            play(
                trainer, int(player.get("games_num", 10)), int(cfg.test_steps), bool(cfg.headless), str(cfg.video or "")
            )
            return
        if trainer.nothing_left_to_train():  # no run folder, no tracked run for a training of no epoch
            raise ConfigError([trainer.nothing_left_to_train()])
        session = open_tracking(trainer)  # before the simulator starts
        trainer.observers.append(console_observer)
        trainer.build()
        trainer.agent.observers.append(tensorboard_observer(trainer.agent))
        last = run_training(trainer, session)
        print(f"checkpoint: {last}")
    except (
        ConfigError,
        ClipError,
        CheckpointError,
        FileNotFoundError,
        BackendUnavailableError,
        TrackingError,
        RenderUnavailableError,
    ) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except SimulationUnstableError as e:  # the run failed (tracked as FAILED with this message)
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt as e:
        print(f"stopped: {'SIGTERM' if isinstance(e, Terminated) else 'KeyboardInterrupt'}", file=sys.stderr)
        sys.exit(143 if isinstance(e, Terminated) else 130)


if __name__ == "__main__":
    main()

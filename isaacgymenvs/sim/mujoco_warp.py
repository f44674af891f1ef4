"""MuJoCo Warp backend: all environments as worlds of one ``mujoco_warp`` Data on the GPU.

* State and controls are warp arrays viewed as torch tensors (``wp.to_torch``: no copies).
* The physics substeps of one control step, and ``rne_postconstraint`` (contact forces per
  body), are captured once as a CUDA graph and replayed each step.
* Torch is switched to warp's CUDA stream, so torch and warp work is ordered on the device
  and nothing in ``step()`` waits for the host.
* Kernels are compiled at first use and cached on disk: the cache folder is
  ``$AMP_WARP_CACHE`` (or ``kernel_cache_dir``), default warp's own (``~/.cache/warp``).
  ``make warmup`` compiles them for a task before a sweep starts.

Imports: mujoco, torch, warp / mujoco_warp (at first use), ``isaacgymenvs.sim`` and ``isaacgymenvs.utils`` only.
"""

from __future__ import annotations

import os

import mujoco
import torch

from isaacgymenvs.sim.actuators import actuator_dof_index
from isaacgymenvs.sim.base import SimBackend, substeps_for
from isaacgymenvs.utils.quaternions import quat_rotate

_INITIALIZED = False


def init_warp(kernel_cache_dir: str | None = None):
    """Import and initialise warp once, with the kernel cache folder set first."""
    global _INITIALIZED
    import warp as wp

    if not _INITIALIZED:
        cache = kernel_cache_dir or os.environ.get("AMP_WARP_CACHE")
        if cache:
            os.makedirs(cache, exist_ok=True)
            wp.config.kernel_cache_dir = cache
        wp.config.quiet = True
        wp.init()
        _INITIALIZED = True
    return wp


def quiet_overflow_mask(mjw) -> int:
    """MuJoCo Warp's overflow warnings without the solver's and line search's iteration limits.

    The models cap their solver iterations on purpose (the G1's MJX model: 5 iterations, 8 line
    search steps); reaching the cap is the design, not a lost contact, and each world that reaches
    it prints two lines from the kernel every step (250,000 repeats per trial in a G1 sweep). The
    buffer overflows (constraints, contacts, broadphase) still warn: they drop physics."""
    o = mjw.OverflowType
    return int(o.ALL) & ~int(o.ITERATIONS | o.LS_ITERATIONS)


class MujocoWarpBackend(SimBackend):
    def __init__(
        self,
        model: mujoco.MjModel,
        num_envs: int,
        control_dt: float,
        device="cuda:0",
        nconmax: int = 32,
        njmax: int = 192,
        kernel_cache_dir: str | None = None,
        use_graph: bool | None = None,
    ):
        wp = init_warp(kernel_cache_dir)
        import mujoco_warp as mjw

        self._wp, self._mjw = wp, mjw
        self.model = model
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.substeps = substeps_for(control_dt, model.opt.timestep)
        self.control_dt = self.substeps * model.opt.timestep
        self.dof_names = [model.joint(j).name for j in range(1, model.njnt)]
        self.body_names = [model.body(b).name for b in range(1, model.nbody)]
        self._act_dof = torch.as_tensor(actuator_dof_index(model), device=self.device)
        self._wp_device = wp.get_device(str(self.device) if self.device.type == "cuda" else "cpu")
        with wp.ScopedDevice(self._wp_device):
            data = mujoco.MjData(model)
            mujoco.mj_forward(model, data)
            self.mw = mjw.put_model(model)
            self.mw.opt.warn_overflow = quiet_overflow_mask(mjw)
            self.dw = mjw.put_data(model, data, nworld=num_envs, nconmax=nconmax, njmax=njmax)
        t = wp.to_torch
        self._qpos = t(self.dw.qpos)  # [N, nq] float32
        self._qvel = t(self.dw.qvel)  # [N, nv]
        self._ctrl = t(self.dw.ctrl)  # [N, nu]
        self._xpos = t(self.dw.xpos)  # [N, nbody, 3]
        self._cfrc = t(self.dw.cfrc_ext)  # [N, nbody, 6]
        self._warm = t(self.dw.qacc_warmstart)
        self._ang_w = torch.zeros(num_envs, 3, device=self.device)
        if self.device.type == "cuda":
            # One stream for torch and warp (warp's own, which CUDA graphs can be captured on):
            # work is ordered on the device, with no host synchronization between them.
            torch.cuda.set_stream(wp.stream_to_torch(wp.get_stream(self._wp_device)))
        self._use_graph = self.device.type == "cuda" if use_graph is None else use_graph
        self._graph = None
        self._inline = False  # True while an outer capture (graphed) records the physics launches
        self._conj = torch.tensor([1.0, -1.0, -1.0, -1.0], device=self.device)
        self._refresh()

    # --- state ---
    @property
    def root_pos_w(self):
        return self._qpos[:, 0:3]

    @property
    def root_quat_w(self):
        return self._qpos[:, 3:7]

    @property
    def root_lin_vel_w(self):
        return self._qvel[:, 0:3]

    @property
    def root_ang_vel_w(self):
        return self._ang_w

    @property
    def dof_pos(self):
        return self._qpos[:, 7:]

    @property
    def dof_vel(self):
        return self._qvel[:, 6:]

    @property
    def body_pos_w(self):
        return self._xpos[:, 1:]

    @property
    def contact_forces_w(self):
        return self._cfrc[:, 1:, 3:6]

    # --- physics ---
    def _stream(self):
        return self._wp.ScopedDevice(self._wp_device)

    def _physics(self) -> None:
        for _ in range(self.substeps):
            self._mjw.step(self.mw, self.dw)
        self._mjw.rne_postconstraint(self.mw, self.dw)  # contact forces of the last substep
        self._mjw.kinematics(self.mw, self.dw)  # body positions of the new state (step leaves the previous ones)

    def _refresh(self) -> None:
        self._ang_w.copy_(quat_rotate(self._qpos[:, 3:7], self._qvel[:, 3:6]))

    def step(self):
        wp = self._wp
        with self._stream():
            if not self._use_graph or self._inline:
                self._physics()
            else:
                if self._graph is None:
                    # Kernels must be compiled and loaded before capture: run the step once,
                    # then put the state back so this first control step advances only once.
                    saved = [x.clone() for x in (self._qpos, self._qvel, self._warm, self._ctrl)]
                    saved_time = wp.clone(self.dw.time)
                    self._physics()
                    for dst, src in zip((self._qpos, self._qvel, self._warm, self._ctrl), saved):
                        dst.copy_(src)
                    wp.copy(self.dw.time, saved_time)
                    with wp.ScopedCapture() as cap:
                        self._physics()
                    self._graph = cap.graph
                wp.capture_launch(self._graph)
        self._refresh()

    def write_state(
        self, env_ids, root_pos_w, root_quat_w, root_lin_vel_w, root_ang_vel_w, dof_pos, dof_vel, mask=None
    ):
        if env_ids is None:
            ids = slice(None)  # every env: no host synchronization
        else:
            ids = torch.as_tensor(env_ids, device=self.device).long()
            if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.num_envs):  # one sync
                raise IndexError(f"env ids must lie in [0, {self.num_envs}), got {int(ids.min())}..{int(ids.max())}")
        f = lambda x: torch.as_tensor(x, device=self.device, dtype=torch.float32)  # noqa: E731
        q = torch.nn.functional.normalize(f(root_quat_w), dim=-1)
        conj = q * self._conj
        qpos = torch.cat((f(root_pos_w), q, f(dof_pos)), dim=-1)
        qvel = torch.cat((f(root_lin_vel_w), quat_rotate(conj, f(root_ang_vel_w)), f(dof_vel)), dim=-1)
        if env_ids is None:
            # With a mask only those envs are written (the others keep their state bit for bit);
            # without, every env is, and those whose state changes lose their solver warm start.
            changed = (
                mask.to(self.device, torch.bool)
                if mask is not None
                else (qpos != self._qpos).any(-1) | (qvel != self._qvel).any(-1)
            ).unsqueeze(-1)
            qpos = torch.where(changed, qpos, self._qpos)
            qvel = torch.where(changed, qvel, self._qvel)
            self._warm.copy_(torch.where(changed, torch.zeros_like(self._warm), self._warm))
            self._cfrc.copy_(torch.where(changed.unsqueeze(-1), torch.zeros_like(self._cfrc), self._cfrc))
        else:
            self._warm[ids] = 0.0
            self._cfrc[ids] = 0.0
        self._qpos[ids] = qpos
        self._qvel[ids] = qvel
        with self._stream():
            self._mjw.kinematics(self.mw, self.dw)  # body positions of the new states
        self._refresh()

    def graphed(self, fn, generators=()):
        if not self._use_graph:
            return fn
        return _GraphedCall(self, fn, generators)

    def set_pd_targets(self, targets):
        t = torch.as_tensor(targets, device=self.device, dtype=torch.float32)
        if t.shape != (self.num_envs, self.num_dof):
            raise ValueError(f"PD targets must be [{self.num_envs}, {self.num_dof}], got {tuple(t.shape)}")
        self._ctrl.copy_(t[:, self._act_dof])


class _GraphedCall:
    """``fn`` as one CUDA graph of its torch and warp kernels (the physics launched inline).

    The first two calls run eagerly (kernels compiled and loaded, the physics graph and cuBLAS
    set up); the third captures ``fn`` on the shared torch/warp stream and every call from then
    on copies its input tensors into the captured inputs and replays the graph: one launch per
    control step instead of several hundred. If the capture fails (an operation that cannot be
    captured), it says why once and runs ``fn`` eagerly from then on.
    """

    WARMUP_CALLS = 2

    def __init__(self, backend: MujocoWarpBackend, fn, generators=()):
        self.b, self.fn = backend, fn
        self.generators = tuple(g for g in generators if g is not None)
        self.calls = 0
        self.graph = None
        self.inputs: list[torch.Tensor] = []
        self.out = None
        self.wp_graph = None  # holds what warp allocated during the capture (the graph uses it)
        self.error: str | None = None

    def __call__(self, *args):
        if self.graph is not None:
            for dst, src in zip(self.inputs, args):
                dst.copy_(src)
            self.graph.replay()
            return self.out
        self.calls += 1
        if self.error is None and self.calls > self.WARMUP_CALLS:
            try:
                self._capture(args)
            except Exception as e:
                self.error = f"{type(e).__name__}: {e}"
                print(
                    f"mujoco_warp: the environment step could not be captured as a CUDA graph ({self.error}); "
                    "it runs eagerly (slower)",
                    flush=True,
                )
            else:
                return self(*args)
        return self.fn(*args)

    def _capture(self, args) -> None:
        wp, b = self.b._wp, self.b
        self.inputs = [a.clone() for a in args]
        g = torch.cuda.CUDAGraph()
        for gen in self.generators:
            g.register_generator_state(gen)
        stream = torch.cuda.current_stream(b.device)
        b._inline = True
        try:
            with (
                torch.cuda.graph(g, stream=stream, capture_error_mode="thread_local"),
                wp.ScopedCapture(
                    device=b._wp_device,
                    stream=wp.get_stream(b._wp_device),
                    external=True,
                    capture_mode=wp.CaptureMode.THREAD_LOCAL,
                ) as cap,
            ):
                out = self.fn(*self.inputs)
        finally:
            b._inline = False
        self.graph, self.out, self.wp_graph = g, out, cap.graph

"""Compile a task's MuJoCo Warp kernels for given GPU architectures on a machine with no GPU.

    python docker/warmup_aot.py --task HumanoidAMP [--arch 80 86 89 90 100 120] [--ptx] [--jobs N]
    make warmup-aot TASK=HumanoidAMP WARP_ARCHS="90"          # the same, through make

``make warmup`` needs a GPU: it builds the task's simulator on ``cuda:0``, steps it, and warp
compiles every kernel it launches into the kernel cache (``$AMP_WARP_CACHE``). A ``docker
build`` has no GPU, so this does the same ahead of time:

1. it builds the same simulator (``MujocoWarpBackend``, the model ``make warmup`` loads, the
   same number of worlds) on the CPU and runs ``make warmup``'s sequence (write every state,
   one control step) with warp's kernel launches *recorded instead of run*: MuJoCo Warp creates
   its kernels in Python as it goes (many are specialised to the model), so this is how the
   exact set of kernel modules, and the block size each is launched with, is found;
2. it compiles each recorded module with NVRTC (inside warp, no driver needed) for every
   architecture asked for, as CUBIN (what warp loads when the driver is older than warp's CUDA
   toolkit) and, with ``--ptx``, as PTX for warp's default PTX architecture (what it loads when
   the driver is as new or newer), into the cache folder under the names warp looks up at run time.

A kernel the recording missed is not an error at run time: warp compiles it at first use, as
without this step. ``tests/test_docker.py`` checks on the CPU that recorded modules compile to
the paths warp loads from; a GPU run checked that ``make warmup`` then compiles nothing (README).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, when run as a script

DEFAULT_ARCHS = (80, 86, 89, 90, 100, 120)  # A100, A10/RTX 30, L4/L40/RTX 40, H100/H200, B200, RTX 50


@contextmanager
def recording_launches(wp):
    """Within: warp kernel launches are recorded as {(module name, block_dim): module}, not run.

    Graph conditionals run their bodies once (both branches of an if), since no kernel runs to
    set their conditions; ``get_suggested_block_size`` loads a module at its default block size
    on a GPU, so it is recorded too."""
    seen: dict = {}
    names = ("launch", "launch_tiled", "capture_while", "capture_if", "get_suggested_block_size")
    saved = {n: getattr(wp, n) for n in names}
    sig = inspect.signature(saved["launch"])  # launch_tiled(*args, **kwargs) takes launch's arguments

    def record(kernel, block_dim=None):
        m = kernel.module
        seen.setdefault((m.name, block_dim if block_dim is not None else m.options["block_dim"]), m)

    def fake_launch():
        def launch(*args, **kwargs):
            b = sig.bind_partial(*args, **kwargs).arguments
            record(b["kernel"], b.get("block_dim"))
        return launch

    def capture_while(condition, while_body, stream=None, **kwargs):
        while_body(**kwargs)

    def capture_if(condition, on_true=None, on_false=None, stream=None, **kwargs):
        for body in (on_true, on_false):
            if callable(body):
                body(**kwargs)

    def get_suggested_block_size(kernel, device=None, *args, **kwargs):
        record(kernel)
        return 256, 1

    wp.launch, wp.launch_tiled = fake_launch(), fake_launch()
    wp.capture_while, wp.capture_if, wp.get_suggested_block_size = capture_while, capture_if, get_suggested_block_size
    try:
        yield seen
    finally:
        for n, f in saved.items():
            setattr(wp, n, f)


def record_task(task: str, num_envs: int) -> dict:
    """The kernel modules ``make warmup TASK=task`` loads: {(module name, block_dim): module}."""
    import torch

    from isaacgymenvs.sim.mujoco_warp import MujocoWarpBackend, init_warp
    from isaacgymenvs.task_registry import UnknownTaskError, get_task, task_model

    try:
        get_task(task)
    except UnknownTaskError as e:
        raise SystemExit(f"error: {e}") from None
    wp = init_warp()
    with recording_launches(wp) as seen:
        # isaacgymenvs/warmup.py's sequence, on the CPU and without a CUDA graph
        sim = MujocoWarpBackend(task_model(task), num_envs, 1 / 30, device="cpu", use_graph=False)
        ids = torch.arange(num_envs)
        sim.write_state(ids, sim.root_pos_w.clone(), sim.root_quat_w.clone(), sim.root_lin_vel_w.clone(),
                        sim.root_ang_vel_w.clone(), sim.dof_pos.clone(), sim.dof_vel.clone())
        sim.step()
    return seen


def compile_modules(seen: dict, archs, ptx: bool, jobs: int) -> list[str]:
    """Compile every recorded (module, block_dim) for each arch; returns the artifact file names."""
    import warp as wp
    from warp._src.context import runtime

    ptx_arch = wp.config.ptx_target_arch or runtime.default_ptx_arch
    bad = sorted(set(archs) - set(runtime.nvrtc_supported_archs))
    if bad:
        raise SystemExit(f"error: this warp's NVRTC cannot compile for sm_{bad}; it can for {sorted(runtime.nvrtc_supported_archs)}")
    targets = [(a, False) for a in archs] + ([(ptx_arch, True)] if ptx else [])

    def build(job):
        (_, block_dim), m, arch, use_ptx = job
        # each compile builds in a folder of its own thread (warp's), so targets of one module run in parallel
        m._compile(None, output_arch=arch, use_ptx=use_ptx, options=m.resolve_options(wp.config, block_dim=block_dim))
        return m._get_compile_output_name(None, arch, "", use_ptx, block_dim=block_dim)

    jobs_ = [(key, m, arch, use_ptx) for key, m in sorted(seen.items(), key=lambda kv: kv[0]) for arch, use_ptx in targets]
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(build, jobs_))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python docker/warmup_aot.py", description=__doc__.splitlines()[0])
    p.add_argument("--task", default="HumanoidAMP")
    p.add_argument("--arch", type=int, nargs="+", default=list(DEFAULT_ARCHS), help="SM architectures (90 = H100)")
    p.add_argument("--ptx", action="store_true", help="also PTX for warp's default PTX arch (drivers newer than warp's toolkit)")
    p.add_argument("--num-envs", type=int, default=8, help="worlds, as make warmup (default 8)")
    p.add_argument("--cache", help="kernel cache folder (default: $AMP_WARP_CACHE or warp's own)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--max-modules", type=int, default=0, help="compile only the first N modules (tests)")
    a = p.parse_args(argv)
    if a.cache:
        os.environ["AMP_WARP_CACHE"] = a.cache
    t = time.perf_counter()
    seen = record_task(a.task, a.num_envs)
    t_rec = time.perf_counter() - t
    recorded = len(seen)
    if a.max_modules:
        seen = dict(sorted(seen.items(), key=lambda kv: kv[0])[: a.max_modules])
    files = compile_modules(seen, a.arch, a.ptx, a.jobs)
    import warp as wp

    print(json.dumps({"task": a.task, "recorded": recorded, "modules": len(seen), "archs": a.arch, "ptx": a.ptx, "files": len(files),
                      "record_s": round(t_rec, 2), "seconds": round(time.perf_counter() - t, 2),
                      "kernel_cache": str(wp.config.kernel_cache_dir)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

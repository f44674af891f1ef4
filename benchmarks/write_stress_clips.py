"""Write the synthetic stress clips (tests/helpers/stress_clips.py) as pickle-free .npz clips plus a motion list.

    python benchmarks/write_stress_clips.py --out DIR [--cases hip_flex_130 backflip ...]

Then train on them like on any clip: ``task.env.motion_file=DIR/motions.yaml`` (``benchmarks/
train_quality.py --clip DIR/motions.yaml`` on the GPU). Each clip holds a hard case for the joint
mapping (a hip flexed to 130 degrees, an arm overhead, a joint near gimbal lock, a root twist, a
tucked backflip) with every joint inside its range.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from the repository: its packages, and tests.helpers


def main() -> None:
    from isaacgymenvs import characters
    from isaacgymenvs.motion.poselib import save_npz
    from isaacgymenvs.motion.skeleton import skeleton_from_model
    from tests.helpers.stress_clips import STRESS_CASES, make_stress_clip

    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--cases", nargs="*", default=list(STRESS_CASES))
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    skeleton = skeleton_from_model(characters.load_model("amp_humanoid"))
    lines = ["motions:"]
    for case in a.cases:
        save_npz(make_stress_clip(skeleton, case, path=f"{case}.npz").motion, out / f"{case}.npz")
        lines.append(f"  - file: {case}.npz\n    weight: 1.0")
    (out / "motions.yaml").write_text("\n".join(lines) + "\n")
    print(out / "motions.yaml")


if __name__ == "__main__":
    main()

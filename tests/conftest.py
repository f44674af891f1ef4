"""Shared fixtures: the humanoid model, its skeleton, clip files made from the real clips, and one
tiny trained checkpoint. Helpers shared by several modules live in ``tests/helpers/``."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from isaacgymenvs import assets


def _asset_or_skip(rel: str):
    try:
        return assets.asset_path(rel)
    except assets.AssetNotFoundError as e:
        pytest.skip(f"asset missing: {e}")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: trains, runs a sweep or a server process (left out by `make test-fast`)")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """One epoch of the tiny HumanoidAMP training (tests/helpers/training.py): its checkpoint file,
    shared by every test of the session (of an xdist worker) that only reads it."""
    from tests.helpers.training import trainer

    return Path(trainer(tmp_path_factory.mktemp("tiny_checkpoint"), "max_iterations=1").train())


@pytest.fixture(scope="session")
def tiny_lstm_checkpoint(tmp_path_factory) -> Path:
    """One epoch of the tiny HumanoidAMP training with lstm_cpu's LSTM policy (32 units after the
    MLP): its checkpoint file, shared as ``tiny_checkpoint`` is."""
    from tests.helpers.training import LSTM, trainer

    return Path(trainer(tmp_path_factory.mktemp("tiny_lstm_checkpoint"), "max_iterations=1", LSTM).train())


@pytest.fixture(scope="session")
def clip_path():
    """Path of a bundled AMP humanoid clip by short name (walk, run, dance)."""
    return lambda name: _asset_or_skip(f"amp_humanoid/motions/amp_humanoid_{name}.npy")


@pytest.fixture(scope="session")
def humanoid():
    from isaacgymenvs import characters
    from isaacgymenvs.motion.skeleton import skeleton_from_model

    _asset_or_skip("amp_humanoid/amp_humanoid.xml")
    model = characters.load_model("amp_humanoid")
    return model, skeleton_from_model(model)


def write_poselib_npy(path, rotation_xyzw, root_translation, node_names, parents, local_translation, fps):
    """Write a clip the way poselib does: a pickled OrderedDict of {'arr', 'context'} tensors in a .npy."""
    dtype = rotation_xyzw.dtype
    t = lambda a: {"arr": np.asarray(a), "context": {"dtype": str(np.asarray(a).dtype)}}  # noqa: E731
    d = OrderedDict(
        rotation=t(rotation_xyzw),
        root_translation=t(root_translation.astype(dtype)),
        global_velocity=t(np.zeros(root_translation.shape[:1] + (len(node_names), 3), dtype)),
        global_angular_velocity=t(np.zeros(root_translation.shape[:1] + (len(node_names), 3), dtype)),
        skeleton_tree=OrderedDict(
            node_names=list(node_names),
            parent_indices=t(np.asarray(parents, dtype=np.int64)),
            local_translation=t(np.asarray(local_translation, dtype=np.float32)),
        ),
        is_local=True,
        fps=fps,
        __name__="SkeletonMotion",
    )
    arr = np.empty((), dtype=object)
    arr[()] = d
    with open(path, "wb") as f:
        np.save(f, arr, allow_pickle=True)
    return path


@pytest.fixture
def make_clip(tmp_path, clip_path):
    """Build a variant of the walk clip: every ``step``-th frame, a given fps object and dtype."""
    from isaacgymenvs.motion.poselib import load_poselib_npy

    src = load_poselib_npy(clip_path("walk"))

    def _make(name="variant.npy", step=1, fps=None, dtype=np.float32, flip_signs=False, node_names=None):
        rot = src.rotation_xyzw[::step].astype(dtype)
        if flip_signs:
            rot[1::2] *= -1.0
        return write_poselib_npy(
            tmp_path / name,
            rot,
            src.root_translation[::step].astype(dtype),
            node_names or src.node_names,
            src.parents,
            src.local_translation,
            fps if fps is not None else np.asarray(60 // step, dtype=np.int32),
        )

    return _make

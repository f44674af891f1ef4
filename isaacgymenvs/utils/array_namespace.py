"""Code written once for numpy arrays and torch tensors: the namespace of an input.

The clip loader, sim2sim and the evaluation's numbers run without torch; the MotionLib and the
trainer run the same functions on torch tensors (on the GPU). Those functions take their
namespace from their input and use the names numpy 2 and torch share (``atan2``, ``clip``,
``where``, ``amin``, ...).
"""

from __future__ import annotations

import numpy as np


def namespace(a):
    """numpy or torch, whichever ``a`` belongs to (torch is imported only for torch inputs)."""
    if type(a).__module__.startswith("torch"):
        import torch

        return torch
    return np

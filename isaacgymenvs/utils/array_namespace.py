"""Code written once for numpy arrays and torch tensors: the namespace of an input.

The clip loader, sim2sim and the evaluation's numbers run without torch; the MotionLib and the
trainer run the same functions on torch tensors (on the GPU). Those functions take their
namespace from their input and use the names numpy 2 and torch share (``atan2``, ``clip``,
``where``, ``amin``, ``concat(..., axis=)``, ``stack(..., axis=)``, ``isfinite``, ...).

Rules for such code, so that the torch path can run inside a captured CUDA graph: no host
synchronization (no ``float(t)``, ``bool(t)``, ``.item()``, boolean indexing), no Python branch on a
tensor's value, and constants made once (:func:`constant`) rather than copied from the host per call.
"""

from __future__ import annotations

import numpy as np


def is_torch(a) -> bool:
    return type(a).__module__.startswith("torch")


def namespace(a):
    """numpy or torch, whichever ``a`` belongs to (torch is imported only for torch inputs)."""
    if is_torch(a):
        import torch

        return torch
    return np


def arange_like(start: int, stop: int, like):
    """``[start, stop)`` as an array of ``like``'s kind, dtype and device."""
    if is_torch(like):
        import torch

        return torch.arange(start, stop, dtype=like.dtype, device=like.device)
    return np.arange(start, stop, dtype=np.asarray(like).dtype)


_CONSTANTS: dict = {}


def constant(key, make, like, index: bool = False):
    """The numpy array ``make()`` as an array of ``like``'s kind, on its device, with its float
    dtype (``index``: int64), made once per ``(key, kind, device, dtype)`` and cached: the torch
    path copies nothing from the host per call (a captured step may replay it)."""
    if is_torch(like):
        import torch

        dtype = torch.long if index else like.dtype
        full = (key, "torch", str(like.device), str(dtype))
        if full not in _CONSTANTS:
            _CONSTANTS[full] = torch.as_tensor(np.asarray(make()), dtype=dtype, device=like.device)
    else:
        dtype = np.dtype(np.int64) if index else np.asarray(like).dtype
        full = (key, "numpy", "cpu", str(dtype))
        if full not in _CONSTANTS:
            _CONSTANTS[full] = np.asarray(make(), dtype=dtype)
    return _CONSTANTS[full]


def as_kind(x, like):
    """``x`` (numpy array or list) as an array of ``like``'s kind, dtype and device (set-up code,
    not per step: it copies from the host)."""
    if is_torch(like):
        import torch

        return torch.as_tensor(np.asarray(x), dtype=like.dtype, device=like.device)
    return np.asarray(x, dtype=np.asarray(like).dtype)


def to_numpy(x) -> np.ndarray:
    """``x`` as a numpy array (a torch tensor through the host: set-up code only)."""
    if is_torch(x):
        return np.asarray(x.detach().cpu().numpy())
    return np.asarray(x)

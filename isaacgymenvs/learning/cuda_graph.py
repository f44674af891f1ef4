"""A function of tensors replayed as CUDA graphs: the learner's minibatch step as one launch.

:class:`CapturedCall` runs ``fn(*tensors)`` eagerly for its first calls under a key, then captures
it as a CUDA graph and from then on copies each call's input tensors into the captured inputs and
replays the graph: one launch instead of several hundred (a PPO + discriminator minibatch step is
about 650). One graph per key: whatever ``fn`` bakes in as Python values (a loss coefficient, a
train/eval mode) belongs in the key, so that a new value captures a new graph instead of replaying
the old one. Rules for ``fn`` (those of CUDA graphs): the same input shapes for a key, state updated
in place (parameters, optimizer state, normalizer statistics), no host synchronization, no new
state tensors after the warm-up calls. Outputs are the same tensors at every replay: a caller keeps
a clone of what it needs beyond the next call. A capture that fails says why once and the call runs
eagerly from then on. Imports: torch only.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import torch


class CapturedCall:
    """``fn(*tensors) -> tuple of tensors``, replayed from a CUDA graph per key after ``warmup_calls``
    eager calls under that key (lazy initialisations: optimizer state, cuBLAS workspaces)."""

    def __init__(self, fn: Callable[..., tuple[torch.Tensor, ...]], *, warmup_calls: int = 2, name: str = "step"):
        self.fn = fn
        self.warmup_calls = int(warmup_calls)
        self.name = name
        self.error: str | None = None  # why the capture failed (then every call is eager)
        self.replays = 0  # calls answered by a graph replay (a diagnostic and a test hook)
        self._calls: dict[Hashable, int] = {}
        self._graphs: dict[Hashable, tuple[torch.cuda.CUDAGraph, list[torch.Tensor], tuple[torch.Tensor, ...]]] = {}

    def reset(self) -> None:
        """Drop every graph (the state they read was replaced, e.g. an optimizer state loaded from a
        checkpoint); the next calls warm up and capture again."""
        self._graphs.clear()
        self._calls.clear()

    @property
    def num_graphs(self) -> int:
        return len(self._graphs)

    def __call__(self, key: Hashable, tensors: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        key = (key, tuple((tuple(t.shape), t.dtype) for t in tensors))
        captured = self._graphs.get(key)
        if captured is not None:
            graph, inputs, out = captured
            for dst, src in zip(inputs, tensors):
                dst.copy_(src)
            graph.replay()
            self.replays += 1
            return out
        n = self._calls.get(key, 0) + 1
        self._calls[key] = n
        on_gpu = all(t.is_cuda for t in tensors)  # CPU work cannot be captured: a graph of it replays nothing
        if self.error is None and on_gpu and n > self.warmup_calls:
            try:
                self._capture(key, tensors)
            except Exception as e:  # an operation that cannot be captured: say so once, stay eager
                self.error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                print(
                    f"{self.name} could not be captured as a CUDA graph ({self.error}); it runs eagerly (slower)",
                    flush=True,
                )
            else:
                return self(key[0], tensors)
        return self.fn(*tensors)

    def _capture(self, key, tensors) -> None:
        inputs = [t.clone() for t in tensors]
        stream = torch.cuda.current_stream()  # a failed capture can leave its side stream current
        graph = torch.cuda.CUDAGraph()
        # a side stream of its own (torch.cuda.graph's default): the capture waits for the work queued
        # so far, and a replay runs on the caller's current stream, in order with its other work
        # The parameters' gradient accumulators were made on the caller's stream by the eager calls and
        # the capture's backward runs on its side stream: autograd warns of that mismatch, which is
        # intended here (the capture orders itself after the queued work and replays on the caller's).
        warn = getattr(torch.autograd.graph, "set_warn_on_accumulate_grad_stream_mismatch", None)
        if warn is not None:
            warn(False)
        try:
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                out = tuple(self.fn(*inputs))
        except Exception:
            torch.cuda.set_stream(stream)
            torch.cuda.synchronize()
            raise
        finally:
            if warn is not None:
                warn(True)  # autograd's default
        self._graphs[key] = (graph, inputs, out)

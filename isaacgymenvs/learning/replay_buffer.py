"""Ring buffer of AMP observations for the discriminator.

AMP keeps two of these (IsaacGymEnvs' ``AMPAgent``):
    * the agent replay buffer (``amp_replay_buffer_size`` 1e6,
      ``amp_replay_keep_prob`` 0.01): past policy transitions mixed into the
      discriminator's "fake" batch so it does not forget old behaviour;
    * the demo buffer (``keep_prob`` 1.0): reference-motion transitions, the
      "real" batch.
"""

from __future__ import annotations

import torch


class ReplayBuffer:
    """Fixed-size ring buffer of rows ``[capacity, D]`` on one device.

    Args:
        capacity: number of rows held; once full, new rows overwrite the oldest.
        dim: D, the size of one row.
        device: where the storage tensor lives.
        keep_prob: once more than ``capacity`` rows have been offered in total,
            each further incoming row is kept with this probability (the rest
            are dropped), so old rows survive longer. Rows offered while the
            buffer is still filling are always kept. 1.0 keeps every row.
        dtype: storage dtype; stored rows are cast to it.
        generator: optional ``torch.Generator`` for the keep decisions and for
            ``sample``; random numbers are drawn on the generator's device.
    """

    def __init__(
        self,
        capacity: int,
        dim: int,
        device: str | torch.device = "cpu",
        keep_prob: float = 1.0,
        dtype: torch.dtype = torch.float32,
        generator: torch.Generator | None = None,
    ):
        if capacity < 1:
            raise ValueError(f"ReplayBuffer: capacity must be >= 1, got {capacity}")
        if dim < 1:
            raise ValueError(f"ReplayBuffer: dim must be >= 1, got {dim}")
        if not 0.0 <= keep_prob <= 1.0:
            raise ValueError(f"ReplayBuffer: keep_prob must be in [0, 1], got {keep_prob}")
        self.capacity = int(capacity)
        self.dim = int(dim)
        self.device = torch.device(device)
        self.keep_prob = float(keep_prob)
        self.generator = generator
        self.data = torch.zeros(self.capacity, self.dim, dtype=dtype, device=self.device)
        self.head = 0  # index the next kept row is written to
        self.filled = 0  # rows currently holding data, <= capacity
        self.num_seen = 0  # rows ever offered to store()
        self.num_stored = 0  # rows ever written (after the keep_prob filter)

    def __len__(self) -> int:
        return self.filled

    def store(self, x: torch.Tensor) -> None:
        """Append rows ``x`` of shape [n, D], wrapping around when full."""
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"ReplayBuffer.store: expected shape [n, {self.dim}], got {tuple(x.shape)}")
        n = x.shape[0]
        if n == 0:
            return
        x = x.detach().to(device=self.device, dtype=self.data.dtype)

        # Rows whose running index is still < capacity are always kept.
        num_free = max(self.capacity - self.num_seen, 0)
        self.num_seen += n
        if self.keep_prob < 1.0 and n > num_free:
            device = self._rand_device()
            keep = torch.ones(n, dtype=torch.bool, device=device)
            keep[num_free:] = torch.rand(n - num_free, generator=self.generator, device=device) < self.keep_prob
            x = x[keep.to(self.device)]
            n = x.shape[0]
            if n == 0:
                return

        # Only the last `capacity` rows can survive; skip the head past the rest.
        if n > self.capacity:
            self.head = (self.head + n - self.capacity) % self.capacity
            self.num_stored += n - self.capacity
            x = x[-self.capacity :]
            n = self.capacity
        idx = (self.head + torch.arange(n, device=self.device)) % self.capacity
        self.data[idx] = x
        self.head = (self.head + n) % self.capacity
        self.filled = min(self.filled + n, self.capacity)
        self.num_stored += n

    def sample(self, n: int) -> torch.Tensor:
        """Return [n, D] rows from the filled part.

        Drawn without replacement when ``n <= len(self)``, with replacement
        otherwise.
        """
        if n < 0:
            raise ValueError(f"ReplayBuffer.sample: n must be >= 0, got {n}")
        if self.filled == 0:
            raise ValueError("ReplayBuffer.sample: buffer is empty, store() rows first")
        device = self._rand_device()
        if n <= self.filled:
            idx = torch.randperm(self.filled, generator=self.generator, device=device)[:n]
        else:
            idx = torch.randint(self.filled, (n,), generator=self.generator, device=device)
        return self.data[idx.to(self.device)]

    def state_dict(self) -> dict:
        """Contents and counters, for a checkpoint (only the filled rows)."""
        return {
            "capacity": self.capacity,
            "dim": self.dim,
            "keep_prob": self.keep_prob,
            "data": self.data[: self.filled].clone(),
            "head": self.head,
            "filled": self.filled,
            "num_seen": self.num_seen,
            "num_stored": self.num_stored,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore from ``state_dict()``; capacity and dim must match.

        ``keep_prob`` stays as constructed (it is a setting, not state).
        """
        if state["capacity"] != self.capacity or state["dim"] != self.dim:
            raise ValueError(
                f"ReplayBuffer.load_state_dict: checkpoint has capacity={state['capacity']}, "
                f"dim={state['dim']}; this buffer has capacity={self.capacity}, dim={self.dim}"
            )
        filled = int(state["filled"])
        if tuple(state["data"].shape) != (filled, self.dim):
            raise ValueError(
                f"ReplayBuffer.load_state_dict: data has shape {tuple(state['data'].shape)}, "
                f"expected ({filled}, {self.dim})"
            )
        self.data.zero_()
        self.data[:filled] = state["data"].to(device=self.device, dtype=self.data.dtype)
        self.head = int(state["head"])
        self.filled = filled
        self.num_seen = int(state["num_seen"])
        self.num_stored = int(state["num_stored"])

    def _rand_device(self) -> torch.device:
        return self.generator.device if self.generator is not None else self.device

"""The local spool: metrics that the store did not take yet, kept in order, sent exactly once.

``runs/<run>/tracking/spool.jsonl`` is append-only. A record line holds one epoch::

    {"seq": 7, "step": 7, "ts": 1764000000000, "metrics": {"disc/agent_logit": -1.2, ...}}

``seq`` grows by one per epoch (the order of sending). When the store acknowledges a record an
ack line is appended: ``{"ack": 7}`` (or ``{"ack": 7, "rejected": "why"}`` when the store refused
it). A record is pending while no ack line names its seq. Records keep their timestamp, so a
record that reached the store although its answer was lost is written again as the same row,
which the store keeps once.

Nothing is written while the store answers: the first record that fails to go starts the spool,
and every later record goes through it until it is empty again.
"""

from __future__ import annotations

import json
import math
from collections import deque
from pathlib import Path


def _finite_or_str(metrics: dict) -> dict:
    # JSON has no NaN/inf: write them as strings, read them back as floats
    return {k: (v if math.isfinite(v) else str(v)) for k, v in metrics.items()}


class Spool:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.pending: deque[dict] = deque()
        self.acked_seq = 0
        self.rejected: list[tuple[int, str]] = []
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        records, acks = {}, set()
        for line in self.path.read_text().splitlines():
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash
            if "ack" in d:
                acks.add(int(d["ack"]))
                if "rejected" in d:
                    self.rejected.append((int(d["ack"]), d["rejected"]))
            else:
                records[int(d["seq"])] = d
        for seq in sorted(records):
            if seq not in acks:
                r = records[seq]
                r["metrics"] = {k: float(v) for k, v in r["metrics"].items()}
                self.pending.append(r)
        self.acked_seq = max(acks, default=0)

    def __len__(self) -> int:
        return len(self.pending)

    def _write(self, d: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(d) + "\n")

    def add(self, record: dict) -> None:
        """Keep ``record`` ({seq, step, ts, metrics}) until it is acknowledged."""
        self._write(dict(record, metrics=_finite_or_str(record["metrics"])))
        self.pending.append(record)

    def ack(self, seq: int, rejected: str | None = None) -> None:
        """The oldest pending record went (or was refused for good): drop it."""
        assert self.pending and self.pending[0]["seq"] == seq, "acks come oldest first"
        self.pending.popleft()
        self._write({"ack": seq} if rejected is None else {"ack": seq, "rejected": rejected})
        self.acked_seq = seq
        if rejected is not None:
            self.rejected.append((seq, rejected))

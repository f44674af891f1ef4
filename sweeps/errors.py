"""The sweep's one-line errors: ``python -m sweeps`` prints ``error: <message>`` and exits 2."""


class SweepError(RuntimeError):
    """The sweep cannot start as asked; the message says why and what to do."""

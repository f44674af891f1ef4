"""Passwords out of text the project writes or prints: ``scheme://user:password@host`` -> ``user:***``."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][\w+.-]*://)(?P<user>[^:/@\s]+):(?P<password>[^@/\s]*)@")


def strip_credentials(text: str) -> str:
    """``text`` with every ``scheme://user:password@`` turned into ``scheme://user:***@``."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)

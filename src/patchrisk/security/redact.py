"""Passwords and tokens inside URIs (``scheme://user:password@host``, ``scheme://token@host``) kept out
of what a person or a log reads: the URIs people configure (a tracking URI, a database URI) carry
them, and library errors repeat the URI they failed on."""

from __future__ import annotations

import re

# scheme://userinfo@ ; the userinfo stops at the first '/', '@' or space (RFC 3986 allows no '/' in it)
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/@:\s]*)(?::(?P<secret>[^/@\s]*))?@")


def redact_credentials(text: str) -> str:
    """``text`` with each URI's password (``user:***@``) or bare token (``***@``) replaced."""

    def replace(match: re.Match) -> str:
        if match["secret"] is not None:
            return f"{match['scheme']}{match['user']}:***@"
        return f"{match['scheme']}***@"

    return _USERINFO.sub(replace, text)

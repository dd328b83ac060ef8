"""URLs as they may be shown: in messages, logs, the ledger's events and the UI — never with a password.

One rule for every URL we show (output URLs, database URLs), and it follows how the URL is read
(``urllib.parse.urlsplit``, which SQLAlchemy's ``make_url`` agrees with for a valid URL): the
authority ends at the first ``/``, ``?`` or ``#`` after ``//``; the user information is everything
before the *last* ``@`` of it; the password is what follows the first ``:`` of the user information.
A mask that stopped at the first ``@`` showed the rest of a password holding an ``@``.

A URL that cannot be read is shown in error messages too, so the rule also covers the case where a
``/``, ``?`` or ``#`` inside a password ends the authority early (``user:pa/ss@broker``): when the
authority holds a ``:`` and an ``@`` comes later, everything up to that last ``@`` is masked. That may
hide a port and a path of a URL that is wrong anyway; it never shows a piece of a password.
"""

from __future__ import annotations

MASK = "***"


def redact_url(url: str) -> str:
    """``url`` with its password (everything the reader could take for one) replaced by ``***``."""
    scheme, slashes, rest = url.partition("//")
    if not slashes:
        return url
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority = rest[:end]
    at = authority.rfind("@")
    if at < 0:
        at = rest.rfind("@") if ":" in authority else -1
        if at < 0:
            return url  # no user information, as read and as typed
    userinfo, host_and_rest = rest[:at], rest[at:]
    user, colon, _password = userinfo.partition(":")
    if not colon:
        return url  # a user name and no password
    return f"{scheme}//{user}:{MASK}{host_and_rest}"

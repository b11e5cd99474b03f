"""Connection URLs as they may be shown: the one place a password is taken out of a URL.

Every message, table and log line that names a connection's URL goes through ``mask_url``, and
an error a client library raised about a URL goes through ``hide_secrets``: a password may be
shown nowhere.
"""

from __future__ import annotations

from urllib.parse import unquote

MASK = "***"

#: query keys whose values are secrets, lower-case: libpq's ``password`` and ``sslpassword``,
#: and the spellings other clients accept
_SECRET_KEYS = frozenset({"password", "passwd", "pass", "pwd", "sslpassword", "secret", "token"})


def mask_url(url: str) -> str:
    """``url`` with the password of its user info and of its query (``?password=``) replaced.

    The user info is everything before the last ``@`` ahead of the query, so a password with
    an unencoded ``@`` or ``/`` is still hidden whole (the host may be hidden with it: showing
    too little is the safe side). ``sqlite:///path`` has no user info and comes back as given.
    """
    scheme, head, query = _split(url)
    user, password, hosts = _userinfo(head)
    if password:
        head = f"{user}:{MASK}@{hosts}"
    if query is not None:
        pairs = (_mask_pair(pair) for pair in query.partition("#")[0].split("&"))
        query = "?" + "&".join(pairs) + "".join(query.partition("#")[1:])
    return f"{scheme}{head}{query or ''}"


def hide_secrets(text: str, url: str) -> str:
    """``text`` (a client library's error about ``url``) with the URL's passwords masked.

    Parsers quote the piece of a URL they choke on, and that piece may be the password.
    """
    text = text.replace(url, mask_url(url))
    _, head, query = _split(url)
    raw = [_userinfo(head)[1]]
    if query is not None:
        pairs = (pair.partition("=") for pair in query.partition("#")[0].split("&"))
        raw += [value for key, _, value in pairs if _secret(key)]
    secrets = {form for value in raw if value for form in (value, unquote(value))}
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def unencoded_userinfo(url: str) -> bool:
    """Whether the user name or password of ``url`` holds a ``/``, ``?`` or ``#`` that is not
    percent-encoded: URL parsers then cut the password short and quote a piece of it as the
    host or the port, in errors a mask cannot recognise."""
    rest = url.partition("://")[2]
    userinfo, at, _ = rest.rpartition("@")
    return bool(at) and not rest.startswith("/") and any(c in userinfo for c in "/?#")


def _split(url: str) -> tuple[str, str, str | None]:
    """``(scheme://, user info with authority and path, query or None)``; a URL without a
    scheme has ``""``. The user info runs to the last ``@``, before the query is looked for: a
    password holding an unencoded ``?`` stays in it."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    userinfo, at, after = rest.rpartition("@")
    tail, qmark, query = after.partition("?")
    return scheme + sep, userinfo + at + tail, query if qmark else None


def _userinfo(head: str) -> tuple[str, str, str]:
    """``(user, password, the rest)``; the password is ``""`` when there is none."""
    if head.startswith("/") or "@" not in head:
        return "", "", head
    userinfo, _, hosts = head.rpartition("@")
    user, _, password = userinfo.partition(":")
    return user, password, hosts


def _secret(key: str) -> bool:
    return unquote(key).strip().lower() in _SECRET_KEYS


def _mask_pair(pair: str) -> str:
    key, equals, _ = pair.partition("=")
    return f"{key}={MASK}" if equals and _secret(key) else pair

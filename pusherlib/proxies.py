"""Which HTTP proxy a request goes through: ``proxy=``, or the environment as ``requests`` reads it."""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping

from .errors import PusherValueError

ProxySetting = str | bool | None


def proxy_for(
    scheme: str, host: str, port: int, setting: ProxySetting, environ: Mapping[str, str] | None = None
) -> str | None:
    """The proxy URL for ``scheme://host:port``, or ``None`` for direct; ``setting``: a URL, ``False``
    (never), or ``None`` (``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` in ``environ`` decide)."""
    if setting is False:
        return None
    if isinstance(setting, str) and setting:
        return _with_scheme(setting)
    if setting not in (None, True, ""):
        raise PusherValueError(f"proxy must be a URL, False or None, got {setting!r}")
    proxies = _environment_proxies(environ)
    url = proxies.get(scheme)
    if not url or _bypassed(host, port, proxies.get("no", "")):
        return None
    return _with_scheme(url)


def _environment_proxies(environ: Mapping[str, str] | None) -> dict[str, str]:
    """``{"http": url, "https": url, "no": "host,..."}`` from ``*_PROXY`` variables; the
    lower-case name wins, as in ``urllib`` and ``requests``."""
    if environ is None:
        return urllib.request.getproxies_environment()
    found: dict[str, str] = {}
    for name in sorted(environ, key=lambda n: n.islower()):  # upper case first, lower case wins
        if name.lower().endswith("_proxy") and environ[name]:
            found[name.lower()[: -len("_proxy")]] = environ[name]
    return found


def _bypassed(host: str, port: int, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` lists ``host`` (or ``host:port``, a parent domain, or ``*``)."""
    if not no_proxy:
        return False
    return bool(urllib.request.proxy_bypass_environment(f"{host}:{port}", {"no": no_proxy}))


def _with_scheme(url: str) -> str:
    """``requests`` reads ``proxy:3128`` as ``http://proxy:3128``; so do we."""
    return url if "://" in url else f"http://{url}"

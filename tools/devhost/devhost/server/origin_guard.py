"""Cross-site and DNS-rebinding protection: a web page the user happens to visit cannot drive devhost.

devhost listens on loopback, but a browser will still send a page's requests there:
- a cross-site form or `fetch(..., {mode: "no-cors"})` POST (a `text/plain` body needs no CORS
  preflight) could start, approve or terminate instances: state-changing requests whose `Origin`
  is not devhost's own origin are refused;
- a DNS-rebinding page (`evil.example` re-resolved to 127.0.0.1) is same-origin with itself, so
  the `Host` it sends is `evil.example`: any request whose `Host` is not a loopback name
  (localhost, 127.0.0.0/8, [::1]) or one the user allowed is refused.
Non-browser clients (curl, the SDK's client, aiohttp) send no `Origin` and a loopback `Host`, and
the dashboard's requests carry devhost's own origin, so they keep working. Jupyter and Vite refuse
the same requests for the same reasons.

Allow another host name (a LAN name, a tunnel) with `DEVHOST_ALLOWED_HOSTS=name1,name2` or
`devhost start --allow-host name`; an Origin whose host name is allowed is accepted as well.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from aiohttp import web

from .http import Handler, error_response

ALLOWED_HOSTS_SETTING = "DEVHOST_ALLOWED_HOSTS"
STATE_CHANGING = frozenset({"POST", "PUT", "DELETE", "PATCH"})


def allowed_hosts_from(settings: Mapping[str, str], extra: Iterable[str] = ()) -> frozenset[str]:
    """The host names allowed beside loopback: `DEVHOST_ALLOWED_HOSTS` (comma-separated) plus `extra`."""
    names = [*settings.get(ALLOWED_HOSTS_SETTING, "").split(","), *extra]
    return frozenset(n.strip().lower().rstrip(".") for n in names if n.strip())


def host_name(authority: str) -> str | None:
    """The host name of a `Host` header value (`name`, `name:port`, `[v6]:port`), lower-cased; None if malformed."""
    authority = authority.strip().lower()
    if not authority:
        return None
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            return None
        rest = authority[end + 1 :]
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return None
        return authority[1:end]
    name, sep, port = authority.partition(":")
    if sep and not port.isdigit():
        return None
    return name.rstrip(".") or None


def is_loopback(name: str) -> bool:
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class OriginGuard:
    """The aiohttp middleware; `allowed` holds extra host names (lower case)."""

    def __init__(self, allowed: frozenset[str] = frozenset()) -> None:
        self.allowed = allowed

    @classmethod
    def from_environment(cls, extra: Iterable[str] = (), settings: Mapping[str, str] | None = None) -> OriginGuard:
        return cls(allowed_hosts_from(os.environ if settings is None else settings, extra))

    def host_allowed(self, name: str | None) -> bool:
        return name is not None and (is_loopback(name) or name in self.allowed)

    def refusal(self, request: web.Request) -> str | None:
        """Why the request is refused, or None."""
        host = request.headers.get("Host")
        if host is not None and not self.host_allowed(host_name(host)):
            return (
                f"Host '{host}' is not allowed: devhost answers only to localhost, 127.0.0.1 and [::1] "
                f"(allow another name with {ALLOWED_HOSTS_SETTING} or --allow-host)."
            )
        origin = request.headers.get("Origin")
        if origin is not None and request.method.upper() in STATE_CHANGING and not self._same_or_allowed(origin, host):
            return (
                f"Cross-origin {request.method} from '{origin}' is not allowed: only pages served by devhost "
                f"itself may change state (allow another host with {ALLOWED_HOSTS_SETTING} or --allow-host)."
            )
        return None

    def _same_or_allowed(self, origin: str, host: str | None) -> bool:
        try:
            parts = urlsplit(origin.strip())
            netloc, hostname = parts.netloc.lower(), parts.hostname
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not netloc:
            return False  # "null" (sandboxed frames, file:) and anything else that is not a web origin
        if host is not None and netloc == host.strip().lower():
            return True
        return hostname is not None and hostname.rstrip(".") in self.allowed

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        reason = self.refusal(request)
        if reason is not None:
            return error_response(403, reason)
        return await handler(request)

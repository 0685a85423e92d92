"""Test-only, loaded by a devhost subprocess through PYTHONPATH: aiohttp requests whose URL starts with
DEVHOST_TEST_REDIRECT's left side go to its right side (a loopback server) instead.

The transport seam, for apps that fetch from the Internet, which this machine cannot reach: the app's
real aiohttp client still makes a real HTTP request, only the host changes."""

import os

_RULE = os.environ.get("DEVHOST_TEST_REDIRECT", "")

if "=" in _RULE:
    import aiohttp

    _FROM, _TO = _RULE.split("=", 1)
    _original = aiohttp.ClientSession._request

    async def _request(self, method, str_or_url, *args, **kwargs):  # type: ignore[no-untyped-def]
        url = str(str_or_url)
        if url.startswith(_FROM):
            url = _TO + url[len(_FROM) :]
        return await _original(self, method, url, *args, **kwargs)

    aiohttp.ClientSession._request = _request  # type: ignore[method-assign]

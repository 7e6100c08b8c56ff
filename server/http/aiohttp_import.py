"""aiohttp, imported without reading the system's CA certificates.

`import aiohttp` (any of its modules: the package imports its client) makes two
SSLContexts for the client's outgoing HTTPS, each reading the system's CA bundle
(144 certificates here): about 70 ms of CPU in every `footfall serve` start (bench/
startup.py), for a client the server never uses. Imported through this module, the
reading is put off until such a context first wraps a connection, so a client of
aiohttp in this process verifies as it did. Imported first of all when the gateway is
(`server.http.HttpGateway`, by a serve with HTTP on), before any of aiohttp's modules;
one of server.http's modules imported alone (by a test) imports aiohttp as it is.
"""

from __future__ import annotations

import ssl
from typing import Any

_LOADS_CERTIFICATES = "set_default_verify_paths"
_WRAPS = ("wrap_bio", "wrap_socket")


def _certificates_on_first_use(context: ssl.SSLContext) -> None:
    """`context` reads the default CA certificates when it first wraps a connection."""
    def loaded_first(name: str) -> Any:
        method = getattr(type(context), name)

        def wrap(*args: Any, **kwargs: Any) -> Any:
            for each in _WRAPS:
                vars(context).pop(each, None)
            context.set_default_verify_paths()
            return method(context, *args, **kwargs)
        return wrap

    for name in _WRAPS:
        setattr(context, name, loaded_first(name))


def _import_aiohttp() -> None:
    # Contexts are made by ssl.create_default_context (-> load_default_certs) and
    # set_default_verify_paths itself: both end in the method put off here, a
    # method of the C base class that ssl.SSLContext (a Python class) can shadow.
    own = vars(ssl.SSLContext).get(_LOADS_CERTIFICATES)
    made: list[ssl.SSLContext] = []

    def later(context: ssl.SSLContext) -> None:
        made.append(context)

    setattr(ssl.SSLContext, _LOADS_CERTIFICATES, later)
    try:
        import aiohttp  # noqa: F401
    finally:
        if own is None:
            delattr(ssl.SSLContext, _LOADS_CERTIFICATES)
        else:
            setattr(ssl.SSLContext, _LOADS_CERTIFICATES, own)
    for context in made:
        _certificates_on_first_use(context)


_import_aiohttp()

"""REST/JSON transcoding from the contracts' google.api.http annotations, the
browser pixel and the `/footfall.js` tracker."""

# First: aiohttp without reading CA certificates at import (see the module).
from server.http import aiohttp_import  # noqa: F401, I001
from server.http.gateway import HttpGateway

__all__ = ["HttpGateway"]

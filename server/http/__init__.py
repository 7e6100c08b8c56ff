"""REST/JSON transcoding from the contracts' google.api.http annotations, the
browser pixel and the `/footfall.js` tracker."""

from server.http.gateway import HttpGateway

__all__ = ["HttpGateway"]

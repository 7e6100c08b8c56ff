"""A few lines of HTTP for the gateway tests (stdlib only, one connection per call)."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

TIMEOUT = 10.0


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def error(self) -> dict[str, Any]:
        """The `error` object of Google's JSON error form."""
        document = self.json()
        assert set(document) == {"error"}, document
        error: dict[str, Any] = document["error"]
        assert error["code"] == self.status, error
        return error

    def violations(self) -> dict[str, str]:
        """field -> description of the error's one BadRequest detail."""
        bad = [d for d in self.error().get("details", [])
               if d["@type"] == "type.googleapis.com/google.rpc.BadRequest"]
        assert len(bad) == 1, self.error()
        return {v["field"]: v["description"] for v in bad[0]["fieldViolations"]}


def call(port: int, method: str, path: str, body: Any = None,
         headers: dict[str, str] | None = None, source: str | None = None) -> Reply:
    """`body`: bytes as they are, anything else as JSON; a body is labelled JSON
    unless `headers` give a Content-Type (as every real client does). `source`: the
    loopback address to call from (127.0.0.2, say), as another client would."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT,
                                            source_address=(source, 0) if source else None)
    try:
        payload = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        headers = dict(headers or {})
        if body is not None and not any(h.lower() == "content-type" for h in headers):
            headers["Content-Type"] = "application/json"
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        connection.close()


def query_value(value: Any) -> str:
    """A query parameter value, percent-encoded (JSON for dicts)."""
    text = json.dumps(value) if isinstance(value, dict) else str(value)
    return quote(text, safe="")

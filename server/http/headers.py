"""Headers that every answer of the HTTP port carries.

`X-Content-Type-Options: nosniff` has a browser take an answer only as the type
it is labelled: JSON, /metrics and /healthz are no script and no stylesheet. The
console's Content-Security-Policy allows scripts of this origin (`'self'`), and
without it Chromium ran a `<script src>` of a JSON answer, of /metrics and of
/healthz (onload, not onerror): the policy's `'self'` then rested on no answer of
this origin ever being a valid script with a client's text in it.

`Server` names the server without versions: aiohttp's own said
`Python/3.11 aiohttp/3.14.5` to anyone, which is where a look for a known flaw of
that HTTP parser starts.
"""

from __future__ import annotations

EVERY = {"Server": "Footfall", "X-Content-Type-Options": "nosniff"}
NO_STORE = {"Cache-Control": "no-store", **EVERY}

"""Headers that every answer of the HTTP port with a body carries.

`X-Content-Type-Options: nosniff` has a browser take an answer only as the type
it is labelled: JSON, /metrics and /healthz are no script and no stylesheet. The
console's Content-Security-Policy allows scripts of this origin (`'self'`), and
without it Chromium ran a `<script src>` of a JSON answer, of /metrics and of
/healthz (onload, not onerror): the policy's `'self'` then rested on no answer of
this origin ever being a valid script with a client's text in it.
"""

from __future__ import annotations

NOSNIFF = {"X-Content-Type-Options": "nosniff"}
NO_STORE = {"Cache-Control": "no-store", **NOSNIFF}

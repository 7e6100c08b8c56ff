"""CollectUserEvent: turn a pixel request into a UserEvent, and the pixel itself."""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote

import orjson
from google.api import httpbody_pb2
from google.protobuf import json_format

from server import json_keys, json_problems, lenient_json, protojson
from server.errors import FieldViolation, InvalidArgument, UnreadValue, unlisted
from server.policy.envelope import LARGE_REQUEST_BYTES
from server.policy.limits import json_size_violation
from server.retail.validation import MAX_LONG_TEXT, MAX_USER_AGENT, too_long

# CollectUserEvent of each retail version: a GET of it is a browser's pixel.
PIXEL_RPCS = frozenset(f"google.cloud.retail.{version}.UserEventService.CollectUserEvent"
                       for version in ("v2", "v2beta", "v2alpha"))

# A 1x1 transparent GIF: header, screen 1x1 with a 2-colour table (black, white),
# a graphic control extension marking colour 0 transparent, one 1x1 image, trailer.
PIXEL_GIF = bytes.fromhex(
    "474946383961" "0100" "0100" "800000" "000000" "ffffff"
    "21f904" "01" "0000" "00" "00"
    "2c" "0000" "0000" "0100" "0100" "00" "02" "02" "4401" "00" "3b"
)
PIXEL_CONTENT_TYPE = "image/gif"

MAX_USER_EVENT_CHARS = 2_000_000
GET_EVENT_CHARS = 16 * 1024  # in a GET's URL (in_url_violations)
MAX_URI_CHARS = 5_000
MAX_ETS_MILLIS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last valid Timestamp
# Conversion rules for raw_json that this server implements: none. A raw_json
# without a rule must be a UserEvent.
KNOWN_PREBUILT_RULES: frozenset[str] = frozenset()
# Google's rule for a row of the GA4 BigQuery export (CollectUserEventRequest's own
# example). Not imitated: Google's pages say which GA4 event_name matches each event
# type, but how a row's fields (user_pseudo_id, items, ecommerce, event_params...)
# become a UserEvent was not found published, and a guessed conversion could store
# events that Google's service would store differently, or refuse.
GA4_BQ_RULE = "ga4_bq"


def pixel_body() -> httpbody_pb2.HttpBody:
    """What CollectUserEvent answers: the GIF (a new message each time: the caller
    may change its own)."""
    return httpbody_pb2.HttpBody(content_type=PIXEL_CONTENT_TYPE, data=PIXEL_GIF)


def parse_event_json(text: str, field: str, event: Any, max_bytes: int | None = None) -> None:
    """Fill the empty `event` from proto3 JSON in `text` (or the forms Google's JSON
    front end reads too, see lenient_json); INVALID_ARGUMENT naming `field` and
    saying where the JSON is bad, or (alone) that the event is over `max_bytes`
    serialized when its JSON shows it is, unparsed (see _over).

    A pixel's event is read with orjson and built by `protojson` (json_format
    takes about 150 µs an event, most of a pixel's cost). What that path cannot
    judge as json_format does (text orjson refuses, no object, a key given twice,
    which orjson lets pass) goes to json_format (protojson.parse_text: with the
    proto3 JSON reading of numbers), so a bad event is told in its words.
    """
    data: Any = None
    syntax: orjson.JSONDecodeError | None = None
    try:
        try:
            data, loaded = orjson.loads(text), True
        except orjson.JSONDecodeError as error:
            data, loaded, syntax = None, False, error
        if loaded and not isinstance(data, dict):
            # (json_format read `[]` as an empty event, a text as the names of its
            # letters, and said "'int' object is not iterable" of a number)
            raise InvalidArgument.field(field, "must be a JSON object (a UserEvent), got "
                                               f"{protojson.json_kind(data)}")
        if max_bytes is not None and isinstance(data, dict) \
                and (over := _over(text, data, event, field, max_bytes)) is not None:
            raise InvalidArgument([over])
        # orjson keeps the last of a key given twice: json_format judges a text that
        # may give one (json_keys), so that it is refused
        if isinstance(data, dict) and not json_keys.may_repeat(text, data):
            # (orjson read 1e-400 as 0.0: exact_numbers keeps its digits)
            event.CopyFrom(lenient_json.parse_dict(protojson.exact_numbers(text, data),
                                                   type(event)))
        elif isinstance(data, dict) and (twice := json_keys.repeated_key(text)) is not None:
            # (json_format's words were "Failed to load JSON: Failed to load JSON:
            # duplicate key visitorId"; a REST body's are these)
            raise InvalidArgument.field(field, f"not valid JSON: the key {twice!r} is given "
                                               "twice in one object")
        else:
            try:
                protojson.parse_text(text, event)
            except json_format.ParseError as strict:
                # JSON it loaded (no key given twice) that is not proto3 JSON: the
                # forms read leniently, as on the fast path (an escape, `"\u0078"`,
                # must not make `"experimentIds": "e"` bad).
                if not isinstance(data, dict) or str(strict).startswith(_NOT_LOADED):
                    raise
                exact = protojson.exact_numbers(text, data)
                lenient = lenient_json.normalize(exact, event.DESCRIPTOR)
                if lenient == exact:
                    raise
                event.Clear()
                try:
                    protojson.parse_into(lenient, event)  # (its depth limit, as Parse's)
                except RecursionError:
                    raise lenient_json.too_deep() from None
                except json_format.ParseError as error:  # placed where it was rewritten
                    raise protojson.placed(error, event.DESCRIPTOR, lenient) from None
    except json_format.ParseError as exc:
        if syntax is not None and str(exc).startswith(_NOT_LOADED):
            # (json_format said "Expecting value: line 1 column 43 (char 42)" of a
            # pixel's event, whose JSON its writer sees only URL-encoded: say what
            # stands there, and what cuts an event short)
            said = protojson.syntax_problem(syntax, text)
            if said.endswith("at the end"):
                said += (" (a '#' or '&' left as is in a pixel's URL ends the event there: "
                         "URL-encode it whole, as encodeURIComponent does)")
            raise InvalidArgument.field(field, f"not valid JSON: {said}") from None
        problems, more = json_problems.listed(exc, event.DESCRIPTOR,
                                              data if isinstance(data, dict) else None)
        read = _read_around(exc, field, event)
        named = [(f"{field}.{path}" if path else field,
                  f"not a valid UserEvent in JSON: {reason}") for path, reason in problems]
        raise InvalidArgument([*(FieldViolation(where, why) if read is None
                                 else UnreadValue(where, why, read) for where, why in named),
                               *unlisted(more, json_problems.stopped(exc))]) from None


def _over(text: str, data: dict[str, Any], event: Any, field: str,
          max_bytes: int) -> FieldViolation | None:
    """`field: is at least N bytes; at most MAX` when the JSON `data` (loaded from
    `text`) shows that the event it holds is over `max_bytes` serialized (see
    limits.serialized_at_least), as a REST body's event is refused before it is parsed
    (http.body_bounds); else None. Parsed, the raw_json of 200,000 product details
    (10 MB) took 1.9 s of the server's CPU to be refused for the same; a text of up to
    LARGE_REQUEST_BYTES costs little to parse, and is: its size is then told exactly."""
    if len(text) <= LARGE_REQUEST_BYTES:
        return None
    return json_size_violation(event.DESCRIPTOR, data, field, max_bytes)


def _read_around(error: json_format.ParseError, field: str, event: Any) -> frozenset[str] | None:
    """The paths of the values that read, when `error` is a json_problems.Refusal
    whose document reads without its wrong values: the empty `event` is then filled
    with them, for the rules about those values to be judged too (unless its type
    is among the wrong ones: see UserEventService._violations). Else None: also when
    more are wrong than are listed (the rules would not be shown)."""
    event.Clear()  # (what the parse that refused it left half-done)
    if not json_problems.read_around(error, event):
        return None
    return frozenset(f"{field}.{path}" for path in cast(json_problems.Refusal, error).read())


# How json_format.Parse begins its error for text it cannot load as JSON (a key given
# twice among them).
_NOT_LOADED = "Failed to load JSON"


def decode_collect_request(request: Any, event: Any,
                           max_event_bytes: int | None = None) -> list[FieldViolation]:
    """Fill the empty UserEvent `event` from a CollectUserEventRequest.

    Takes `raw_json`, else `user_event` (URL-encoded or plain proto3 JSON); `uri`
    and `ets` fill the event's uri and event_time when it has none. Returns the
    request's violations (size limits, bad JSON, an unknown prebuilt rule, an event
    whose JSON shows it is over `max_event_bytes`, left unparsed), so the
    caller can report them together with the event's own. A raw_json sent with a
    rule this server cannot apply is read as a UserEvent all the same (the rule may
    be a mistake); a JSON object that is not one is reported in one violation,
    not by the first of its fields a UserEvent lacks.
    """
    violations = request_violations(request)
    rule = request.prebuilt_rule
    try:
        # The contract: when raw_json is given, user_event is ignored.
        if request.raw_json:
            try:
                parse_event_json(request.raw_json, "raw_json", event, max_event_bytes)
            except InvalidArgument:
                if not _is_refused(rule) or not _is_json_object(request.raw_json):
                    raise
                # JSON in the rule's format (a GA4 row): which of its fields a
                # UserEvent lacks is beside the point, the rule is.
                event.Clear()
                violations.append(FieldViolation(
                    "raw_json", f"is not a UserEvent, and this server cannot apply "
                                f"prebuilt_rule {rule!r} to convert it"))
        elif request.user_event and len(request.user_event) <= MAX_USER_EVENT_CHARS:
            text = request.user_event
            # Browsers send it URL-encoded; a client library sends plain JSON.
            if not text.lstrip().startswith("{"):
                text = unquote(text)
            parse_event_json(text, "user_event", event, max_event_bytes)
    except InvalidArgument as exc:
        violations.extend(exc.violations)
    if not event.uri and request.uri and len(request.uri) <= MAX_URI_CHARS:
        event.uri = request.uri
    if not event.HasField("event_time") and _usable_ets(request):
        event.event_time.FromMilliseconds(request.ets)
    return violations


def request_violations(request: Any) -> list[FieldViolation]:
    """The violations of a CollectUserEventRequest's own fields, whatever its event
    holds: an unknown prebuilt rule, size limits, a bad `ets`, no event at all."""
    violations: list[FieldViolation] = []
    if _is_refused(request.prebuilt_rule):
        violations.append(FieldViolation("prebuilt_rule", _refused_rule(request.prebuilt_rule)))
    if len(request.user_event) > MAX_USER_EVENT_CHARS:
        violations.append(too_long("user_event", request.user_event, MAX_USER_EVENT_CHARS))
    if len(request.uri) > MAX_URI_CHARS:
        violations.append(too_long("uri", request.uri, MAX_URI_CHARS))
    if request.ets < 0:
        violations.append(FieldViolation("ets", f"must not be negative, got {request.ets}"))
    elif request.ets > MAX_ETS_MILLIS:
        violations.append(FieldViolation("ets", f"must be milliseconds before the year 10000, "
                                                f"got {request.ets}"))
    if not request.user_event and not request.raw_json:
        violations.append(FieldViolation("user_event", "is required (or raw_json)"))
    return violations


def _is_refused(rule: str) -> bool:
    """Whether the prebuilt_rule `rule` is refused (an empty one, `prebuiltRule=` from
    a template, names no rule: it is no rule)."""
    return bool(rule) and rule not in KNOWN_PREBUILT_RULES


def _refused_rule(rule: str) -> str:
    """Why the prebuilt_rule `rule` is refused, and what to send instead."""
    instead = "send the UserEvent in user_event, or in raw_json without prebuilt_rule"
    if rule == GA4_BQ_RULE:
        return (f"{rule!r} (Google's rule for a row of the GA4 BigQuery export) is not "
                f"implemented: this server has no conversion rules; {instead}")
    return (f"unknown conversion rule {rule!r}: this server has none (not even Google's "
            f"{GA4_BQ_RULE!r}); {instead}")


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(orjson.loads(text), dict)
    except orjson.JSONDecodeError:
        return False


def _usable_ets(request: Any) -> bool:
    return 0 < request.ets <= MAX_ETS_MILLIS


def time_from_ets(request: Any, event: Any) -> bool:
    """Whether the time of `event` (decoded from `request`) is the request's `ets`:
    its violations then name `ets`, the field the caller set."""
    return _usable_ets(request) and event.event_time.ToMilliseconds() == request.ets


_CACHED_ADDRESS_CHARS = 64  # longer than any address (IPv6 with a zone): not kept


def normal_address(text: str) -> str | None:
    """`text` as `ipaddress` writes the address it names, or None when it names
    none. A browser's address is met again and again: the last few thousand are
    remembered (parsing one takes longer than the rest of a pixel's fields)."""
    return _normal(text) if len(text) <= _CACHED_ADDRESS_CHARS else _parse_address(text)


def _parse_address(text: str) -> str | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if getattr(address, "scope_id", None):  # fe80::1%eth0: the zone names an interface
        # of the host that wrote it, and user_info.ip_address holds none (it refused
        # the event the server had filled it for)
        address = ipaddress.IPv6Address(address.packed)
    return str(address)


_normal = functools.lru_cache(maxsize=4096)(_parse_address)


@dataclass(frozen=True)
class Requester:
    """What the HTTP request that carried a pixel says about the browser: its
    User-Agent, its address, its Referer (the page the pixel is on), and whether
    the event came in the URL (a GET)."""

    user_agent: str = ""
    ip_address: str = ""
    page: str = ""
    in_url: bool = False


def in_url_violations(request: Any) -> list[FieldViolation]:
    """The event of a GET collect over GET_EVENT_CHARS: "For larger user event
    payload over 16 KB, the POST method should be used instead, otherwise a 400 Bad
    Request error is returned" (CollectUserEvent's reference). Accepted here, such
    pixels were lost on Google."""
    field, text = ("raw_json", request.raw_json) if request.raw_json \
        else ("user_event", request.user_event)
    if len(text) <= GET_EVENT_CHARS:
        return []
    return [FieldViolation(field, f"a GET collect carries at most {GET_EVENT_CHARS:,} "
                                  f"characters of event (16 KiB; Google answers 400 Bad "
                                  f"Request beyond), got {len(text):,}: POST a larger "
                                  f"event to the same URL")]


def requester_of(context: Any) -> Requester | None:
    """The Requester an HTTP gateway context carries; None over gRPC, where the
    caller is a client library, not the browser."""
    found = getattr(context, "requester", None)
    return found if isinstance(found, Requester) else None


def direct_requester(context: Any) -> Requester:
    """Who made a call: the User-Agent and address of its HTTP request (REST), or
    of its gRPC channel (the `user-agent` metadata, the peer); a page is never
    taken. For `user_info.direct_user_request`, which says the call came from the
    end user's own device."""
    found = requester_of(context)
    if found is not None:
        return Requester(found.user_agent, found.ip_address)
    agents = [v for k, v in context.invocation_metadata() or () if k == "user-agent"]
    return Requester(str(agents[0]) if agents else "", _peer_host(context.peer() or ""))


def _peer_host(peer: str) -> str:
    """The address in a gRPC peer: `ipv4:10.0.0.1:5000`, `ipv6:[::1]:5000`; "" for
    another kind (`unix:`)."""
    kind, _, rest = unquote(peer).partition(":")  # (grpc writes ipv6:%5B::1%5D:5000)
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    if kind == "ipv6":
        return rest.rpartition(":")[0].strip("[]")
    return ""


def answers_gif_only(context: Any) -> bool:
    """Whether the call is a browser's pixel, answered with the GIF whatever
    happens: it learns nothing from a durable answer, and never retries."""
    return getattr(context, "pixel", False) is True


def fill_from_requester(event: Any, requester: Requester) -> None:
    """Fill what the event leaves empty from the browser's request, the way
    Google's pixel does: `user_info.user_agent` (cut to its limit),
    `user_info.ip_address`, and `uri` from the Referer, which names the page
    the pixel is on (not that page's referrer)."""
    if requester.user_agent and not event.user_info.user_agent:
        event.user_info.user_agent = requester.user_agent[:MAX_USER_AGENT]
    if requester.ip_address and not event.user_info.ip_address:
        address = normal_address(requester.ip_address)
        if address is not None:  # a garbled X-Forwarded-For is no reason to refuse the event
            event.user_info.ip_address = address
    if requester.page and not event.uri and len(requester.page) <= MAX_LONG_TEXT:
        event.uri = requester.page

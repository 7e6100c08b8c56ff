"""Writes events with Google's official clients (google-cloud-retail, google-cloud-talent),
run as a process of its own: they register the google.cloud protos that our server's
generated code registers too, and one process cannot hold both. Imports nothing of ours.

    python official_clients.py ADDRESS '[{"retail": PARENT, "event": {...}, "key": KEY},
                                         {"talent": TENANT, "event": {...}}, ...]'

Each event is the JSON form of a retail v2 UserEvent or a talent v4 ClientEvent; what
each write got is printed as a JSON list of status code names ("OK", "INVALID_ARGUMENT").
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

DEADLINE = 30.0


def write(address: str, writes: list[dict[str, Any]]) -> list[str]:
    """What each of `writes` (as the command line gives them) got, in order: a
    status code name; `address`: the server's gRPC host:port."""
    return list(json.loads(subprocess.run(
        [sys.executable, __file__, address, json.dumps(writes)], check=True,
        capture_output=True, text=True, timeout=DEADLINE * 2).stdout))


def _main(address: str, writes: list[dict[str, Any]]) -> list[str]:
    import grpc
    from google.api_core import exceptions
    from google.cloud import retail_v2, talent_v4
    from google.cloud.retail_v2.services.user_event_service.transports import (
        UserEventServiceGrpcTransport,
    )
    from google.cloud.talent_v4.services.event_service.transports import (
        EventServiceGrpcTransport,
    )

    got = []
    with grpc.insecure_channel(address) as channel:
        events = retail_v2.UserEventServiceClient(
            transport=UserEventServiceGrpcTransport(channel=channel))
        client_events = talent_v4.EventServiceClient(
            transport=EventServiceGrpcTransport(channel=channel))
        for one in writes:
            metadata = [("x-goog-api-key", one["key"])] if one.get("key") else []
            try:
                if "retail" in one:
                    events.write_user_event(request=retail_v2.WriteUserEventRequest(
                        parent=one["retail"],
                        user_event=retail_v2.UserEvent.from_json(json.dumps(one["event"]))),
                        metadata=metadata, timeout=DEADLINE)
                else:
                    client_events.create_client_event(
                        parent=one["talent"],
                        client_event=talent_v4.ClientEvent.from_json(json.dumps(one["event"])),
                        metadata=metadata, timeout=DEADLINE)
                got.append("OK")
            except exceptions.GoogleAPICallError as error:
                got.append(error.grpc_status_code.name if error.grpc_status_code else "UNKNOWN")
    return got


if __name__ == "__main__":
    print(json.dumps(_main(sys.argv[1], json.loads(sys.argv[2]))))

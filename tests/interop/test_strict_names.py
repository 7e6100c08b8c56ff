"""--strict-names: a retail call that names a catalog Google has not is answered as
Google answers it (NOT_FOUND, `catalog_id '...' not found for project`), through the
official client over gRPC (its writes and its operations) and a browser's pixel; the
console and talent calls are not retail and take any name."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from google.api_core import exceptions
from google.cloud import retail_v2

from .support import RPC_DEADLINE, count_events, retail_client, running_server, sqlite_url

GOOGLES = "projects/p/locations/global/catalogs/default_catalog"


@pytest.mark.parametrize(("parent", "said"), [
    ("projects/p/locations/global/catalogs/default_catalg",
     "parent: catalog_id 'default_catalg' not found for project"),
    ("projects/p/locations/us/catalogs/default_catalog",
     "parent: location 'us' not found for project"),
])
def test_a_catalog_google_has_not_is_not_found(tmp_path: Path, parent: str, said: str) -> None:
    store = sqlite_url(tmp_path / "events.db")
    with running_server(tmp_path, store, "--strict-names") as server:
        client = retail_client(server.address)
        event = retail_v2.UserEvent(event_type="home-page-view", visitor_id="v")
        client.write_user_event(request={"parent": GOOGLES, "user_event": event},
                                timeout=RPC_DEADLINE)
        with pytest.raises(exceptions.NotFound) as refused:
            client.write_user_event(request={"parent": parent, "user_event": event},
                                    timeout=RPC_DEADLINE)
        assert said in refused.value.message, refused.value.message
        assert not client.list_operations({"name": GOOGLES}, timeout=RPC_DEADLINE).operations
        with pytest.raises(exceptions.NotFound) as refused:
            client.list_operations({"name": parent}, timeout=RPC_DEADLINE)
        assert said.replace("parent", "name") in refused.value.message, refused.value.message
        pixel = requests.get(f"http://{server.http_address}/v2/{parent}/userEvents:collect",
                             params={"userEvent": '{"eventType": "home-page-view", '
                                                  '"visitorId": "v"}'}, timeout=RPC_DEADLINE)
        assert pixel.status_code == 200 and pixel.content.startswith(b"GIF89a")
        assert pixel.headers["X-Footfall-Error"].startswith("NOT_FOUND: "), pixel.headers
    assert count_events(store, GOOGLES, tmp_path) == 1
    assert count_events(store, parent, tmp_path) == 0

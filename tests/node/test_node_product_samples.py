"""Google's Node.js product and inventory samples, repeated by product_samples.test.js
with the official Node.js client against an in-process server (see
test_node_client.py for how the client is had)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.app import Running, start
from server.config import Settings

from .test_node_client import HERE, NODE_DEADLINE, node  # noqa: F401 (a fixture)

BRANCH = "projects/node-samples/locations/global/catalogs/default_catalog/branches/default_branch"
BUCKET = "node-samples"


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    settings = Settings(port=0, store=f"sqlite:///{tmp_path}/events.db",
                        gcs_root=str(tmp_path / "gcs"), grace_seconds=5, workers=2)
    server = start(settings)
    yield server
    server.stop()


def tutorial_line(product_id: str) -> str:
    """A line of the tutorials' products.json shape (their bare id as the name, quoted
    numbers and booleans, attributes as key/value objects)."""
    return json.dumps({
        "id": product_id, "name": product_id, "title": f"Radio {product_id[-3:]}",
        "brands": ["Footfall"], "categories": ["Audio"],
        "priceInfo": {"currencyCode": "USD", "price": "19", "originalPrice": "25.0"},
        "availability": "IN_STOCK", "availableQuantity": 7,
        "retrievableFields": "name,title,priceInfo,attributes.band",
        "attributes": [{"key": "band", "value": {"indexable": "true", "text": ["FM"]}}]})


def test_googles_node_product_samples(node: str, running: Running,  # noqa: F811
                                      tmp_path: Path) -> None:
    products = tmp_path / "gcs" / BUCKET / "products.json"
    products.parent.mkdir(parents=True)
    products.write_text("".join(f"{tutorial_line(f'NODEGCS00{i}')}\n" for i in (1, 2, 3)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOOTFALL_")}
    env.update(FOOTFALL_GRPC_ADDRESS=f"127.0.0.1:{running.port}", FOOTFALL_BRANCH=BRANCH,
               FOOTFALL_GCS_URI=f"gs://{BUCKET}/products.json",
               METADATA_SERVER_DETECTION="none", NO_COLOR="1")
    run = subprocess.run([node, "--test", str(HERE / "product_samples.test.js")], cwd=HERE,
                         env=env, capture_output=True, text=True, timeout=NODE_DEADLINE)
    assert run.returncode == 0, f"node --test failed ({run.returncode}):\n{run.stdout}\n" \
                                f"{run.stderr}"
    assert "# pass 6" in run.stdout and "# fail 0" in run.stdout, run.stdout

"""What Google's retail product samples share (setup_cleanup's product, their ids,
the names they send and the names Google answers), for the tests that repeat them:
test_google_product_samples.py and test_google_inventory_samples.py."""

from __future__ import annotations

import random
import string

from google.cloud import retail_v2

from .support import RPC_DEADLINE

Client = retail_v2.ProductServiceClient
Product = retail_v2.Product
PICKUP = "pickup-in-store"
INVENTORY_PATHS = ["price_info", "availability", "fulfillment_info", "available_quantity"]


def sample_id() -> str:
    """An id as the Python samples make theirs: 8 distinct lowercase letters."""
    return "".join(random.sample(string.ascii_lowercase, 8))


def default_branch(branch: str) -> str:
    """The samples' parent: the catalog's `branches/default_branch`."""
    return branch.rsplit("/", 1)[0] + "/default_branch"


def branch_0(branch: str) -> str:
    """The default branch as Google names it in answers, and the Java samples in calls."""
    return f"{branch.rsplit('/', 1)[0]}/0"


def stored_as(branch: str, product_id: str) -> str:
    """The name Google answers for a product of the default branch: `branches/0`."""
    return f"{branch_0(branch)}/products/{product_id}"


def setup_product(places: list[str] | None = None) -> Product:
    """setup_cleanup.generate_product's shape: a PRIMARY with a price, one brand, one
    category, IN_STOCK given as the enum's name, pickup-in-store places."""
    price = retail_v2.PriceInfo()
    price.price = 24.0
    price.original_price = 29.5
    price.currency_code = "USD"
    fulfillment = retail_v2.FulfillmentInfo()
    fulfillment.type_ = PICKUP
    fulfillment.place_ids = ["store0", "store1"] if places is None else places
    return Product(title="Desk Lamp", type_=Product.Type.PRIMARY, categories=["Lighting"],
                   brands=["Lumen"], price_info=price,
                   fulfillment_info=[fulfillment] if places != [] else [],
                   availability="IN_STOCK")


def create_as_setup_does(products: Client, parent: str, product_id: str,
                         places: list[str] | None = None) -> Product:
    request = retail_v2.CreateProductRequest()
    request.product = setup_product(places)
    request.product_id = product_id
    request.parent = parent
    return products.create_product(request, timeout=RPC_DEADLINE)


def places(product: Product) -> dict[str, list[str]]:
    return {info.type_: sorted(info.place_ids) for info in product.fulfillment_info}


def node_id() -> str:
    """`Math.random().toString(36).slice(2).toUpperCase()`."""
    return "".join(random.choices(string.ascii_uppercase + string.digits, k=11))

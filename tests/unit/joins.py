"""A write joined by the writer whose row the test says how to make."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from server.store.group_commit import Join


class MadeBy(Join):
    """The Join of `catalog`'s `product_ids`, read with `read`, whose row is
    `made(products)` (`refused`, `size`: see Join)."""

    __slots__ = ("_made",)

    def __init__(self, catalog: str, product_ids: list[str],
                 read: Callable[[str, list[str]], dict[str, Any]],
                 made: Callable[[dict[str, Any]], Any],
                 refused: Callable[[BaseException], None] | None = None, size: int = 0) -> None:
        super().__init__(catalog, product_ids, read, refused, size)
        self._made = made

    def finish(self, products: dict[str, Any]) -> Any:
        return self._made(products)

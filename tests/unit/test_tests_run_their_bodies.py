"""A test that defines a function in its body and never calls it passes without
running it: `async def main(): ...` with its `asyncio.run(main())` lost in a merge
asserts nothing. Every function a test (or helper) defines in its own body must be
named somewhere in that body; methods of a class defined there are the class's.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]

Function = ast.FunctionDef | ast.AsyncFunctionDef


def defined_in(body: list[ast.stmt]) -> Iterator[Function]:
    """The functions a body defines, in its blocks too (if, with, try, for), not those
    of a class it defines."""
    for node in body:
        if isinstance(node, Function):
            yield node
        elif not isinstance(node, ast.ClassDef):
            for block in ("body", "orelse", "finalbody", "handlers"):
                yield from defined_in(getattr(node, block, None) or [])


def never_named(source: str, filename: str) -> list[str]:
    """`file:line name` of each function defined in a function's body and named
    nowhere in it (a decorator may register it: those are left alone)."""
    found = []
    for outer in ast.walk(ast.parse(source, filename)):
        if not isinstance(outer, Function):
            continue
        named = {node.id for node in ast.walk(outer) if isinstance(node, ast.Name)}
        found += [f"{filename}:{inner.lineno} {inner.name}"
                  for inner in defined_in(outer.body)
                  if inner.name not in named and not inner.decorator_list]
    return found


def test_every_function_a_test_defines_is_called() -> None:
    files = sorted(TESTS.rglob("*.py"))
    assert len(files) > 100, "the tests were not found"
    unnamed = [line for path in files
               for line in never_named(path.read_text(), str(path.relative_to(TESTS)))]
    assert not unnamed, "defined in a test and never called:\n" + "\n".join(unnamed)


@pytest.mark.parametrize("source, expected", [
    ("def test():\n    async def main():\n        assert False\n", ["t.py:2 main"]),
    ("def test():\n    if True:\n        def check():\n            pass\n", ["t.py:3 check"]),
    ("def test():\n    async def main():\n        pass\n    asyncio.run(main())\n", []),
    ("def test():\n    class Handler:\n        def do_GET(self):\n            pass\n"
     "    serve(Handler)\n", []),
    ("def test():\n    @app.route('/')\n    def index():\n        pass\n", []),
], ids=["lost-run", "in-a-block", "run", "methods", "registered"])
def test_the_check_finds_what_it_should(source: str, expected: list[str]) -> None:
    assert never_named(source, "t.py") == expected

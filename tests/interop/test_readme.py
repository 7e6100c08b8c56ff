"""Every fenced block of README.md runs as written, so the README cannot rot.

Each block runs on its own (a reader copies one block, not a section): in a fresh
working directory, against a fresh `footfall serve` on free ports, which the
block's `50051` and `8080` are rewritten to. How a block runs follows its
language:

- ```python: the test environment's python (the official clients are there);
- ```sh: bash -e -o pipefail, with `.venv` (this environment) in the working
  directory and *not* on PATH, so commands must be written with their path, and
  with a .curlrc that makes curl fail on an HTTP error (a 404 is no failed call
  in the server's log); a block that starts with `footfall serve` is the server
  itself: it must log its ready line, then it is stopped with SIGTERM;
- ```js / ```javascript: node, with tests/node/node_modules (`@google-cloud/retail`);
- ```html: every `src` is fetched from the server (`https://events.example.com`
  stands for it) and must answer 200 without `X-Footfall-Error`;
- ```json: must parse.

A block passes when it exits 0 and its server logged no failed call (the
server logs every call that is not OK). HTML comments on the lines right above
a fence say more:

    <!-- not-run: why -->        the block cannot run by nature (reported as skipped)
    <!-- file: keys.json -->     the block is a file: it is written into the working
                                 directory of every later block; a later `serve:`
                                 must use it
    <!-- serve: FLAGS -->        extra flags for this block's server
    <!-- expect: CODE ... -->    failed calls the block makes on purpose (each must occur)

Every block's working directory also holds `ca.pem` and, for `serve: --tls-cert
cert.pem --tls-key key.pem`, a certificate for localhost that CA signed.
Any other language, or an unknown comment, fails: a new block runs or says why not.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from .support import READY, RPC_DEADLINE, START_DEADLINE, STOP_GRACE, ServerProcess
from .trust import make_certificates

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
NODE_MODULES = ROOT / "tests" / "node" / "node_modules"
STORE = "sqlite:///./data/footfall.db"  # the default, so `footfall events` blocks find it
BLOCK_DEADLINE = 90.0  # seconds one block may run (a cold start of the clients included)
GRPC_PORT, HTTP_PORT = "50051", "8080"  # what the README writes; rewritten to free ports
DOCUMENTED_HOST = "https://events.example.com"  # the server, in HTML snippets
MARKS = ("not-run", "file", "serve", "expect")
# `footfall serve ...`, `.venv/bin/footfall serve`, `python -m server serve`
SERVE_COMMAND = re.compile(r"^\S*(footfall|python\S*\s+-m\s+server)\s+serve\b")
FAILED_CALL = re.compile(r"\bcall method=\S+ transport=\S+ code=(?P<code>[A-Z_]+)")

pytestmark = pytest.mark.timeout(BLOCK_DEADLINE + START_DEADLINE + 2 * STOP_GRACE)


@dataclass(frozen=True)
class Block:
    """One fenced block of the README."""

    line: int  # of the opening fence, 1-based
    lang: str  # first word of the info string, lower case; "" when none
    text: str
    section: str  # the heading above it
    marks: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()  # malformed comments above it

    @property
    def id(self) -> str:
        return f"README.md:{self.line}-{self.lang or 'plain'}"


_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
_HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*\s*$")
_MARK = re.compile(r"^<!--\s*(?P<key>[a-z-]+):\s*(?P<value>.*?)\s*-->$")


def _marks(comments: list[str]) -> tuple[dict[str, str], tuple[str, ...]]:
    marks: dict[str, str] = {}
    problems = []
    for comment in comments:
        found = _MARK.match(comment)
        if found is None or found["key"] not in MARKS:
            known = ", ".join(f"<!-- {key}: ... -->" for key in MARKS)
            problems.append(f"{comment!r} is none of {known}")
        elif found["key"] in marks:
            problems.append(f"{found['key']} given twice")
        elif not found["value"]:
            problems.append(f"{found['key']} needs a value (not-run: say why)")
        else:
            marks[found["key"]] = found["value"]
    if "not-run" in marks and len(marks) > 1:
        problems.append("not-run goes alone")
    return marks, tuple(problems)


def parse(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, with the comments right above each."""
    lines = text.splitlines()
    blocks = []
    section = "(top)"
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            heading = _HEADING.match(lines[i])
            section = heading["title"] if heading else section
            i += 1
            continue
        fence = opening["fence"]
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = i + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        above = i
        while above > 0 and lines[above - 1].strip().startswith("<!--"):
            above -= 1
        marks, problems = _marks([line.strip() for line in lines[above:i]])
        info = opening["info"].split()
        blocks.append(Block(line=i + 1, lang=info[0].lower() if info else "",
                            text="".join(f"{line}\n" for line in lines[i + 1:end]),
                            section=section, marks=marks, problems=problems))
        i = end + 1
    return blocks


BLOCKS = parse(README.read_text(encoding="utf-8"))


# -- where and how a block runs ---------------------------------------------------------


def block_env(**extra: str) -> dict[str, str]:
    """The caller's environment as a reader's shell would have it: no FOOTFALL_*
    settings, no activated venv (its bin is taken off PATH)."""
    venv_bin = Path(sys.executable).parent.resolve()
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep)
            if p and Path(p).resolve() != venv_bin]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FOOTFALL_") and k != "VIRTUAL_ENV"}
    env["PATH"] = os.pathsep.join(path)
    env.update(extra)
    return env


def substitute(text: str, grpc_port: str, http_port: str) -> str:
    text = re.sub(rf"(?<![\d.]){GRPC_PORT}(?!\d)", grpc_port, text)
    return re.sub(rf"(?<![\d.]){HTTP_PORT}(?!\d)", http_port, text)


def run_program(command: list[str], workdir: Path, env: dict[str, str]) -> None:
    """Runs a block's program to completion; fails showing its output unless it exits 0."""
    try:
        done = subprocess.run(command, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=BLOCK_DEADLINE)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{command} ran over {BLOCK_DEADLINE}s:\n{exc.stdout!r}\n{exc.stderr!r}")
    assert done.returncode == 0, (f"{command} exited {done.returncode}:\n"
                                  f"{done.stdout}\n{done.stderr}")


def check_calls(block: Block, server: ServerProcess) -> None:
    """The server logged failed calls only of the codes the block expects, each of them."""
    failed = [(m["code"], line.strip()) for line in server.log
              if (m := FAILED_CALL.search(line)) and m["code"] != "OK"]
    expected = set(block.marks.get("expect", "").replace(",", " ").split())
    unexpected = [line for code, line in failed if code not in expected]
    assert not unexpected, "the server logged failed calls:\n" + "\n".join(unexpected)
    missing = expected - {code for code, _ in failed}
    assert not missing, f"expected failed calls {sorted(missing)} never happened"


def against_server(block: Block, workdir: Path,
                   run: Callable[[str, ServerProcess], None]) -> None:
    """`run(source, server)` with the block's ports rewritten to a fresh server's,
    which is stopped afterwards; then the server's log is checked."""
    server = ServerProcess(workdir, STORE, shlex.split(block.marks.get("serve", "")))
    try:
        run(substitute(block.text, str(server.port), str(server.http_port)), server)
    finally:
        code = server.stop()
    assert code == 0, f"the server did not stop cleanly ({code}):\n{server.log_text()}"
    check_calls(block, server)


def run_python(block: Block, workdir: Path) -> None:
    def run(source: str, _: ServerProcess) -> None:
        (workdir / "block.py").write_text(source, encoding="utf-8")
        run_program([sys.executable, "block.py"], workdir, block_env())

    against_server(block, workdir, run)


def run_shell(block: Block, workdir: Path) -> None:
    first = next((line.strip() for line in block.text.splitlines()
                  if line.strip() and not line.lstrip().startswith("#")), "")
    if SERVE_COMMAND.match(first):
        serve_block(block, workdir)
        return

    def run(source: str, _: ServerProcess) -> None:
        (workdir / "block.sh").write_text(source, encoding="utf-8")
        (workdir / ".curlrc").write_text("fail-with-body\n", encoding="utf-8")
        run_program(["bash", "-e", "-o", "pipefail", "block.sh"], workdir,
                    block_env(CURL_HOME=str(workdir)))

    against_server(block, workdir, run)


def serve_block(block: Block, workdir: Path) -> None:
    """The block starts the server: it must become ready (on free ports: the gRPC
    port written as 50051 becomes 0, the HTTP port -1, and a block that names no
    port takes the same from the environment, not the defaults, which another
    server on the machine may hold) and stop on SIGTERM."""
    (workdir / "block.sh").write_text(substitute(block.text, "0", "-1"), encoding="utf-8")
    proc = subprocess.Popen(["bash", "-e", "-o", "pipefail", "block.sh"], cwd=workdir,
                            env=block_env(FOOTFALL_PORT="0", FOOTFALL_HTTP_PORT="-1"),
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
    output: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)  # every process of the group has closed the pipe

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        end = time.monotonic() + START_DEADLINE
        while not any(READY.search(line) for line in output):
            line = lines.get(timeout=max(end - time.monotonic(), 0.01))
            assert line is not None, f"the block ended before serving:\n{''.join(output)}"
            output.append(line)
    except queue.Empty:
        pytest.fail(f"no ready line within {START_DEADLINE}s:\n{''.join(output)}")
    finally:
        with contextlib.suppress(ProcessLookupError):  # the group may be gone already
            os.killpg(proc.pid, signal.SIGTERM)
        reader.join(timeout=STOP_GRACE)
        stopped = not reader.is_alive()
        if not stopped:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            reader.join(timeout=STOP_GRACE)
        proc.wait(timeout=STOP_GRACE)
    assert stopped, f"the server did not stop within {STOP_GRACE}s of SIGTERM"


def run_node(block: Block, workdir: Path) -> None:
    node = shutil.which("node")
    if node is None or not (NODE_MODULES / "@google-cloud" / "retail").is_dir():
        pytest.skip("NODE BLOCK SKIPPED: node or tests/node/node_modules is missing "
                    "(`make test` installs them)")

    def run(source: str, _: ServerProcess) -> None:
        (workdir / "block.js").write_text(source, encoding="utf-8")
        run_program([node, "block.js"], workdir, block_env(NODE_PATH=str(NODE_MODULES)))

    against_server(block, workdir, run)


def run_html(block: Block, workdir: Path) -> None:
    def run(source: str, server: ServerProcess) -> None:
        sources = [html.unescape(src) for src in re.findall(r'\bsrc="([^"]*)"', source)]
        assert sources, "an HTML block with nothing to fetch: mark it <!-- not-run: why -->"
        for src in sources:
            assert src.startswith(DOCUMENTED_HOST + "/"), f"{src} is not on {DOCUMENTED_HOST}"
            url = f"http://{server.http_address}{src[len(DOCUMENTED_HOST):]}"
            answer = requests.get(url, timeout=RPC_DEADLINE)
            assert answer.status_code == 200, (url, answer.status_code, answer.text[:500])
            assert "X-Footfall-Error" not in answer.headers, answer.headers["X-Footfall-Error"]

    against_server(block, workdir, run)


def check_json(block: Block, _: Path) -> None:
    json.loads(block.text)


RUNNERS: dict[str, Callable[[Block, Path], None]] = {
    "python": run_python, "py": run_python, "sh": run_shell, "bash": run_shell,
    "shell": run_shell, "js": run_node, "javascript": run_node, "html": run_html,
    "json": check_json}


# -- the tests ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.pem, and cert.pem / key.pem for localhost signed by it."""
    folder = tmp_path_factory.mktemp("readme-certs")
    made = make_certificates(folder)
    made.cert.rename(folder / "cert.pem")
    made.key.rename(folder / "key.pem")
    return folder


def prepare(block: Block, workdir: Path, certificates: Path) -> None:
    """The block's working directory: `.venv` (this environment), the files of the
    `file:` blocks above it, the certificates."""
    (workdir / ".venv").symlink_to(Path(sys.executable).parent.parent)
    for earlier in BLOCKS:
        if earlier.line < block.line and "file" in earlier.marks:
            (workdir / earlier.marks["file"]).write_text(earlier.text, encoding="utf-8")
    for pem in certificates.iterdir():
        shutil.copy(pem, workdir / pem.name)


def _param(block: Block) -> object:
    why = block.marks.get("not-run")
    skip = why and not block.problems  # a malformed mark fails instead
    marks = [pytest.mark.skip(reason=f"{block.id} not-run: {why}")] if skip else []
    return pytest.param(block, id=block.id, marks=marks)


@pytest.mark.parametrize("block", [_param(block) for block in BLOCKS])
def test_readme_block_runs(block: Block, tmp_path: Path, certificate_folder: Path) -> None:
    assert not block.problems, f"{block.id} ({block.section}): {'; '.join(block.problems)}"
    if "file" in block.marks:
        name = block.marks["file"]
        users = [b.id for b in BLOCKS
                 if b.line > block.line and name in shlex.split(b.marks.get("serve", ""))]
        assert users, f"{block.id}: no later block's <!-- serve: ... --> uses {name}"
        if name.endswith(".json"):
            json.loads(block.text)
        return
    runner = RUNNERS.get(block.lang)
    assert runner is not None, (f"{block.id} ({block.section}): a ```{block.lang} block cannot "
                                "be run; mark it <!-- not-run: why --> or <!-- file: NAME -->")
    prepare(block, tmp_path, certificate_folder)
    runner(block, tmp_path)


def test_the_readme_has_blocks_and_most_of_them_run() -> None:
    """Guards the check itself: a parser that stopped seeing fences, or a README
    that marked its way out, would pass above."""
    languages = {block.lang for block in BLOCKS if "not-run" not in block.marks}
    assert {"python", "sh", "js", "html", "json"} <= languages, languages
    skipped = [block for block in BLOCKS if "not-run" in block.marks]
    assert len(skipped) < len(BLOCKS) / 3, [block.id for block in skipped]


SAMPLE = """# Title
<!-- not-run: needs a database -->
```sh
psql
```
## Section
<!-- file: a.json -->
<!-- serve: --auth-file a.json -->
~~~json
{"a": 1}
~~~
<!-- skip -->
```
text
```
"""


def test_the_parser_reads_fences_marks_and_sections() -> None:
    first, second, third = parse(SAMPLE)
    assert (first.line, first.lang, first.text, first.section, first.marks) == \
        (3, "sh", "psql\n", "Title", {"not-run": "needs a database"})
    assert (second.lang, second.text, second.section) == ("json", '{"a": 1}\n', "Section")
    assert second.marks == {"file": "a.json", "serve": "--auth-file a.json"}
    assert third.lang == "" and third.problems and not third.marks


def test_ports_are_rewritten_only_where_they_are_ports() -> None:
    assert substitute("localhost:50051 and http://localhost:8080/v2 and 180805", "1", "2") == \
        "localhost:1 and http://localhost:2/v2 and 180805"

"""Sending hostile HTTP requests to a real process, and what the fuzz tests need for it.

Requests are written on raw sockets (one connection each), so that a lying
Content-Length, a broken chunked body or a header no client library would send reaches
the server as the attacker wrote it. A run records every answer's status, stops at the
first process death or request left unanswered, and says which inputs were in flight.

The seed corpus (tests/adversarial/corpus/<target>/<route>/) holds one file per
hand-crafted input, named by what it is; every file is sent on every run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import struct
import subprocess
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"
ANSWER_WAIT_S = 120  # a request unanswered this long means a stalled server, not a slow one
PROBE_EVERY = 250  # inputs between checks that the process is alive
BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


@dataclass(frozen=True)
class Probe:
    """One hostile HTTP request: the route it aims at, what it is, and its bytes."""

    route: str  # "POST /v1/verifications": the route it is counted against
    name: str
    request: bytes
    well_formed: bool = True  # an ill-formed request may be dropped without an answer


def http_request(
    method: str,
    path: str,
    body: bytes = b"",
    headers: Sequence[tuple[str, str]] = (),
    *,
    content_length: bool = True,
) -> bytes:
    """The bytes of an HTTP/1.1 request (headers given as latin-1 text)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    if content_length and not any(
        n.lower() in {"content-length", "transfer-encoding"} for n, _ in headers
    ):
        lines.append(f"Content-Length: {len(body)}")
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


def json_probe(route: str, name: str, path: str, body: bytes, *headers: tuple[str, str]) -> Probe:
    """A POST of `body` as application/json (unless `headers` set another type)."""
    sent = list(headers) or [("Content-Type", "application/json")]
    return Probe(route, name, http_request("POST", path, body, sent))


# ---- sending -------------------------------------------------------------------------


@dataclass
class Run:
    """What a fuzz run saw."""

    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    by_route: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    death: str | None = None
    stall: str | None = None
    seconds: float = 0.0
    slowest: list[tuple[float, str]] = field(default_factory=list)

    def summary(self) -> str:
        rate = self.sent / self.seconds if self.seconds else 0.0
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        routes = "\n".join(f"  {r:42} {n:6}" for r, n in sorted(self.by_route.items()))
        slow = ", ".join(f"{name} {seconds:.2f} s" for seconds, name in self.slowest)
        return (
            f"{self.sent} inputs in {self.seconds:.1f} s ({rate:.0f} inputs/s); "
            f"statuses {{{statuses}}} (0: closed without an answer)\n{routes}\n"
            f"slowest answers: {slow}"
        )


async def _send_one(port: int, probe: Probe) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        try:
            writer.write(probe.request)
            await writer.drain()
            # A request whose framing lies would keep the server waiting for bytes that
            # never come: the end of input tells it there are none. (A well-formed one is
            # left open: uvicorn takes the end of input for a client gone away.)
            if not probe.well_formed and writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            pass  # the server may answer (413) and close before the whole body is sent
        try:
            head = await reader.readuntil(b"\r\n")
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            return 0
        parts = head.split(b" ", 2)
        try:
            return int(parts[1])
        except (IndexError, ValueError):
            return 0
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def _run(
    port: int, process: subprocess.Popen[bytes], probes: Sequence[Probe], run: Run, concurrency: int
) -> None:
    queue = list(enumerate(probes))
    queue.reverse()
    in_flight: dict[int, Probe] = {}
    stop = asyncio.Event()

    async def worker() -> None:
        while queue and not stop.is_set():
            number, probe = queue.pop()
            in_flight[number] = probe
            began = time.perf_counter()
            try:
                status = await asyncio.wait_for(_send_one(port, probe), ANSWER_WAIT_S)
            except TimeoutError:
                run.stall = f"no answer within {ANSWER_WAIT_S} s to {probe.route} {probe.name!r}"
                stop.set()
                return
            except (ConnectionError, OSError) as exc:
                status = 0
                if process.poll() is not None:
                    names = ", ".join(f"{p.route} {p.name!r}" for p in in_flight.values())
                    run.death = f"exit code {process.returncode} while sending: {names} ({exc})"
                    stop.set()
                    return
            finally:
                in_flight.pop(number, None)
            run.slowest = sorted(
                [*run.slowest, (time.perf_counter() - began, f"{probe.route} {probe.name}")],
                reverse=True,
            )[:5]
            run.sent += 1
            run.statuses[status] += 1
            run.by_route[probe.route] += 1
            if status >= 500:
                run.server_errors.append(f"{status} {probe.route} {probe.name}")
            if status == 0 and probe.well_formed:
                run.unanswered.append(f"{probe.route} {probe.name}")
            if run.sent % PROBE_EVERY == 0 and process.poll() is not None:
                run.death = f"exit code {process.returncode} after input {run.sent} ({probe.name})"
                stop.set()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def send(
    port: int,
    process: subprocess.Popen[bytes],
    probes: Sequence[Probe],
    *,
    concurrency: int = 8,
    run: Run | None = None,
) -> Run:
    """Send every probe (`concurrency` at once); stop at a process death or a stall."""
    run = run or Run()
    started = time.perf_counter()
    asyncio.run(_run(port, process, probes, run, concurrency))
    run.seconds += time.perf_counter() - started
    if run.death is None and process.poll() is not None:
        run.death = f"exit code {process.returncode} by the end of the run"
    return run


def send_corpus(
    port: int, process: subprocess.Popen[bytes], probes: Sequence[Probe], run: Run
) -> Run:
    """Corpus files one at a time, so a death or a stall names its input."""
    return send(port, process, probes, concurrency=1, run=run)


def fuzz_and_check(
    what: str,
    port: int,
    process: subprocess.Popen[bytes],
    probes: Sequence[Probe],
    corpus: Sequence[Probe],
    routes: Iterable[str],
    *,
    concurrency: int = 8,
    rss_growth_mb: float,
    peak_mb: float,
) -> None:
    """Send the generated probes, then the corpus, to the process serving `what`, and
    assert what the standing suite promises: no death, no stall, no answer >= 500, every
    route reached, every well-formed request answered, memory bounded."""
    before, _ = memory_mb(process.pid)
    run = send(port, process, probes, concurrency=concurrency)
    if run.death is None and run.stall is None:
        send_corpus(port, process, corpus, run)
    alive = process.poll() is None
    after, peak = memory_mb(process.pid) if alive else (0.0, 0.0)
    print(
        f"\n{what} fuzz: {run.summary()}\nRSS {before:.0f} MB -> {after:.0f} MB, peak {peak:.0f} MB"
    )

    assert run.death is None, f"the {what} died: {run.death}\n{run.summary()}"
    assert run.stall is None, run.stall
    assert run.server_errors == [], f"{len(run.server_errors)} answers >= 500:\n" + "\n".join(
        sorted(set(run.server_errors))[:50]
    )
    assert run.sent >= len(probes) + len(corpus)
    assert all_covered(routes, run) == []
    assert run.unanswered == [], "well-formed requests closed without an answer:\n" + "\n".join(
        sorted(set(run.unanswered))[:30]
    )
    assert after - before < rss_growth_mb, f"RSS grew from {before:.0f} MB to {after:.0f} MB"
    assert peak < peak_mb, f"peak RSS {peak:.0f} MB"


# ---- process memory -------------------------------------------------------------------


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _tree(pid: int) -> list[int]:
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for child in children:
            pids += _tree(int(child))
    return pids


def memory_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) in MB of a process and its children."""
    pids = _tree(pid)
    return (
        sum(_status_kb(p, "VmRSS") for p in pids) / 1024,
        sum(_status_kb(p, "VmHWM") for p in pids) / 1024,
    )


# ---- the corpus -----------------------------------------------------------------------


def corpus_files(target: str) -> list[Path]:
    """Every corpus file of a target, in a fixed order: inputs that stall a server when
    the fix is missing ("stall-*") last, so that they do not hide the others."""
    files = [p for p in (CORPUS / target).rglob("*") if p.is_file()]
    return sorted(files, key=lambda p: (p.name.startswith("stall-"), str(p)))


def route_of_folder(folder: str) -> str:
    """Corpus folder name -> route: "POST__v1_verifications" -> "POST /v1/verifications"."""
    method, _, path = folder.partition("__")
    return f"{method} /{path.replace('_', '/')}" if path else f"{method} /"


# ---- hostile values -------------------------------------------------------------------


def deep(depth: int, kind: str = "[") -> bytes:
    """A JSON text nested `depth` deep (arrays or objects)."""
    if kind == "[":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


@lru_cache(maxsize=64)
def png(
    width: int, height: int, rows: bytes | None = None, *, bit_depth: int = 8, colour: int = 0
) -> bytes:
    """A PNG whose header declares width x height; `rows` (filtered scanlines) defaults to
    all-zero rows, deflated (a small file for a big picture). Kept once made: deflating
    a picture of megapixels takes longer than sending it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    if rows is None:
        row = b"\x00" + b"\x00" * ((width * bit_depth + 7) // 8)
        compressor = zlib.compressobj(9)
        data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    else:
        data = zlib.compress(rows, 9)
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def multipart(parts: Iterable[tuple[str, bytes]], boundary: str = "fuzzboundary") -> bytes:
    """A multipart/form-data body of raw parts (each its header block and its content)."""
    out = b""
    for head, content in parts:
        out += f"--{boundary}\r\n{head}\r\n\r\n".encode("latin-1") + content + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def image_part(data: bytes, filename: str = "qr.png", kind: str = "image/png") -> tuple[str, bytes]:
    return (
        f'Content-Disposition: form-data; name="image"; filename="{filename}"\r\n'
        f"Content-Type: {kind}",
        data,
    )


def field_part(name: str, data: bytes, charset: str | None = None) -> tuple[str, bytes]:
    kind = f"\r\nContent-Type: text/plain; charset={charset}" if charset else ""
    return (f'Content-Disposition: form-data; name="{name}"{kind}', data)


class Values:
    """Seeded hostile JSON values."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def string(self) -> str:
        rng = self.rng
        # Only the chosen value is built: building them all took most of a run's time.
        makers: list[Callable[[], str]] = [
            lambda: "",
            lambda: "x" * rng.choice([1, 100, 5000, 70_000]),
            lambda: "\ud800",
            lambda: "a\udfffb",
            lambda: "\x00\x01\x1b[2J",
            lambda: "审批-2026-" + "号" * rng.randint(1, 400),
            lambda: "+2AA-",
            lambda: "\u202e\u200b\ufeff",
            lambda: "EL1:" + "".join(rng.choices(BASE45, k=rng.randint(0, 4400))),
            lambda: "𠮷" * rng.randint(1, 300),
        ]
        return rng.choice(makers)()

    def number(self) -> str:
        rng = self.rng
        makers: list[Callable[[], str]] = [
            lambda: "9" * rng.choice([20, 400, 4300, 5000, 20_000]),
            lambda: "-0",
            lambda: "1e999999",
            lambda: "1" + "0" * 400 + ".5e-99999",
            lambda: "0." + "0" * 5000 + "1",
            lambda: str(rng.randint(-(2**70), 2**70)),
            lambda: "NaN",
            lambda: "Infinity",
        ]
        return rng.choice(makers)()

    def value(self, depth: int = 0) -> str:
        """The JSON text of a random value (sometimes not valid JSON at all)."""
        rng = self.rng
        pick = rng.random()
        if depth > 4 or pick < 0.3:
            return rng.choice(
                [
                    json.dumps(self.string()),
                    self.number(),
                    "true",
                    "null",
                    '"\\ud800"',
                    '"\\udc00\\ud800"',
                ]
            )
        if pick < 0.55:
            return "[" + ",".join(self.value(depth + 1) for _ in range(rng.randint(0, 5))) + "]"
        if pick < 0.8:
            members = [(self.key(), self.value(depth + 1)) for _ in range(rng.randint(0, 5))]
            return "{" + ",".join(f"{k}:{v}" for k, v in members) + "}"
        if pick < 0.9 or depth:
            return deep(rng.choice([10, 100, 1000, 3000]), rng.choice("[{")).decode()
        return "[" + "0," * rng.choice([1000, 50_000]) + "0]"  # long, at the top only

    def key(self) -> str:
        return self.rng.choice(
            [
                '"qr"',
                '"document"',
                '"purpose"',
                '"items"',
                '"requiredTypes"',
                '"sameHolder"',
                '"\\ud800"',
                '"x"',
                '""',
                '"__proto__"',
            ]
        )


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """A copy of `data` with a few random byte edits (flip, cut, insert, duplicate)."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not out:
            break
        kind = rng.random()
        at = rng.randrange(len(out))
        if kind < 0.4:
            out[at] ^= 1 << rng.randrange(8)
        elif kind < 0.6:
            del out[at:]
        elif kind < 0.8:
            out[at:at] = rng.randbytes(rng.randint(1, 16))
        else:
            out[at:at] = out[at : at + rng.randint(1, 64)]
    return bytes(out)


def all_covered(routes: Iterable[str], run: Run) -> list[str]:
    """The routes no input of the run was counted against."""
    return sorted(r for r in routes if run.by_route[r] == 0)


def weighted(
    rng: random.Random, makers: Sequence[tuple[float, Callable[[], Probe]]], count: int
) -> list[Probe]:
    """`count` probes, each from a maker drawn by weight."""
    weights = [w for w, _ in makers]
    chosen = rng.choices([m for _, m in makers], weights, k=count)
    return [make() for make in chosen]

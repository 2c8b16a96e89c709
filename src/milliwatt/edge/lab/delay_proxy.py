"""A TCP proxy that delays every byte by a fixed one-way time in each direction.

Each direction of a connection is two tasks: one reads chunks and stamps each with the
time it may leave (arrival + one-way delay), the other writes them out when that time
comes. Reading never waits for the delay, so a stream of chunks is delayed as a whole by
the one-way time, not by it once per chunk, and a round trip through the proxy costs
2 x one-way. Chunks leave in the order they came, jitter or not.

The proxy ends TCP itself, so the client's handshake with it is instant. A real path's
handshake costs one round trip before the first byte can be sent; the first bytes from the
client therefore leave no earlier than accept + 3 x one-way (SYN, SYN-ACK, then the data),
when `handshake` is on (the default). A connection kept alive pays this once.

    python -m milliwatt.edge.lab.delay_proxy \\
        --route listen=10.200.0.1:8001,target=10.200.1.2:8000,one_way_ms=3.8

prints `ready LISTEN ...` (the bound addresses) once it accepts, and runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import random
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from milliwatt.errors import InvalidRequestError

CHUNK = 65_536
QUEUED_CHUNKS = 256  # per direction: up to 16 MiB in flight before the reader waits


@dataclass(frozen=True)
class Route:
    """Connections to listen_host:listen_port go on to target_host:target_port, each byte
    delayed by one_way_ms plus a uniform draw from [0, jitter_ms] in each direction."""

    listen_host: str
    listen_port: int
    target_host: str
    target_port: int
    one_way_ms: float
    jitter_ms: float = 0.0

    def __post_init__(self) -> None:
        if not (self.one_way_ms >= 0 and self.jitter_ms >= 0):
            raise InvalidRequestError(
                f"route to {self.target_host}:{self.target_port}: delays must be >= 0 ms, "
                f"got one_way_ms={self.one_way_ms} jitter_ms={self.jitter_ms}"
            )
        for name, port in (("listen", self.listen_port), ("target", self.target_port)):
            if not 0 <= port <= 65535:
                raise InvalidRequestError(f"route: {name} port {port} is outside [0, 65535]")


class DelayProxy:
    """Serves its routes while `async with` lasts; `bound` holds each listener's address."""

    def __init__(
        self, routes: Sequence[Route], *, handshake: bool = True, seed: int | None = None
    ) -> None:
        self.routes = list(routes)
        self.handshake = handshake
        self._random = random.Random(seed)
        self._servers: list[asyncio.Server] = []
        self._connections: set[asyncio.Task[None]] = set()
        self.bound: list[tuple[str, int]] = []

    async def __aenter__(self) -> DelayProxy:
        try:
            for route in self.routes:
                server = await asyncio.start_server(
                    functools.partial(self._accepted, route),
                    route.listen_host,
                    route.listen_port,
                )
                self._servers.append(server)
                host, port = server.sockets[0].getsockname()[:2]
                self.bound.append((str(host), int(port)))
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()

    def _accepted(
        self, route: Route, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.create_task(self._serve(route, reader, writer))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    def _delay_s(self, route: Route) -> float:
        jitter = self._random.uniform(0, route.jitter_ms) if route.jitter_ms else 0.0
        return (route.one_way_ms + jitter) / 1000

    async def _serve(
        self, route: Route, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        loop = asyncio.get_running_loop()
        first_byte_at = loop.time() + 3 * route.one_way_ms / 1000 if self.handshake else 0.0
        try:
            server_in, server_out = await asyncio.open_connection(
                route.target_host, route.target_port
            )
        except OSError:
            client_out.close()  # the client sees the connection end, as with a refused one
            return
        directions = [
            asyncio.create_task(self._direction(route, client_in, server_out, first_byte_at)),
            asyncio.create_task(self._direction(route, server_in, client_out, 0.0)),
        ]
        try:
            await asyncio.gather(*directions)
        except OSError:
            pass  # a reset on either side ends both
        finally:
            for task in directions:
                task.cancel()
            await asyncio.gather(*directions, return_exceptions=True)
            for writer in (client_out, server_out):
                writer.close()
            for writer in (client_out, server_out):
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    async def _direction(
        self,
        route: Route,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        not_before: float,
    ) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(QUEUED_CHUNKS)

        async def stamp() -> None:
            last = not_before
            while True:
                data = await source.read(CHUNK)
                # never before an earlier chunk: jitter must not reorder the stream
                last = max(loop.time() + self._delay_s(route), last)
                await queue.put((last, data))
                if not data:  # end of stream, delayed like the bytes before it
                    return

        async def release() -> None:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if sink.can_write_eof():
                        sink.write_eof()
                    return
                sink.write(data)
                await sink.drain()

        reader = asyncio.create_task(stamp())
        try:
            await release()
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


def parse_route(text: str) -> Route:
    """`listen=HOST:PORT,target=HOST:PORT,one_way_ms=X[,jitter_ms=Y]`."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not value.strip():
            raise InvalidRequestError(f"route {text!r}: {part!r} is not KEY=VALUE")
        fields[key.strip()] = value.strip()
    unknown = set(fields) - {"listen", "target", "one_way_ms", "jitter_ms"}
    missing = {"listen", "target", "one_way_ms"} - set(fields)
    if unknown or missing:
        problem = f"unknown {sorted(unknown)}" if unknown else f"missing {sorted(missing)}"
        raise InvalidRequestError(f"route {text!r}: {problem}")
    listen_host, listen_port = _address(text, fields["listen"])
    target_host, target_port = _address(text, fields["target"])
    return Route(
        listen_host,
        listen_port,
        target_host,
        target_port,
        _number(text, "one_way_ms", fields["one_way_ms"]),
        _number(text, "jitter_ms", fields.get("jitter_ms", "0")),
    )


def _address(route: str, text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise InvalidRequestError(f"route {route!r}: {text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def _number(route: str, name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidRequestError(f"route {route!r}: {name} {text!r} is not a number") from None


async def serve(routes: Sequence[Route], handshake: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with DelayProxy(routes, handshake=handshake) as proxy:
        print("ready", *(f"{host}:{port}" for host, port in proxy.bound), flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--route", action="append", required=True, help=parse_route.__doc__)
    parser.add_argument(
        "--no-handshake", dest="handshake", action="store_false", help="new connections free"
    )
    args = parser.parse_args(argv)
    try:
        routes = [parse_route(text) for text in args.route]
    except InvalidRequestError as error:
        parser.error(str(error))
    try:
        asyncio.run(serve(routes, args.handshake))
    except OSError as error:  # the listen address taken or not ours
        print(f"delay proxy: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

"""The delay proxy on loopback: a configured round trip is what a ping through it costs,
and what goes through comes out whole and in order."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from milliwatt.edge.lab.delay_proxy import DelayProxy, Route, parse_route
from milliwatt.errors import InvalidRequestError


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def with_proxy(one_way_ms: float, jitter_ms: float, body):  # type: ignore[no-untyped-def]
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    route = Route("127.0.0.1", 0, "127.0.0.1", port, one_way_ms, jitter_ms)
    async with server, DelayProxy([route], seed=7) as proxy:
        reader, writer = await asyncio.open_connection(*proxy.bound[0])
        try:
            return await body(reader, writer)
        finally:
            writer.close()


async def pings(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> list[float]:
    times = []
    for _ in range(8):
        started = time.perf_counter()
        writer.write(b"x")
        await writer.drain()
        assert await reader.readexactly(1) == b"x"
        times.append((time.perf_counter() - started) * 1000)
    return times


def test_a_ping_costs_the_configured_round_trip() -> None:
    times = asyncio.run(with_proxy(20.0, 0.0, pings))
    # the first ping waits for the emulated handshake as well: 4 x one-way
    assert times[0] >= 78
    assert 40 <= min(times[1:]) <= 48


def test_no_delay_is_near_zero() -> None:
    times = asyncio.run(with_proxy(0.0, 0.0, pings))
    assert min(times) < 5


def test_a_large_transfer_arrives_whole_and_in_order() -> None:
    payload = os.urandom(8 * 1024 * 1024)

    async def transfer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
        async def send() -> None:
            for start in range(0, len(payload), 100_000):  # uneven pieces against 64 KiB reads
                writer.write(payload[start : start + 100_000])
                await writer.drain()
            writer.write_eof()

        sender = asyncio.create_task(send())
        received = await reader.read(-1)  # to the end: the proxy passes the half-close on
        await sender
        return received

    assert asyncio.run(with_proxy(5.0, 0.0, transfer)) == payload


def test_jitter_never_reorders_the_stream() -> None:
    messages = [f"{i:05d};".encode() for i in range(400)]

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
        for message in messages:  # one small write each: many chunks, each with its own jitter
            writer.write(message)
            await writer.drain()
            await asyncio.sleep(0.0005)
        writer.write_eof()
        return await reader.read(-1)

    assert asyncio.run(with_proxy(2.0, 8.0, trickle)) == b"".join(messages)


def test_a_refused_target_closes_the_client() -> None:
    async def main() -> bytes:
        probe = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = probe.sockets[0].getsockname()[1]
        probe.close()
        await probe.wait_closed()  # nobody listens on `port` now
        async with DelayProxy([Route("127.0.0.1", 0, "127.0.0.1", port, 1.0)]) as proxy:
            reader, writer = await asyncio.open_connection(*proxy.bound[0])
            data = await asyncio.wait_for(reader.read(-1), 5)
            writer.close()
            return data

    assert asyncio.run(main()) == b""


def test_routes_parse_and_bad_ones_say_what_is_wrong() -> None:
    route = parse_route("listen=10.0.0.1:8001,target=10.0.1.2:8000,one_way_ms=3.5,jitter_ms=1")
    assert route == Route("10.0.0.1", 8001, "10.0.1.2", 8000, 3.5, 1.0)
    for text, words in [
        ("listen=10.0.0.1:8001,target=10.0.1.2:8000", "missing ['one_way_ms']"),
        ("listen=10.0.0.1,target=10.0.1.2:8000,one_way_ms=1", "'10.0.0.1' is not HOST:PORT"),
        ("listen=a:1,target=b:2,one_way_ms=fast", "one_way_ms 'fast' is not a number"),
        ("listen=a:1,target=b:2,one_way_ms=-1", "delays must be >= 0 ms"),
        ("listen=a:1,target=b:2,one_way_ms=1,colour=red", "unknown ['colour']"),
    ]:
        with pytest.raises(InvalidRequestError, match=words.replace("[", r"\[")):
            parse_route(text)

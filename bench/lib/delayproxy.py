#!/usr/bin/env python3
"""delayproxy: a TCP proxy on loopback that adds one-way latency, for the DR
drill benchmark (bench/dr-drill.sh).

    delayproxy.py --listen 127.0.0.1:PORT --target 127.0.0.1:PORT2
                  --delay-ms N [--pidfile FILE]

Unlike tests/faultproxy.py it does not parse HTTP, so TLS passes through it
unchanged: both tools talk to the same HTTPS endpoint over the same slowed
link.  Every chunk read on one side is written to the other N ms after it
was read, in order, so a round trip costs 2*N ms while throughput is not
limited (a long fat pipe, like a link between regions).  Both addresses must
be in 127.0.0.0/8.  Python 3 standard library only.
"""

import argparse
import asyncio
import ipaddress
import os
import signal
import time


def addr(text):
    host, _, port = text.rpartition(":")
    if not ipaddress.ip_address(host) in ipaddress.ip_network("127.0.0.0/8"):
        raise argparse.ArgumentTypeError("%s is not on loopback" % text)
    return host, int(port)


async def pump(reader, writer, delay):
    """Copy reader to writer, each chunk `delay` seconds after it arrived."""
    queue = asyncio.Queue()

    async def send():
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                break
            writer.write(data)
            await writer.drain()
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            pass

    sender = asyncio.ensure_future(send())
    try:
        while True:
            data = await reader.read(256 * 1024)
            queue.put_nowait((time.monotonic() + delay, data or None))
            if not data:
                break
        await sender
    except (ConnectionError, OSError):
        sender.cancel()
    finally:
        writer.close()


async def serve(args):
    delay = args.delay_ms / 1000.0

    async def handle(creader, cwriter):
        try:
            sreader, swriter = await asyncio.open_connection(*args.target)
        except OSError:
            cwriter.close()
            return
        try:
            await asyncio.gather(pump(creader, swriter, delay), pump(sreader, cwriter, delay),
                                 return_exceptions=True)
        except asyncio.CancelledError:
            pass    # shutting down

    server = await asyncio.start_server(handle, *args.listen)
    if args.pidfile:
        with open(args.pidfile + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(args.pidfile + ".tmp", args.pidfile)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--listen", type=addr, required=True)
    p.add_argument("--target", type=addr, required=True)
    p.add_argument("--delay-ms", type=float, default=0)
    p.add_argument("--pidfile")
    asyncio.run(serve(p.parse_args()))


if __name__ == "__main__":
    main()

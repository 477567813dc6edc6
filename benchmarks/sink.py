"""An SMTP server on 127.0.0.1 that accepts every message and throws it away.

It runs in its own process so the server's work does not share a GIL with the client being
measured. It prints the port it listens on, then serves until it is terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from aiosmtpd.smtp import SMTP


class Discard:
    """Accept every message without looking at it."""

    async def handle_DATA(self, server: SMTP, session: object, envelope: object) -> str:
        return "250 2.0.0 OK: discarded"


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    # A fixed hostname: without one aiosmtpd asks DNS for the FQDN on every connection.
    server = await loop.create_server(
        lambda: SMTP(Discard(), hostname="sink.localhost", ident="benchmark sink"),
        host="127.0.0.1",
        port=port,
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    asyncio.run(serve(parser.parse_args().port))
    sys.exit(0)


if __name__ == "__main__":
    main()

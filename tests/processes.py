"""Servers the tests start as programs of their own: wait until they listen, stop them after."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable

HOST = "127.0.0.1"


def wait_until_listening(
    process: subprocess.Popen[bytes], port: int, why_not: Callable[[], str], timeout: float
) -> None:
    """Return once `port` accepts connections; fail with `why_not()` if the program ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args!r} ended at start-up: {why_not()}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{process.args!r} did not listen on {HOST}:{port} within {timeout} s")


def stop(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Ask the program to end; kill it if it does not within `timeout` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)

"""Requests lost when a server closes idle keep-alive connections before its client does.

    PYTHONPATH=$PWD .venv/bin/python bench/keep_alive_race.py

A proxy or load generator keeps a pool of keep-alive connections to the API. Where the API's
idle bound is the shorter one, a close that reaches the client while it is busy, just before it
reuses the connection, loses the request it then sends. This serves a one-line ASGI app through
the image's protocol (graphql_api/server.py) with three idle bounds against a client idle for
`--gap-ms` between bursts and busy for its last 60 ms (bench/keep_alive_race.mjs): 0.9x the gap
(the close arrives while the client is idle: it drops the connection), 1x (the close arrives
while it is busy), 2x (no close while the client uses the pool), and prints what was lost.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from ports import free_port

from graphql_api.server import with_timeouts

HERE = Path(__file__).resolve().parent


async def _ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def lost_at(keep_alive_s: float, gap_ms: int, seconds: float) -> dict[str, Any]:
    """The client's answered and failed requests against a server with this idle bound."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        _ok, host="127.0.0.1", port=port, log_level="warning", loop="uvloop",
        http=with_timeouts(10.0, keep_alive_s), lifespan="off",
    ))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the server on port {port} did not start")
        time.sleep(0.05)
    try:
        done = subprocess.run(
            ["node", str(HERE / "keep_alive_race.mjs"), str(port), str(gap_ms), str(seconds)],
            capture_output=True, text=True, check=True, timeout=seconds + 60,
        )
    finally:
        server.should_exit = True
        thread.join(30)
    return {"server_keep_alive_s": keep_alive_s, "client_idle_gap_ms": gap_ms,
            **json.loads(done.stdout)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gap-ms", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    gap_s = args.gap_ms / 1000
    for keep_alive_s in (gap_s * 0.9, gap_s, gap_s * 2):
        print(json.dumps(lost_at(round(keep_alive_s, 3), args.gap_ms, args.seconds)))


if __name__ == "__main__":
    main()

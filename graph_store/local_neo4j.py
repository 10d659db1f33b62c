"""Local Neo4j servers: Community Edition run by the project itself, as it runs FalkorDB.

Maven resolves the libraries of `neo4j_server/pom.xml` (no tarball, no Docker) and Java runs
`neo4j_server/Neo4jServer.java` on them: one JVM for the product's graph and one for the analysts'
anonymized copy, so an analyst's query never takes the product's threads or memory. Both listen
on 127.0.0.1 only, with authentication on; passwords come from the environment or are generated
once and kept (0600) under `$DONOR_MATCH_DATA_DIR/neo4j/secrets`.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from graph_store.credentials import kept_or_generated
from graph_store.embedded import ServerStatus
from graph_store.embedded import process_alive as _alive
from graph_store.settings import StoreSettings

SERVER_DIR = Path(__file__).resolve().parent / "neo4j_server"
POM = SERVER_DIR / "pom.xml"
LAUNCHER = SERVER_DIR / "Neo4jServer.java"
READY = "donor-match: Neo4j ready"
# Neo4j 2025.01 and later run on Java 21 or newer.
MIN_JAVA = 21
HOST = "127.0.0.1"
LOCAL_HOSTS = {"localhost", "127.0.0.1"}
# Bounds the server enforces itself, whatever a client asks: product statements, and analysts'.
QUERY_TIMEOUT = "60s"
ANALYST_QUERY_TIMEOUT = "30s"
ANALYST_TRANSACTION_MEMORY = "256m"
# What analysts may call on their server; nothing that reads configuration, files or the network.
ANALYST_PROCEDURES = (
    "db.labels,db.relationshipTypes,db.propertyKeys,"
    "db.schema.visualization,db.schema.nodeTypeProperties,db.schema.relTypeProperties"
)


class Neo4jSetupError(RuntimeError):
    """The local server cannot start; the message says what to do."""


class Neo4jServer:
    """One local Neo4j server process: its home directory, port, configuration and users."""

    def __init__(
        self, name: str, home: Path, port: int, config: Mapping[str, str],
        users: tuple[str, ...], heap: str,
    ) -> None:
        self.name = name
        self.home = home.resolve()
        self.port = port
        self._config = config
        self._users = users
        self._heap = heap
        self._pid_file = self.home / "server.pid"
        self.log_file = self.home / "server.log"

    def start(
        self, classpath: str, java: Path, passwords: Mapping[str, str]
    ) -> subprocess.Popen[bytes] | None:
        """Launch the server unless it already runs; returns the process to wait for."""
        if self._running():
            return None
        if _port_taken(self.port):
            raise Neo4jSetupError(
                f"port {self.port} of the {self.name} server is in use by another process: "
                f"stop that process, or choose another port in "
                f"{'NEO4J_ANALYST_URI' if self.name.endswith('analyst') else 'NEO4J_URI'}"
            )
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "import").mkdir(exist_ok=True)
        conf = self.home / "server.conf"
        conf.write_text("".join(f"{key}={value}\n" for key, value in self._config.items()))
        command = [
            str(java), f"-Xmx{self._heap}", "-XX:+UseG1GC", "-XX:+ExitOnOutOfMemoryError",
            "--enable-native-access=ALL-UNNAMED", "-cp", classpath,
            str(LAUNCHER), str(self.home), str(conf),
        ]
        with self.log_file.open("wb") as log:
            # Its own session, so the server outlives the command that started it.
            process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        assert process.stdin is not None
        # Passwords on standard input: never in the process list, the log or a config file.
        process.stdin.write(
            "".join(f"{user}\t{passwords[user]}\n" for user in self._users).encode()
        )
        process.stdin.close()
        self._pid_file.write_text(str(process.pid))
        return process

    def wait_ready(self, process: subprocess.Popen[bytes], deadline: float) -> None:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self._pid_file.unlink(missing_ok=True)
                raise Neo4jSetupError(self._failure())
            if READY in self._log():
                return
            time.sleep(0.2)
        process.kill()
        self._pid_file.unlink(missing_ok=True)
        raise Neo4jSetupError(
            f"the {self.name} server did not start within its wait; see {self.log_file}"
        )

    def stop(self, wait_s: float = 60.0) -> None:
        """SIGTERM: the launcher's shutdown hook checkpoints and closes the databases."""
        pid = self._pid()
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + wait_s
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        self._pid_file.unlink(missing_ok=True)

    def status(self) -> ServerStatus:
        return ServerStatus(self.name, self._running(), self._pid(), self.port, self.home)

    def _running(self) -> bool:
        pid = self._pid()
        return pid is not None and _alive(pid) and _port_taken(self.port)

    def _pid(self) -> int | None:
        try:
            return int(self._pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def _log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _failure(self) -> str:
        log = self._log()
        # The innermost cause names the real problem; the outer exceptions only wrap it.
        errors = [line.strip() for line in log.splitlines()
                  if re.match(r"(Caused by: |Exception|\S+(Exception|Error)\b)", line)]
        cause = errors[-1] if errors else (log.strip().splitlines() or ["no output"])[-1]
        if "store_lock" in log or "locked by another process" in log:
            return (f"the {self.name} server's data directory {self.home} is in use by another "
                    f"process: stop it (`donor-match store stop`) first")
        if re.search(r"[Aa]ddress already in use", log):
            return f"port {self.port} of the {self.name} server is in use by another process"
        if "store files could not be opened" in log:
            return (f"the {self.name} server could not open its data directory {self.home}"
                    f" ({self._database_error() or cause}). If the data is disposable, move that "
                    f"directory aside and start again; otherwise restore it from a backup. "
                    f"Log: {self.home / 'logs' / 'debug.log'}")
        return f"the {self.name} server exited: {cause}. Log: {self.log_file}"


    def _database_error(self) -> str | None:
        """The first line of the error a database failed to start with, from Neo4j's own log."""
        try:
            debug = (self.home / "logs" / "debug.log").read_text(errors="replace")
        except FileNotFoundError:
            return None
        found = re.search(r'"stacktrace":"([^"\\]+)', debug)
        return found.group(1) if found else None


class LocalNeo4j:
    """The product's server and the analysts' server, started and stopped together."""

    def __init__(self, settings: StoreSettings) -> None:
        self._settings = settings
        root = settings.neo4j_dir
        app_user = settings.neo4j_user
        common = {
            "server.bolt.enabled": "true",
            "server.default_listen_address": HOST,
            "dbms.security.auth_enabled": "true",
            "server.memory.pagecache.size": settings.neo4j_pagecache,
            # Query logs would hold donors' names and e-mail addresses from parameters.
            "db.logs.query.parameter_logging_enabled": "false",
            "db.logs.query.obfuscate_literals": "true",
        }
        self.main = Neo4jServer(
            "Neo4j", root / "main", _local_port(settings.neo4j_uri, "NEO4J_URI"),
            common | _listen(_local_port(settings.neo4j_uri, "NEO4J_URI")) | {
                "db.transaction.timeout": QUERY_TIMEOUT,
                "server.directories.import": str((root / "main" / "import").resolve()),
            },
            (app_user,), settings.neo4j_heap,
        )
        analyst_port = _local_port(settings.neo4j_analyst_uri, "NEO4J_ANALYST_URI")
        analyst_user = settings.neo4j_analyst_user
        self.analyst = Neo4jServer(
            "Neo4j analyst", root / "analyst", analyst_port,
            common | _listen(analyst_port) | {
                "db.transaction.timeout": ANALYST_QUERY_TIMEOUT,
                "db.memory.transaction.max": ANALYST_TRANSACTION_MEMORY,
                # No LOAD CSV from files or from any address.
                "dbms.security.allow_csv_import_from_file_urls": "false",
                "server.directories.import": str((root / "analyst" / "import").resolve()),
                "internal.dbms.cypher_ip_blocklist": "0.0.0.0/0,::/0",
                "dbms.security.procedures.allowlist": ANALYST_PROCEDURES,
            },
            # The application's user fills the copy (the anonymize job); analysts only read it.
            (app_user, analyst_user),
            settings.neo4j_heap,
        )

    @property
    def servers(self) -> tuple[Neo4jServer, Neo4jServer]:
        return self.main, self.analyst

    def start(self, wait_s: float = 300.0) -> list[ServerStatus]:
        """Start both servers (each a no-op when it already runs) and wait until they answer."""
        java, classpath, users = find_java(), resolve_classpath(), passwords(self._settings)
        started = [(server, server.start(classpath, java, users)) for server in self.servers]
        deadline = time.monotonic() + wait_s
        try:
            for server, process in started:
                if process is not None:
                    server.wait_ready(process, deadline)
        except Neo4jSetupError:
            self.stop()
            raise
        return self.status()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def status(self) -> list[ServerStatus]:
        return [server.status() for server in self.servers]


def find_java(jvm_root: Path = Path("/usr/lib/jvm")) -> Path:
    """A `java` of version MIN_JAVA or newer: JAVA_HOME's, the PATH's, or one under `jvm_root`."""
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]) / "bin" / "java")
    if on_path := shutil.which("java"):
        candidates.append(Path(on_path).resolve())
    candidates += sorted(jvm_root.glob("*/bin/java"), reverse=True)
    found = []
    for java in candidates:
        version = _java_major(java)
        if version is not None:
            found.append(f"{java} ({version})")
            if version >= MIN_JAVA:
                return java
    raise Neo4jSetupError(
        f"Neo4j needs Java {MIN_JAVA} or newer; found {', '.join(found) or 'no Java'}. Install "
        f"a JDK {MIN_JAVA}+ (e.g. Temurin, or Debian's openjdk-{MIN_JAVA}-jdk-headless) and set "
        f"JAVA_HOME to it"
    )


def resolve_classpath() -> str:
    """Neo4j's libraries as a class path, resolved by Maven once per POM and cached."""
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "donor-match"
    cached = cache / f"neo4j-classpath-{digest}.txt"
    if cached.is_file():
        classpath = cached.read_text().strip()
        if all(Path(jar).is_file() for jar in classpath.split(os.pathsep)):
            return classpath
    mvn = shutil.which("mvn")
    if mvn is None:
        raise Neo4jSetupError(
            "Maven (`mvn`) is not installed; it resolves Neo4j's libraries. Install it "
            "(Debian: apt-get install maven) and start again"
        )
    cache.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".partial")
    result = subprocess.run(
        [mvn, "-q", "-B", "-f", str(POM), "dependency:build-classpath",
         f"-Dmdep.outputFile={partial}"],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
        raise Neo4jSetupError(
            f"Maven could not resolve Neo4j's libraries from {POM}: {' / '.join(tail)}. "
            f"Check access to Maven Central, then start again"
        )
    partial.replace(cached)
    return cached.read_text().strip()


def _java_major(java: Path) -> int | None:
    release = java.parent.parent / "release"
    try:
        text = release.read_text() if release.is_file() else subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stderr
    except OSError:
        return None
    match = re.search(r'version "?(\d+)', text) or re.search(r'JAVA_VERSION="(\d+)', text)
    return int(match.group(1)) if match else None


def passwords(settings: StoreSettings) -> dict[str, str]:
    """Each user's password: the environment's, else one generated once for this data directory
    (0600, where `StoreSettings.neo4j_credentials` finds it)."""
    passwords = {}
    for analysts in (False, True):
        user, password = settings.neo4j_credentials(analysts=analysts)
        if not password:
            password = kept_or_generated(settings.neo4j_secrets_dir / user)
        elif len(password) < 8:
            raise Neo4jSetupError(f"Neo4j refuses passwords under 8 characters (user {user})")
        passwords[user] = password
    return passwords


def _local_port(uri: str, variable: str) -> int:
    parts = urlsplit(uri)
    if parts.hostname not in LOCAL_HOSTS:
        raise Neo4jSetupError(
            f"{variable} is {uri}, not this machine: `donor-match store start` runs only local "
            f"servers (localhost); a remote Neo4j is started where it runs"
        )
    return parts.port or 7687


def _listen(port: int) -> dict[str, str]:
    return {
        "server.bolt.listen_address": f"{HOST}:{port}",
        "server.bolt.advertised_address": f"{HOST}:{port}",
    }


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((HOST, port)) == 0

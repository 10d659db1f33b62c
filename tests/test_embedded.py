"""The embedded FalkorDB server the project starts itself."""

from __future__ import annotations

import contextlib
import itertools
import secrets
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest
import redis
from conftest import free_port
from pydantic import SecretStr

from graph_store import StoreSettings, StoreUnavailableError, open_store, statement
from graph_store.embedded import EmbeddedFalkorDB, LocalFalkorDB


def test_server_binds_loopback_persists_and_restarts(tmp_path: Path) -> None:
    server = EmbeddedFalkorDB(tmp_path / "falkordb", free_port())
    settings = StoreSettings(falkordb_port=server.port, falkordb_password=server.password,
                             graph_name="persist", timeout_s=5)
    server.start()
    try:
        assert server.status().running
        config = redis.Redis(host="127.0.0.1", port=server.port, password=server.password)
        assert config.config_get("bind")["bind"] == "127.0.0.1"
        assert config.config_get("appendonly")["appendonly"] == "yes"
        config.close()
        store = open_store(settings)
        store.write(
            statement("etl/merge_causes"),
            {"rows": [{"id": "c1", "name": "Health", "parent_id": None}], "load_id": "test"},
        )
        store.close()
    finally:
        server.stop()
    assert not server.status().running

    server.start()  # the append-only file brings the graph back
    try:
        assert server.start().running  # starting a running server is a no-op
        store = open_store(settings)
        assert store.read(statement("api/causes")) == [{"id": "c1", "name": "Health"}]
        store.close()
    finally:
        server.stop()
    log = (tmp_path / "falkordb" / "falkordb.log").read_text().lower()
    assert "bolt" not in log  # the experimental Bolt listener stays off


def _raw(port: int, command: bytes) -> bytes:
    """One command over a bare socket, as any local process could send it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(command)
        return sock.recv(4096)


def test_the_store_requires_its_password_and_never_shows_it(tmp_path: Path) -> None:
    # Quotes, spaces, a backslash and a newline: none may end the configuration line.
    password = 'pa ss"wo\\rd\n-' + secrets.token_urlsafe(8)
    settings = StoreSettings(data_dir=tmp_path / "var", falkordb_port=free_port(),
                             falkordb_analyst_port=free_port(), graph_name="guarded",
                             falkordb_password=password, timeout_s=5)
    servers = LocalFalkorDB(settings)
    servers.start()
    try:
        for server in (servers.main, servers.analyst):
            # Unauthenticated: refused, whatever the command (reads, pub/sub alike).
            assert _raw(server.port, b"PING\r\n").startswith(b"-NOAUTH")
            assert _raw(server.port, b"GRAPH.LIST\r\n").startswith(b"-NOAUTH")
            assert _raw(server.port, b"PUBLISH donor_match:events:x y\r\n").startswith(b"-NOAUTH")
            wrong = redis.Redis(host="127.0.0.1", port=server.port, password="wrong",
                                retry=None, socket_timeout=5)
            with pytest.raises(redis.exceptions.AuthenticationError):
                wrong.ping()
            pid = server.status().pid
            assert pid is not None
            argv = Path(f"/proc/{pid}/cmdline").read_bytes()
            assert password.encode() not in argv and b"requirepass" not in argv
        store = open_store(settings)
        store.write(statement("etl/merge_causes"),
                    {"rows": [{"id": "c1", "name": "Health", "parent_id": None}],
                     "load_id": "test"})
        store.close()
        refused = open_store(settings.model_copy(
            update={"falkordb_password": SecretStr("not-" + password)}))
        with pytest.raises(StoreUnavailableError) as caught:
            refused.read(statement("api/causes"))
        assert password not in str(caught.value)
        assert "DONOR_MATCH_FALKORDB_PASSWORD" in str(caught.value)
    finally:
        servers.stop()
    for log in (servers.main.data_dir / "falkordb.log",
                servers.analyst.data_dir / "falkordb.log"):
        assert password not in log.read_text()


def test_the_generated_password_is_kept_0600_and_found_by_clients(tmp_path: Path) -> None:
    settings = StoreSettings(data_dir=tmp_path / "var", falkordb_port=free_port(),
                             falkordb_analyst_port=free_port(), graph_name="kept", timeout_s=5)
    assert settings.falkordb_secret() == ""
    servers = LocalFalkorDB(settings)
    secret = settings.falkordb_secret_file
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(secret.parent.stat().st_mode) == 0o700
    assert settings.falkordb_secret() == secret.read_text() == servers.main.password
    assert LocalFalkorDB(settings).analyst.password == servers.main.password  # generated once
    servers.start()
    try:
        store = open_store(settings)  # a client with only the data directory
        store.ping()
        store.close()
    finally:
        servers.stop()


def test_a_full_disk_refuses_writes_as_unavailable_and_they_resume(tmp_path: Path) -> None:
    """The store's data directory on a small filesystem, filled: writes are UNAVAILABLE (not a
    statement error), reads go on, and once space is freed writes resume. Needs a tmpfs mount
    (root)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    server = EmbeddedFalkorDB(disk / "falkordb", free_port())
    settings = StoreSettings(falkordb_port=server.port, falkordb_password=server.password,
                             graph_name="full", timeout_s=5)
    merge = statement("etl/merge_causes")
    try:
        server.start()
        store = open_store(settings)
        store.write(merge, {"rows": [{"id": "c1", "name": "Health", "parent_id": None}],
                            "load_id": "t"})
        filler = disk / "filler"
        with filler.open("wb", buffering=0) as file:
            for size in (1 << 20, 1 << 10, 1):  # to the last byte
                with contextlib.suppress(OSError):
                    while True:
                        file.write(b"\0" * size)
        deadline = time.monotonic() + 10
        with pytest.raises(StoreUnavailableError, match="disk"):
            # New causes, each appended to the AOF: the file's last page fills, then a write
            # fails and the server refuses further writes.
            for n in itertools.count():
                assert time.monotonic() < deadline
                store.write(merge, {"rows": [{"id": f"c{n}x", "name": "Arts" * 50,
                                              "parent_id": None}], "load_id": "t"})
        assert {r["id"] for r in store.read(statement("api/causes"))} >= {"c1"}
        filler.unlink()
        deadline = time.monotonic() + 10
        while True:
            try:
                store.write(merge, {"rows": [{"id": "c3", "name": "Food", "parent_id": None}],
                                    "load_id": "t"})
                break
            except StoreUnavailableError:
                assert time.monotonic() < deadline, "writes did not resume"
                time.sleep(0.2)
        store.close()
    finally:
        server.stop()
        subprocess.run(["umount", "-l", str(disk)], check=False)

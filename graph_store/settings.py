"""Store configuration, read from the environment (secrets never come from files in the repo)."""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from graph_store.credentials import kept


class StoreSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    backend: Literal["falkordb", "neo4j"] = Field("falkordb", validation_alias="DONOR_MATCH_STORE")
    timeout_s: float = Field(10.0, gt=0, validation_alias="DONOR_MATCH_STORE_TIMEOUT_S")
    # A store that is down must surface as UNAVAILABLE within a second, so connecting (with
    # Neo4j's handshake and pool acquisition) has its own, shorter bound.
    connect_timeout_s: float = Field(
        1.0, gt=0, validation_alias="DONOR_MATCH_STORE_CONNECT_TIMEOUT_S"
    )
    # How long Neo4j retries a statement that failed transiently (a cluster changing leader, a
    # dropped connection); 0 fails at once, as the API must. Batch jobs set it to ride it out.
    retry_s: float = Field(0.0, ge=0, validation_alias="DONOR_MATCH_STORE_RETRY_S")

    # Embedded FalkorDB (the default): a server this project starts on loopback.
    data_dir: Path = Field(Path("var"), validation_alias="DONOR_MATCH_DATA_DIR")
    falkordb_host: str = Field("127.0.0.1", validation_alias="DONOR_MATCH_FALKORDB_HOST")
    falkordb_port: int = Field(6390, ge=1, le=65535, validation_alias="DONOR_MATCH_FALKORDB_PORT")
    # The analysts' copy has an embedded server of its own (threads, memory, query bounds).
    falkordb_analyst_port: int = Field(
        6391, ge=1, le=65535, validation_alias="DONOR_MATCH_FALKORDB_ANALYST_PORT"
    )
    # Both embedded servers require it; unset: generated once under the data directory.
    falkordb_password: SecretStr = Field(
        SecretStr(""), validation_alias="DONOR_MATCH_FALKORDB_PASSWORD"
    )
    graph_name: str = Field("donor_match", validation_alias="DONOR_MATCH_GRAPH")
    # The anonymized copy analysts query, on the analysts' server.
    analyst_graph_name: str = Field(
        "donor_match_analyst", validation_alias="DONOR_MATCH_ANALYST_GRAPH"
    )

    # Neo4j (production).
    neo4j_uri: str = Field("neo4j://localhost:7687", validation_alias="NEO4J_URI")
    # The anonymized copy lives on a server of its own (Community has one user database and no
    # roles): analysts share neither query threads nor memory with the product. Enterprise may
    # point this at NEO4J_URI with NEO4J_ANALYST_DATABASE=analyst and neo4j/admin/*.cypher.
    neo4j_analyst_uri: str = Field("neo4j://localhost:7688", validation_alias="NEO4J_ANALYST_URI")
    neo4j_user: str = Field("neo4j", validation_alias="NEO4J_USER")
    neo4j_password: SecretStr = Field(SecretStr(""), validation_alias="NEO4J_PASSWORD")
    neo4j_database: str = Field("neo4j", validation_alias="NEO4J_DATABASE")
    neo4j_analyst_database: str = Field("neo4j", validation_alias="NEO4J_ANALYST_DATABASE")
    # Analysts' queries run as this read-only user (neo4j/admin/analyst.cypher), not as the
    # application's user, which writes (the anonymize job fills the analyst database as that one).
    neo4j_analyst_user: str = Field("analyst", validation_alias="NEO4J_ANALYST_USER")
    neo4j_analyst_password: SecretStr = Field(
        SecretStr(""), validation_alias="NEO4J_ANALYST_PASSWORD"
    )

    # The local servers `donor-match store start` runs (graph_store.local_neo4j), each one JVM.
    neo4j_heap: str = Field("1g", pattern=r"^\d+[kmg]$", validation_alias="DONOR_MATCH_NEO4J_HEAP")
    neo4j_pagecache: str = Field(
        "512m", pattern=r"^\d+[kmg]$", validation_alias="DONOR_MATCH_NEO4J_PAGECACHE"
    )

    def neo4j_credentials(self, *, analysts: bool = False) -> tuple[str, str]:
        """The Neo4j user and password: the application's, or with `analysts=True` the user
        analysts' queries run as. A password the environment leaves empty is the one the local
        server generated under the data directory, if there is one."""
        user, password = (
            (self.neo4j_analyst_user, self.neo4j_analyst_password)
            if analysts
            else (self.neo4j_user, self.neo4j_password)
        )
        if password.get_secret_value():
            return user, password.get_secret_value()
        return user, kept(self.neo4j_secrets_dir / user)

    def falkordb_secret(self) -> str:
        """The embedded FalkorDB servers' password (both servers, Redis's `default` user): the
        environment's, else the one `donor-match store start` generated under the data
        directory; '' before there is one."""
        return self.falkordb_password.get_secret_value() or kept(self.falkordb_secret_file)

    @property
    def falkordb_secret_file(self) -> Path:
        return self.falkordb_dir / "secrets" / "default"

    @property
    def falkordb_dir(self) -> Path:
        return self.data_dir / "falkordb"

    @property
    def neo4j_dir(self) -> Path:
        return self.data_dir / "neo4j"

    @property
    def neo4j_secrets_dir(self) -> Path:
        return self.neo4j_dir / "secrets"

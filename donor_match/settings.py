"""Application configuration from the environment; store settings live in graph_store."""

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class AppSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    models_dir: Path = Field(Path("var/models"), validation_alias="DONOR_MATCH_MODELS_DIR")
    snapshots_dir: Path = Field(
        Path("var/snapshots"), validation_alias="DONOR_MATCH_SNAPSHOTS_DIR"
    )
    # Model lifecycle (graph_model.tracking, graph_model.registry, mlops.pipeline, mlops.drift).
    # MLflow's own variable; a SQLite store because MLflow 3 retired its plain-file store.
    mlflow_tracking_uri: str = Field(
        "sqlite:///var/mlflow/mlflow.db", validation_alias="MLFLOW_TRACKING_URI"
    )
    mlflow_artifacts_dir: Path = Field(
        Path("var/mlflow/artifacts"), validation_alias="DONOR_MATCH_MLFLOW_ARTIFACTS_DIR"
    )
    tensorboard_dir: Path = Field(
        Path("var/tensorboard"), validation_alias="DONOR_MATCH_TENSORBOARD_DIR"
    )
    pipeline_dir: Path = Field(Path("var/pipeline"), validation_alias="DONOR_MATCH_PIPELINE_DIR")
    # How far (relative) a candidate's Recall/NDCG may fall below production's and still pass.
    promotion_tolerance: float = Field(
        0.05, ge=0, lt=1, validation_alias="DONOR_MATCH_PROMOTION_TOLERANCE"
    )
    pushgateway_url: str | None = Field(None, validation_alias="DONOR_MATCH_PUSHGATEWAY_URL")
    api_host: str = Field("127.0.0.1", validation_alias="DONOR_MATCH_API_HOST")
    api_port: int = Field(8000, ge=1, le=65535, validation_alias="DONOR_MATCH_API_PORT")
    max_matches: int = Field(100, ge=1, validation_alias="DONOR_MATCH_MAX_MATCHES")
    # How much a nonprofit's unmet funding need re-ranks matches when a query gives no
    # `impactWeight` (0: the model's order alone; see graph_model/ranking.py).
    impact_weight: float = Field(0.2, ge=0, le=1, validation_alias="DONOR_MATCH_IMPACT_WEIGHT")
    # How often each API process re-reads funding needs written by other processes or loads.
    needs_refresh_s: float = Field(5.0, gt=0, validation_alias="DONOR_MATCH_NEEDS_REFRESH_S")
    # How long a process shows a nonprofit's row in matches (name, region, causes, need) before
    # reading it again; changes through the process itself show at once.
    page_rows_ttl_s: float = Field(30.0, gt=0, validation_alias="DONOR_MATCH_PAGE_ROWS_TTL_S")
    # How long a process reuses a catalog page (`nonprofits`) before reading it again (0: never);
    # nonprofits created or edited through the process itself show at once.
    catalog_page_cache_s: float = Field(
        2.0, ge=0, validation_alias="DONOR_MATCH_CATALOG_PAGE_CACHE_S"
    )
    # Send each HTTP request's phases back in a Server-Timing header (the load benchmark reads
    # them); off by default: it tells callers about the server's internals.
    server_timing: bool = Field(False, validation_alias="DONOR_MATCH_SERVER_TIMING")
    # Subscription fan-out across processes; unset: the embedded store's Redis (FalkorDB), or
    # in-process only when the store is Neo4j.
    redis_url: str | None = Field(None, validation_alias="DONOR_MATCH_REDIS_URL")

    insights_min_group: int = Field(5, ge=2, validation_alias="DONOR_MATCH_INSIGHTS_MIN_GROUP")
    analytics_row_cap: int = Field(1_000, ge=1, validation_alias="DONOR_MATCH_ANALYTICS_ROW_CAP")
    analytics_timeout_s: float = Field(
        5.0, gt=0, validation_alias="DONOR_MATCH_ANALYTICS_TIMEOUT_S"
    )
    # An answer's size as JSON: a few rows can repeat a large value (a parameter) many times.
    analytics_byte_cap: int = Field(
        1_000_000, ge=1, validation_alias="DONOR_MATCH_ANALYTICS_BYTE_CAP"
    )
    # Queries running at once, per analyst and per API process; more are RATE_LIMITED.
    analytics_per_analyst: int = Field(
        2, ge=1, validation_alias="DONOR_MATCH_ANALYTICS_PER_ANALYST"
    )
    analytics_per_process: int = Field(
        4, ge=1, validation_alias="DONOR_MATCH_ANALYTICS_PER_PROCESS"
    )

    # Abuse limits (see README, "Limits").
    max_depth: int = Field(10, ge=1, validation_alias="DONOR_MATCH_MAX_QUERY_DEPTH")
    max_aliases: int = Field(15, ge=0, validation_alias="DONOR_MATCH_MAX_ALIASES")
    max_tokens: int = Field(2_000, ge=1, validation_alias="DONOR_MATCH_MAX_TOKENS")
    max_cost: int = Field(5_000, ge=1, validation_alias="DONOR_MATCH_MAX_QUERY_COST")
    max_body_bytes: int = Field(65_536, ge=1, validation_alias="DONOR_MATCH_MAX_BODY_BYTES")
    rate_limit_per_minute: int = Field(
        600, ge=1, validation_alias="DONOR_MATCH_RATE_LIMIT_PER_MINUTE"
    )
    # JSON nested deeper than this (in a body or a WebSocket message) is refused up front.
    max_json_depth: int = Field(32, ge=2, validation_alias="DONOR_MATCH_MAX_JSON_DEPTH")
    # A request body that stalls this long between its parts is answered 408.
    body_read_timeout_s: float = Field(
        10.0, gt=0, validation_alias="DONOR_MATCH_BODY_READ_TIMEOUT_S"
    )
    # A connection must complete a request's headers this long after opening (or after the
    # request's first byte), or it is closed: slow headers (slowloris) hold no socket for long.
    header_read_timeout_s: float = Field(
        10.0, gt=0, validation_alias="DONOR_MATCH_HEADER_READ_TIMEOUT_S"
    )
    # An idle keep-alive connection is closed after this long. Longer than the idle timeout of
    # any proxy in front (nginx and AWS load balancers keep 60 s), or the proxy sends a request
    # on a connection as the server closes it, and that request fails.
    keep_alive_timeout_s: float = Field(
        75.0, gt=0, validation_alias="DONOR_MATCH_KEEP_ALIVE_TIMEOUT_S"
    )
    # How long /readyz waits for the store: one that does not answer (frozen) is not ready.
    ready_timeout_s: float = Field(1.0, gt=0, validation_alias="DONOR_MATCH_READY_TIMEOUT_S")
    # /metrics answers loopback callers, and others that send `Authorization: Bearer <token>`.
    metrics_token: SecretStr | None = Field(None, validation_alias="DONOR_MATCH_METRICS_TOKEN")
    # Proxies whose X-Forwarded-For names the client (uvicorn's --forwarded-allow-ips; `serve`
    # passes it on): the ingress only. Anyone else's header is ignored, or it would pick its own
    # rate-limit key.
    forwarded_allow_ips: str = Field(
        "127.0.0.1", validation_alias="DONOR_MATCH_FORWARDED_ALLOW_IPS"
    )
    # Subscriptions open at once: per WebSocket, per caller (principal, else client address) and
    # per API process; more are refused with RATE_LIMITED.
    max_subscriptions_per_socket: int = Field(
        10, ge=1, validation_alias="DONOR_MATCH_MAX_SUBSCRIPTIONS_PER_SOCKET"
    )
    max_subscriptions_per_caller: int = Field(
        20, ge=1, validation_alias="DONOR_MATCH_MAX_SUBSCRIPTIONS_PER_CALLER"
    )
    max_subscriptions_per_process: int = Field(
        1_000, ge=1, validation_alias="DONOR_MATCH_MAX_SUBSCRIPTIONS_PER_PROCESS"
    )
    introspection: bool = Field(True, validation_alias="DONOR_MATCH_GRAPHQL_INTROSPECTION")
    cors_origins: list[str] = Field([], validation_alias="DONOR_MATCH_CORS_ORIGINS")


class AuthSettings(BaseSettings):
    """JWT verification (HS256 locally, RS256 from a JWKS in production)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    issuer: str = Field("donor-match", validation_alias="DONOR_MATCH_JWT_ISSUER")
    audience: str = Field("donor-match-api", validation_alias="DONOR_MATCH_JWT_AUDIENCE")
    jwt_secret: SecretStr = Field(SecretStr(""), validation_alias="DONOR_MATCH_JWT_SECRET")
    jwks_url: str | None = Field(None, validation_alias="DONOR_MATCH_JWT_JWKS_URL")
    leeway_s: int = Field(30, ge=0, validation_alias="DONOR_MATCH_JWT_LEEWAY_S")

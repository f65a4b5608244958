"""The deployment files under deploy/ hold together, checked offline.

What can be told without a cluster, a Docker engine or a network:

- every Kubernetes object of the base and of the example overlay is valid
  against the Kubernetes API schemas (kubernetes-validate), and so is what
  kustomize renders of both, when ``kubectl`` (or ``kustomize``) is there;
- the kustomizations name files and objects that exist, and every
  manifest file is used;
- every YAML file passes yamllint (``.yamllint.yaml``);
- ``deploy/compose.yaml`` matches the Compose Specification's JSON schema
  (vendored in ``deploy/schemas/``);
- each worker of the CLI has a Deployment and a compose service, every
  command the files run is one the CLI has, and every environment variable
  they set is one the settings read, with a value the settings accept;
- the pods run locked down, probed and bounded;
- the Grafana dashboard and the alert rules query only the metrics of the
  service's metrics contract (their PromQL parsed by promql-parser), and
  promtool, when it is there (``PROMTOOL`` or on the ``PATH``; ``.ci/run``
  unpacks it), accepts the rules, their unit tests and the Prometheus
  configurations.

The last group of tests breaks a copy of a file on purpose, to show that
each kind of check can fail.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import promql_parser
import pytest
import typer.main
import yaml
from pydantic import ValidationError
from yamllint import linter
from yamllint.config import YamlLintConfig

from dotmac.ticketing.entry import cli
from dotmac.ticketing.service.settings import WORKER_NAMES, Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
BASE = KUBERNETES / "base"
OVERLAY = KUBERNETES / "overlays" / "example"
COMPOSE = DEPLOY / "compose.yaml"
PROMETHEUS = DEPLOY / "prometheus"
ALERTS = PROMETHEUS / "alerts.yaml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "ticketing.json"

# The oldest Kubernetes minor the manifests are written for, and the newest
# whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")

# Base files that are not resources of the kustomization, and why.
NOT_RESOURCES = {
    # Applying it would overwrite the real Secret with its placeholders.
    "secret.template.yaml",
}

# The image the manifests name; an overlay's `images` sets its registry and
# tag, compose builds it.
IMAGE = "dotmac-ticketing"

# Environment variables the files may set that settings.py does not read
# yet: the workers' metrics port, being added with the metrics (issue 14).
PENDING_SETTINGS = {"TICKETING_METRICS_PORT"}

METRICS_PORT = 9464
API_PORT = 8000


# ----------------------------------------------------------------------
# The metrics contract (issue 14): name, type and labels of every metric
# the processes serve. The dashboard and the alerts may use nothing else.


@dataclass(frozen=True)
class Metric:
    kind: str  # counter, gauge or histogram
    labels: frozenset[str] = frozenset()


def _metric(kind: str, *labels: str) -> Metric:
    return Metric(kind, frozenset(labels))


CONTRACT = {
    "ticketing_http_requests_total": _metric("counter", "method", "route", "status"),
    "ticketing_http_request_duration_seconds": _metric("histogram", "method", "route"),
    "ticketing_event_store_saves_total": _metric("counter"),
    "ticketing_event_store_events_total": _metric("counter"),
    "ticketing_event_store_batch_saves": _metric("histogram"),
    "ticketing_event_store_conflicts_total": _metric("counter"),
    "ticketing_projection_lag_events": _metric("gauge", "projection"),
    "ticketing_projection_lag_seconds": _metric("gauge", "projection"),
    "ticketing_relay_lag_events": _metric("gauge"),
    "ticketing_relay_published_total": _metric("counter"),
    "ticketing_consumer_lag_records": _metric("gauge", "group", "partition"),
    "ticketing_consumer_records_total": _metric("counter", "group", "outcome"),
    "ticketing_timer_lateness_seconds": _metric("histogram"),
    "ticketing_timers_fired_total": _metric("counter", "kind"),
    "ticketing_notification_deliveries_total": _metric("counter", "channel", "outcome"),
    "ticketing_workflow_steps_total": _metric("counter", "step", "outcome"),
    "ticketing_db_pool_connections": _metric("gauge", "pool", "state"),
    "ticketing_rate_limited_total": _metric("counter", "scope"),
}

# The values the contract fixes for some labels.
LABEL_VALUES = {
    ("ticketing_consumer_records_total", "outcome"): {
        "applied",
        "duplicate",
        "dead_lettered",
    },
    ("ticketing_notification_deliveries_total", "outcome"): {
        "sent",
        "failed",
        "retried",
        "dead_lettered",
    },
    ("ticketing_workflow_steps_total", "outcome"): {"succeeded", "failed", "waiting"},
    ("ticketing_db_pool_connections", "state"): {"in_use", "idle", "waiting"},
}

# Series Prometheus makes itself.
PROMETHEUS_SERIES = {"up": _metric("gauge")}

# Labels the scrape configurations give every target (prometheus.yml,
# kubernetes.yml).
TARGET_LABELS = frozenset({"job", "instance", "process", "namespace", "pod"})

# Grafana's interval variables, replaced before a query is parsed.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}


def _exposed_series() -> dict[str, tuple[str, Metric]]:
    """Each series name a scrape returns, with its metric: a histogram is
    served as its _bucket, _sum and _count series."""
    series: dict[str, tuple[str, Metric]] = {}
    for name, metric in {**CONTRACT, **PROMETHEUS_SERIES}.items():
        if metric.kind == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                series[name + suffix] = (name, metric)
        else:
            series[name] = (name, metric)
    return series


SERIES = _exposed_series()


def _series_labels(series: str) -> frozenset[str]:
    _, metric = SERIES[series]
    extra = {"le"} if series.endswith("_bucket") else set()
    return metric.labels | TARGET_LABELS | extra


def _selectors(expr: Any) -> list[Any]:
    found: list[Any] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(expr, visit)
    return found


def _selector_name(node: Any) -> str | None:
    if node.name:
        return str(node.name)
    for matcher in node.matchers.matchers:
        if matcher.name == "__name__" and matcher.op == promql_parser.MatchOp.Equal:
            return str(matcher.value)
    return None


def query_problems(query: str) -> list[str]:
    """What is wrong with a PromQL query for the contract: its syntax, a
    series the contract lacks, a label its series lack (in a matcher or in
    an aggregation's or a match's grouping), a value the contract fixes
    otherwise. Empty when nothing is."""
    for variable, value in GRAFANA_VARIABLES.items():
        query = query.replace(variable, value)
    if "$" in query:
        return [f"{query}: an unknown Grafana variable"]
    try:
        expr = promql_parser.parse(query)
    except ValueError as error:
        return [f"{query}: does not parse: {error}"]
    problems: list[str] = []
    for selector in _selectors(expr):
        name = _selector_name(selector)
        if name not in SERIES:
            problems.append(f"{name}: not a metric of the contract")
            continue
        metric_name, _ = SERIES[name]
        for matcher in selector.matchers.matchers:
            if matcher.name == "__name__":
                continue
            if matcher.name not in _series_labels(name):
                problems.append(f"{name}: has no label {matcher.name!r}")
            allowed = LABEL_VALUES.get((metric_name, matcher.name))
            if (
                allowed is not None
                and matcher.op == promql_parser.MatchOp.Equal
                and matcher.value not in allowed
            ):
                problems.append(
                    f"{name}: {matcher.name}={matcher.value!r} is not one of "
                    f"{sorted(allowed)}"
                )

    def grouping(node: Any) -> None:
        labels: list[str] = []
        scope = node
        if isinstance(node, promql_parser.AggregateExpr) and node.modifier:
            if node.modifier.type == promql_parser.AggModifierType.By:
                labels, scope = list(node.modifier.labels), node.expr
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier:
            matching = node.modifier.matching
            if matching and matching.type == promql_parser.LabelModifierType.Include:
                labels = list(matching.labels)
        known: set[str] = set()
        for selector in _selectors(scope):
            name = _selector_name(selector)
            if name in SERIES:
                known |= _series_labels(name)
        problems.extend(
            f"{query}: groups by {label!r}, which none of its series has"
            for label in labels
            if known and label not in known
        )

    promql_parser.walk(expr, grouping)
    return problems


def metrics_used(query: str) -> set[str]:
    """The contract's metrics (not series) a query reads."""
    for variable, value in GRAFANA_VARIABLES.items():
        query = query.replace(variable, value)
    names = {_selector_name(s) for s in _selectors(promql_parser.parse(query))}
    return {SERIES[name][0] for name in names if name in SERIES}


# ----------------------------------------------------------------------
# Reading the files


def documents(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as stream:
        return [d for d in yaml.safe_load_all(stream) if d is not None]


def kustomization(directory: Path) -> dict[str, Any]:
    (document,) = documents(directory / "kustomization.yaml")
    return document


def patch_paths(directory: Path) -> set[str]:
    return {p["path"] for p in kustomization(directory).get("patches", [])}


def manifest_files(directory: Path) -> list[Path]:
    """The files of Kubernetes objects: not the kustomization, not patches."""
    skip = {"kustomization.yaml", *patch_paths(directory)}
    return sorted(p for p in directory.glob("*.yaml") if p.name not in skip)


def base_objects() -> list[dict[str, Any]]:
    """The objects the base deploys: its kustomization's resources."""
    return [
        document
        for resource in kustomization(BASE)["resources"]
        for document in documents(BASE / resource)
    ]


def objects_of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in base_objects() if o["kind"] == kind}


def workloads() -> dict[str, dict[str, Any]]:
    """Every Deployment and Job of the base, by name."""
    return {**objects_of_kind("Deployment"), **objects_of_kind("Job")}


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def all_containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def main_container(workload: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod_spec(workload)["containers"]
    return container


def env_names(container: dict[str, Any]) -> set[str]:
    return {e["name"] for e in container.get("env", [])}


def env_value(container: dict[str, Any], name: str) -> str | None:
    for entry in container.get("env", []):
        if entry["name"] == name:
            return entry.get("value")
    return None


def read_env_file(path: Path) -> dict[str, str]:
    """A kustomize env file: VARIABLE=value lines, # comments, blank lines."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, separator, value = line.partition("=")
        assert separator, f"{path.name}: {line!r} is not VARIABLE=value"
        values[name] = value
    return values


def compose() -> dict[str, Any]:
    (document,) = documents(COMPOSE)
    return document


def service_image_is_ours(service: dict[str, Any]) -> bool:
    return str(service.get("image", "")).startswith(f"{IMAGE}:")


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels, matchExpressions) selects."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


# The CLI as the click command typer builds of it (typer ships its own
# click, so the objects are used by their methods, not their classes).
@cache
def cli_command() -> Any:
    return typer.main.get_command(cli.app)


def subcommands(group: Any) -> dict[str, Any]:
    context = group.context_class(group)
    return {
        name: group.get_command(context, name) for name in group.list_commands(context)
    }


def cli_workers() -> list[str]:
    return sorted(subcommands(subcommands(cli_command())["worker"]))


def resolve_cli(args: list[str]) -> list[str]:
    """The command path ``ticketing ARGS`` runs; fails if the CLI has no such
    command or refuses its options. Nothing is run."""
    command = cli_command()
    path: list[str] = []
    rest = list(args)
    while hasattr(command, "list_commands"):  # a group
        assert rest, f"`ticketing {' '.join(path)}` needs a subcommand"
        name, rest = rest[0], rest[1:]
        command = subcommands(command).get(name)
        assert command is not None, f"`ticketing {' '.join(args)}`: no {name!r}"
        path.append(name)
    # Parses the options as the command would, and raises on a wrong one.
    command.make_context(" ".join(["ticketing", *path]), rest)
    return path


def setting_names() -> set[str]:
    names = set()
    for field in Settings.model_fields.values():
        assert isinstance(field.validation_alias, str)
        names.add(field.validation_alias)
    return names


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting from this process's environment reaches Settings()."""
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)


def settings_problem(values: dict[str, str]) -> str | None:
    """Why the settings refuse these variables' values, or None."""
    known = {k: v for k, v in values.items() if k in setting_names()}
    try:
        Settings(**known)
    except ValidationError as error:
        return str(error)
    return None


# ----------------------------------------------------------------------
# Kubernetes objects against the API schemas


def _validation_cases() -> Iterator[Any]:
    for directory in (BASE, OVERLAY):
        for path in manifest_files(directory):
            for version in KUBERNETES_VERSIONS:
                yield pytest.param(
                    path, version, id=f"{path.relative_to(KUBERNETES)}-{version}"
                )


@pytest.mark.parametrize(("path", "version"), list(_validation_cases()))
def test_each_kubernetes_object_is_valid(path: Path, version: str) -> None:
    for document in documents(path):
        # strict: a field the schema does not know (a typo) is an error.
        kubernetes_validate.validate(document, version, strict=True)


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    if kustomize := shutil.which("kustomize"):
        command = [kustomize, "build", str(directory)]
    elif kubectl := shutil.which("kubectl"):
        command = [kubectl, "kustomize", str(directory)]
    else:
        pytest.skip("no kustomize or kubectl here to render the kustomizations")
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d is not None]


@pytest.fixture(scope="module")
def rendered_base() -> list[dict[str, Any]]:
    return kustomize_build(BASE)


@pytest.fixture(scope="module")
def rendered_overlay() -> list[dict[str, Any]]:
    return kustomize_build(OVERLAY)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_what_kustomize_renders_is_valid(
    version: str,
    rendered_base: list[dict[str, Any]],
    rendered_overlay: list[dict[str, Any]],
) -> None:
    for document in [*rendered_base, *rendered_overlay]:
        kubernetes_validate.validate(document, version, strict=True)


def test_the_overlay_renders_a_release_in_its_namespace(
    rendered_overlay: list[dict[str, Any]],
) -> None:
    namespace = kustomization(OVERLAY)["namespace"]
    for document in rendered_overlay:
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == namespace
        if document["kind"] in ("Deployment", "Job"):
            for container in all_containers(document):
                repository, _, tag = container["image"].rpartition(":")
                assert repository.endswith(f"/{IMAGE}") and tag, container["image"]
    (settings,) = [d for d in rendered_overlay if d["kind"] == "ConfigMap"]
    # Merged: the base's values and the overlay's.
    assert {
        **read_env_file(BASE / "settings.env"),
        **read_env_file(OVERLAY / "settings.env"),
    } == settings["data"]


# ----------------------------------------------------------------------
# The kustomizations


KUSTOMIZATIONS = sorted(KUBERNETES.rglob("kustomization.yaml"))


@pytest.mark.parametrize(
    "path", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(KUBERNETES))
)
def test_a_kustomization_names_files_that_exist(path: Path) -> None:
    directory = path.parent
    document = kustomization(directory)
    missing = []
    for resource in document.get("resources", []):
        target = directory / resource
        if target.is_dir():
            if not (target / "kustomization.yaml").is_file():
                missing.append(f"{resource}: a directory without kustomization.yaml")
        elif not target.is_file():
            missing.append(f"{resource}: no such file")
    for patch in document.get("patches", []):
        if not (directory / patch["path"]).is_file():
            missing.append(f"{patch['path']}: no such patch")
    for generator in [
        *document.get("configMapGenerator", []),
        *document.get("secretGenerator", []),
    ]:
        for name in [*generator.get("envs", []), *generator.get("files", [])]:
            # A file may be given as key=path.
            if not (directory / (name.partition("=")[2] or name)).is_file():
                missing.append(f"{name}: no such file for {generator['name']}")
    assert missing == []


@pytest.mark.parametrize("directory", [BASE, OVERLAY], ids=["base", "overlay"])
def test_every_file_of_a_kustomization_is_used(directory: Path) -> None:
    document = kustomization(directory)
    used = {"kustomization.yaml", *document.get("resources", [])}
    used |= patch_paths(directory)
    for generator in document.get("configMapGenerator", []):
        used |= set(generator.get("envs", []))
    unused = {p.name for p in directory.iterdir()} - used - NOT_RESOURCES
    assert unused == set()


def test_the_overlay_changes_only_what_the_base_has() -> None:
    base = {(o["kind"], o["metadata"]["name"]) for o in base_objects()}
    document = kustomization(OVERLAY)
    for patch in document["patches"]:
        target = patch.get("target")
        if target is None:  # a strategic merge patch names its object
            (patched,) = documents(OVERLAY / patch["path"])
            assert (patched["kind"], patched["metadata"]["name"]) in base
        else:
            assert any(
                kind == target["kind"] and name == target.get("name", name)
                for kind, name in base
            ), target
    for replicas in document.get("replicas", []):
        assert ("Deployment", replicas["name"]) in base
    generated = {g["name"] for g in kustomization(BASE)["configMapGenerator"]}
    for generator in document.get("configMapGenerator", []):
        assert generator["behavior"] == "merge" and generator["name"] in generated
    images = {c["image"] for w in workloads().values() for c in all_containers(w)}
    assert {i["name"] for i in document["images"]} == images == {IMAGE}


# ----------------------------------------------------------------------
# YAML style


def yaml_files() -> list[Path]:
    return sorted(
        [ROOT / ".yamllint.yaml", *DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")]
    )


def test_every_yaml_file_passes_yamllint() -> None:
    config = YamlLintConfig(file=str(ROOT / ".yamllint.yaml"))
    problems = [
        f"{path.relative_to(ROOT)}:{p.line}:{p.column}: {p.desc} ({p.rule})"
        for path in yaml_files()
        for p in linter.run(path.read_text(encoding="utf-8"), config, str(path))
    ]
    assert problems == []


# ----------------------------------------------------------------------
# The compose file


COMPOSE_SCHEMA = DEPLOY / "schemas" / "compose-spec.json"


def compose_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def compose_errors(document: dict[str, Any]) -> list[str]:
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in compose_validator().iter_errors(document)
    ]


def test_the_compose_file_matches_the_compose_specification() -> None:
    assert compose_errors(compose()) == []


def test_the_vendored_compose_schema_is_the_one_its_readme_names() -> None:
    readme = (DEPLOY / "schemas" / "README.md").read_text(encoding="utf-8")
    (digest,) = re.findall(r"sha256: ([0-9a-f]{64})", readme)
    assert hashlib.sha256(COMPOSE_SCHEMA.read_bytes()).hexdigest() == digest


def test_compose_migrates_before_anything_else_starts() -> None:
    services = compose()["services"]
    migrate = services["migrate"]
    assert migrate["command"] == ["db", "migrate"]
    assert migrate["restart"] == "no"
    ours = [n for n, s in services.items() if service_image_is_ours(s)]
    assert {"migrate", "api", *WORKER_NAMES} <= set(ours)
    for name in ours:
        if name != "migrate":
            condition = services[name]["depends_on"]["migrate"]["condition"]
            assert condition == "service_completed_successfully", name


def test_compose_runs_the_api_twice_and_each_worker_of_the_cli() -> None:
    services = compose()["services"]
    assert services["api"]["command"] == ["api"]
    assert services["api"]["deploy"]["replicas"] == 2
    for worker in cli_workers():
        service = services[worker]
        assert service["command"] == ["worker", worker]
        environment = service["environment"]
        assert environment["TICKETING_METRICS_PORT"] == str(METRICS_PORT)
        assert str(METRICS_PORT) in " ".join(service["healthcheck"]["test"])
        if worker not in ("projections", "mail-in"):  # the Kafka workers
            assert services[worker]["depends_on"]["kafka"] == {
                "condition": "service_healthy"
            }


def test_compose_has_the_infrastructure_with_healthchecks() -> None:
    services = compose()["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft
    for name in ("postgres", "kafka", "mailpit", "prometheus", "grafana"):
        assert "test" in services[name]["healthcheck"], name
    # The API's healthcheck is the image's.
    assert "HEALTHCHECK" in (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert services["migrate"]["healthcheck"] == {"disable": True}
    build = services["api"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).is_dir(), volume


def test_compose_environments_are_settings(clean_environment: None) -> None:
    names = setting_names() | PENDING_SETTINGS
    for name, service in compose()["services"].items():
        if not service_image_is_ours(service):
            continue
        environment = service.get("environment", {})
        assert set(environment) - names == set(), name
        # ${VAR:-default} as its default, ${VAR:?message} (a value the user
        # must give) as one the settings accept; they must take them all.
        values = {
            key: re.sub(
                r"\$\{[A-Z_]+:-([^}]*)\}",
                r"\1",
                re.sub(r"\$\{[A-Z_]+:\?[^}]*\}", "x" * 32, str(value)),
            )
            for key, value in environment.items()
        }
        assert "${" not in "".join(values.values()), values
        assert settings_problem(values) is None, name


# ----------------------------------------------------------------------
# The Kubernetes workloads


def test_each_worker_of_the_cli_has_a_deployment() -> None:
    assert cli_workers() == sorted(WORKER_NAMES)
    deployments = objects_of_kind("Deployment")
    for worker in cli_workers():
        container = main_container(deployments[f"ticketing-{worker}"])
        assert container["args"] == ["worker", worker]
    assert main_container(deployments["ticketing-api"])["args"] == ["api"]
    (job,) = objects_of_kind("Job").values()
    assert main_container(job)["args"] == ["db", "migrate"]
    assert set(deployments) == {"ticketing-api"} | {
        f"ticketing-{w}" for w in cli_workers()
    }


def commands_run() -> Iterator[list[str]]:
    """Every `ticketing ...` command line of the compose file and the pods."""
    for service in compose()["services"].values():
        if service_image_is_ours(service):
            yield service["command"]
    for workload in workloads().values():
        for container in all_containers(workload):
            if "args" in container and "command" not in container:
                yield container["args"]  # the image's entrypoint is `ticketing`
            else:  # a shell script: the command it runs first
                script = " ".join(container["args"])
                found = re.search(r"\bticketing((?: [a-z][a-z-]*)+)", script)
                assert found, script
                yield found.group(1).split()


def test_every_command_is_one_the_cli_has() -> None:
    paths = {tuple(resolve_cli(args)) for args in commands_run()}
    assert paths == {
        ("api",),
        ("db", "migrate"),
        ("db", "status"),
        *(("worker", w) for w in cli_workers()),
    }


def test_the_pods_wait_for_the_schema_before_starting() -> None:
    for name, deployment in objects_of_kind("Deployment").items():
        (init,) = pod_spec(deployment)["initContainers"]
        assert "ticketing db status" in " ".join(init["args"]), name


def test_every_variable_the_pods_set_is_a_setting(clean_environment: None) -> None:
    names = setting_names() | PENDING_SETTINGS
    base = read_env_file(BASE / "settings.env")
    overlay = read_env_file(OVERLAY / "settings.env")
    assert set(base) - names == set()
    assert set(overlay) - names == set()
    assert settings_problem(base) is None
    assert settings_problem({**base, **overlay}) is None
    (secret,) = documents(BASE / "secret.template.yaml")
    assert set(secret["stringData"]) - names == set()
    for name, workload in workloads().items():
        for container in all_containers(workload):
            assert env_names(container) - names == set(), name


def test_the_pods_read_the_generated_settings_and_the_secret() -> None:
    (secret,) = documents(BASE / "secret.template.yaml")
    template_keys = set(secret["stringData"])
    generated = {g["name"] for g in kustomization(BASE)["configMapGenerator"]}
    for name, workload in workloads().items():
        for container in all_containers(workload):
            sources = {s["configMapRef"]["name"] for s in container["envFrom"]}
            assert sources == generated, name
            for entry in container.get("env", []):
                if "valueFrom" not in entry:
                    continue
                reference = entry["valueFrom"]["secretKeyRef"]
                assert reference["name"] == secret["metadata"]["name"]
                assert reference["key"] == entry["name"]
                # A key a pod cannot start without is in the template.
                if not reference.get("optional"):
                    assert reference["key"] in template_keys, (name, entry)
            assert "DATABASE_URL" in env_names(container), name


def test_the_pods_run_locked_down() -> None:
    accounts = objects_of_kind("ServiceAccount")
    for name, workload in workloads().items():
        spec = pod_spec(workload)
        assert spec["serviceAccountName"] in accounts, name
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["enableServiceLinks"] is False, name
        pod_security = spec["securityContext"]
        assert pod_security["runAsNonRoot"] is True, name
        # The image's user (deploy/Dockerfile: useradd --uid 10001).
        assert pod_security["runAsUser"] == 10001, name
        assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}, name
        volumes = {v["name"]: v for v in spec["volumes"]}
        for container in all_containers(workload):
            where = f"{name}/{container['name']}"
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["capabilities"] == {"drop": ["ALL"]}, where
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], where
            assert set(mounts.values()) <= set(volumes), where
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) == {"cpu", "memory"}, where


def test_the_probes_ask_the_processes_what_they_serve() -> None:
    deployments = objects_of_kind("Deployment")
    api = main_container(deployments["ticketing-api"])
    (port,) = api["ports"]
    assert (port["name"], port["containerPort"]) == ("http", API_PORT)
    for probe, path in (
        ("startupProbe", "/health"),
        ("livenessProbe", "/health"),
        ("readinessProbe", "/ready"),
    ):
        assert api[probe]["httpGet"] == {"path": path, "port": "http"}
    assert "replicas" not in deployments["ticketing-api"]["spec"]  # the HPA's
    for worker in cli_workers():
        deployment = deployments[f"ticketing-{worker}"]
        container = main_container(deployment)
        (port,) = container["ports"]
        assert (port["name"], port["containerPort"]) == ("metrics", METRICS_PORT)
        assert env_value(container, "TICKETING_METRICS_PORT") == str(METRICS_PORT)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"] == {
                "path": "/metrics",
                "port": "metrics",
            }, worker
        assert deployment["spec"]["replicas"] >= 2, worker
    for name, deployment in deployments.items():
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        (port,) = main_container(deployment)["ports"]
        assert annotations["prometheus.io/scrape"] == "true", name
        assert annotations["prometheus.io/port"] == str(port["containerPort"]), name
        assert annotations["prometheus.io/path"] == "/metrics", name


def test_each_deployment_has_a_disruption_budget() -> None:
    budgets = objects_of_kind("PodDisruptionBudget").values()
    for name, deployment in objects_of_kind("Deployment").items():
        selecting = [
            b for b in budgets if matches(b["spec"]["selector"], pod_labels(deployment))
        ]
        assert len(selecting) == 1, name
        assert selecting[0]["spec"] == {
            "maxUnavailable": 1,
            "selector": deployment["spec"]["selector"],
        }


def test_the_api_is_served_and_scaled() -> None:
    (service,) = objects_of_kind("Service").values()
    api = objects_of_kind("Deployment")["ticketing-api"]
    assert matches({"matchLabels": service["spec"]["selector"]}, pod_labels(api))
    ports = {p["name"] for p in main_container(api)["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports
    (autoscaler,) = objects_of_kind("HorizontalPodAutoscaler").values()
    assert autoscaler["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "ticketing-api",
    }
    assert autoscaler["spec"]["minReplicas"] >= 2


def test_network_policies_cover_every_pod() -> None:
    policies = objects_of_kind("NetworkPolicy")
    for name, workload in workloads().items():
        covering = [
            p
            for p in policies.values()
            if matches(p["spec"]["podSelector"], pod_labels(workload))
        ]
        assert len(covering) == 1, name
        ports = {p["name"] for p in main_container(workload).get("ports", [])}
        for rule in covering[0]["spec"]["ingress"]:
            assert {p["port"] for p in rule["ports"]} <= ports, name


# ----------------------------------------------------------------------
# Prometheus: the scrape configurations


def test_compose_prometheus_scrapes_every_process() -> None:
    (config,) = documents(PROMETHEUS / "prometheus.yml")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "ticketing"]
    ports = {}
    for discovery in job["dns_sd_configs"]:
        for name in discovery["names"]:
            ports[name] = discovery["port"]
    assert ports == {"api": API_PORT, **dict.fromkeys(cli_workers(), METRICS_PORT)}
    assert set(ports) <= set(compose()["services"])
    assert {"source_labels": ["__meta_dns_name"], "target_label": "process"} in (
        job["relabel_configs"]
    )
    for rule_file in config["rule_files"]:
        assert (PROMETHEUS / rule_file).is_file()


def test_the_cluster_scrape_job_labels_targets_like_compose() -> None:
    (config,) = documents(PROMETHEUS / "kubernetes.yml")
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "ticketing"
    relabels = job["relabel_configs"]
    component = "__meta_kubernetes_pod_label_app_kubernetes_io_component"
    assert {"source_labels": [component], "target_label": "process"} in relabels
    for rule in relabels:
        re.compile(rule.get("regex", "(.*)"))
    # The components are the processes' names, as compose's services are.
    components = {
        pod_labels(d)["app.kubernetes.io/component"]
        for d in objects_of_kind("Deployment").values()
    }
    assert components == {"api", *cli_workers()}


# ----------------------------------------------------------------------
# Prometheus: the alert rules


def alert_rules() -> list[dict[str, Any]]:
    (document,) = documents(ALERTS)
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_the_alert_rules_are_well_formed() -> None:
    (document,) = documents(ALERTS)
    assert set(document) == {"groups"}
    names = [group["name"] for group in document["groups"]]
    assert len(names) == len(set(names))
    for group in document["groups"]:
        assert set(group) == {"name", "rules"} and group["rules"], group["name"]
        for rule in group["rules"]:
            assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}
            where = rule["alert"]
            assert re.fullmatch(r"Ticketing[A-Z][A-Za-z]+", where)
            assert re.fullmatch(r"([0-9]+[smh])+", rule["for"]), where
            assert rule["labels"]["severity"] in ("warning", "critical"), where
            assert set(rule["annotations"]) == {"summary", "description"}, where
            assert all(v.strip() for v in rule["annotations"].values()), where
    # One rule per alert and labels: Prometheus would evaluate both.
    keys = [(r["alert"], tuple(sorted(r["labels"].items()))) for r in alert_rules()]
    assert len(keys) == len(set(keys))


def test_the_alert_rules_query_only_the_contract() -> None:
    problems = [
        f"{rule['alert']}: {problem}"
        for rule in alert_rules()
        for problem in query_problems(rule["expr"])
    ]
    assert problems == []


def test_the_alert_rules_watch_what_issue_14_asks() -> None:
    used = {rule["alert"]: metrics_used(rule["expr"]) for rule in alert_rules()}
    watched = {
        "projection lag": {
            "ticketing_projection_lag_events",
            "ticketing_projection_lag_seconds",
        },
        "relay lag": {"ticketing_relay_lag_events"},
        "consumer lag": {"ticketing_consumer_lag_records"},
        "timer lateness": {"ticketing_timer_lateness_seconds"},
        "dead letters": {
            "ticketing_notification_deliveries_total",
            "ticketing_consumer_records_total",
        },
        "API 5xx ratio": {"ticketing_http_requests_total"},
        "a target down": {"up"},
    }
    for what, metrics in watched.items():
        for metric in metrics:
            assert any(metric in m for m in used.values()), f"{what}: {metric}"
    dead_letters = [r for r in alert_rules() if 'outcome="dead_lettered"' in r["expr"]]
    assert {next(iter(metrics_used(r["expr"]))) for r in dead_letters} == (
        watched["dead letters"]
    )
    missing = {
        rule["labels"]["process"]
        for rule in alert_rules()
        if rule["alert"] == "TicketingProcessMissing"
    }
    assert missing == {"api", *cli_workers()}


def promtool() -> str:
    found = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not found:
        pytest.skip("no promtool here (set PROMTOOL, or see .ci/run)")
    return found


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_promtool_accepts_the_rules_and_their_tests() -> None:
    checked = run_promtool("check", "rules", ALERTS.name)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run_promtool("test", "rules", "alerts.test.yaml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.mark.parametrize("config", ["prometheus.yml", "kubernetes.yml"])
def test_promtool_accepts_the_prometheus_configuration(config: str) -> None:
    checked = run_promtool("check", "config", config)
    output = checked.stdout + checked.stderr
    if "field kubernetes_sd_configs not found" in output:
        # Debian's Prometheus is built without Kubernetes discovery.
        pytest.skip("this promtool has no Kubernetes service discovery")
    assert checked.returncode == 0, output


# ----------------------------------------------------------------------
# Grafana: the dashboard


def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return document


def panels(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in document["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # a collapsed row's
    return found


def dashboard_queries(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (panel["title"], target["expr"])
        for panel in panels(document)
        for target in panel.get("targets", [])
    ]


def test_the_dashboard_is_a_grafana_dashboard() -> None:
    document = dashboard()
    assert isinstance(document["schemaVersion"], int)
    assert document["schemaVersion"] >= 36
    assert document["uid"] and document["title"]
    (variable,) = document["templating"]["list"]
    assert (variable["name"], variable["type"], variable["query"]) == (
        "datasource",
        "datasource",
        "prometheus",
    )
    ids = [panel["id"] for panel in panels(document)]
    assert len(ids) == len(set(ids))
    taken: set[tuple[int, int]] = set()
    for panel in panels(document):
        title, grid = panel["title"], panel["gridPos"]
        assert panel["type"] in ("row", "timeseries", "stat"), title
        assert grid["x"] + grid["w"] <= 24, title
        cells = {
            (grid["x"] + dx, grid["y"] + dy)
            for dx in range(grid["w"])
            for dy in range(grid["h"])
        }
        assert not cells & taken, f"{title} overlaps another panel"
        taken |= cells
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], title
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), title
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], title
            assert target["expr"].strip(), title


def test_the_dashboard_queries_only_the_contract() -> None:
    problems = [
        f"{title}: {problem}"
        for title, query in dashboard_queries(dashboard())
        for problem in query_problems(query)
    ]
    assert problems == []


def test_the_dashboard_shows_every_metric_of_the_contract() -> None:
    shown = set().union(*(metrics_used(q) for _, q in dashboard_queries(dashboard())))
    assert set(CONTRACT) - shown == set()


def test_grafana_is_provisioned_with_the_dashboard() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    (datasources,) = documents(provisioning / "datasources" / "prometheus.yaml")
    (datasource,) = datasources["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    (providers,) = documents(provisioning / "dashboards" / "ticketing.yaml")
    (provider,) = providers["providers"]
    # In the container: where compose mounts each directory of deploy/.
    mounted = {
        target: host
        for host, target, *_ in (
            volume.split(":") for volume in compose()["services"]["grafana"]["volumes"]
        )
    }
    assert mounted[provider["options"]["path"]] == "./grafana/dashboards"
    assert mounted["/etc/grafana/provisioning"] == "./grafana/provisioning"


# ----------------------------------------------------------------------
# The checks can fail: each kind, on a copy broken on purpose.


def test_a_misspelt_or_missing_field_fails_the_schema_check() -> None:
    api = copy.deepcopy(objects_of_kind("Deployment")["ticketing-api"])
    container = main_container(api)
    container["readynessProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(api, KUBERNETES_VERSIONS[0], strict=True)
    api = copy.deepcopy(objects_of_kind("Deployment")["ticketing-api"])
    del api["spec"]["selector"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(api, KUBERNETES_VERSIONS[0], strict=True)


def test_a_wrong_compose_file_fails_the_specification() -> None:
    broken = copy.deepcopy(compose())
    # A mapping of its own: the services share theirs through YAML aliases.
    broken["services"]["api"]["depends_on"] = {"migrate": {"condition": "finished"}}
    errors = compose_errors(broken)
    assert errors and all(e.startswith("services.api") for e in errors)
    broken = copy.deepcopy(compose())
    broken["services"]["relay"]["restart_policy"] = "always"
    (error,) = compose_errors(broken)
    assert "restart_policy" in error


def test_a_query_outside_the_contract_is_reported() -> None:
    assert query_problems("rate(ticketing_http_request_total[5m])")
    assert query_problems("sum by (tenant) (rate(ticketing_http_requests_total[5m]))")
    assert query_problems(
        'ticketing_notification_deliveries_total{outcome="dead-lettered"}'
    )
    assert query_problems("sum(rate(ticketing_relay_published_total[5m])")
    assert query_problems("rate(ticketing_relay_published_total[$range])")
    assert not query_problems(
        "histogram_quantile(0.9, sum by (le, route)"
        " (rate(ticketing_http_request_duration_seconds_bucket[$__rate_interval])))"
    )


def test_a_badly_indented_file_fails_yamllint() -> None:
    config = YamlLintConfig(file=str(ROOT / ".yamllint.yaml"))
    text = "services:\n  api:\n     image: x\n  api:\n    image: y\n"
    rules = {p.rule for p in linter.run(text, config)}
    assert {"indentation", "key-duplicates"} <= rules


def test_a_command_the_cli_lacks_is_refused() -> None:
    with pytest.raises(AssertionError):
        resolve_cli(["worker", "mailer"])
    with pytest.raises(Exception, match="No such option"):
        resolve_cli(["api", "--processes", "2"])
    assert resolve_cli(["api", "--workers", "2"]) == ["api"]


def test_a_setting_the_service_refuses_is_reported(clean_environment: None) -> None:
    assert settings_problem({"TICKETING_READY_WORKERS": "projections,mailer"})
    assert settings_problem({"TICKETING_SMTP_PORT": "tcp://10.0.0.1:25"})

"""deploy/: the Kubernetes manifests and the compose file are what the launcher's settings give
(drift fails here), valid against the Kubernetes schema (offline, bundled schemas), lint-clean,
and take every secret by reference."""

from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

from deploy import render
from service.edge.envoy import envoy_binary
from service.generated import DESCRIPTOR_SET
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES_VERSION = "1.37.0"
NOT_YET_SETTINGS = {"DATABASE_URL"}  # PostgreSQL for the signal history (issue 12): wired, not read yet


def manifests() -> list[dict[str, Any]]:
    return [doc for path in sorted(render.KUBERNETES.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())]


def of_kind(kind: str, component: str) -> dict[str, Any]:
    (found,) = [
        doc
        for doc in manifests()
        if doc["kind"] == kind and doc["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    return found


def server_container() -> dict[str, Any]:
    container: dict[str, Any] = of_kind("Deployment", "server")["spec"]["template"]["spec"]["containers"][0]
    return container


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(render.COMPOSE.read_text())
    return document


def test_committed_files_are_what_the_settings_render() -> None:
    stale = [str(path) for path, text in render.rendered().items() if not path.exists() or path.read_text() != text]
    assert not stale, f"out of date: {stale}: run `python -m deploy.render` and commit the result"


def test_manifests_are_valid_kubernetes_objects() -> None:
    kinds = []
    for document in manifests():
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        kinds.append(document["kind"])
    expected = ["ConfigMap", "Deployment", "Service", "PodDisruptionBudget"] * 2 + ["HorizontalPodAutoscaler"]
    assert sorted(kinds) == sorted(expected)


def test_a_schema_violation_is_caught() -> None:
    """The validator is not a rubber stamp: a probe with a string port and an unknown field fail."""
    deployment = of_kind("Deployment", "server")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"]["port"] = "grpc"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    deployment = of_kind("Deployment", "server")
    deployment["spec"]["replicaz"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_yaml_is_lint_clean() -> None:
    config = YamlLintConfig(file=str(ROOT / "deploy" / ".yamllint"))
    files = [*render.rendered(), ROOT / "deploy" / ".yamllint"]
    problems = [
        f"{path.relative_to(ROOT)}:{problem.line}: {problem.desc}"
        for path in files
        for problem in linter.run(path.read_text(), config, str(path))
    ]
    assert not problems, problems


@pytest.mark.parametrize("name", ["kubernetes", "compose"])
def test_rendered_envoy_configs_are_valid(name: str, tmp_path: Path) -> None:
    if name == "kubernetes":
        text = of_kind("ConfigMap", "envoy")["data"]["envoy.yaml"]
        assert "type: STRICT_DNS" in text and f"address: '{render.GRPC_SERVICE}'" in text
    else:
        text = render.COMPOSE_ENVOY.read_text()
        assert "address: 'server-1'" in text and "address: 'server-2'" in text
    # The image's descriptor path, swapped for this checkout's, so Envoy can load it.
    config = tmp_path / "envoy.yaml"
    config.write_text(text.replace(str(render.IMAGE_DESCRIPTOR), str(DESCRIPTOR_SET)))
    checked = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(config)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_secrets_are_referenced_never_inline() -> None:
    secret_names = {variable for variable, _ in render.SECRETS}
    env = {item["name"]: item for item in server_container()["env"]}
    assert set(env) == secret_names
    for name, item in env.items():
        assert "value" not in item, name
        reference = item["valueFrom"]["secretKeyRef"]
        assert reference == {"name": render.SECRET_NAME, "key": name, "optional": reference["optional"]}
    # Missing a required secret: the pod does not start (CreateContainerConfigError naming the key,
    # which is the variable's name).
    assert {name for name, item in env.items() if not item["valueFrom"]["secretKeyRef"]["optional"]} == {
        "SIGNAL_API_KEYS",
        "REDIS_URL",
    }
    config = of_kind("ConfigMap", "server")["data"]
    assert not secret_names & set(config)
    # Compose: required secrets stop `docker compose up` naming the variable; none has a default.
    for service in ("server-1", "server-2"):
        environment = compose()["services"][service]["environment"]
        assert environment["SIGNAL_API_KEYS"].startswith("${SIGNAL_API_KEYS:?")
        for key in ("COINGLASS_API_KEY", "COINAPI_KEY", "LUNARCRUSH_API_KEY"):
            assert environment[key] == f"${{{key}:-}}"
    assert compose()["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


def test_every_variable_is_a_setting_the_launcher_reads() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    names = set(of_kind("ConfigMap", "server")["data"]) | {item["name"] for item in server_container()["env"]}
    for service in ("server-1", "server-2"):
        names |= set(compose()["services"][service]["environment"])
    assert names - fields <= NOT_YET_SETTINGS, names - fields - NOT_YET_SETTINGS


def test_probes_drain_and_ports_follow_the_settings() -> None:
    config = of_kind("ConfigMap", "server")["data"]
    # The ConfigMap loads through the same Settings class as the launcher, and changes only what
    # render.DEPLOY_SETTINGS says a deployment sets differently.
    loaded = Settings(_env_file=None, **{name.lower(): value for name, value in config.items()})  # type: ignore[call-arg]
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    changed = {k for k, v in loaded.model_dump().items() if v != defaults.model_dump()[k]}
    assert changed == set(render.DEPLOY_SETTINGS)
    container = server_container()
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["grpc"] == {"port": loaded.grpc_port, "service": ""}
    assert container["ports"][0]["containerPort"] == loaded.grpc_port
    assert container["lifecycle"]["preStop"]["sleep"]["seconds"] == math.ceil(loaded.shutdown_drain_seconds)
    spec = of_kind("Deployment", "server")["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] > 2 * loaded.shutdown_drain_seconds + loaded.shutdown_grace_seconds
    service = of_kind("Service", "server")
    assert service["spec"]["clusterIP"] == "None" and service["metadata"]["name"] == render.GRPC_SERVICE
    envoy = of_kind("Deployment", "envoy")["spec"]["template"]["spec"]
    assert envoy["containers"][0]["ports"][0]["containerPort"] == loaded.port
    assert compose()["services"]["envoy"]["ports"] == [f"{loaded.port}:{loaded.port}"]
    hpa = of_kind("HorizontalPodAutoscaler", "server")["spec"]
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"


def test_prometheus_can_scrape_every_replica() -> None:
    config = of_kind("ConfigMap", "server")["data"]
    assert config["METRICS_HOST"] == "0.0.0.0"  # not loopback: reachable from the cluster
    template = of_kind("Deployment", "server")["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == config["METRICS_PORT"]
    assert {"name": "metrics", "containerPort": int(config["METRICS_PORT"])} in server_container()["ports"]
    for server in ("server-1", "server-2"):
        assert compose()["services"][server]["environment"]["METRICS_HOST"] == "0.0.0.0"
    # Envoy's GET /metrics reaches a replica by the servers' DNS name, not its own loopback.
    envoy = yaml.safe_load(of_kind("ConfigMap", "envoy")["data"]["envoy.yaml"])
    (metrics,) = [c for c in envoy["static_resources"]["clusters"] if c["name"] == "metrics"]
    endpoint = metrics["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert metrics["type"] == "STRICT_DNS"
    assert endpoint == {"address": render.GRPC_SERVICE, "port_value": int(config["METRICS_PORT"])}


def test_memory_request_covers_the_measured_rss() -> None:
    """The README's benchmark table measures the server's RSS; the request must hold the largest."""
    table = (ROOT / "README.md").read_text().split("| benchmark | measured | target |", 1)[1].split("\n\n", 1)[0]
    measured = [line.split("|")[2] for line in table.splitlines() if "RSS" in line]  # not the target column
    rss = [int(mb) for cell in measured for mb in re.findall(r"(\d+) MB", cell)]
    assert rss, "no RSS figure found in the README's benchmark table"
    request = server_container()["resources"]["requests"]["memory"]
    # Headroom: a quarter above the largest figure measured (84-88 MB today).
    assert request.endswith("Mi") and int(request[:-2]) * 1.048576 >= max(rss) * 1.25, (request, rss)
    assert "cpu" in server_container()["resources"]["requests"]  # the HPA computes utilisation from it


def _cache_controls(envoy_yaml: str) -> set[str]:
    """The Cache-Control values of the Lua filter's rules in a rendered Envoy config."""
    return set(re.findall(r'"((?:public|private), [^"]+)"', envoy_yaml))


def test_deployments_mark_answers_private_because_both_require_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both deployments refuse to start without SIGNAL_API_KEYS, so their answers are keyed: a cache in
    front must not share them (`private`). Rendered both ways; this machine's environment changes nothing."""
    assert render.KEYED is True
    committed = [of_kind("ConfigMap", "envoy")["data"]["envoy.yaml"], render.COMPOSE_ENVOY.read_text()]
    for text in committed:
        values = _cache_controls(text)
        assert values and all(v.startswith("private, ") for v in values), values
    settings = render.deploy_settings()
    upstreams = [(render.GRPC_SERVICE, settings.grpc_port)]
    keyless = _cache_controls(render.envoy_config(settings, upstreams, keyed=False))
    keyed = _cache_controls(render.envoy_config(settings, upstreams, keyed=True))
    assert keyless and all(v.startswith("public, ") for v in keyless), keyless
    assert keyed == {v.replace("public, ", "private, ") for v in keyless}
    # The rendering reads the settings it is given, not the renderer's environment (or .env).
    monkeypatch.setenv("SIGNAL_API_KEYS", "")
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", "https://elsewhere.example")
    assert render.envoy_config(settings, upstreams) == committed[0]


def test_envoy_protects_itself_within_its_pod() -> None:
    """The overload manager's heap limit sits below the Envoy pod's memory limit (it sheds load before
    the kernel kills it), and every rendered Envoy bounds connections and header time."""
    limit = render.ENVOY_RESOURCES["limits"]["memory"]
    assert limit.endswith("Mi")
    envoy = yaml.safe_load(of_kind("ConfigMap", "envoy")["data"]["envoy.yaml"])
    monitors = {m["name"]: m["typed_config"] for m in envoy["overload_manager"]["resource_monitors"]}
    heap = monitors["envoy.resource_monitors.fixed_heap"]["max_heap_size_bytes"]
    assert heap <= int(limit[:-2]) * 1024 * 1024 * 0.8, (heap, limit)
    assert monitors["envoy.resource_monitors.global_downstream_max_connections"]["max_active_downstream_connections"]
    for text in (of_kind("ConfigMap", "envoy")["data"]["envoy.yaml"], render.COMPOSE_ENVOY.read_text()):
        assert "request_headers_timeout: 10s" in text and "max_concurrent_streams: 100" in text

"""deploy/kubernetes/: every manifest loads and is wired together (probes on the ports the processes listen on,
secrets that exist, a job YAML that `mindfed.config.load` validates, the flags the server processes accept); with
kubernetes-validate installed, each resource also validates against the Kubernetes schema."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import yaml

from mindfed.cli import scheduler as scheduler_cli
from mindfed.cli.server_process import add_process_arguments
from mindfed.config import load

MANIFESTS = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"


def documents() -> list[dict[str, Any]]:
    docs = [doc for path in sorted(MANIFESTS.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())]
    return [doc for doc in docs if doc]


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in documents() if doc["kind"] == kind}


def flag_values(args: list[str]) -> dict[str, str]:
    return dict(arg[2:].split("=", 1) for arg in args if arg.startswith("--"))


def only_container(workload: dict[str, Any]) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_the_expected_resources_are_there() -> None:
    kinds = sorted((doc["kind"], doc["metadata"]["name"]) for doc in documents())
    assert kinds == [("ConfigMap", "mindfed-config"), ("Deployment", "mindfed-scheduler"),
                     ("Secret", "mindfed-secrets"), ("Service", "mindfed-devices"), ("Service", "mindfed-scheduler"),
                     ("Service", "mindfed-servers"), ("StatefulSet", "mindfed-server")]


def test_selectors_match_pod_labels_and_services_select_pods() -> None:
    workloads = [*by_kind("Deployment").values(), *by_kind("StatefulSet").values()]
    pod_labels = [w["spec"]["template"]["metadata"]["labels"] for w in workloads]
    for workload, labels in zip(workloads, pod_labels, strict=True):
        assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for service in by_kind("Service").values():
        assert any(service["spec"]["selector"].items() <= labels.items() for labels in pod_labels), service


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def assert_probes_on(container: dict[str, Any], port: int) -> None:
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port}
    assert port in [p["containerPort"] for p in container["ports"]]


def test_scheduler_probes_its_manage_port_and_its_args_parse() -> None:
    container = only_container(by_kind("Deployment")["mindfed-scheduler"])
    assert container["args"][0] == "scheduler"
    parser = argparse.ArgumentParser()
    scheduler_cli.add_arguments(parser)
    args = parser.parse_args(container["args"][1:])
    assert_probes_on(container, port_of(args.scheduler_manage_address))
    service = by_kind("Service")["mindfed-scheduler"]
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [port_of(args.scheduler_manage_address)]


def test_servers_probe_the_device_port_advertise_the_pod_ip_and_hand_over() -> None:
    statefulset = by_kind("StatefulSet")["mindfed-server"]
    container = only_container(statefulset)
    assert container["command"] == ["python", "-m", "mindfed.cli.server_process"]
    parser = argparse.ArgumentParser()
    add_process_arguments(parser)
    args = parser.parse_args(container["args"])  # every flag is one the server process takes
    http_port = port_of(args.http_server_address)
    assert_probes_on(container, http_port)
    assert args.on_stop == "hand_over"
    assert args.tcp_server_port != 0, "a fixed node port, so Services and NetworkPolicies can name it"
    assert args.tcp_server_ip == "$(POD_IP)"
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    pod = statefulset["spec"]["template"]["spec"]
    assert "preStop" in container["lifecycle"]
    assert pod["terminationGracePeriodSeconds"] >= 30  # noqa: PLR2004 - room to hand over after the preStop pause
    services = by_kind("Service")
    headless = services[statefulset["spec"]["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None"
    assert [p["targetPort"] for p in headless["spec"]["ports"]] == [args.tcp_server_port]
    assert [p["targetPort"] for p in services["mindfed-devices"]["spec"]["ports"]] == [http_port]


def test_every_secret_reference_names_a_defined_key() -> None:
    secrets = {name: set(doc.get("stringData", {})) | set(doc.get("data", {}))
               for name, doc in by_kind("Secret").items()}
    refs = [(container["name"], e["name"], e["valueFrom"]["secretKeyRef"])
            for kind in ("Deployment", "StatefulSet") for workload in by_kind(kind).values()
            for container in workload["spec"]["template"]["spec"]["containers"]
            for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})]
    assert {name for _, name, _ in refs} >= {"MINDFED_REDIS_PASSWORD", "MINDFED_OPERATOR_TOKEN",
                                             "MINDFED_SSL_SERVER_PASSWORD", "MINDFED_SSL_CLIENT_PASSWORD"}
    for container, env, ref in refs:
        assert ref["key"] in secrets.get(ref["name"], set()), (container, env, ref)


def test_configmaps_mounted_exist_and_the_job_yaml_validates(tmp_path: Path) -> None:
    configmaps = by_kind("ConfigMap")
    for kind in ("Deployment", "StatefulSet"):
        for workload in by_kind(kind).values():
            for volume in workload["spec"]["template"]["spec"]["volumes"]:
                if "configMap" in volume:
                    assert volume["configMap"]["name"] in configmaps
    job = tmp_path / "job.yaml"
    job.write_text(configmaps["mindfed-config"]["data"]["job.yaml"])
    config = load(job)
    assert config.fl_name == "Lenet"
    assert config.distributed_cache.address == "redis://redis:6379"
    assert not config.distributed_cache.is_embedded


@pytest.mark.parametrize("doc", documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_kubernetes_schema(doc: dict[str, Any]) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)

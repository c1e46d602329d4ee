"""Offline contract checks of the deployment manifests.

Covers deploy/Dockerfile, deploy/entrypoint.sh, docker-compose.yml, k8s/base and the five
k8s/overlays/<city>. Needs only PyYAML (and bash for the entrypoint): no Docker, no cluster,
no network. The Kubernetes overlays are resolved by the small kustomize resolver below
(resources, namespace, labels, images, patches); if `kubectl` or `kustomize` is on PATH its
output is also compared with the resolver's.

Adding a nameko service = k8s/base/<service>.yaml + a line in k8s/base/kustomization.yaml +
`<service>-<city>` in docker-compose.yml; these tests then check it like the others.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
BASE = K8S / "base"
OVERLAYS = K8S / "overlays"
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
ENABLED_PLUGINS = ROOT / "deploy" / "rabbitmq" / "enabled_plugins"
INIT_SQL = ROOT / "deploy" / "postgres" / "init.sql"

# City order matters: gateway host ports 8101..8105 follow it.
CITIES = ("taicang", "kunshan", "changshu", "jiading", "baoshan")
GATEWAY_HOST_PORTS = {city: 8101 + i for i, city in enumerate(CITIES)}
REQUIRED_SERVICES = {"leads", "gateway"}
SECRET_NAME = "liandong-secrets"
CONFIG_NAME = "liandong-config"
SECRET_KEYS = {"AMQP_URI", "DATABASE_URL", "RABBIT_MANAGEMENT_URL", "APIKEY_PEPPER"}
CONFIG_KEYS = {"CITY", "WEB_SERVER_ADDRESS", "LOG_LEVEL"}
HTTP_PORT = 8000
PART_OF = "app.kubernetes.io/part-of"
COMPONENT = "app.kubernetes.io/component"
CLUSTER_SCOPED_KINDS = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PriorityClass",
    "StorageClass",
    "PersistentVolume",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
CREDENTIALS_IN_URL = re.compile(r"://[^/\s:@]+:[^/\s@]+@")


# ---------------------------------------------------------------------------
# Helpers: YAML loading and a minimal kustomize
# ---------------------------------------------------------------------------


def load_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def res_id(doc: dict[str, Any]) -> tuple[str, str, str, str]:
    meta = doc.get("metadata") or {}
    return (doc["apiVersion"], doc["kind"], meta.get("namespace", ""), meta["name"])


KUSTOMIZATION_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "labels",
    "images",
    "patches",
}


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """Resolve a kustomization directory the way `kustomize build` does, for the
    features this repository uses. Unsupported fields fail loudly."""
    kust = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    unsupported = set(kust) - KUSTOMIZATION_FIELDS
    assert not unsupported, f"{directory}: extend the test resolver for {sorted(unsupported)}"
    docs: list[dict[str, Any]] = []
    for entry in kust.get("resources", []):
        path = (directory / entry).resolve()
        assert path.exists(), f"{directory}/kustomization.yaml: missing resource {entry}"
        docs += kustomize(path) if path.is_dir() else load_docs(path)
    ids = [res_id(d) for d in docs]
    assert len(ids) == len(set(ids)), f"{directory}: duplicate resources {ids}"
    for spec in kust.get("patches", []):
        apply_patch(directory, docs, spec)
    if kust.get("namespace"):
        for doc in docs:
            if doc["kind"] not in CLUSTER_SCOPED_KINDS:
                doc["metadata"]["namespace"] = kust["namespace"]
    for label in kust.get("labels", []):
        apply_labels(docs, label)
    for image in kust.get("images", []):
        apply_image(docs, image)
    return docs


def target_matches(doc: dict[str, Any], target: dict[str, Any]) -> bool:
    unsupported = set(target) - {"group", "version", "kind", "name", "namespace", "labelSelector"}
    assert not unsupported, f"extend the test resolver for patch target {sorted(unsupported)}"
    group, _, version = doc["apiVersion"].rpartition("/")
    meta = doc["metadata"]
    actual = {
        "group": group,
        "version": version,
        "kind": doc["kind"],
        "name": meta["name"],
        "namespace": meta.get("namespace", ""),
    }
    for key, want in target.items():
        if key == "labelSelector":
            if not label_selector_matches(want, meta.get("labels") or {}):
                return False
        elif not re.fullmatch(want, actual[key]):
            return False
    return True


def label_selector_matches(selector: str, labels: dict[str, str]) -> bool:
    for term in selector.split(","):
        key, sep, value = term.strip().partition("=")
        assert sep and "!" not in key, f"extend the test resolver for labelSelector {selector!r}"
        if labels.get(key) != value:
            return False
    return True


def apply_patch(directory: Path, docs: list[dict[str, Any]], spec: dict[str, Any]) -> None:
    text = spec["patch"] if "patch" in spec else (directory / spec["path"]).read_text("utf-8")
    patch = yaml.safe_load(text)
    target = spec.get("target") or {"kind": patch["kind"], "name": patch["metadata"]["name"]}
    hits = [i for i, doc in enumerate(docs) if target_matches(doc, target)]
    assert hits, f"{directory}: patch {spec.get('path') or target} matches no resource"
    for i in hits:
        doc = docs[i]
        if isinstance(patch, list):
            docs[i] = json6902(doc, patch)
        else:
            merged = strategic_merge(doc, patch)
            # As kustomize: a targeted patch never renames or re-kinds its target.
            merged["apiVersion"], merged["kind"] = doc["apiVersion"], doc["kind"]
            merged["metadata"]["name"] = doc["metadata"]["name"]
            docs[i] = merged


def merge_key(items: list[Any]) -> str | None:
    for key in ("mountPath", "containerPort", "name"):
        if items and all(isinstance(item, dict) and key in item for item in items):
            return key
    return None


def strategic_merge(base: Any, patch: Any) -> Any:
    """Strategic merge as Kubernetes does it for the lists used here: lists of objects
    merge on their key (mountPath, containerPort, name), other lists are replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = strategic_merge(out[key], value) if key in out else copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(patch, list):
        key = merge_key(base + patch)
        if key:
            # as kustomize orders them: the patch's items (merged into the base's item of the
            # same key), then the base's items the patch does not name
            named = {item[key] for item in patch}
            out = []
            for item in patch:
                same = [old for old in base if old[key] == item[key]]
                out.append(strategic_merge(same[0], item) if same else copy.deepcopy(item))
            out += [copy.deepcopy(old) for old in base if old[key] not in named]
            return out
    return copy.deepcopy(patch)


def json6902(doc: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"][1:].split("/")]
        parent: Any = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        if op["op"] == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        elif op["op"] in ("add", "replace"):
            value = copy.deepcopy(op["value"])
            if not isinstance(parent, list):
                parent[last] = value
            elif last == "-":
                parent.append(value)
            elif op["op"] == "add":
                parent.insert(int(last), value)
            else:
                parent[int(last)] = value
        else:
            raise AssertionError(f"extend the test resolver for JSON patch op {op['op']!r}")
    return doc


def apply_labels(docs: list[dict[str, Any]], label: dict[str, Any]) -> None:
    # Selectors of live Deployments are immutable: overlays must not change them.
    assert not label.get("includeSelectors"), "labels must not be added to selectors"
    pairs = label["pairs"]
    for doc in docs:
        doc["metadata"].setdefault("labels", {}).update(pairs)
        spec = doc.get("spec") or {}
        template = spec.get("template") if label.get("includeTemplates") else None
        if isinstance(template, dict) and "labels" in (template.get("metadata") or {}):
            template["metadata"]["labels"].update(pairs)


def split_image(ref: str) -> tuple[str, str]:
    name, _, digest = ref.partition("@")
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
        return name, tag
    return name, f"@{digest}" if digest else ""


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc["kind"] in WORKLOAD_KINDS:
        return doc["spec"]["template"]["spec"]
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(doc) or {}
    return spec.get("initContainers", []) + spec.get("containers", [])


def apply_image(docs: list[dict[str, Any]], image: dict[str, Any]) -> None:
    for doc in docs:
        for container in containers(doc):
            name, tag = split_image(container["image"])
            if name != image["name"]:
                continue
            new_name = image.get("newName", name)
            if "digest" in image:
                container["image"] = f"{new_name}@{image['digest']}"
            else:
                new_tag = image.get("newTag", tag.lstrip("@"))
                container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name


@functools.cache
def _resolved(directory: Path) -> tuple[dict[str, Any], ...]:
    return tuple(kustomize(directory))


def resolved(directory: Path) -> list[dict[str, Any]]:
    """Fresh copy of a resolved kustomization (cached resolution)."""
    return copy.deepcopy(list(_resolved(directory)))


def overlay(city: str) -> list[dict[str, Any]]:
    return resolved(OVERLAYS / city)


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in of_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def service_deployments(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Liandong nameko service Deployments by component (service) name."""
    out = {}
    for dep in of_kind(docs, "Deployment"):
        labels = dep["spec"]["template"]["metadata"]["labels"]
        if labels.get(PART_OF) == "liandong":
            out[labels[COMPONENT]] = dep
    return out


def base_services() -> set[str]:
    return set(service_deployments(resolved(BASE)))


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if not all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": labels.get(key) not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def pod_labels(doc: dict[str, Any]) -> dict[str, str]:
    return doc["spec"]["template"]["metadata"]["labels"]


def container_port(container: dict[str, Any], port: int | str) -> int | None:
    """Resolve a probe/Service port (number or name) against a container's ports."""
    for entry in container.get("ports", []):
        if port in (entry.get("name"), entry["containerPort"]):
            return entry["containerPort"]
    return port if isinstance(port, int) else None


def env_secret_refs(container: dict[str, Any]) -> dict[str, tuple[str, str]]:
    refs = {}
    for env in container.get("env", []):
        ref = (env.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            refs[env["name"]] = (ref["name"], ref["key"])
    return refs


def config_map_refs(container: dict[str, Any]) -> set[str]:
    return {e["configMapRef"]["name"] for e in container.get("envFrom", []) if "configMapRef" in e}


# ---------------------------------------------------------------------------
# Every YAML parses; layout of k8s/
# ---------------------------------------------------------------------------


def all_yaml_files() -> list[Path]:
    return sorted([*K8S.rglob("*.yaml"), *K8S.rglob("*.yml"), COMPOSE_FILE])


def test_every_deploy_yaml_file_parses() -> None:
    files = all_yaml_files()
    assert COMPOSE_FILE in files and len(files) > 10
    for path in files:
        docs = load_docs(path)
        assert docs, f"{path} is empty"
        if path.is_relative_to(K8S):
            for doc in docs:
                assert isinstance(doc, dict), path
                assert doc.get("apiVersion") and doc.get("kind"), f"{path}: apiVersion/kind"
                if doc["kind"] != "Kustomization":
                    assert doc.get("metadata", {}).get("name"), f"{path}: metadata.name"


def test_overlays_are_exactly_the_five_cities() -> None:
    from contracts.reference import CITY_CODES

    assert tuple(CITY_CODES) == CITIES
    assert sorted(p.name for p in OVERLAYS.iterdir() if p.is_dir()) == sorted(CITIES)


def test_base_kustomization_lists_every_manifest_file() -> None:
    kust = yaml.safe_load((BASE / "kustomization.yaml").read_text(encoding="utf-8"))
    patches = {p["path"] for p in kust.get("patches", []) if "path" in p}
    used = set(kust.get("resources", [])) | patches
    files = {p.name for p in BASE.glob("*.y*ml")} - {"kustomization.yaml"}
    assert files == used, "every k8s/base manifest must be referenced by kustomization.yaml"


def test_base_has_the_required_services() -> None:
    services = base_services()
    assert REQUIRED_SERVICES <= services, services
    for name in services:
        assert (BASE / f"{name}.yaml").is_file(), f"one file per service: k8s/base/{name}.yaml"


# ---------------------------------------------------------------------------
# Kubernetes: per-city overlays
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("city", CITIES)
def test_overlay_namespace_city_and_database(city: str) -> None:
    docs = overlay(city)
    namespace = f"liandong-{city}"
    assert one(docs, "Namespace")["metadata"]["name"] == namespace
    for doc in docs:
        if doc["kind"] not in CLUSTER_SCOPED_KINDS:
            assert doc["metadata"]["namespace"] == namespace, res_id(doc)
        assert doc["metadata"]["labels"]["city"] == city, res_id(doc)
    for doc in docs:
        if pod_spec(doc) is not None:
            assert pod_labels(doc)["city"] == city, res_id(doc)

    config = one(docs, "ConfigMap", CONFIG_NAME)["data"]
    assert set(config) >= CONFIG_KEYS
    assert config["CITY"] == city
    assert config["WEB_SERVER_ADDRESS"] == f"0.0.0.0:{HTTP_PORT}"
    assert config["LOG_LEVEL"]
    assert config["QUEUE_TYPE"] == "quorum", "replicated queues in production"

    cluster = one(docs, "Cluster", "liandong-pg")
    assert cluster["spec"]["bootstrap"]["initdb"]["database"] == f"liandong_{city}"


@pytest.mark.parametrize("city", CITIES)
def test_overlay_pins_the_image_tag(city: str) -> None:
    images = {c["image"] for d in overlay(city) for c in containers(d)}
    assert images, "no containers"
    for image in images:
        name, tag = split_image(image)
        assert name.rsplit("/", 1)[-1] == "liandong", image
        assert tag and tag != "latest", f"{image}: the overlay must pin a release tag"


@pytest.mark.parametrize("city", CITIES)
def test_overlay_has_every_base_service(city: str) -> None:
    assert set(service_deployments(overlay(city))) == base_services()


@pytest.mark.parametrize("city", CITIES)
def test_service_deployments_are_production_ready(city: str) -> None:
    deployments = service_deployments(overlay(city))
    assert REQUIRED_SERVICES <= set(deployments)
    for service, dep in deployments.items():
        where = f"{city}/{service}"
        spec = dep["spec"]
        assert spec["replicas"] == 2, where
        assert selector_matches(spec["selector"], pod_labels(dep)), where
        labels = pod_labels(dep)
        assert labels[PART_OF] == "liandong" and labels["app.kubernetes.io/name"], where

        pod = spec["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] == 30, where
        assert len(pod["containers"]) == 1, where
        (container,) = pod["containers"]
        assert "command" not in container, f"{where}: keep the image ENTRYPOINT (tini)"
        assert container["args"] == ["service", service], where
        assert container_port(container, "http") == HTTP_PORT, where

        for probe, path in (
            ("livenessProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
            ("startupProbe", "/healthz"),
        ):
            get = container[probe]["httpGet"]
            assert get["path"] == path, f"{where}: {probe}"
            assert container_port(container, get["port"]) == HTTP_PORT, f"{where}: {probe}"

        resources = container["resources"]
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[bound]), f"{where}: {bound}"

        pod_sc = pod.get("securityContext", {})
        sc = container["securityContext"]
        assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True, where
        assert sc.get("runAsUser", pod_sc.get("runAsUser", 1)) != 0, where
        assert sc["readOnlyRootFilesystem"] is True, where
        assert sc["allowPrivilegeEscalation"] is False, where
        assert "ALL" in sc["capabilities"]["drop"], where
        # A read-only root filesystem still needs a writable /tmp.
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        tmp = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
        assert tmp and "emptyDir" in volumes[tmp[0]["name"]], f"{where}: /tmp emptyDir"

        assert config_map_refs(container) == {CONFIG_NAME}, where
        refs = env_secret_refs(container)
        assert {k: v[0] for k, v in refs.items()} == dict.fromkeys(SECRET_KEYS, SECRET_NAME), where
        assert all(name == key for name, (_, key) in refs.items()), where

        annotations = spec["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", where
        assert annotations["prometheus.io/port"] == str(HTTP_PORT), where
        assert annotations["prometheus.io/path"] == "/metrics", where


@pytest.mark.parametrize("city", CITIES)
def test_each_deployment_has_its_own_pdb_and_hpa(city: str) -> None:
    docs = overlay(city)
    deployments = service_deployments(docs)
    pdbs, hpas = of_kind(docs, "PodDisruptionBudget"), of_kind(docs, "HorizontalPodAutoscaler")
    for service, dep in deployments.items():
        labels = pod_labels(dep)
        matching = [p for p in pdbs if selector_matches(p["spec"]["selector"], labels)]
        assert len(matching) == 1, f"{service}: one PodDisruptionBudget"
        assert matching[0]["apiVersion"] == "policy/v1"
        assert matching[0]["spec"]["minAvailable"] == 1
        for other, other_dep in deployments.items():
            if other != service:
                assert not selector_matches(matching[0]["spec"]["selector"], pod_labels(other_dep))

        name = dep["metadata"]["name"]
        scaling = [h for h in hpas if h["spec"]["scaleTargetRef"]["name"] == name]
        assert len(scaling) == 1, f"{service}: one HorizontalPodAutoscaler"
        hpa = scaling[0]
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert hpa["spec"]["scaleTargetRef"]["apiVersion"] == "apps/v1"
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
        cpu = [m["resource"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
        assert cpu == [{"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}]
        # HPA needs CPU requests to compute utilisation.
        assert dep["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"]
    assert len(pdbs) == len(hpas) == len(deployments)


@pytest.mark.parametrize("city", CITIES)
def test_services_select_deployment_pods(city: str) -> None:
    docs = overlay(city)
    deployments = service_deployments(docs)
    covered = set()
    for svc in of_kind(docs, "Service"):
        where = svc["metadata"]["name"]
        selector = svc["spec"].get("selector")
        assert selector, f"{where}: Service without selector"
        hits = [
            s
            for s, d in deployments.items()
            if selector_matches({"matchLabels": selector}, pod_labels(d))
        ]
        assert len(hits) == 1, f"{where}: selects {hits}"
        container = deployments[hits[0]]["spec"]["template"]["spec"]["containers"][0]
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert container_port(container, target) == HTTP_PORT, f"{where}: {port}"
        covered.add(hits[0])
    assert covered == set(deployments), "every service needs a (metrics) Service"

    gateway = one(docs, "Service", "gateway")
    assert selector_matches(
        {"matchLabels": gateway["spec"]["selector"]}, pod_labels(deployments["gateway"])
    )
    assert [p["port"] for p in gateway["spec"]["ports"]] == [80]
    for svc in of_kind(docs, "Service"):
        if svc is not gateway:
            assert svc["spec"].get("clusterIP") == "None", "non-gateway Services are headless"


@pytest.mark.parametrize("city", CITIES)
def test_jobs_migrate_and_topology(city: str) -> None:
    docs = overlay(city)
    pg = one(docs, "Cluster")["metadata"]["name"]
    rabbit = one(docs, "RabbitmqCluster")["metadata"]["name"]
    # The liandong CLI (liandong/settings.py) takes servers by parts: hosts are the operators'
    # Services, credentials the Secrets the operators generate.
    expected = {
        "migrate": (
            {"DATABASE_URL": SECRET_NAME, "PG_USER": f"{pg}-app", "PG_PASSWORD": f"{pg}-app"},
            {"PG_HOST": f"{pg}-rw"},
        ),
        "topology": (
            {
                "RABBIT_MANAGEMENT_URL": SECRET_NAME,
                "RABBIT_USER": f"{rabbit}-default-user",
                "RABBIT_PASSWORD": f"{rabbit}-default-user",
            },
            {"RABBIT_HOST": rabbit},
        ),
    }
    for name, (secrets, values) in expected.items():
        job = one(docs, "Job", name)
        pod = job["spec"]["template"]["spec"]
        assert pod["restartPolicy"] in ("Never", "OnFailure")
        (container,) = pod["containers"]
        assert "command" not in container
        assert container["args"] == [name]
        assert config_map_refs(container) == {CONFIG_NAME}
        refs = env_secret_refs(container)
        assert {k: refs[k][0] for k in secrets if k in refs} == secrets, name
        literal = {e["name"]: e["value"] for e in container["env"] if "value" in e}
        assert values.items() <= literal.items(), name
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])


def test_no_secret_values_in_base() -> None:
    kust = yaml.safe_load((BASE / "kustomization.yaml").read_text(encoding="utf-8"))
    assert "secretGenerator" not in kust
    docs = resolved(BASE)
    for doc in docs:
        assert doc["kind"] != "Secret", f"{res_id(doc)}: Secrets come from the operator"
        for container in containers(doc):
            for env in container.get("env", []):
                if "value" in env:
                    assert env["name"] not in SECRET_KEYS, env
                    assert not re.search(r"PASS|SECRET|TOKEN|PEPPER|KEY(?!_DIR)", env["name"]), env
    for config in of_kind(docs, "ConfigMap"):
        assert not set(config.get("data", {})) & SECRET_KEYS
    for path in BASE.glob("*.yaml"):
        assert not CREDENTIALS_IN_URL.search(path.read_text(encoding="utf-8")), path


def test_rabbitmq_cluster_has_shovel_and_quorum_default() -> None:
    cluster = one(resolved(BASE), "RabbitmqCluster")
    assert cluster["apiVersion"] == "rabbitmq.com/v1beta1"
    spec = cluster["spec"]
    assert spec["replicas"] == 3
    assert {"rabbitmq_shovel", "rabbitmq_shovel_management"} <= set(
        spec["rabbitmq"]["additionalPlugins"]
    )
    conf = {}
    for line in spec["rabbitmq"]["additionalConfig"].splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, sep, value = line.partition("=")
            assert sep, f"not a rabbitmq.conf line: {line!r}"
            conf[key.strip()] = value.strip()
    assert conf["default_queue_type"] == "quorum"
    assert conf["queue_master_locator"]
    assert {"cpu", "memory"} <= set(spec["resources"]["requests"])
    assert {"cpu", "memory"} <= set(spec["resources"]["limits"])
    assert spec["persistence"]["storage"]


def test_cloudnativepg_cluster() -> None:
    cluster = one(resolved(BASE), "Cluster", "liandong-pg")
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    spec = cluster["spec"]
    assert spec["instances"] == 3
    assert spec["bootstrap"]["initdb"] == {"database": "liandong", "owner": "liandong"}
    assert spec["storage"]["size"]


# ---------------------------------------------------------------------------
# Kubernetes: network policies, evaluated
# ---------------------------------------------------------------------------


class Pod(NamedTuple):
    namespace: str
    labels: dict[str, str]


def namespace_labels(namespace: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": namespace}


def policy_types(policy: dict[str, Any]) -> set[str]:
    spec = policy["spec"]
    return set(spec.get("policyTypes") or ["Ingress"] + (["Egress"] if "egress" in spec else []))


def peer_matches(peer: dict[str, Any], policy_ns: str, other: Pod | None) -> bool:
    if "ipBlock" in peer:
        return other is None  # ipBlocks stand for addresses outside the cluster here
    if other is None:
        return False
    if "namespaceSelector" in peer:
        ns_ok = selector_matches(peer["namespaceSelector"], namespace_labels(other.namespace))
    else:
        ns_ok = other.namespace == policy_ns
    return ns_ok and selector_matches(peer.get("podSelector") or {}, other.labels)


def port_matches(ports: list[dict[str, Any]] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        start = entry.get("port")
        if start is None or start == port or start <= port <= entry.get("endPort", start):
            return True
    return False


def direction_allowed(
    policies, direction: str, subject: Pod, other: Pod | None, port: int, protocol: str
) -> bool:
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [
        p
        for p in policies
        if p["metadata"]["namespace"] == subject.namespace
        and direction in policy_types(p)
        and selector_matches(p["spec"]["podSelector"], subject.labels)
    ]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key)
            peer_ok = peers is None or any(
                peer_matches(peer, policy["metadata"]["namespace"], other) for peer in peers
            )
            if peer_ok and port_matches(rule.get("ports"), port, protocol):
                return True
    return False


def connection_allowed(
    policies, src: Pod | None, dst: Pod | None, port: int, protocol: str = "TCP"
) -> bool:
    """None stands for an address outside the cluster."""
    egress = src is None or direction_allowed(policies, "Egress", src, dst, port, protocol)
    ingress = dst is None or direction_allowed(policies, "Ingress", dst, src, port, protocol)
    return egress and ingress


@pytest.mark.parametrize("city", CITIES)
def test_network_policies(city: str) -> None:
    docs = overlay(city)
    ns = f"liandong-{city}"
    policies = of_kind(docs, "NetworkPolicy")
    default_deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] in ({}, {"matchLabels": {}})
        and "Ingress" in policy_types(p)
        and not p["spec"].get("ingress")
    ]
    assert default_deny, "default-deny ingress policy"

    services = {s: Pod(ns, pod_labels(d)) for s, d in service_deployments(docs).items()}
    jobs = {j["metadata"]["name"]: Pod(ns, pod_labels(j)) for j in of_kind(docs, "Job")}
    rabbit_name = one(docs, "RabbitmqCluster")["metadata"]["name"]
    rabbit = Pod(
        ns, {"app.kubernetes.io/name": rabbit_name, COMPONENT: "rabbitmq", PART_OF: "rabbitmq"}
    )
    pg_name = one(docs, "Cluster")["metadata"]["name"]
    postgres = Pod(
        ns, {"cnpg.io/cluster": pg_name, "cnpg.io/instanceRole": "primary", "role": "primary"}
    )
    prometheus = Pod("monitoring", {"app.kubernetes.io/name": "prometheus"})
    ingress_ctl = Pod("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
    stranger = Pod("default", {"app": "curl"})
    dns = Pod("kube-system", {"k8s-app": "kube-dns"})
    rabbit_operator = Pod("rabbitmq-system", {"app.kubernetes.io/name": "rabbitmq-operator"})
    cnpg_operator = Pod("cnpg-system", {"app.kubernetes.io/name": "cloudnative-pg"})

    def allowed(src, dst, port, protocol="TCP"):
        return connection_allowed(policies, src, dst, port, protocol)

    assert allowed(ingress_ctl, services["gateway"], HTTP_PORT)
    assert allowed(None, services["gateway"], HTTP_PORT)
    assert not allowed(ingress_ctl, services["gateway"], 5000)
    for name, pod in services.items():
        assert allowed(prometheus, pod, HTTP_PORT), f"scrape {name}"
        assert not allowed(prometheus, pod, 5672)
        assert allowed(pod, rabbit, 5672), f"{name} -> AMQP"
        assert allowed(pod, rabbit, 15672), f"{name} -> management API"
        assert allowed(pod, postgres, 5432), f"{name} -> PostgreSQL"
        assert allowed(pod, dns, 53, "UDP") and allowed(pod, dns, 53, "TCP"), f"{name} -> DNS"
        assert not allowed(pod, None, 443), f"{name} -> internet"
        assert not allowed(pod, stranger, HTTP_PORT)
        if name != "gateway":
            assert not allowed(ingress_ctl, pod, HTTP_PORT), f"{name} is internal"
            assert not allowed(stranger, pod, HTTP_PORT), f"{name} is internal"
            assert not allowed(services["gateway"], pod, HTTP_PORT), "services talk via AMQP"
    assert allowed(jobs["migrate"], postgres, 5432)
    assert allowed(jobs["topology"], rabbit, 15672)
    for port in (4369, 25672):
        assert allowed(rabbit, rabbit, port), f"RabbitMQ clustering {port}"
    assert allowed(rabbit_operator, rabbit, 15672)
    assert allowed(prometheus, rabbit, 15692)
    assert allowed(postgres, postgres, 5432), "replication"
    assert allowed(cnpg_operator, postgres, 8000)
    for outsider in (stranger, ingress_ctl, None):
        assert not allowed(outsider, rabbit, 5672)
        assert not allowed(outsider, postgres, 5432)


# ---------------------------------------------------------------------------
# Kubernetes: the resolver agrees with real kustomize, where one is installed
# ---------------------------------------------------------------------------


def kustomize_command() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


@pytest.mark.skipif(kustomize_command() is None, reason="neither kustomize nor kubectl installed")
@pytest.mark.parametrize("city", CITIES)
def test_resolver_matches_real_kustomize(city: str) -> None:
    out = subprocess.run(
        [*kustomize_command(), str(OVERLAYS / city)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    real = {res_id(d): d for d in yaml.safe_load_all(out.stdout) if d}
    ours = {res_id(d): d for d in overlay(city)}
    assert sorted(real) == sorted(ours)
    for key, doc in ours.items():
        assert doc == real[key], key


# ---------------------------------------------------------------------------
# docker-compose.yml
# ---------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def interpolate(value: str) -> str:
    """Compose variable substitution with every variable unset (defaults apply)."""
    return re.sub(r"\$\{\w+(?::?[-?]([^}]*))?\}", lambda m: m.group(1) or "", value)


def entrypoint_verbs() -> set[str]:
    text = ENTRYPOINT.read_text(encoding="utf-8")
    return set(re.findall(r"^\s*([a-z][a-z-]*)\)\s*$", text, flags=re.M))


def uses_liandong_image(service: dict[str, Any]) -> bool:
    return "build" in service or str(service.get("image", "")).startswith("liandong")


def test_compose_has_every_k8s_service_per_city() -> None:
    services = compose()["services"]
    expected = {f"{s}-{c}" for s in base_services() for c in CITIES}
    assert expected <= set(services)
    assert {"rabbitmq", "postgres", "setup"} <= set(services)
    unknown = set(services) - expected - {"rabbitmq", "postgres", "setup"}
    assert not unknown, f"compose services without a k8s/base Deployment: {unknown}"
    for city in CITIES:
        for name in base_services():
            svc = services[f"{name}-{city}"]
            where = f"{name}-{city}"
            assert svc["command"] == ["service", name], where
            env = {k: interpolate(str(v)) for k, v in svc["environment"].items()}
            assert set(env) >= SECRET_KEYS | CONFIG_KEYS, where
            assert env["CITY"] == city, where
            assert env["WEB_SERVER_ADDRESS"] == f"0.0.0.0:{HTTP_PORT}", where
            amqp = urlsplit(env["AMQP_URI"])
            assert (amqp.scheme, amqp.hostname, amqp.port) == ("amqp", "rabbitmq", 5672), where
            assert amqp.path == f"/%2F{city}", where
            db = urlsplit(env["DATABASE_URL"])
            assert (db.scheme, db.hostname, db.port) == ("postgresql+psycopg2", "postgres", 5432)
            assert db.path == f"/liandong_{city}", where
            mgmt = urlsplit(env["RABBIT_MANAGEMENT_URL"])
            assert (mgmt.hostname, mgmt.port) == ("rabbitmq", 15672), where
            assert env["APIKEY_PEPPER"], where
            assert svc["depends_on"]["setup"]["condition"] == "service_completed_successfully"
            probe = " ".join(svc["healthcheck"]["test"])
            assert "urllib" in probe and f"127.0.0.1:{HTTP_PORT}/healthz" in probe, where


def test_compose_gateway_ports_in_city_order() -> None:
    services = compose()["services"]
    published = [services[f"gateway-{city}"]["ports"] for city in CITIES]
    assert published == [[f"127.0.0.1:{GATEWAY_HOST_PORTS[c]}:{HTTP_PORT}"] for c in CITIES]
    assert [GATEWAY_HOST_PORTS[c] for c in CITIES] == list(range(8101, 8106))
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: publish on loopback only"
        if name.startswith("leads-"):
            assert "ports" not in svc, f"{name}: only gateways are published"


def test_compose_images_start_through_the_entrypoint() -> None:
    verbs = entrypoint_verbs()
    assert verbs == {"service", "migrate", "topology"}
    own = {n: s for n, s in compose()["services"].items() if uses_liandong_image(s)}
    assert len(own) == 1 + len(CITIES) * len(base_services())
    for name, svc in own.items():
        assert "entrypoint" not in svc, f"{name}: keep the image's tini entrypoint"
        assert svc["build"]["dockerfile"] == "deploy/Dockerfile", name
        assert svc["build"].get("context", ".") == ".", name
        command = svc["command"]
        assert isinstance(command, list) and (command[0] in verbs or command[0] == "liandong")
    assert own["setup"]["command"] == ["liandong", "provision", "--skip-install"]


def test_compose_setup_provisions_with_the_services_credentials() -> None:
    services = compose()["services"]
    setup, rabbit, pg = services["setup"], services["rabbitmq"], services["postgres"]
    assert setup["depends_on"] == {
        "rabbitmq": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
    }
    assert "rabbitmq-diagnostics" in rabbit["healthcheck"]["test"]
    assert "ping" in rabbit["healthcheck"]["test"]
    assert "pg_isready" in pg["healthcheck"]["test"]

    # liandong provision reads RABBIT_*/PG_* (liandong/settings.py) and grants RABBIT_USER
    # on each vhost it creates: the user the services' AMQP_URI logs in as.
    env = setup["environment"]
    assert (env["RABBIT_HOST"], env["PG_HOST"]) == ("rabbitmq", "postgres")
    assert env["RABBIT_USER"] == rabbit["environment"]["RABBITMQ_DEFAULT_USER"]
    assert env["RABBIT_PASSWORD"] == rabbit["environment"]["RABBITMQ_DEFAULT_PASS"]
    assert env["PG_USER"] == pg["environment"]["POSTGRES_USER"]
    assert env["PG_PASSWORD"] == pg["environment"]["POSTGRES_PASSWORD"]
    for city in CITIES:
        for name in base_services():
            svc_env = services[f"{name}-{city}"]["environment"]
            amqp = urlsplit(svc_env["AMQP_URI"].replace(env["RABBIT_PASSWORD"], "PW"))
            assert (amqp.username, amqp.password) == (env["RABBIT_USER"], "PW")
            db = urlsplit(svc_env["DATABASE_URL"].replace(env["PG_PASSWORD"], "PW"))
            assert (db.username, db.password) == (env["PG_USER"], "PW")


def test_compose_rabbitmq_enables_shovel_and_management() -> None:
    rabbit = compose()["services"]["rabbitmq"]
    assert rabbit["image"] == "rabbitmq:3.13-management"
    mounts = [v.split(":") for v in rabbit["volumes"] if isinstance(v, str)]
    plugin_mounts = [m for m in mounts if m[1] == "/etc/rabbitmq/enabled_plugins"]
    assert plugin_mounts and (ROOT / plugin_mounts[0][0]).resolve() == ENABLED_PLUGINS
    text = ENABLED_PLUGINS.read_text(encoding="utf-8").strip()
    match = re.fullmatch(r"\[([a-z_,\s]*)\]\.", text)
    assert match, f"enabled_plugins is not an Erlang list term: {text!r}"
    plugins = {p.strip() for p in match.group(1).split(",")}
    assert {"rabbitmq_management", "rabbitmq_shovel", "rabbitmq_shovel_management"} <= plugins


def test_compose_postgres_uses_a_password_and_creates_city_databases() -> None:
    pg = compose()["services"]["postgres"]
    assert pg["image"] == "postgres:15"
    env = pg["environment"]
    assert "POSTGRES_HOST_AUTH_METHOD" not in env
    assert re.fullmatch(r"\$\{POSTGRES_PASSWORD:-CHANGE-ME[^}]*\}", env["POSTGRES_PASSWORD"])
    mounts = [v.split(":") for v in pg["volumes"] if isinstance(v, str)]
    init = [m for m in mounts if m[1].startswith("/docker-entrypoint-initdb.d/")]
    assert init and (ROOT / init[0][0]).resolve() == INIT_SQL
    sql = INIT_SQL.read_text(encoding="utf-8")
    for city in CITIES:
        assert f"'liandong_{city}'" in sql, city


def test_compose_secrets_are_variables_with_change_me_defaults() -> None:
    for name, svc in compose()["services"].items():
        env = svc.get("environment") or {}
        for key, value in env.items():
            value = str(value)
            for password in re.findall(r"://[^/\s:@]+:([^@\s]+)@", value):
                assert re.fullmatch(r"\$\{[A-Z_]+:-CHANGE-ME[^}]*\}", password), f"{name}.{key}"
            if re.search(r"PASS|PEPPER|SECRET", key):
                assert re.fullmatch(r"\$\{[A-Z_]+:-CHANGE-ME[^}]*\}", value), f"{name}.{key}"


# ---------------------------------------------------------------------------
# Dockerfile, .dockerignore, entrypoint.sh
# ---------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8")
    text = re.sub(r"\\\n", " ", text)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_multi_stage_slim_non_root_tini() -> None:
    instructions = dockerfile_instructions()
    args = dict(rest.split("=", 1) for word, rest in instructions if word == "ARG" and "=" in rest)
    froms = [i for i, (word, _) in enumerate(instructions) if word == "FROM"]
    assert len(froms) >= 2, "multi-stage build"
    for i in froms:
        image = instructions[i][1].split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert image == "python:3.11-slim", image
    runtime = instructions[froms[-1] :]
    runs = " ".join(rest for word, rest in runtime if word == "RUN")
    assert re.search(r"apt-get install [^&]*\btini\b", runs), "tini installed in the runtime"
    assert "build-essential" not in runs, "no compilers in the runtime image"
    assert "-r requirements.lock" in runs and "--no-deps" in runs
    assert "--no-cache-dir" in runs
    users = [rest for word, rest in runtime if word == "USER"]
    assert users, "runtime stage must switch to a non-root USER"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0, "numeric non-root uid (for runAsNonRoot)"
    assert ("WORKDIR", "/app") in runtime
    assert ("ENTRYPOINT", '["tini", "--", "/app/deploy/entrypoint.sh"]') in runtime
    assert [w for w, _ in runtime].index("USER") > max(
        i for i, (w, _) in enumerate(runtime) if w in ("RUN", "COPY")
    ), "USER comes after the last RUN/COPY"


def test_dockerignore_keeps_dev_files_out_of_the_image() -> None:
    patterns = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for needed in (".venv", ".git", "tests", "bench"):
        assert needed in patterns, needed
    assert patterns & {"__pycache__", "**/__pycache__"}
    for kept in ("deploy", "services", "liandong", "contracts", "requirements.lock"):
        assert kept not in patterns, kept


def test_entrypoint_script_shape() -> None:
    mode = ENTRYPOINT.stat().st_mode
    assert mode & stat.S_IXUSR, "entrypoint.sh must be executable"
    lines = ENTRYPOINT.read_text(encoding="utf-8").splitlines()
    assert lines[0] in ("#!/usr/bin/env bash", "#!/bin/bash")
    assert "set -euo pipefail" in lines
    for line in lines:
        if re.search(r"^\s*(nameko|liandong|\"\$@\")(\s|$)", line):
            raise AssertionError(f"run it with exec: {line.strip()}")
    assert sum(line.strip().startswith("exec ") for line in lines) >= 4


NAMEKO_RUN = "nameko run --config /app/deploy/nameko.yml"


@pytest.fixture()
def stub_env(tmp_path: Path) -> dict[str, str]:
    """Environment with fake `nameko` and `liandong` printing their PID and arguments."""
    for tool in ("nameko", "liandong"):
        stub = tmp_path / tool
        stub.write_text(f'#!/usr/bin/env bash\necho "$$ {tool} $*"\n', encoding="utf-8")
        stub.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("CITY", "NAMEKO_CONFIG")}
    env["PATH"] = f"{tmp_path}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    env["PYTHON"] = sys.executable  # the interpreter that has the project, as in the image
    return env


def run_entrypoint(env: dict[str, str], *args: str) -> tuple[int, str, int]:
    proc = subprocess.Popen(
        ["bash", str(ENTRYPOINT), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, out.strip(), proc.pid


def test_every_service_names_its_nameko_class() -> None:
    # `nameko run services.<name>.service` alone would also start the imported Observable
    # base (it has entrypoints): the entrypoint takes the class from SERVICE_CLASSES.
    from liandong.settings import SERVICE_CLASSES

    for name in base_services():
        module, _, cls = SERVICE_CLASSES.get(name, "").partition(":")
        assert module == f"services.{name}.service" and cls, f"{name}: add it to SERVICE_CLASSES"


@pytest.mark.parametrize("service", [*sorted(REQUIRED_SERVICES), "zz_unlisted"])
def test_entrypoint_runs_a_nameko_service(stub_env, service) -> None:
    from liandong.settings import SERVICE_CLASSES

    target = SERVICE_CLASSES.get(service, f"services.{service}.service")
    code, out, pid = run_entrypoint(stub_env, "service", service)
    assert code == 0
    # Same PID: the shell was replaced by exec, so SIGTERM reaches the process itself.
    assert out == f"{pid} {NAMEKO_RUN} {target}"


@pytest.mark.parametrize(
    ("args", "city", "expected"),
    [
        (("migrate",), "kunshan", "liandong migrate --city kunshan"),
        (("topology",), "jiading", "liandong topology apply --city jiading"),
        (("liandong", "provision", "--skip-install"), None, "liandong provision --skip-install"),
    ],
)
def test_entrypoint_execs_the_command(stub_env, args, city, expected) -> None:
    env = dict(stub_env, **({"CITY": city} if city else {}))
    code, out, pid = run_entrypoint(env, *args)
    assert code == 0
    assert out == f"{pid} {expected}"


@pytest.mark.parametrize(
    "args", [("migrate",), ("topology",), ("service",), ("service", "../etc"), ()]
)
def test_entrypoint_rejects_bad_invocations(stub_env, args) -> None:
    code, out, _ = run_entrypoint(stub_env, *args)
    assert code != 0 and out == "", (args, out)

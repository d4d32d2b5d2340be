"""docs/deploy/'s manifests and values files: valid documents of their kind, and settings faceward accepts.

No cluster here to dry-run against, so each document is checked against a JSON Schema of the fields
its operator requires (Kubernetes apps/v1, CloudNativePG, KubeRay, the Milvus chart), and every
FACEWARD_* variable the Deployment sets is parsed by faceward's own Settings and index factory.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from faceward.index.factory import MILVUS_OPTIONS
from faceward.settings import IndexBackend, Settings

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy"

NAME = {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"}
RESOURCES = {"type": "object", "properties": {"requests": {"type": "object", "required": ["cpu", "memory"]}}}
CONTAINER = {"type": "object", "required": ["name", "image"],
             "properties": {"name": NAME, "image": {"type": "string", "pattern": ":"}, "resources": RESOURCES}}
POD = {"type": "object", "required": ["spec"], "properties": {"spec": {
    "type": "object", "required": ["containers"],
    "properties": {"containers": {"type": "array", "minItems": 1, "items": CONTAINER}}}}}
OBJECT = {"type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
          "properties": {"metadata": {"type": "object", "required": ["name"], "properties": {"name": NAME}}}}

SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("apps/v1", "Deployment"): {"properties": {"spec": {
        "type": "object", "required": ["replicas", "selector", "template"],
        "properties": {"replicas": {"type": "integer", "minimum": 2}, "template": POD}}}},
    ("v1", "Service"): {"properties": {"spec": {"type": "object", "required": ["selector", "ports"]}}},
    ("postgresql.cnpg.io/v1", "Cluster"): {"properties": {"spec": {
        "type": "object", "required": ["instances", "storage"],
        "properties": {"instances": {"type": "integer", "minimum": 3},
                       "storage": {"type": "object", "required": ["size"]}}}}},
    ("ray.io/v1", "RayCluster"): {"properties": {"spec": {
        "type": "object", "required": ["headGroupSpec", "workerGroupSpecs"],
        "properties": {"headGroupSpec": {"type": "object", "required": ["rayStartParams", "template"],
                                         "properties": {"template": POD}},
                       "workerGroupSpecs": {"type": "array", "minItems": 1, "items": {
                           "type": "object", "required": ["groupName", "replicas", "rayStartParams", "template"],
                           "properties": {"template": POD}}}}}}},
}

MILVUS_VALUES = {
    "type": "object", "required": ["cluster", "etcd", "minio", "image"],
    "properties": {
        "cluster": {"type": "object", "properties": {"enabled": {"const": True}}, "required": ["enabled"]},
        "standalone": {"type": "object", "properties": {"enabled": {"const": False}}},
        "etcd": {"type": "object", "properties": {"replicaCount": {"enum": [3, 5]}}, "required": ["replicaCount"]},
        "image": {"type": "object", "required": ["all"]},
    },
}


def documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d is not None]


@pytest.mark.parametrize("name", ["faceward.yaml", "postgres-cluster.yaml", "raycluster.yaml"])
def test_manifests_match_their_kind(name: str) -> None:
    docs = documents(name)
    assert docs
    for doc in docs:
        jsonschema.validate(doc, OBJECT)
        key = (doc["apiVersion"], doc["kind"])
        assert key in SCHEMAS, f"{name}: no schema for {key}"
        jsonschema.validate(doc, {**OBJECT, **SCHEMAS[key], "required": OBJECT["required"]})


def faceward_env() -> dict[str, Any]:
    (deployment,) = [d for d in documents("faceward.yaml") if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


def test_every_faceward_variable_is_a_setting_faceward_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    env = faceward_env()
    assert all(name.startswith("FACEWARD_") for name in env)
    unknown = {name for name in env if name[len("FACEWARD_"):].lower() not in Settings.model_fields}
    assert not unknown, f"not faceward settings: {sorted(unknown)}"  # the environment ignores unknown names
    for name, value in env.items():
        monkeypatch.setenv(name, value if isinstance(value, str) else "postgresql://faceward@db/faceward")
    settings = Settings()  # typed fields: a bad value fails here
    assert settings.index_backend is IndexBackend.MILVUS
    assert set(settings.index_options) <= MILVUS_OPTIONS
    assert settings.index_options["index_type"] == "SCANN"  # never AUTOINDEX (decision 016)
    assert settings.database_url


def test_milvus_values_are_cluster_mode_and_the_tested_server_version() -> None:
    (values,) = documents("milvus-values.yaml")
    jsonschema.validate(values, MILVUS_VALUES)

    tested = importlib.metadata.version("milvus") if importlib.util.find_spec("milvus") else None
    if tested is not None:
        assert values["image"]["all"]["tag"] == f"v{tested}"  # the version the test suite's server runs
    uri = json.loads(faceward_env()["FACEWARD_INDEX_OPTIONS"])["uri"]
    assert uri.endswith(":19530")


def test_milvus_values_set_what_faceward_needs_of_the_server() -> None:
    # The settings the test suite's and the benchmark's server run with (REQUIRED_CONFIG): the
    # cluster must search what its index does not cover yet exactly, as they do.
    from faceward.index.milvus_server import REQUIRED_CONFIG

    (values,) = documents("milvus-values.yaml")
    user = yaml.safe_load(values["extraConfigFiles"]["user.yaml"])
    for key, value in REQUIRED_CONFIG.items():
        node: Any = user
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"milvus-values.yaml's user.yaml does not set {key}"
            node = node[part]
        assert node == value, f"{key} is {node!r}, faceward needs {value!r}"


def test_ray_cluster_runs_the_tested_ray() -> None:

    (cluster,) = documents("raycluster.yaml")
    if importlib.util.find_spec("ray") is not None:
        assert cluster["spec"]["rayVersion"] == importlib.metadata.version("ray")

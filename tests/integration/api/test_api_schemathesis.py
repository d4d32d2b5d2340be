"""Property-based fuzzing of every operation in /openapi.json with schemathesis.

Each operation is hit with generated requests three ways: with a key of the role
allowed to run it (schema-valid and schema-violating data), with a key of a role
that is not, and with no key at all. Every response must be no 5xx, of a documented
status and content type, and match its documented schema. At least 1,000 requests in all.

``positive_data_acceptance`` is left out on purpose: a schema cannot say which bytes
are a photo with a face, or which ids exist, so valid-looking requests are often 4xx.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from apiworld import World
from hypothesis import HealthCheck, Phase
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from faceward.security.permissions import Role

CHECKS = [
    not_a_server_error, status_code_conformance, content_type_conformance,
    response_schema_conformance, response_headers_conformance,
]
MIN_REQUESTS = 1000

# Who may run each operation (the matrix test checks the policy; here it picks a key).
ALLOWED = {"keys": Role.ADMIN, "usage": Role.ADMIN, "audit": Role.AUDITOR, "subjects": Role.ENROLLER,
           "search": Role.SEARCHER, "verify": Role.SEARCHER, "healthz": Role.ADMIN, "readyz": Role.ADMIN,
           # the web console's routes (#6); /v1/audit/verify goes with "audit"
           "detect": Role.SEARCHER, "reviews": Role.SEARCHER, "faces": Role.SEARCHER, "tenant": Role.ADMIN,
           # faceward reenroll through the API (#15): the fuzzing server's galleries already hold its model
           "gallery": Role.ADMIN}
DENIED = {Role.ADMIN: Role.SEARCHER, Role.AUDITOR: Role.ENROLLER, Role.ENROLLER: Role.AUDITOR, Role.SEARCHER: Role.ADMIN}

# (who, generation mode, examples per operation)
PLAN = [("allowed", GenerationMode.POSITIVE, 50), ("allowed", GenerationMode.NEGATIVE, 25),
        ("denied", GenerationMode.POSITIVE, 8), ("anonymous", GenerationMode.POSITIVE, 8)]
PG_PLAN = [("allowed", GenerationMode.POSITIVE, 15), ("allowed", GenerationMode.NEGATIVE, 10)]


def role_for(path: str) -> Role:
    return ALLOWED[path.strip("/").split("/")[-1] if path in ("/healthz", "/readyz") else path.split("/")[2]]


def run_operation(operation: Any, headers: dict[str, str], mode: GenerationMode, examples: int, seen: Counter[str]) -> None:
    checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])

    @hypothesis.settings(
        max_examples=examples, deadline=None, derandomize=True, database=None, print_blob=True,
        phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case: Any) -> None:
        if headers:
            case.headers = {**(case.headers or {}), **headers}
        elif case.headers:
            case.headers = {k: v for k, v in case.headers.items() if k.lower() != "authorization"}
        response = case.call()
        seen[f"{response.status_code // 100}xx"] += 1
        seen[str(response.status_code)] += 1
        seen["total"] += 1
        case.validate_response(response, checks=checks)

    try:
        fuzz()
    except hypothesis.errors.Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE  # nothing to violate in an operation without inputs


def fuzz_world(w: World, plan: list[tuple[str, GenerationMode, int]]) -> Counter[str]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", w.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 13  # 12 under /v1 and /healthz (the matrix test pins the exact set)
    seen: Counter[str] = Counter()
    for operation in operations:
        role = role_for(operation.path)
        for who, mode, examples in plan:
            if who == "anonymous":
                headers: dict[str, str] = {}
            else:
                headers = w.own.auth(role if who == "allowed" else DENIED[role])
            run_operation(operation, headers, mode, examples, seen)
    print(f"schemathesis: {dict(sorted(seen.items()))}")
    assert seen["5xx"] == 0
    return seen


def test_fuzz_every_operation(sqlite_world: World) -> None:
    w = sqlite_world
    seen = fuzz_world(w, PLAN)
    assert seen["total"] >= MIN_REQUESTS, seen
    assert seen["2xx"] > 50 and seen["401"] > 50 and seen["403"] > 50 and seen["422"] > 50, seen
    # The fuzzing reached the gallery: subjects and keys were made with generated data.
    assert w.services.gallery.store.count_subjects(w.own.id) > 1


def test_fuzz_on_postgresql(pg_world: World) -> None:
    """A shorter run with valid keys on PostgreSQL, whose types are stricter than SQLite's (NUL bytes, ranges)."""
    seen = fuzz_world(pg_world, PG_PLAN)
    assert seen["total"] >= 200 and seen["2xx"] > 20, seen


@pytest.mark.parametrize("path", ["/v1/keys", "/healthz", "/v1/verify", "/v1/subjects/{subject_id}/faces"])
def test_role_table_covers_the_paths(path: str) -> None:
    assert role_for(path) in Role

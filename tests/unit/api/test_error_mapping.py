"""The API's one map from domain errors to responses, for the errors a service behind it raises."""

from __future__ import annotations

import json

from faceward.api.errors import INTERNAL_MESSAGE, exception_response
from faceward.index.base import IndexError_
from faceward.index.milvus import MilvusError


def _body(response: object) -> dict[str, str]:
    return dict(json.loads(response.body)["error"])  # type: ignore[attr-defined]


def test_a_vector_engine_failure_is_a_503_to_retry_that_names_nothing_of_the_engine() -> None:
    detail = "Milvus search failed for collection faceward_1d2c0878b872_g1: <MilvusException: collection not found>"
    response = exception_response(MilvusError(detail), "POST /v1/search")
    assert response.status_code == 503 and response.headers["Retry-After"] == "2"
    body = _body(response)
    assert body == {"code": "index_unavailable", "message": "the vector engine is unavailable; retry shortly"}
    assert "faceward_" not in json.dumps(body)


def test_an_index_misuse_stays_an_internal_error_whose_details_stay_in_the_log() -> None:
    response = exception_response(IndexError_("collection holds 512-d vectors, not 128-d"), "POST /v1/search")
    assert response.status_code == 500 and "Retry-After" not in response.headers
    assert _body(response) == {"code": "index_error", "message": INTERNAL_MESSAGE}

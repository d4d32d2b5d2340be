from __future__ import annotations

from pathlib import Path

import pytest

from faceward.errors import ConfigError
from faceward.index.ann import AnnIndex
from faceward.index.exact import ExactIndex
from faceward.index.factory import ann_vectors_path, make_index
from faceward.settings import IndexBackend


def test_backends_and_options(tmp_path: Path) -> None:
    assert isinstance(make_index(IndexBackend.EXACT, tenant_id="t"), ExactIndex)
    ann = make_index("ann", tenant_id="t", options={"expansion_search": 32, "vectors_dir": str(tmp_path)})
    assert isinstance(ann, AnnIndex) and ann.params.expansion_search == 32
    assert ann_vectors_path(tmp_path, "t").exists()
    assert ann_vectors_path(tmp_path, "t") != ann_vectors_path(tmp_path, "u")
    assert "/" not in ann_vectors_path(tmp_path, "../../etc").name


@pytest.mark.parametrize(
    ("backend", "options", "message"),
    [
        (IndexBackend.EXACT, {"connectivity": 8}, "unknown exact index option"),
        (IndexBackend.ANN, {"ef": 8}, "unknown ann index option"),
        (IndexBackend.ANN, {"connectivity": 0}, "at least 1"),
        (IndexBackend.MILVUS, {}, "needs a uri"),
    ],
)
def test_bad_configuration_fails_loudly(backend: IndexBackend, options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_index(backend, tenant_id="t", options=options)


def test_tenant_is_required() -> None:
    with pytest.raises(ConfigError, match="tenant"):
        make_index(IndexBackend.EXACT, tenant_id="")

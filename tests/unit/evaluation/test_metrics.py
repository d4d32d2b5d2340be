from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceward.errors import InvalidInput
from faceward.evaluation.datasets import read_pairs
from faceward.evaluation.metrics import fnir_at_fpir, tar_at_far, ten_fold_accuracy


def test_separable_scores_are_perfect_and_noise_is_chance() -> None:
    same = np.array([True] * 300 + [False] * 300)
    scores = np.where(same, 0.9, 0.1) + np.random.default_rng(0).normal(0, 0.01, 600)
    assert ten_fold_accuracy(scores, same) == (1.0, 0.0)
    noise = np.random.default_rng(1).normal(0, 1, 600)
    mean, _ = ten_fold_accuracy(noise, same)
    assert 0.4 < mean < 0.6


def test_tar_at_far() -> None:
    same = np.array([True] * 100 + [False] * 1000)
    scores = np.concatenate([np.linspace(0.5, 1.0, 100), np.linspace(0.0, 0.6, 1000)])
    assert tar_at_far(scores, same, 1e-3) < tar_at_far(scores, same, 1e-1) <= 1.0


def test_fnir_counts_only_rank1_hits_above_threshold() -> None:
    nonmated = np.linspace(0, 0.5, 1000)
    mated = np.array([0.9, 0.8, 0.45, 0.95])
    correct = np.array([True, True, True, False])
    result = fnir_at_fpir(mated, correct, nonmated, 0.01)
    assert result.threshold == pytest.approx(0.495, abs=1e-3) and result.fnir == 0.5


@pytest.mark.parametrize(
    "text",
    ["", "a,b\n1,2\n", "image_a,image_b,same\nx.jpg,y.jpg,maybe\n", "image_a,image_b,same\n../../etc/passwd,y.jpg,1\n", "image_a,image_b,same\n"],
)
def test_malformed_pairs_files(tmp_path: Path, text: str) -> None:
    (tmp_path / "pairs.csv").write_text(text)
    with pytest.raises(InvalidInput):
        read_pairs(tmp_path)


def test_too_few_pairs_are_refused_before_any_work() -> None:
    from faceward.evaluation.datasets import Pair
    from faceward.evaluation.reports import check_pairs_protocol

    with pytest.raises(InvalidInput, match="10 pairs"):
        check_pairs_protocol([Pair("a", "b", True)] * 5 + [Pair("a", "c", False)] * 3)
    with pytest.raises(InvalidInput):
        check_pairs_protocol([Pair("a", "b", True)] * 20)
    check_pairs_protocol([Pair("a", "b", True)] * 10 + [Pair("a", "c", False)] * 10)

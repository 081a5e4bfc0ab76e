"""``bench.es_compare``'s statistics and options, without servers."""

from __future__ import annotations

import pytest
from bench.es_compare import compare, paired, settings, sign_test

from bench import locomo_eval as le


def test_settings_become_the_servers_environment() -> None:
    assert settings(["MEMORYD_SEARCH_KEYWORD_WEIGHT=0", "MEMORYD_A=b=c"]) == {
        "MEMORYD_SEARCH_KEYWORD_WEIGHT": "0",
        "MEMORYD_A": "b=c",
    }
    assert settings([]) == {}


@pytest.mark.parametrize("bad", ["MEMORYD_X", "PATH=/bin", "=1"])
def test_a_setting_that_is_not_memoryd_name_value_is_refused(bad: str) -> None:
    with pytest.raises(SystemExit, match="MEMORYD_NAME=VALUE"):
        settings([bad])


def test_the_sign_test_is_exact_and_two_sided() -> None:
    assert sign_test(0, 0) == 1.0
    assert sign_test(5, 5) == 1.0
    assert sign_test(10, 0) == pytest.approx(2 / 2**10)
    assert sign_test(1, 9) == sign_test(9, 1) == pytest.approx(2 * 11 / 2**10)


def test_paired_differences_carry_their_interval() -> None:
    row = paired("x", "R@5", [0.0, 1.0, 1.0, 0.5], [1.0, 1.0, 0.0, 1.0])
    assert (row.count, row.better, row.worse) == (4, 2, 1)
    assert row.difference == pytest.approx(0.125)
    assert row.low <= row.difference <= row.high


def test_runs_over_different_questions_are_not_compared() -> None:
    recalls = tuple(0.0 for _ in le.KS)
    a = [le.Scored(0, 1, recalls, 0.0)]
    b = [le.Scored(1, 1, recalls, 0.0)]
    with pytest.raises(ValueError, match="same questions"):
        compare(a, b, groups={"all": [0, 1]})

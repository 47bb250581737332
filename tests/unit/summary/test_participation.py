import logging

import pytest

from mindfed.summary.participation import ParticipationLevels


@pytest.mark.parametrize(
    ("text", "expected"),
    [("5,15", (5, 15)), ("1,2880", (1, 2880)), (" 3 , 7 ", (3, 7))],
)
def test_parse_valid_levels(text: str, expected: tuple[int, int]) -> None:
    levels = ParticipationLevels.parse(text)

    assert (levels.level1_min, levels.level2_min) == expected


@pytest.mark.parametrize("text", ["0,5", "5,5", "6,5", "5,2881", "5", "5,15,20", "a,b", "", "1.5,3"])
def test_invalid_levels_fall_back_to_default_with_warning(text: str, caplog: pytest.LogCaptureFixture) -> None:
    # Execute
    with caplog.at_level(logging.WARNING, logger="mindfed.summary.participation"):
        levels = ParticipationLevels.parse(text)

    # Assert
    assert (levels.level1_min, levels.level2_min) == (5, 15)
    assert "participation_time_level" in caplog.text


def test_classify_is_cumulative() -> None:
    # Prepare
    levels = ParticipationLevels(2, 10)
    minute = 60_000

    # Execute / Assert
    assert levels.classify(0) == (True, True, True)
    assert levels.classify(2 * minute - 1) == (True, True, True)
    assert levels.classify(2 * minute) == (False, True, True)
    assert levels.classify(10 * minute - 1) == (False, True, True)
    assert levels.classify(10 * minute) == (False, False, True)
    assert levels.classify(3 * 24 * 60 * minute) == (False, False, True)


def test_constructor_validates() -> None:
    with pytest.raises(ValueError, match="0 < a < b"):
        ParticipationLevels(10, 5)

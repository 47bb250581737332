from datetime import UTC, datetime, timedelta, timezone

from mindfed.summary.timestamps import format_millis, format_seconds


def test_format_millis_pads_and_truncates_milliseconds() -> None:
    # Prepare
    moment = datetime(2024, 3, 5, 7, 8, 9, 45_999)

    # Execute
    text = format_millis(moment)

    # Assert
    assert text == "2024-03-05 07:08:09.045"


def test_format_seconds_drops_fraction() -> None:
    assert format_seconds(datetime(2024, 12, 31, 23, 59, 59, 999_999)) == "2024-12-31 23:59:59"


def test_aware_moments_are_shown_in_local_time() -> None:
    # Prepare
    aware = datetime(2024, 1, 1, 12, 0, 0, 250_000, tzinfo=timezone(timedelta(hours=5)))
    local = aware.astimezone().replace(tzinfo=None)

    # Execute / Assert
    assert format_millis(aware) == format_millis(local)
    assert format_millis(datetime(2024, 1, 1, tzinfo=UTC)) == format_millis(
        datetime(2024, 1, 1, tzinfo=UTC).astimezone().replace(tzinfo=None)
    )

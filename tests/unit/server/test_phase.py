import logging

import pytest

from mindfed.server.phase import ALLOWED, IllegalTransition, IterationPhase, Phase


def test_a_server_starts_in_safemode_and_serves_once_synced(caplog: pytest.LogCaptureFixture) -> None:
    # Prepare
    phase = Phase()
    assert (phase.current, phase.safemode) == (IterationPhase.STARTING, True)

    # Execute
    with caplog.at_level(logging.INFO, logger="mindfed.server.phase"):
        phase.enter(IterationPhase.RUNNING, 1)

    # Assert
    assert (phase.current, phase.safemode) == (IterationPhase.RUNNING, False)
    assert [r.getMessage() for r in caplog.records] == ["it 1: phase starting -> running"]


def test_the_switch_from_a_success_carries_its_iteration_until_it_ends() -> None:
    # Prepare
    phase = Phase()
    phase.enter(IterationPhase.RUNNING, 3)

    # Execute
    phase.enter(IterationPhase.SWITCHING, 3, completed=3)
    during = (phase.safemode, phase.completed)
    phase.enter(IterationPhase.RUNNING, 4)

    # Assert
    assert during == (True, 3)
    assert phase.completed is None


@pytest.mark.parametrize(("path", "illegal"), [
    ([], IterationPhase.SWITCHING),  # no switch before start-up has synced
    ([IterationPhase.RUNNING, IterationPhase.SWITCHING], IterationPhase.SWITCHING),  # two switches at once
    ([IterationPhase.RUNNING, IterationPhase.NEW_INSTANCE], IterationPhase.REPUBLISHED),
    ([IterationPhase.RUNNING, IterationPhase.REPUBLISHED], IterationPhase.RUNNING),  # only a switch ends it
])
def test_a_move_the_table_does_not_list_raises_and_changes_nothing(path: list[IterationPhase],
                                                                   illegal: IterationPhase) -> None:
    # Prepare
    phase = Phase()
    for step in path:
        phase.enter(step, 1)
    before = phase.current

    # Execute / Assert
    with pytest.raises(IllegalTransition, match=f"-> {illegal}"):
        phase.enter(illegal, 1)
    assert phase.current is before


def test_only_the_switch_carries_a_completed_iteration() -> None:
    phase = Phase()
    with pytest.raises(IllegalTransition):
        phase.enter(IterationPhase.RUNNING, 1, completed=1)
    assert phase.current is IterationPhase.STARTING


def test_every_phase_has_a_way_out_and_every_target_is_a_phase() -> None:
    assert set(ALLOWED) == set(IterationPhase)
    assert all(ALLOWED[p] and ALLOWED[p] <= set(IterationPhase) for p in IterationPhase)

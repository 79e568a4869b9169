"""SM-2 scheduling, pure: no I/O, the clock is an argument.

Our reading of the SuperMemo SM-2 description (the original leaves four points open; the
issue that specified this module fixes them, and the report states them):

* grade ≥ 3: interval 1 when repetitions = 0, 6 when repetitions = 1, otherwise the previous
  interval × EF *from before this review*, rounded up to whole days; repetitions + 1.
* grade < 3: repetitions back to 0, interval 1; EF is not reset (lapses + 1).
* after every review, passed or failed: EF' = EF + (0.1 − (5−q)(0.08 + (5−q)·0.02)), floor 1.3.
* due = review time + interval days.
* intervals are capped at 36,500 days (100 years, Anki's maximum interval): the description has
  no cap, and without one fourteen straight 5s schedule a card past the year 9999.

EF is kept as integer hundredths: every EF change is a multiple of 0.02, so hundredths are exact
and replaying a history gives the same schedule on every backend (floats with `ceil` give
off-by-one intervals, see FIELD-NOTES).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

NEW_CARD_EF = 250  # hundredths: 2.5
MIN_EF = 130  # hundredths: 1.3
MIN_GRADE, MAX_GRADE, PASSING_GRADE = 0, 5, 3
MAX_INTERVAL_DAYS = 36_500


@dataclass(frozen=True, slots=True)
class Schedule:
    """A card's SM-2 state. `due_at` is None for a card never reviewed (due at creation)."""

    ef_hundredths: int = NEW_CARD_EF
    interval_days: int = 0
    repetitions: int = 0
    lapses: int = 0
    due_at: datetime | None = None

    @property
    def ease(self) -> float:
        return self.ef_hundredths / 100


def ef_delta_hundredths(grade: int) -> int:
    """0.1 − (5−q)(0.08 + (5−q)·0.02), in hundredths: q=5 +10, 4 0, 3 −14, 2 −32, 1 −54, 0 −80."""
    miss = MAX_GRADE - grade
    return 10 - miss * (8 + 2 * miss)


def check_grade(grade: object) -> int:
    """Return the grade if it is an int in 0..5; `True` is an int in Python and is refused."""
    if isinstance(grade, bool) or not isinstance(grade, int):
        raise ValueError(f"grade must be an integer from 0 to 5, got {grade!r}")
    if not MIN_GRADE <= grade <= MAX_GRADE:
        raise ValueError(f"grade must be an integer from 0 to 5, got {grade}")
    return grade


def review(state: Schedule, grade: int, now: datetime) -> Schedule:
    """Apply one review with `grade` at time `now`; returns the new state."""
    grade = check_grade(grade)
    if grade >= PASSING_GRADE:
        if state.repetitions == 0:
            interval = 1
        elif state.repetitions == 1:
            interval = 6
        else:
            # ceil(I × EF) in exact integer arithmetic, with the EF from before this review
            interval = min(MAX_INTERVAL_DAYS, (state.interval_days * state.ef_hundredths + 99) // 100)
        repetitions, lapses = state.repetitions + 1, state.lapses
    else:
        interval, repetitions, lapses = 1, 0, state.lapses + 1
    ef = max(MIN_EF, state.ef_hundredths + ef_delta_hundredths(grade))
    return replace(
        state,
        ef_hundredths=ef,
        interval_days=interval,
        repetitions=repetitions,
        lapses=lapses,
        due_at=now + timedelta(days=interval),
    )


def replay(grades_and_times: list[tuple[int, datetime]], start: Schedule | None = None) -> Schedule:
    """Fold `review` over a history; a serial replay is the reference for concurrency tests."""
    state = start or Schedule()
    for grade, at in grades_and_times:
        state = review(state, grade, at)
    return state

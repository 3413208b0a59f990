"""Track cleaning: duplicates and late fixes reported, jumps marked (never dropped), kinematics derived."""

from __future__ import annotations

from detectors.cleaning import DUPLICATE, LATE, clean
from models.position import FLAG_DERIVED_KINEMATICS, FLAG_IMPLAUSIBLE, FLAG_NEW_SEGMENT, Position
from models.settings import CleaningConfig

CFG = CleaningConfig()


def fix(ts: float, lat: float, lon: float, speed: float | None = None, etype: str = "vessel") -> Position:
    return Position(etype, "367000001", ts, lat, lon, speed_kn=speed)  # type: ignore[arg-type]


def run(fixes: list[Position]) -> list[str | None]:
    state = None
    reasons = []
    for f in fixes:
        state, reason = clean(state, f, CFG)
        reasons.append(reason)
    return reasons


def test_first_fix_starts_a_segment() -> None:
    f = fix(0, 10.0, -80.0, 5.0)
    assert run([f]) == [None]
    assert f.flags & FLAG_NEW_SEGMENT


def test_exact_duplicate_and_late_fix_are_reported_with_reasons() -> None:
    a, dup, b, late = fix(100, 10.0, -80.0), fix(100, 10.0, -80.0), fix(160, 10.001, -80.0), fix(130, 10.0, -80.0)
    assert run([a, dup, b, late]) == [None, DUPLICATE, None, LATE]


def test_same_second_different_position_is_not_a_duplicate() -> None:
    assert run([fix(100, 10.0, -80.0), fix(100, 10.0001, -80.0)]) == [None, None]


def test_impossible_jump_is_marked_not_dropped_and_track_stays_on_anchor() -> None:
    # 18 km in 60 s (~580 kn): the shared-MMSI pattern. The track alternates; the far
    # positions are flagged each time, the near ones stay clean.
    fixes = [fix(0, 41.514, -88.090)]
    for i in range(1, 7):
        far = i % 2 == 1
        fixes.append(fix(i * 60, 41.672 if far else 41.514, -88.028 if far else -88.090))
    assert run(fixes) == [None] * 7
    assert [bool(f.flags & FLAG_IMPLAUSIBLE) for f in fixes] == [False, True, False, True, False, True, False]
    assert fixes[1].implied_speed_kn is not None and fixes[1].implied_speed_kn > 500


def test_consistent_new_positions_reanchor_the_track() -> None:
    # A bogus first fix, then a real track far away: after `reanchor_after` consistent
    # fixes the track moves on and later fixes are clean.
    fixes = [fix(0, 0.0, 0.0)] + [fix(60 * i, 10.0 + 0.001 * i, -80.0) for i in range(1, 6)]
    run(fixes)
    flags = [bool(f.flags & FLAG_IMPLAUSIBLE) for f in fixes]
    assert flags[: CFG.reanchor_after] == [False] + [True] * (CFG.reanchor_after - 1)
    assert fixes[CFG.reanchor_after].flags & FLAG_NEW_SEGMENT
    assert not any(flags[CFG.reanchor_after :])


def test_speed_and_course_derived_when_not_reported() -> None:
    # 1 nm north in 6 minutes = 10 kn, course 0.
    fixes = [fix(i * 60, 10.0 + i * (1852 / 6) / 111_195, -80.0) for i in range(7)]
    run(fixes)
    last = fixes[-1]
    assert last.flags & FLAG_DERIVED_KINEMATICS
    assert last.speed_kn is not None and abs(last.speed_kn - 10.0) < 0.2
    assert last.course_deg is not None and (last.course_deg < 1 or last.course_deg > 359)


def test_reported_speed_is_kept() -> None:
    fixes = [fix(0, 10.0, -80.0, 3.0), fix(120, 10.01, -80.0, 3.0)]
    run(fixes)
    assert fixes[1].speed_kn == 3.0 and not fixes[1].flags & FLAG_DERIVED_KINEMATICS


def test_gps_jitter_at_anchor_does_not_look_fast() -> None:
    # 15 m of jitter every 2 s would be ~15 kn fix-to-fix; over the derive window it is ~0.
    fixes = [fix(i * 2, 10.0 + (0.000135 if i % 2 else 0.0), -80.0) for i in range(120)]
    run(fixes)
    assert max(f.speed_kn or 0 for f in fixes[40:]) < 1.0


def test_aircraft_speed_limit_is_separate() -> None:
    # 300 kn is plausible for an aircraft, impossible for a vessel.
    step_deg = 300 * 1852 / 3600 * 60 / 111_195
    air = [fix(i * 60, 45.0 + i * step_deg, 2.0, etype="aircraft") for i in range(3)]
    sea = [fix(i * 60, 45.0 + i * step_deg, 2.0) for i in range(3)]
    run(air)
    run(sea)
    assert not any(f.flags & FLAG_IMPLAUSIBLE for f in air)
    assert any(f.flags & FLAG_IMPLAUSIBLE for f in sea)

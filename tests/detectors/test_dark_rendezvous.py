"""Dark rendezvous: a vessel going silent near a loiterer, or reappearing where one loitered."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from detectors.base import Environment
from detectors.cell_engine import CellEngine
from detectors.dark_rendezvous import DarkRendezvousConfig, DarkRendezvousDetector
from detectors.rendezvous import RendezvousConfig, RendezvousDetector
from models.alert import Alert
from models.position import Position, VesselStatic
from models.reference import ReferenceGeography, load_geography
from models.settings import Settings
from models.timeutil import parse_iso
from models.units import MPS_PER_KN
from tests.conftest import TEST_DATA, final_revisions, run_pipeline
from tests.detectors.test_cell_engine import destination, fixes, merged
from tests.detectors.test_rendezvous import real_items

MIN = 60.0


def t(hhmmss: str, day: str = "2020-06-30") -> float:
    return parse_iso(f"{day}T{hhmmss}Z")


@pytest.fixture(scope="module")
def geography(settings: Settings) -> ReferenceGeography:
    return load_geography(settings)


def engine(env: Environment, **cfg: Any) -> CellEngine:
    return CellEngine([], [DarkRendezvousDetector(DarkRendezvousConfig(**cfg), env)])


def run(
    records: list[Position | VesselStatic], settings: Settings, env: Environment, cells: CellEngine | None = None
) -> list[Alert]:
    """Every dark_rendezvous revision, the cell engine alone behind the pipeline."""
    cells = cells if cells is not None else engine(env)
    return [a for a in run_pipeline(records, settings, env, detectors=[], cells=cells) if a.kind == "dark_rendezvous"]


def ids(alert: Alert) -> list[str]:
    return [e.id for e in alert.entities]


# ----------------------------------------------------------------------- real tracks

US_COASTAL = TEST_DATA / "rdv_us_coastal_303350200_367564890.csv.gz"


def test_vessel_going_silent_beside_its_companion_offshore(settings: Settings, geography: ReferenceGeography) -> None:
    # US coastal day, 160 km off Cape Hatteras: 303350200 reports every ~80 s until 19:11:18Z
    # (32.9217N 76.3330W, 1.4 kn), then nothing more that day; 367564890, which met it at
    # noon, stays slow within 900 m of that spot until its own last report at 19:25Z.
    # (MMSI 367120020, far away off New Jersey, carries the clock on past 19:41Z.)
    env = Environment(geography=geography)
    alerts = run(real_items(US_COASTAL), settings, env)
    final = final_revisions(alerts)
    assert [(a.kind, ids(a)) for a in final] == [("dark_rendezvous", ["303350200", "367564890"])]
    (alert,) = final
    assert alert.start_ts == t("19:11:18")
    assert alert.end_ts == pytest.approx(t("19:25:00"), abs=6 * MIN)
    assert alerts[0].status == "open"
    ev = alert.evidence
    assert ev["form"] == "went_dark" and ev["dark_vessel"] == "303350200" and ev["companion"] == "367564890"
    assert ev["still_dark"] is True and ev["gap_s"] >= 1800
    assert ev["distance_m"] < 1000 and ev["companion_median_speed_kn"] < 2.0
    assert ev["last_position"] == {"lat": 32.92174, "lon": -76.33296}
    assert alert.lat == pytest.approx(32.92174) and alert.severity == "high"


def test_silence_during_a_meeting_opens_then_closes_one_alert(
    settings: Settings, geography: ReferenceGeography
) -> None:
    # The same real slice with 303350200's reports cut out from 12:20Z to 13:30Z, in the
    # middle of its noon meeting with 367564890: it "goes dark" beside its companion at
    # 12:19Z and comes back beside it at 13:30Z.
    env = Environment(geography=geography)
    items = [
        i for i in real_items(US_COASTAL)
        if not (isinstance(i, Position) and i.entity_id == "303350200" and t("12:20:00") <= i.ts < t("13:30:00"))
    ]  # fmt: skip
    last = max(i.ts for i in items if isinstance(i, Position) and i.entity_id == "303350200" and i.ts < t("12:20:00"))
    back = min(i.ts for i in items if isinstance(i, Position) and i.entity_id == "303350200" and i.ts >= t("13:30:00"))
    detectors = [RendezvousDetector(RendezvousConfig(), env)]
    cells = CellEngine(detectors, [DarkRendezvousDetector(DarkRendezvousConfig(), env)])
    alerts = run_pipeline(items, settings, env, detectors=[], cells=cells)
    dark = [a for a in alerts if a.kind == "dark_rendezvous" and a.start_ts == last]
    assert len({a.id for a in dark}) == 1
    assert dark[0].status == "open" and dark[-1].status == "closed"
    assert dark[0].end_ts >= last
    closing = dark[-1].evidence
    assert closing["still_dark"] is False and closing["gap_s"] == round(back - last)
    assert closing["reappeared"]["distance_from_last_m"] < 3000
    # The meeting itself is still one rendezvous alert around the silence.
    meetings = [a for a in final_revisions(alerts) if a.kind == "rendezvous"]
    assert [ids(a) for a in meetings] == [["303350200", "367564890"]]


# ------------------------------------------------------------------- synthetic rules

T0 = t("10:00:00")
LAT, LON = 33.0, -76.0  # open sea (no geography unless a test gives one)


def companion(start: float, end: float, speed_kn: float = 0.3) -> list[Position]:
    """C (367000002) waits at (LAT, LON) from ``start`` to ``end``, then leaves north at 10 kn, in sight."""
    c = fixes("367000002", start, end, 30, LAT, LON, speed_kn=speed_kn)
    return c + fixes("367000002", end + 30, T0 + 8 * 3600, 30, c[-1].lat, c[-1].lon, speed_kn=10.0, course_deg=0.0)


def clock(until: float) -> list[Position]:
    """A vessel far away that keeps the watermark moving."""
    return fixes("367000099", T0 - 3600, until, 120, LAT + 1.0, LON + 1.0, speed_kn=10.0)


def went_dark(
    t1: float = T0, dark_speed_kn: float = 1.0, back_after_s: float | None = None, at_m: float = 800.0
) -> list[Position]:
    """D (367000001) heads east and goes silent ``at_m`` from C's spot at ``t1``.

    With ``back_after_s`` it reports again from there, drifting at 0.5 kn until 16:00Z.
    """
    lat1, lon1 = destination(LAT, LON, 45.0, at_m)
    start = destination(lat1, lon1, 270.0, dark_speed_kn * MPS_PER_KN * 3600)
    d = fixes("367000001", t1 - 3600, t1, 20, *start, speed_kn=dark_speed_kn)
    if back_after_s is not None:
        d += fixes(
            "367000001",
            t1 + back_after_s,
            max(T0 + 6 * 3600, t1 + back_after_s),
            20,
            d[-1].lat,
            d[-1].lon,
            speed_kn=0.5,
        )
    return d


def test_vessel_going_silent_near_a_loiterer(settings: Settings) -> None:
    records = merged(went_dark(), companion(T0 - 1200, T0 + 3600), clock(T0 + 6 * 3600))
    final = final_revisions(run(records, settings, Environment()))
    assert [ids(a) for a in final] == [["367000001", "367000002"]]
    assert final[0].start_ts == T0
    assert final[0].end_ts == pytest.approx(T0 + 3600, abs=6 * MIN)  # the companion's stay
    assert final[0].evidence["form"] == "went_dark"


def test_a_companion_at_anchor_still_counts(settings: Settings) -> None:
    # Vessel–vessel rendezvous leaves out vessels reporting "at anchor" (AIS status 1); a
    # vessel going silent beside one is still a dark rendezvous.
    anchored = [replace(p, nav_status=1) for p in companion(T0 - 1200, T0 + 3600)]
    final = final_revisions(run(merged(went_dark(), anchored, clock(T0 + 6 * 3600)), settings, Environment()))
    assert [ids(a) for a in final] == [["367000001", "367000002"]]
    assert final[0].start_ts == T0


def test_reappearing_where_another_loitered_during_the_gap(settings: Settings) -> None:
    # D is last seen 18 km east at 10:00Z, silent for 2 h, and reappears 400 m from C, who
    # loitered there from 09:00Z to 13:00Z. Nothing near where D went silent.
    far = destination(LAT, LON, 90.0, 18_000.0)
    start = destination(*far, 90.0, 8.0 * MPS_PER_KN * 3600)
    d = fixes("367000001", T0 - 3600, T0, 20, *start, speed_kn=8.0, course_deg=270.0)  # ends at `far`
    back = destination(LAT, LON, 0.0, 400.0)
    d += fixes("367000001", T0 + 7200, T0 + 6 * 3600, 20, *back, speed_kn=0.5)  # then stays in sight
    records = merged(d, companion(T0 - 3600, T0 + 3 * 3600), clock(T0 + 6 * 3600))
    alerts = run(records, settings, Environment())
    assert len(alerts) == 1
    (alert,) = alerts
    assert alert.status == "closed" and alert.evidence["form"] == "reappeared"
    assert ids(alert) == ["367000001", "367000002"]
    assert (alert.start_ts, alert.end_ts) == (T0, T0 + 7200)  # last report 10:00Z, back 12:00Z
    assert alert.evidence["reappeared"]["distance_from_last_m"] == pytest.approx(18_000, rel=0.05)
    assert alert.lat == pytest.approx(back[0], abs=1e-6)


def test_silence_alone_a_fast_vanishing_or_a_short_gap_is_not_a_dark_rendezvous(settings: Settings) -> None:
    env = Environment()
    end = T0 + 6 * 3600
    assert run(merged(went_dark(), clock(end)), settings, env) == []  # nobody nearby
    assert run(merged(went_dark(dark_speed_kn=12.0), companion(T0 - 1200, T0 + 3600), clock(end)), settings, env) == []
    assert run(merged(went_dark(back_after_s=1200), companion(T0 - 1200, T0 + 3600), clock(end)), settings, env) == []
    assert run(merged(went_dark(), companion(T0 - 1200, T0 + 3600, speed_kn=6.0), clock(end)), settings, env) == []
    assert run(merged(went_dark(at_m=4000), companion(T0 - 1200, T0 + 3600), clock(end)), settings, env) == []


def test_a_sparse_reporter_does_not_go_dark_between_its_reports(settings: Settings) -> None:
    # D is seen every 40 min (satellite AIS) beside a loiterer: its 40-min gaps are its habit.
    lat1, lon1 = destination(LAT, LON, 45.0, 800.0)
    sparse = fixes("367000001", T0 - 6 * 3600, T0 + 9 * 3600, 2400, lat1, lon1, speed_kn=0.2)
    records = merged(sparse, companion(T0 - 6 * 3600, T0 + 5 * 3600), clock(T0 + 9 * 3600))
    assert run(records, settings, Environment()) == []
    # Silent for good after 12:40Z: six of its usual intervals (4 h) later, that counts.
    ended = fixes("367000001", T0 - 6 * 3600, T0 + 3 * 3600, 2400, lat1, lon1, speed_kn=0.2)
    final = final_revisions(
        run(merged(ended, companion(T0 - 6 * 3600, T0 + 5 * 3600), clock(T0 + 9 * 3600)), settings, Environment())
    )
    assert [(a.start_ts, a.evidence["gap_s"]) for a in final] == [(ended[-1].ts, 4 * 3600)]
    # Barely seen (3 fixes) and then gone: no reporting habit to break either.
    brief = went_dark()[-3:]
    assert run(merged(brief, companion(T0 - 1200, T0 + 3600), clock(T0 + 6 * 3600)), settings, Environment()) == []


def test_going_silent_in_port_is_normal(settings: Settings) -> None:
    class Harbour:
        def distance_to_port_m(self, lat: float, lon: float) -> float:
            return 1500.0

        def distance_to_shore_m(self, lat: float, lon: float) -> float:
            return 1e6

        def on_land(self, lat: float, lon: float) -> bool:
            return False

    records = merged(went_dark(), companion(T0 - 1200, T0 + 3600), clock(T0 + 6 * 3600))
    assert run(records, settings, Environment(geography=Harbour())) == []


def test_silence_across_utc_midnight_is_not_lost(settings: Settings) -> None:
    t1 = t("23:50:00")
    records = merged(went_dark(t1=t1), companion(t1 - 1800, t1 + 3600), clock(t1 + 6 * 3600))
    final = final_revisions(run(records, settings, Environment()))
    assert len(final) == 1
    assert final[0].start_ts == t1
    assert final[0].end_ts == pytest.approx(t1 + 3600, abs=6 * MIN)


@hsettings(max_examples=15, deadline=None)
@given(
    back=st.one_of(st.none(), st.integers(1800, 20_000)),
    at_m=st.integers(0, 2900),
    seed=st.integers(0, 2**32 - 1),
)
def test_reordering_within_the_grace_period_never_changes_the_alerts(
    settings: Settings, back: int | None, at_m: int, seed: int
) -> None:
    def records() -> list[Position]:
        return merged(went_dark(back_after_s=back, at_m=at_m), companion(T0 - 1200, T0 + 3600), clock(T0 + 8 * 3600))

    reference = run(records(), settings, Environment())
    assert reference
    rng = random.Random(seed)
    fresh = records()
    late = [p.ts + rng.uniform(0, 0.9 * settings.pipeline.grace_s) for p in fresh]
    got = run([fresh[i] for i in sorted(range(len(fresh)), key=late.__getitem__)], settings, Environment())
    assert [a.to_wire() for a in got] == [a.to_wire() for a in reference]


# ---------------------------------------------------------------- harbour negatives


@pytest.mark.slow
def test_new_york_harbour_raises_no_dark_rendezvous(
    settings: Settings, geography: ReferenceGeography, shared_data: Path
) -> None:
    # The week file has 339 silences over 1 h (vessels leaving the clipped area, trajectory
    # assembly): in port or near shore they are normal, and none happens beside a slow vessel
    # at sea. Bound reached: 0 per 1,000 vessel-hours (4,827 vessel-hours in both files).
    env = Environment(geography=geography)
    for name in ("nyharbor_2020-06-30_first_hour.csv.gz", "nyharbor_2020-12-01_to_07.csv.gz"):
        assert run(real_items(shared_data / "ais" / name), settings, env) == [], name


def test_a_second_silence_replaces_an_unfinished_one(settings: Settings) -> None:
    # D goes dark twice in a row without a reappearance in between being reported (its
    # return is later than max_silence_s): the first alert closes as still dark.
    cfg = {"max_silence_s": 3600.0}
    first = went_dark(t1=T0)
    second = [replace(p, ts=p.ts + 3 * 3600) for p in went_dark(t1=T0)]
    records = merged(first, second, companion(T0 - 1200, T0 + 5 * 3600), clock(T0 + 8 * 3600))
    final = final_revisions(run(records, settings, Environment(), engine(Environment(), **cfg)))
    assert [a.start_ts for a in final] == [T0, T0 + 3 * 3600]
    assert final[0].status == "closed" and final[0].evidence["still_dark"] is True


def test_another_pair_detector_in_the_engine_changes_nothing(settings: Settings) -> None:
    # The companion's speed alternates every minute between 1 kn (slow: logged) and 3.5 kn:
    # too fast for dark_rendezvous but built as samples for a rendezvous detector taking up to
    # 6 kn. Those samples must not use up dark_rendezvous's log steps: same alerts either way.
    comp = [replace(p, speed_kn=1.0 if int(p.ts // 60) % 2 else 3.5) for p in companion(T0 - 1200, T0 + 3600)]
    records = merged(went_dark(), comp, clock(T0 + 6 * 3600))
    env = Environment()
    alone = run(records, settings, env)
    both = CellEngine(
        [RendezvousDetector(RendezvousConfig(max_speed_kn=6.0), env)],
        [DarkRendezvousDetector(DarkRendezvousConfig(), env)],
    )
    beside = run(records, settings, env, cells=both)
    assert alone, "the scenario yields a dark rendezvous"
    assert [a.to_wire() for a in beside] == [a.to_wire() for a in alone]

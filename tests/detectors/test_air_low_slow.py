"""air_low_slow: the G-TEKV drone patrol (positive), airliners, surveys and relays (negatives),
and constructed tracks for the airfield exclusion, spikes and silences."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from detectors.air_low_slow import AirLowSlowConfig, AirLowSlowDetector, AirLowSlowState
from detectors.base import Environment, TrackContext
from models.alert import Alert, validate_alert_wire
from models.position import FLAG_IMPLAUSIBLE, Position
from models.settings import Settings
from models.timeutil import parse_iso
from streams.sources.aircsv import AircraftCsvDecoder
from tests.conftest import final_revisions, read_lines, run_pipeline

TOL_S = 60.0


def flight(shared: Path, name: str) -> list[Position]:
    path = next((shared / "air").glob(name + "*"))
    return [p for p in AircraftCsvDecoder(str(path)).decode(read_lines(path)) if isinstance(p, Position)]


def low_slow(records: list[Position], settings: Settings) -> list[Alert]:
    det = AirLowSlowDetector(AirLowSlowConfig(), Environment())
    return final_revisions(run_pipeline(records, settings, Environment(), detectors=[det]))


def t(day: str, hhmmss: str) -> float:
    return parse_iso(f"{day}T{hhmmss}Z")


def test_gtekv_patrol_over_the_strait_is_one_long_episode(shared_data: Path, settings: Settings) -> None:
    alerts = low_slow(flight(shared_data, "surveillance_drone_GTEKV"), settings)
    # Out of Lydd at ~1,000 ft and 40–60 kn: low and slow from 03:49 (5 km from EGMD) until
    # 07:33 on the way back in. The altitude spike (7,375 ft at 06:36:50, ramp of 50 s) and
    # the ground-speed spikes (151–265 kn at 06:42:10 and 07:30:40) do not split it.
    assert len(alerts) == 1
    (a,) = alerts
    assert abs(a.start_ts - t("2020-04-17", "03:49:00")) <= TOL_S
    assert abs(a.end_ts - t("2020-04-17", "07:33:50")) <= TOL_S
    assert a.status == "closed"
    assert a.evidence["mean_speed_kn"] < 60
    assert 900 <= a.evidence["mean_altitude_ft"] <= 1100
    assert a.evidence["distance_to_airfield_m"] > 5000
    assert 50.8 < a.lat < 51.2 and 0.9 < a.lon < 1.7  # Dover Strait
    assert validate_alert_wire(a.to_wire()) == []


@pytest.mark.parametrize(
    "name",
    [
        "airliner_straight_AFR63ZR",
        "airliner_gnss_spoofing_THY9BP",
        "survey_lines_N441FS",  # 1,400 ft only on the climb-out, at 126+ kn
        "survey_lines_FGALN",
        "tv_relay_orbits_OOLET",  # low and slow only on the ground at Mora (ESKM)
        "tv_relay_orbits_ASR182B",
        "glider_thermals_G-CLPU",  # slow but above 1,500 ft until the landing field
    ],
)
def test_high_or_fast_flights_stay_quiet(shared_data: Path, settings: Settings, name: str) -> None:
    assert low_slow(flight(shared_data, name), settings) == []


# ---------------------------------------------------------------- constructed tracks

T0 = 1_700_000_000.0


def fix(i: int, lat: float, lon: float, alt: float | None = 500.0, speed: float | None = 50.0) -> Position:
    return Position("aircraft", "d00d00", T0 + i, lat, lon, speed_kn=speed, course_deg=90.0, altitude_ft=alt)


def drift(n: int, lat: float = 50.5, lon: float = 0.5, start: int = 0, **kw: float | None) -> list[Position]:
    k = math.cos(math.radians(lat))
    return [fix(start + i, lat, lon + i * 25.0 / (111_195.0 * k), **kw) for i in range(n)]  # ~50 kn east


def run(fixes: list[Position], until: float | None = None) -> list[Alert]:
    det = AirLowSlowDetector(AirLowSlowConfig(), Environment())
    state: AirLowSlowState | None = None
    out: list[Alert] = []
    for f in fixes:
        state, alerts = det.step(state, f, TrackContext())
        out += alerts
    if state is not None and until is not None:
        _, alerts = det.expire(state, until)
        out += alerts
    return out


def test_ten_minutes_low_and_slow_at_sea_opens_after_five() -> None:
    alerts = run(drift(600), until=T0 + 600 + 300)
    assert [a.status for a in alerts] == ["open", "closed"]
    assert alerts[0].end_ts == T0 + 300  # min_duration_s
    assert alerts[1].start_ts == T0 and alerts[1].end_ts == T0 + 599
    assert alerts[1].evidence["positions"] == 600


def test_too_high_too_fast_or_too_short_is_not_low_and_slow() -> None:
    assert run(drift(900, alt=2500.0)) == []
    assert run(drift(900, speed=140.0)) == []
    assert run(drift(240)) == []


def test_near_an_airfield_it_is_airfield_traffic() -> None:
    # circuits of ~1 km around Lydd (EGMD, 50.956 N 0.939 E), 15 min at 500 ft and 50 kn
    circuits = [fix(i, 50.9561 + 0.009 * math.sin(i / 60), 0.9392 + 0.014 * math.cos(i / 60)) for i in range(900)]
    assert run(circuits) == []


def test_a_short_spike_does_not_split_but_a_climb_does() -> None:
    spike = drift(300) + drift(60, start=300, alt=7000.0) + drift(300, start=360)
    alerts = run(spike, until=T0 + 2000)
    assert len({a.id for a in alerts}) == 1
    climb = drift(400) + drift(200, start=400, alt=3000.0) + drift(400, start=600)
    assert len({a.id for a in run(climb, until=T0 + 2000)}) == 2


def test_fixes_without_altitude_or_implausible_are_skipped() -> None:
    track = drift(600)
    for f in track[100:200]:
        f.altitude_ft = None
    for f in track[300:310]:
        f.flags |= FLAG_IMPLAUSIBLE
        f.altitude_ft = 30_000.0
    alerts = run(track, until=T0 + 2000)
    assert len({a.id for a in alerts}) == 1
    assert alerts[-1].evidence["positions"] == 600 - 100 - 10


def test_a_silence_ends_the_episode() -> None:
    track = drift(400) + drift(400, start=400 + 600)  # 10 min without positions
    alerts = run(track, until=T0 + 5000)
    assert [a.status for a in alerts] == ["open", "closed", "open", "closed"]
    assert alerts[1].end_ts == T0 + 399

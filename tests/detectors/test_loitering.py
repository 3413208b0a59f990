"""Loitering: scenarios on a real track, and the rules that keep it honest."""

from __future__ import annotations

from dataclasses import replace

import pytest

from detectors.base import Environment
from detectors.loitering import LoiteringConfig, LoiteringDetector
from models.position import Position
from models.settings import Settings
from models.timeutil import parse_iso
from tests.conftest import final_revisions, real_track, run_pipeline, thinned

MIN = 60.0


def t(hhmmss: str, day: str = "2020-06-04") -> float:
    return parse_iso(f"{day}T{hhmmss}Z")


def only_loitering(settings: Settings, cfg: LoiteringConfig | None = None) -> list[LoiteringDetector]:
    env = Environment(zones=settings.zones)
    return [LoiteringDetector(cfg or LoiteringConfig(), env)]


def test_vessel_stopping_offshore_is_reported_per_stop(settings: Settings) -> None:
    # MMSI 367584050, ~40 km east of Cape Henry, positions only (speed derived from the track).
    # It works slowly northward and back until ~12:50Z, then holds at 36.896N 75.492W until
    # ~15:47Z, runs west and back, and holds/drifts again from ~17:23Z to ~20:13Z.
    alerts = run_pipeline(real_track("vb_367584050_2020-06-04.csv.gz"), settings, detectors=only_loitering(settings))
    final = final_revisions(alerts)
    assert [(a.kind, a.status, [e.id for e in a.entities]) for a in final] == [
        ("loitering", "closed", ["367584050"]),
        ("loitering", "closed", ["367584050"]),
    ]
    first, second = final
    assert first.start_ts == pytest.approx(t("12:52:14"), abs=5 * MIN)
    assert first.end_ts == pytest.approx(t("15:47:03"), abs=5 * MIN)
    assert second.start_ts == pytest.approx(t("17:23:11"), abs=5 * MIN)
    assert second.end_ts == pytest.approx(t("20:13:20"), abs=5 * MIN)
    assert first.lat == pytest.approx(36.896, abs=0.01) and first.lon == pytest.approx(-75.492, abs=0.01)
    assert first.evidence["median_speed_kn"] < 2.0
    assert first.evidence["duration_s"] == pytest.approx(first.end_ts - first.start_ts, abs=1)


def test_lifecycle_opens_updates_and_closes_with_one_id(settings: Settings) -> None:
    alerts = run_pipeline(real_track("vb_367584050_2020-06-04.csv.gz"), settings, detectors=only_loitering(settings))
    first_id = alerts[0].id
    episode = [a for a in alerts if a.id == first_id]
    assert [a.revision for a in episode] == list(range(1, len(episode) + 1))
    assert episode[0].status == "open" and episode[-1].status == "closed"
    assert all(a.status == "update" for a in episode[1:-1])
    assert all(a.start_ts == episode[0].start_ts for a in episode)
    assert [a.end_ts for a in episode] == sorted(a.end_ts for a in episode)


def _fixes(spec: list[tuple[float, float]], lat: float = 10.0, lon: float = -85.0) -> list[Position]:
    """(time offset s, speed kn) pairs for one vessel at a fixed place."""
    base = t("10:00:00")
    return [Position("vessel", "224000001", base + dt, lat, lon, speed_kn=sog) for dt, sog in spec]


def test_long_silence_is_not_loitering(settings: Settings) -> None:
    # Slow for 40 min, silent for 5 h, slow again for 40 min: two short slow spells, no alert.
    spec = [(m * MIN, 0.5) for m in range(0, 41, 2)] + [(m * MIN, 0.5) for m in range(340, 381, 2)]
    alerts = run_pipeline(_fixes(spec), settings, detectors=only_loitering(settings))
    assert alerts == []


def test_vessel_heard_only_by_satellite_loiters_across_its_usual_intervals(settings: Settings) -> None:
    # Offshore, heard every 40 min (satellite AIS) while it drifts at 0.5 kn for 4 h: its
    # silences are its habit (3 x 40 min allowed, at most sparse_max_gap_s = 1 h), one episode
    # from its second report (the first has no habit to judge the next silence by) to 14:00.
    spec = [(m * MIN, 0.5) for m in range(-120, 241, 40)] + [(m * MIN, 9.0) for m in range(280, 400, 40)]
    final = final_revisions(run_pipeline(_fixes(spec), settings, detectors=only_loitering(settings)))
    assert [(a.kind, a.start_ts, a.end_ts) for a in final] == [("loitering", t("08:40:00"), t("14:00:00"))]
    assert final[0].evidence["longest_silence_s"] == 2400
    # Heard every 80 min, the silences are longer than the hour any vessel is allowed.
    sparser = [(m * MIN, 0.5) for m in range(0, 481, 80)]
    assert run_pipeline(_fixes(sparser), settings, detectors=only_loitering(settings)) == []
    # Without the allowance (sparse_max_gap_s = max_gap_s), the 40-min track is no loitering either.
    cfg = LoiteringConfig(sparse_max_gap_s=1800.0)
    assert run_pipeline(_fixes(spec), settings, detectors=only_loitering(settings, cfg)) == []


def test_real_stops_heard_every_half_hour_are_still_found(settings: Settings) -> None:
    # The two stops of 367584050 (12:52–15:47Z and 17:23–20:13Z) with the vessel heard only
    # once every 30 min: each silence is its habit, so both are still reported, within two
    # reports of the full track's spans. With a silence always ending the episode, neither is.
    track = thinned(real_track("vb_367584050_2020-06-04.csv.gz"), 30 * MIN)
    final = final_revisions(run_pipeline(track, settings, detectors=only_loitering(settings)))
    spans = [(a.start_ts, a.end_ts) for a in final]
    expected = [(t("12:52:14"), t("15:47:03")), (t("17:23:11"), t("20:13:20"))]
    assert len(spans) == 2
    for (start, end), (want_start, want_end) in zip(spans, expected, strict=True):
        assert start == pytest.approx(want_start, abs=60 * MIN) and end == pytest.approx(want_end, abs=60 * MIN)
    assert all(a.evidence["longest_silence_s"] >= 30 * MIN for a in final)
    cfg = LoiteringConfig(sparse_max_gap_s=1800.0)
    assert run_pipeline(track, settings, detectors=only_loitering(settings, cfg)) == []


def test_a_silence_is_judged_against_the_vessels_own_habit(settings: Settings) -> None:
    # Heard every 10 s, slow for 50 min, silent for 40 min, slow again for 50 min: the
    # silence is 240 of its usual intervals and more than max_gap_s: two short spells, no alert.
    spec = [(s, 0.5) for s in range(0, 3001, 10)] + [(s, 0.5) for s in range(5400, 8401, 10)]
    assert run_pipeline(_fixes(spec), settings, detectors=only_loitering(settings)) == []


def test_short_fast_blip_does_not_split_an_episode(settings: Settings) -> None:
    spec = [(m * MIN, 0.3) for m in range(0, 91, 3)]
    spec.insert(15, (44.5 * MIN, 6.0))  # one noisy fast report mid-episode
    final = final_revisions(run_pipeline(_fixes(spec), settings, detectors=only_loitering(settings)))
    assert len(final) == 1
    assert final[0].start_ts == t("10:00:00") and final[0].end_ts == t("11:30:00")


def test_open_alert_is_closed_by_watermark_when_track_goes_silent(settings: Settings) -> None:
    # 2 h slow, then silence; another vessel keeps reporting so the watermark moves on.
    spec = [(m * MIN, 0.2) for m in range(0, 121, 5)]
    start = t("10:00:00")
    other = [Position("vessel", "224000002", start + m * MIN, 11.0, -86.0, speed_kn=12.0) for m in range(0, 300, 5)]
    records = sorted(_fixes(spec) + other, key=lambda p: p.ts)
    alerts = run_pipeline(records, settings, detectors=only_loitering(settings))
    final = final_revisions(alerts)
    assert len(final) == 1 and final[0].status == "closed"
    assert final[0].end_ts == t("12:00:00")


def test_exclusion_zone_ends_and_suppresses_loitering(settings: Settings) -> None:
    # 2 h slow inside a configured exclusion zone: nothing.
    from shapely.geometry import box

    from models.zones import Zone, ZoneIndex

    zones = ZoneIndex([Zone("test-anchorage", "exclusion", box(-85.1, 9.9, -84.9, 10.1))])
    env = Environment(zones=zones)
    spec = [(m * MIN, 0.2) for m in range(0, 121, 5)]
    alerts = run_pipeline(_fixes(spec), settings, env, detectors=[LoiteringDetector(LoiteringConfig(), env)])
    assert alerts == []


def test_at_anchor_or_moored_is_not_loitering(settings: Settings) -> None:
    # 2 h slow offshore: reported; the same with AIS status at anchor (1) or moored (5): not.
    # At anchor for the first half hour only, then drifting for 1.5 h: the drift alone counts.
    spec = [(m * MIN, 0.2) for m in range(0, 121, 5)]

    def run(status: list[int | None], cfg: LoiteringConfig | None = None) -> list[tuple[float, float]]:
        fixes = [replace(p, nav_status=s) for p, s in zip(_fixes(spec), status, strict=True)]
        alerts = final_revisions(run_pipeline(fixes, settings, detectors=only_loitering(settings, cfg)))
        return [(a.start_ts, a.end_ts) for a in alerts]

    n = len(spec)
    assert run([None] * n) == [(t("10:00:00"), t("12:00:00"))]
    assert run([1] * n) == [] and run([5] * n) == []
    assert run([1] * 6 + [0] * (n - 6)) == [(t("10:30:00"), t("12:00:00"))]
    assert run([1] * n, LoiteringConfig(excluded_nav_statuses=())) == [(t("10:00:00"), t("12:00:00"))]


def test_near_port_is_excluded_by_geography(settings: Settings) -> None:
    class NearPort:
        def distance_to_port_m(self, lat: float, lon: float) -> float:
            return 1000.0

        def distance_to_shore_m(self, lat: float, lon: float) -> float:
            return 50_000.0

        def on_land(self, lat: float, lon: float) -> bool:
            return False

    env = Environment(zones=settings.zones, geography=NearPort())
    spec = [(m * MIN, 0.2) for m in range(0, 121, 5)]
    detector = LoiteringDetector(LoiteringConfig(port_exclusion_m=3000.0), env)
    assert run_pipeline(_fixes(spec), settings, env, detectors=[detector]) == []
    far = LoiteringDetector(LoiteringConfig(port_exclusion_m=500.0), env)
    assert len(final_revisions(run_pipeline(_fixes(spec), settings, env, detectors=[far]))) == 1


def test_thresholds_shape_the_alert(settings: Settings) -> None:
    spec = [(m * MIN, 1.5) for m in range(0, 50, 2)]  # 48 min at 1.5 kn
    strict = LoiteringConfig(min_duration_s=3600.0)
    loose = replace(strict, min_duration_s=1800.0)
    assert run_pipeline(_fixes(spec), settings, detectors=only_loitering(settings, strict)) == []
    final = final_revisions(run_pipeline(_fixes(spec), settings, detectors=only_loitering(settings, loose)))
    assert len(final) == 1 and final[0].evidence["min_duration_s"] == 1800.0
    slower = replace(loose, max_speed_kn=1.0)
    assert run_pipeline(_fixes(spec), settings, detectors=only_loitering(settings, slower)) == []
    assert final[0].detector.config_hash != only_loitering(settings, slower)[0].info.config_hash

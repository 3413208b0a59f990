"""Routing with release labels: an alert never reaches an agency it is not releasable to."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from shapely.geometry import box

from detectors.pipeline import Pipeline
from detectors.routing import ReleasePolicy, Router
from models.alert import ALERT_KINDS, Alert, DetectorInfo, EntityRef
from models.errors import ConfigError
from models.settings import load_settings
from models.zones import Zone, ZoneIndex
from tests.conftest import REPO, TEST_DATA, read_lines

# Two jurisdictions side by side (lon -76..-75 and -75..-74), a sensitive watch zone inside the
# east one; outside both, alerts go to the default agency.
WEST = Zone("west", "jurisdiction", box(-76, 36, -75, 37), agency="west-cg")
EAST = Zone("east", "jurisdiction", box(-75, 36, -74, 37), agency="east-cg")
SENSITIVE = Zone("sensitive", "watch", box(-74.5, 36.5, -74.2, 36.8), properties={"release": "NAVY-ONLY"})
LABELS = {
    "REL-CG": frozenset({"west-cg", "east-cg"}),
    "NAVY-ONLY": frozenset({"navy"}),
    "REL-ALL": frozenset({"west-cg", "east-cg", "navy", "regional"}),
}
AGENCIES = ("west-cg", "east-cg", "navy", "regional")


def alert(kind: str = "loitering", lat: float = 36.2, lon: float = -75.5) -> Alert:
    return Alert(
        id=f"{kind}-x", revision=1, kind=kind, status="open", start_ts=0.0, end_ts=60.0, lat=lat, lon=lon,
        entities=(EntityRef("vessel", "367000000"),), severity="medium", confidence=0.9,
        detector=DetectorInfo(kind, "1", "h"), evidence={"duration_s": 60.0},
    )  # fmt: skip


def router(by_kind: dict[str, str] | None = None, default: str = "") -> Router:
    return Router(ZoneIndex([WEST, EAST, SENSITIVE]), "regional", ReleasePolicy(LABELS, by_kind or {}, default))


def test_without_labels_routing_is_unchanged() -> None:
    plain = Router(ZoneIndex([WEST, EAST]), "regional")
    assert plain.route(alert(lon=-75.5)).agencies == ("west-cg",)
    assert plain.route(alert(lat=10, lon=10)).agencies == ("regional",)
    assert "release" not in plain.route(alert()).evidence


def test_kind_label_keeps_the_responsible_agency_when_it_is_cleared() -> None:
    r = router({"spoofing": "REL-CG"})
    routed = r.route(alert("spoofing", lon=-74.9))
    assert routed.agencies == ("east-cg",)
    assert routed.evidence["release"] == ["REL-CG"] and routed.evidence["duration_s"] == 60.0
    assert r.route(alert("loitering", lon=-74.9)).agencies == ("east-cg",)  # other kinds unlabelled


def test_default_agency_not_cleared_hands_it_to_the_cleared_ones() -> None:
    # Outside every jurisdiction the default agency is responsible, but REL-CG excludes it.
    routed = router({"spoofing": "REL-CG"}).route(alert("spoofing", lat=10, lon=10))
    assert routed.agencies == ("east-cg", "west-cg")


def test_zone_label_restricts_even_the_jurisdiction_agency() -> None:
    routed = router().route(alert(lat=36.6, lon=-74.4))  # in "east" and in "sensitive"
    assert routed.agencies == ("navy",) and routed.zones == ("east", "sensitive")


def test_two_labels_with_no_common_agency_send_it_to_nobody() -> None:
    routed = router({"loitering": "REL-CG"}).route(alert(lat=36.6, lon=-74.4))
    assert routed.agencies == () and routed.evidence["release"] == ["NAVY-ONLY", "REL-CG"]


def test_default_label_applies_only_to_otherwise_unlabelled_alerts() -> None:
    r = router({"spoofing": "REL-CG"}, default="REL-ALL")
    assert r.route(alert("loitering", lat=10, lon=10)).agencies == ("regional",)
    assert r.route(alert("loitering", lat=10, lon=10)).evidence["release"] == ["REL-ALL"]
    assert r.route(alert("spoofing", lat=10, lon=10)).evidence["release"] == ["REL-CG"]


@given(
    kind=st.sampled_from(ALERT_KINDS),
    lat=st.floats(35.5, 37.5),
    lon=st.floats(-76.5, -73.5),
    by_kind=st.dictionaries(st.sampled_from(ALERT_KINDS), st.sampled_from(sorted(LABELS)), max_size=4),
    default=st.sampled_from(["", *sorted(LABELS)]),
)
def test_never_an_agency_outside_every_label(
    kind: str, lat: float, lon: float, by_kind: dict[str, str], default: str
) -> None:
    r = router(by_kind, default)
    routed = r.route(alert(kind, lat, lon))
    for label in routed.evidence.get("release", []):
        assert set(routed.agencies) <= LABELS[label]
    assert set(routed.agencies) <= set(AGENCIES)


def test_a_zone_naming_an_unknown_label_stops_the_program() -> None:
    with pytest.raises(ConfigError, match=r"sensitive\.properties\.release.*NAVY-ONLY"):
        Router(ZoneIndex([SENSITIVE]), "regional")  # no labels configured: fail closed
    with pytest.raises(ValueError, match="unknown release label"):
        ReleasePolicy(LABELS, {"spoofing": "NOPE"})


def test_labels_from_settings_file(tmp_path: Path) -> None:
    shutil.copytree(REPO / "config" / "zones", tmp_path / "zones")  # uscg-d5 covers Virginia Beach
    cfg = tmp_path / "v.toml"
    cfg.write_text(
        '[routing]\ndefault_agency = "regional-coordination"\n'
        '[routing.release_labels]\n"REL-USCG" = ["uscg-d1", "uscg-d5"]\n'
        '[routing.release_by_kind]\nloitering = "REL-USCG"\n',
        encoding="utf-8",
    )
    settings = load_settings(cfg)
    pipeline = Pipeline(settings)
    pipeline.router = Router.from_settings(settings)
    from streams.sources.marinecadastre import MarineCadastreDecoder

    decoder = MarineCadastreDecoder(str(TEST_DATA / "vb_367584050_2020-06-04.csv.gz"))
    records = [i for i in decoder.decode(read_lines(TEST_DATA / "vb_367584050_2020-06-04.csv.gz"))
               if not hasattr(i, "reason")]  # fmt: skip
    out = [a for r in records for a in pipeline.push(r)] + pipeline.finish()  # type: ignore[arg-type]
    loitering = [a for a in out if a.kind == "loitering"]
    assert loitering and all(a.agencies == ("uscg-d5",) and a.evidence["release"] == ["REL-USCG"] for a in loitering)
    assert all("release" not in a.evidence for a in out if a.kind != "loitering")  # other kinds: unlabelled


@pytest.mark.parametrize(
    ("routing", "words"),
    [
        ('[routing.release_labels]\n"A" = []\n', "non-empty list"),
        ('[routing.release_labels]\n"A" = ["x"]\n[routing.release_by_kind]\nloiter = "A"\n', "not an alert kind"),
        ('[routing.release_by_kind]\nloitering = "B"\n', "not in release_labels"),
        ('[routing]\nrelease_default = "B"\n', "not in release_labels"),
        ("[routing]\nrelease_labels = 3\n", "expected a table"),
    ],
)
def test_bad_release_config_names_the_key(tmp_path: Path, routing: str, words: str) -> None:
    cfg = tmp_path / "v.toml"
    cfg.write_text(routing, encoding="utf-8")
    with pytest.raises(ConfigError, match=f"routing: .*{words}"):
        load_settings(cfg)

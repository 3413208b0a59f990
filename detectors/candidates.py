"""Which slot samples the pairwise vessel detectors consider at all (rendezvous, dark rendezvous)."""

from __future__ import annotations

from detectors.cells import Sample, SeaCheck, is_ship_station


def slow_vessel_at_sea(
    s: Sample, max_speed_kn: float, ship_stations_only: bool, exempt_types: frozenset[int], sea: SeaCheck
) -> bool:
    """A vessel of known speed at most ``max_speed_kn``, a ship station when asked, not of an
    exempt type (service craft), away from ports and shore and outside exclusion zones."""
    if s.etype != "vessel" or s.speed_kn is None or s.speed_kn > max_speed_kn:
        return False
    if ship_stations_only and not is_ship_station(s.eid):
        return False
    if s.ship_type is not None and s.ship_type in exempt_types:
        return False
    return not sea.excluded(s.key, s.lat, s.lon)

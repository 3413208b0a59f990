"""Small geodesy helpers on a spherical Earth (good to ~0.5 % for the distances detectors use)."""

from __future__ import annotations

import math

from models.units import DEG_TO_RAD, EARTH_RADIUS_M

_TWO_R = 2.0 * EARTH_RADIUS_M


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1 = lat1 * DEG_TO_RAD
    p2 = lat2 * DEG_TO_RAD
    dp = p2 - p1
    dl = (lon2 - lon1) * DEG_TO_RAD
    a = math.sin(dp * 0.5) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl * 0.5) ** 2
    return _TWO_R * math.asin(math.sqrt(min(1.0, a)))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial true bearing from point 1 to point 2, 0–360°."""
    p1 = lat1 * DEG_TO_RAD
    p2 = lat2 * DEG_TO_RAD
    dl = (lon2 - lon1) * DEG_TO_RAD
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return (math.degrees(math.atan2(y, x)) + 360.0) % 360.0


def angle_diff_deg(a: float, b: float) -> float:
    """Signed smallest difference b − a in degrees, in (−180, 180]."""
    d = (b - a) % 360.0
    return d - 360.0 if d > 180.0 else d


def interpolate(lat1: float, lon1: float, lat2: float, lon2: float, frac: float) -> tuple[float, float]:
    """Linear interpolation in lat/lon (adequate over the short spans between two fixes)."""
    dlon = lon2 - lon1
    if dlon > 180.0:
        dlon -= 360.0
    elif dlon < -180.0:
        dlon += 360.0
    lon = lon1 + dlon * frac
    if lon > 180.0:
        lon -= 360.0
    elif lon < -180.0:
        lon += 360.0
    return lat1 + (lat2 - lat1) * frac, lon

"""models.geo: haversine_m gives the same floats as the plain formula; equirectangular_m is close to it."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from models.geo import equirectangular_m, haversine_m
from models.units import DEG_TO_RAD, EARTH_RADIUS_M, M_PER_DEG_LAT


def plain_haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """haversine_m as first written (the oracle)."""
    p1 = lat1 * DEG_TO_RAD
    p2 = lat2 * DEG_TO_RAD
    dp = p2 - p1
    dl = (lon2 - lon1) * DEG_TO_RAD
    a = math.sin(dp * 0.5) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl * 0.5) ** 2
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))


lats = st.floats(-90, 90)
lons = st.floats(-180, 180)


@settings(max_examples=500, deadline=None)
@given(lats, lons, lats, lons)
def test_haversine_is_bit_for_bit_the_plain_formula(lat1: float, lon1: float, lat2: float, lon2: float) -> None:
    assert repr(haversine_m(lat1, lon1, lat2, lon2)) == repr(plain_haversine_m(lat1, lon1, lat2, lon2))


def test_haversine_antipodes_and_nan_like_the_plain_formula() -> None:
    for args in [(0.0, 0.0, 0.0, 180.0), (90.0, 0.0, -90.0, 0.0), (0.0, 0.0, float("nan"), 0.0)]:
        assert repr(haversine_m(*args)) == repr(plain_haversine_m(*args))


def _offset(lat: float, lon: float, d: float, bearing: float) -> tuple[float, float]:
    lat2 = lat + d * math.cos(bearing) / M_PER_DEG_LAT
    lon2 = lon + d * math.sin(bearing) / (M_PER_DEG_LAT * math.cos(lat * DEG_TO_RAD))
    if lon2 > 180.0:
        lon2 -= 360.0
    elif lon2 < -180.0:
        lon2 += 360.0
    return lat2, lon2


def test_equirectangular_is_within_1e4_of_haversine_below_50_km() -> None:
    rng = random.Random(4)
    for _ in range(50000):
        lat, lon = rng.uniform(-80, 80), rng.uniform(-180, 180)
        d = rng.uniform(1.0, 50_000.0)
        lat2, lon2 = _offset(lat, lon, d, rng.uniform(0, 2 * math.pi))
        h = haversine_m(lat, lon, lat2, lon2)
        assert abs(equirectangular_m(lat, lon, lat2, lon2) - h) <= 1e-4 * h


def test_equirectangular_wraps_the_antimeridian_and_is_symmetric() -> None:
    assert math.isclose(equirectangular_m(10.0, 179.99, 10.0, -179.99), haversine_m(10.0, 179.99, 10.0, -179.99),
                        rel_tol=1e-6)  # fmt: skip
    assert equirectangular_m(1.0, 2.0, 1.01, 2.02) == equirectangular_m(1.01, 2.02, 1.0, 2.0)
    assert equirectangular_m(5.0, 5.0, 5.0, 5.0) == 0.0

"""Unit conversion constants: the one place where units meet."""

from __future__ import annotations

import math

M_PER_NM = 1852.0
M_PER_FT = 0.3048
FT_PER_M = 1.0 / M_PER_FT
MPS_PER_KN = M_PER_NM / 3600.0
KN_PER_MPS = 1.0 / MPS_PER_KN
KMH_PER_KN = M_PER_NM / 1000.0
FPM_PER_MPS = FT_PER_M * 60.0
EARTH_RADIUS_M = 6_371_008.8
DEG_TO_RAD = math.pi / 180.0
M_PER_DEG_LAT = EARTH_RADIUS_M * DEG_TO_RAD

S_PER_MIN = 60.0
S_PER_H = 3600.0
S_PER_DAY = 86400.0


def m_to_nm(meters: float) -> float:
    return meters / M_PER_NM


def nm_to_m(nautical_miles: float) -> float:
    return nautical_miles * M_PER_NM


def m_to_ft(meters: float) -> float:
    return meters * FT_PER_M


def mps_to_kn(mps: float) -> float:
    return mps * KN_PER_MPS


def mps_to_fpm(mps: float) -> float:
    """Vertical speed: metres per second to feet per minute."""
    return mps * FPM_PER_MPS

"""Unit conversion constants: the one place where units meet."""

from __future__ import annotations

import math
from typing import Final

M_PER_NM: Final = 1852.0
M_PER_FT: Final = 0.3048
FT_PER_M: Final = 1.0 / M_PER_FT
MPS_PER_KN: Final = M_PER_NM / 3600.0
KN_PER_MPS: Final = 1.0 / MPS_PER_KN
KMH_PER_KN: Final = M_PER_NM / 1000.0
FPM_PER_MPS: Final = FT_PER_M * 60.0
EARTH_RADIUS_M: Final = 6_371_008.8
DEG_TO_RAD: Final = math.pi / 180.0
M_PER_DEG_LAT: Final = EARTH_RADIUS_M * DEG_TO_RAD

S_PER_MIN: Final = 60.0
S_PER_H: Final = 3600.0
S_PER_DAY: Final = 86400.0


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

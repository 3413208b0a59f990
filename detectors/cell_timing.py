"""When the cell engine's work is final: the slot length and the longest interpolation gap."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

DEFAULT_SLOT_S: Final = 60.0
DEFAULT_MAX_INTERP_GAP_S: Final = 600.0


@dataclass(frozen=True)
class EngineTiming:
    slot_s: float = DEFAULT_SLOT_S
    max_interp_gap_s: float = DEFAULT_MAX_INTERP_GAP_S

    @property
    def lag_s(self) -> float:
        """How far behind the watermark a slot is final: no later fix can add a sample to it."""
        return max(self.max_interp_gap_s, self.slot_s)

"""Which zones an alert touches and which agencies receive it (jurisdiction zones, default agency)."""

from __future__ import annotations

from models.alert import Alert
from models.zones import ZoneIndex


class Router:
    def __init__(self, zones: ZoneIndex, default_agency: str) -> None:
        self.zones = zones
        self.default_agency = default_agency

    def route(self, alert: Alert) -> Alert:
        found = self.zones.at(alert.lat, alert.lon)
        names = tuple(z.name for z in found if z.role != "exclusion")
        agencies = tuple(sorted({z.agency for z in found if z.role == "jurisdiction" and z.agency}))
        zones = tuple(sorted(set(alert.zones) | set(names)))
        return alert.with_routing(zones, agencies or (self.default_agency,))

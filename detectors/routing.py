"""Which zones an alert touches and which agencies receive it (jurisdiction zones, default agency).

Release labels (``[routing]`` ``release_labels``, ``release_by_kind``, ``release_default``,
and a zone's GeoJSON property ``release``) say who may see an alert, whoever is responsible
for it: a label names the agencies an alert carrying it is releasable to. An alert carries
the label of its kind, and the label of every zone it lies in; when neither applies, the
default label (if any). With several labels it is releasable only to agencies in all of them.

The router never sends an alert to an agency it is not releasable to: the responsible
agencies (jurisdictions, else the default agency) that are releasable receive it; when
none of them is, every releasable agency does (someone cleared must see it); when no
agency is in every label, nobody does (the alert stays on the internal ``alerts`` topic).
A labelled alert names its labels in ``evidence["release"]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final

from models.alert import Alert
from models.errors import ConfigError
from models.zones import Zone, ZoneIndex

if TYPE_CHECKING:
    from models.settings import Settings

RELEASE_PROPERTY: Final = "release"  # zone GeoJSON property naming a release label
RELEASE_EVIDENCE: Final = "release"


@dataclass(frozen=True)
class ReleasePolicy:
    """Release labels and the rules that give alerts their labels."""

    labels: Mapping[str, frozenset[str]]  # label -> agencies releasable to
    by_kind: Mapping[str, str] = field(default_factory=dict)  # alert kind -> label
    default: str = ""  # label of alerts no other rule labels

    def __post_init__(self) -> None:
        for kind, label in self.by_kind.items():
            if label not in self.labels:
                raise ValueError(f"kind {kind}: unknown release label {label!r}")
        if self.default and self.default not in self.labels:
            raise ValueError(f"default: unknown release label {self.default!r}")

    def labels_for(self, kind: str, zones: Iterable[Zone]) -> tuple[str, ...]:
        found = {str(z.properties[RELEASE_PROPERTY]) for z in zones if z.properties.get(RELEASE_PROPERTY)}
        label = self.by_kind.get(kind)
        if label:
            found.add(label)
        if not found and self.default:
            found.add(self.default)
        return tuple(sorted(found))

    def releasable(self, labels: Iterable[str]) -> frozenset[str]:
        sets = [self.labels[label] for label in labels]
        return frozenset.intersection(*sets) if sets else frozenset()


class Router:
    def __init__(self, zones: ZoneIndex, default_agency: str, release: ReleasePolicy | None = None) -> None:
        self.zones = zones
        self.default_agency = default_agency
        self.release = release if release is not None and release.labels else None
        known = self.release.labels if self.release is not None else {}
        for zone in zones.zones:  # a restriction that cannot be applied stops the program (fail closed)
            label = zone.properties.get(RELEASE_PROPERTY)
            if label and label not in known:
                raise ConfigError(
                    f"zones.{zone.name}.properties.{RELEASE_PROPERTY}",
                    f"release label {label!r} is not in routing.release_labels",
                )

    @classmethod
    def from_settings(cls, settings: Settings) -> Router:
        """The router the settings describe, release labels included."""
        routing = settings.routing
        labels = {name: frozenset(agencies) for name, agencies in routing.release_labels.items()}
        policy = ReleasePolicy(labels, dict(routing.release_by_kind), routing.release_default) if labels else None
        return cls(settings.zones, routing.default_agency, policy)

    def route(self, alert: Alert) -> Alert:
        found = self.zones.at(alert.lat, alert.lon)
        names = tuple(z.name for z in found if z.role != "exclusion")
        agencies = tuple(sorted({z.agency for z in found if z.role == "jurisdiction" and z.agency}))
        zones = tuple(sorted(set(alert.zones) | set(names)))
        agencies = agencies or (self.default_agency,)
        if self.release is None:
            return alert.with_routing(zones, agencies)
        labels = self.release.labels_for(alert.kind, found)
        if not labels:
            return alert.with_routing(zones, agencies)
        allowed = self.release.releasable(labels)
        cleared = tuple(a for a in agencies if a in allowed) or tuple(sorted(allowed))
        evidence = {**alert.evidence, RELEASE_EVIDENCE: list(labels)}
        return replace(alert, zones=zones, agencies=cleared, evidence=evidence)

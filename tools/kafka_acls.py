"""Create the Kafka ACLs (and SCRAM users) that let each agency read only its own alert topic.

Principals (SASL/SCRAM user names; see docs/security.md):

* ``User:<agency-prefix><agency>`` for every agency an alert can be routed to (jurisdiction
  zones, the default agency and every agency named in a release label): READ and DESCRIBE
  on the topics prefixed ``alerts.<agency>``, READ on consumer groups prefixed ``<agency>.``.
  Nothing else: not the internal ``alerts`` topic, not another agency's topic.
* ``User:vigiamar-worker``: reads the position topics, reads and writes ``cells`` and
  ``alerts``, writes every ``alerts.<agency>`` topic and the dead-letter topic, owns the
  faust app's internal topics and consumer group (prefixed by ``kafka.app_id``).
* ``User:vigiamar-feed``: writes the position topics and the dead-letter topic (input it
  rejects); DESCRIBE on the deployment's other topics, so its start-up check (``vigiamar
  feed`` makes sure every topic exists) sees them and creates nothing.

Prefixed ACLs match every topic whose name *starts with* the prefix, so an agency whose topic
name is a prefix of another's (``alerts.uscg-d1`` and ``alerts.uscg-d11``) would read both:
the plan refuses such agency names.

The broker needs an authorizer (KRaft: ``authorizer.class.name=
org.apache.kafka.metadata.authorizer.StandardAuthorizer``) and must deny what no ACL allows
(``allow.everyone.if.no.acl.found=false``, the default).

Examples (from the repository root, with vigiamar installed)::

    python tools/kafka_acls.py --dry-run                                  # print the plan
    VIGIAMAR_KAFKA_SECURITY=/etc/vigiamar/admin.toml \\
      python tools/kafka_acls.py --brokers kafka-1:9094 --create-users    # apply, with users

``--create-users`` creates or updates (rotates) the SCRAM-SHA-512 credential of every
principal whose password is in the environment as ``VIGIAMAR_PASSWORD_<USER>`` (upper case,
``-`` and ``.`` as ``_``, e.g. ``VIGIAMAR_PASSWORD_AGENCY_USCG_D5``); others are skipped.
The admin connection's own security comes from ``streams.security`` (``$VIGIAMAR_KAFKA_SECURITY``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: the repository root holds the packages
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.errors import VigiamarError
from models.settings import load_settings

WORKER = "vigiamar-worker"
FEED = "vigiamar-feed"
AGENCY_PREFIX = "agency-"


@dataclass(frozen=True, order=True)
class AclSpec:
    """One ALLOW rule, in Kafka's terms (resource type, name, pattern type, operation)."""

    principal: str  # "User:<name>"
    resource: str  # TOPIC | GROUP | CLUSTER
    name: str
    pattern: str  # LITERAL | PREFIXED
    operation: str  # READ | WRITE | DESCRIBE | CREATE | ALTER_CONFIGS | ... | ALL
    host: str = "*"

    def matches(self, resource: str, name: str) -> bool:
        if resource != self.resource:
            return False
        return name.startswith(self.name) if self.pattern == "PREFIXED" else name == self.name

    def text(self) -> str:
        return f"{self.principal:38} ALLOW {self.operation:16} {self.resource:7} {self.pattern:8} {self.name}"


@dataclass(frozen=True)
class Topology:
    """What the ACLs are about: topic names and the agencies, from the settings."""

    positions: tuple[str, ...]
    cells: str
    alerts: str
    dead_letter: str
    agency_topics: Mapping[str, str]  # agency -> alerts.<agency>
    app_id: str


class PlanError(VigiamarError):
    pass


def topology_from_settings(config: str | None) -> Topology:
    from streams.topics import stream_settings

    settings = load_settings(config)
    stream = stream_settings(settings)  # its agencies include those named only in a release label
    t = stream.topics
    return Topology(
        positions=t.position_topics(),
        cells=t.cells,
        alerts=t.alerts,
        dead_letter=t.dead_letter,
        agency_topics=stream.agency_topics(),
        app_id=stream.kafka.app_id,
    )


def user(name: str) -> str:
    return f"User:{name}"


def agency_principal(agency: str, prefix: str = AGENCY_PREFIX) -> str:
    return user(f"{prefix}{agency}")


def plan_acls(
    topo: Topology, worker: str = WORKER, feed: str = FEED, agency_prefix: str = AGENCY_PREFIX
) -> list[AclSpec]:
    """Every ACL the deployment needs; raises :class:`PlanError` for agency names that overlap."""
    _check_prefixes(topo.agency_topics)
    acls: list[AclSpec] = []
    for agency, topic in topo.agency_topics.items():
        p = agency_principal(agency, agency_prefix)
        acls += [
            AclSpec(p, "TOPIC", topic, "PREFIXED", "READ"),
            AclSpec(p, "TOPIC", topic, "PREFIXED", "DESCRIBE"),
            AclSpec(p, "GROUP", f"{agency}.", "PREFIXED", "READ"),
        ]
    w = user(worker)
    for topic in topo.positions:
        acls += [AclSpec(w, "TOPIC", topic, "LITERAL", op) for op in ("READ", "DESCRIBE")]
    for topic in (topo.cells, topo.alerts):
        acls += [AclSpec(w, "TOPIC", topic, "LITERAL", op) for op in ("READ", "WRITE", "DESCRIBE")]
    acls += [AclSpec(w, "TOPIC", t, "LITERAL", op) for t in topo.agency_topics.values() for op in ("WRITE", "DESCRIBE")]
    acls += [AclSpec(w, "TOPIC", topo.dead_letter, "LITERAL", op) for op in ("WRITE", "DESCRIBE")]
    # faust's own topics (<app_id>-<table>-changelog, repartition topics) and its consumer group.
    acls += [AclSpec(w, "TOPIC", topo.app_id, "PREFIXED", "ALL"), AclSpec(w, "GROUP", topo.app_id, "PREFIXED", "READ")]
    acls += [AclSpec(w, "CLUSTER", "kafka-cluster", "LITERAL", "IDEMPOTENT_WRITE")]
    f = user(feed)
    for topic in (*topo.positions, topo.dead_letter):
        acls += [AclSpec(f, "TOPIC", topic, "LITERAL", op) for op in ("WRITE", "DESCRIBE")]
    for topic in (topo.cells, topo.alerts, *topo.agency_topics.values()):  # seen, never read or written
        acls += [AclSpec(f, "TOPIC", topic, "LITERAL", "DESCRIBE")]
    acls += [AclSpec(f, "CLUSTER", "kafka-cluster", "LITERAL", "IDEMPOTENT_WRITE")]
    return sorted(set(acls))


def _check_prefixes(agency_topics: Mapping[str, str]) -> None:
    items = sorted(agency_topics.items())
    for a, ta in items:
        for b, tb in items:
            if a != b and tb.startswith(ta):
                raise PlanError(
                    f"agency {a!r}: its topic {ta!r} is a prefix of {tb!r} (agency {b!r}); a prefixed ACL "
                    f"would let {a!r} read {b!r}'s alerts: rename one of the agencies"
                )
            if a != b and b.startswith(f"{a}."):
                raise PlanError(f"agency {a!r}: consumer-group prefix {a + '.'!r} also matches agency {b!r}")


def allowed(acls: Iterable[AclSpec], principal: str, operation: str, resource: str, name: str) -> bool:
    """What Kafka's authorizer decides with these ACLs (deny unless an ALLOW matches; ALL covers all)."""
    return any(
        a.principal == principal and a.operation in (operation, "ALL") and a.matches(resource, name) for a in acls
    )


def passwords_from_env(principals: Iterable[str], env: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in principals:
        name = p.removeprefix("User:")
        var = "VIGIAMAR_PASSWORD_" + name.upper().replace("-", "_").replace(".", "_")
        if env.get(var):
            out[name] = env[var]
    return out


# --- applying (kafka-python's admin API) -------------------------------------------------------
def to_kafka(spec: AclSpec) -> Any:
    from kafka.admin import ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern, ResourceType

    return ACL(
        principal=spec.principal,
        host=spec.host,
        operation=ACLOperation[spec.operation],
        permission_type=ACLPermissionType.ALLOW,
        resource_pattern=ResourcePattern(
            ResourceType[spec.resource], spec.name, ACLResourcePatternType[spec.pattern]
        ),
    )


def apply(admin: Any, acls: Sequence[AclSpec], passwords: Mapping[str, str]) -> list[str]:
    """Create users (SCRAM-SHA-512 upserts) then ACLs; returns the problems (empty when all went in)."""
    problems: list[str] = []
    if passwords:
        from kafka.admin import ScramMechanism, UserScramCredentialUpsertion

        sha512 = ScramMechanism.SCRAM_SHA_512
        upserts = [UserScramCredentialUpsertion(u, sha512, pw) for u, pw in sorted(passwords.items())]
        for name, error in admin.alter_user_scram_credentials(upserts).items():
            if error:
                problems.append(f"user {name}: {error}")
    result = admin.create_acls([to_kafka(a) for a in acls])
    problems += [f"ACL failed: {err!r}" for err in result.get("failed", [])]
    return problems


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kafka_acls.py",
        description="Create per-agency Kafka ACLs (and SCRAM users) from the vigiamar settings.",
        epilog="examples:\n  python tools/kafka_acls.py --dry-run\n"
        "  python tools/kafka_acls.py --brokers kafka-1:9094 --create-users",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", default=None, help="settings file (default: the bundled config/vigiamar.toml)")
    p.add_argument("--brokers", default=os.environ.get("VIGIAMAR_BROKERS", "localhost:9092"))
    p.add_argument("--worker-principal", default=WORKER, help=f"SASL user of the workers (default {WORKER})")
    p.add_argument("--feed-principal", default=FEED, help=f"SASL user of the feeds (default {FEED})")
    p.add_argument("--agency-prefix", default=AGENCY_PREFIX, help="agency users are <prefix><agency>")
    p.add_argument("--create-users", action="store_true", help="upsert SCRAM credentials from VIGIAMAR_PASSWORD_*")
    p.add_argument("--dry-run", action="store_true", help="print the plan, connect to nothing")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        acls = plan_acls(topology_from_settings(args.config), args.worker_principal, args.feed_principal,
                         args.agency_prefix)  # fmt: skip
    except VigiamarError as exc:
        print(f"kafka_acls: error: {exc}", file=sys.stderr)
        return 2
    for acl in acls:
        print(acl.text())
    principals = sorted({a.principal for a in acls})
    passwords = passwords_from_env(principals, os.environ) if args.create_users else {}
    if args.create_users:
        missing = [p for p in principals if p.removeprefix("User:") not in passwords]
        for p in missing:
            print(f"# no VIGIAMAR_PASSWORD_* for {p}: user not created/rotated", file=sys.stderr)
    if args.dry_run:
        print(f"# dry run: {len(acls)} ACLs for {len(principals)} principals, nothing applied", file=sys.stderr)
        return 0
    from kafka.admin import KafkaAdminClient

    from streams.security import kafka_python_kwargs, load_security

    try:
        security = kafka_python_kwargs(load_security())
    except VigiamarError as exc:
        print(f"kafka_acls: error: {exc}", file=sys.stderr)
        return 2
    admin = KafkaAdminClient(bootstrap_servers=args.brokers, client_id="vigiamar-acls", **security)
    try:
        problems = apply(admin, acls, passwords)
    finally:
        admin.close()
    for problem in problems:
        print(f"kafka_acls: {problem}", file=sys.stderr)
    print(f"# applied {len(acls)} ACLs, {len(passwords)} users", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

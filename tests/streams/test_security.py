"""Kafka client security: SASL/SCRAM only over TLS (unless allowed), mutual TLS, no silent downgrade."""

from __future__ import annotations

import importlib.util
import shutil
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from models.errors import ConfigError
from streams.security import (
    SecurityConfig,
    aiokafka_kwargs,
    faust_credentials,
    kafka_python_kwargs,
    load_security,
    resolve,
    ssl_context,
)
from tests.conftest import REPO

ENV = {"VIGIAMAR_KAFKA_PASSWORD": "s3cret"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A throw-away CA and a client certificate signed by it (openssl CLI)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("pki")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=vigiamar-test-ca")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr",
        "-subj", "/CN=vigiamar-worker")  # fmt: skip
    run("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "client.pem", "-days", "2")  # fmt: skip
    return {"cafile": str(d / "ca.pem"), "certfile": str(d / "client.pem"), "keyfile": str(d / "client.key")}


def test_default_is_plaintext_without_credentials() -> None:
    sec = load_security({}, env={})
    assert sec.protocol == "PLAINTEXT"
    assert faust_credentials(sec, env={}) is None
    assert aiokafka_kwargs(sec, env={}) == {"security_protocol": "PLAINTEXT"}


def test_sasl_without_tls_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"kafka\.security\.protocol: SASL without TLS"):
        load_security({"protocol": "SASL_PLAINTEXT", "username": "vigiamar-worker"}, env=ENV)
    # A config built by hand gets the same rule when it is turned into credentials.
    with pytest.raises(ConfigError, match="SASL without TLS"):
        faust_credentials(SecurityConfig(protocol="SASL_PLAINTEXT", username="w"), env=ENV)


def test_sasl_without_tls_only_when_explicitly_allowed() -> None:
    sec = load_security(
        {"protocol": "SASL_PLAINTEXT", "username": "lab", "allow_sasl_plaintext": True, "sasl_mechanism": "PLAIN"},
        env=ENV,
    )
    creds = faust_credentials(sec, env=ENV)
    assert creds.protocol.value == "SASL_PLAINTEXT" and creds.ssl_context is None


def test_sasl_scram_over_tls_gives_faust_sasl_ssl(pki: dict[str, str]) -> None:
    sec = load_security(
        {"protocol": "SASL_SSL", "username": "vigiamar-worker", "cafile": pki["cafile"]}, env=ENV
    )
    creds = faust_credentials(sec, env=ENV)
    assert creds.protocol.value == "SASL_SSL"  # not faust's SASL_PLAINTEXT default
    assert creds.mechanism.value == "SCRAM-SHA-512"
    assert (creds.username, creds.password) == ("vigiamar-worker", "s3cret")
    ctx = creds.ssl_context
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert any(c["subject"] == ((("commonName", "vigiamar-test-ca"),),) for c in ctx.get_ca_certs())
    kw = kafka_python_kwargs(sec, env=ENV)
    assert kw["security_protocol"] == "SASL_SSL" and kw["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kw["sasl_plain_username"] == "vigiamar-worker" and kw["sasl_plain_password"] == "s3cret"
    assert "s3cret" not in repr(resolve(sec, env=ENV))


def test_mutual_tls_loads_the_client_certificate(pki: dict[str, str]) -> None:
    sec = load_security({"protocol": "SSL", **pki}, env={})
    creds = faust_credentials(sec, env={})
    assert creds.protocol.value == "SSL" and isinstance(creds.context, ssl.SSLContext)
    # SASL over mutual TLS: both the SCRAM principal and the certificate.
    both = load_security({"protocol": "SASL_SSL", "username": "w", **pki}, env=ENV)
    assert aiokafka_kwargs(both, env=ENV)["ssl_context"] is not None


def test_broken_client_key_is_a_config_error(pki: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    sec = load_security({"protocol": "SSL", "cafile": pki["cafile"], "certfile": pki["certfile"], "keyfile": str(bad)},
                        env={})  # fmt: skip
    with pytest.raises(ConfigError, match="cannot load the client certificate"):
        ssl_context(sec, env={})


@pytest.mark.parametrize(
    ("table", "env", "key", "words"),
    [
        ({"protocol": "SASL_SSL"}, ENV, "username", "needs a user name"),
        ({"protocol": "SASL_SSL", "username": "w"}, {}, "password_env", "VIGIAMAR_KAFKA_PASSWORD"),
        ({"username": "w"}, ENV, "username", "ignores it"),
        ({"protocol": "PLAINTEXT", "cafile": "/x/ca.pem"}, {}, "cafile", "not TLS"),
        ({"protocol": "SSL", "cafile": "/no/such/ca.pem"}, {}, "cafile", "no such file"),
        ({"protocol": "SSL", "keyfile": "/x/k.pem"}, {}, "keyfile", "without a certificate"),
        ({"protocol": "TLS"}, {}, "protocol", "not one of"),
        ({"protocol": "SASL_SSL", "username": "w", "sasl_mechanism": "MD5"}, ENV, "sasl_mechanism", "not one of"),
        ({"password": "inline"}, {}, "password", "unknown key"),
    ],
)
def test_unusable_settings_name_the_key(table: dict[str, object], env: dict[str, str], key: str, words: str) -> None:
    with pytest.raises(ConfigError, match=rf"kafka\.security\.{key}: .*{words}"):
        load_security(table, env=env)


def test_file_and_environment(tmp_path: Path, pki: dict[str, str]) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-file\n")
    conf = tmp_path / "security.toml"
    conf.write_text(f'[security]\nprotocol = "SASL_SSL"\nusername = "agency-uscg-d5"\ncafile = "{pki["cafile"]}"\n'
                    f'password_file = "{secret}"\n')  # fmt: skip
    sec = load_security(env={"VIGIAMAR_KAFKA_SECURITY": str(conf), "VIGIAMAR_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256"})
    assert (sec.username, sec.sasl_mechanism) == ("agency-uscg-d5", "SCRAM-SHA-256")
    assert resolve(sec, env={}).password == "from-file"
    with pytest.raises(ConfigError, match="VIGIAMAR_KAFKA_CHECK_HOSTNAME: expected true or false"):
        load_security({}, env={"VIGIAMAR_KAFKA_CHECK_HOSTNAME": "maybe"})
    env_only = load_security(env={"VIGIAMAR_KAFKA_SECURITY_PROTOCOL": "SSL", "VIGIAMAR_KAFKA_CAFILE": pki["cafile"]})
    assert env_only.protocol == "SSL" and env_only.cafile == pki["cafile"]


# --- per-agency ACLs (tools/kafka_acls.py) ---------------------------------------------------
def _tool(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


acls_tool = _tool("kafka_acls")


def test_each_agency_reads_only_its_own_alert_topic() -> None:
    topo = acls_tool.topology_from_settings(None)
    plan = acls_tool.plan_acls(topo)
    allowed = acls_tool.allowed
    internal = [*topo.positions, topo.cells, topo.alerts, topo.dead_letter, f"{topo.app_id}-tracks-changelog"]
    assert len(topo.agency_topics) >= 3
    for agency, topic in topo.agency_topics.items():
        me = f"User:agency-{agency}"
        assert allowed(plan, me, "READ", "TOPIC", topic)
        assert allowed(plan, me, "READ", "GROUP", f"{agency}.ops-centre")
        for other_agency, other in topo.agency_topics.items():
            if other_agency != agency:
                assert not allowed(plan, me, "READ", "TOPIC", other), (agency, other)
                assert not allowed(plan, me, "DESCRIBE", "TOPIC", other)
                assert not allowed(plan, me, "READ", "GROUP", f"{other_agency}.ops-centre")
        for topic_name in internal:
            assert not allowed(plan, me, "READ", "TOPIC", topic_name)
        for op in ("WRITE", "CREATE", "DELETE", "ALTER"):
            assert not allowed(plan, me, op, "TOPIC", topic)
    worker, feed = "User:vigiamar-worker", "User:vigiamar-feed"
    assert all(allowed(plan, worker, "WRITE", "TOPIC", t) for t in topo.agency_topics.values())
    assert allowed(plan, worker, "CREATE", "TOPIC", f"{topo.app_id}-tracks-changelog")
    assert allowed(plan, worker, "READ", "GROUP", topo.app_id)
    assert all(allowed(plan, feed, "WRITE", "TOPIC", t) for t in topo.positions)
    assert allowed(plan, feed, "WRITE", "TOPIC", topo.dead_letter)  # the input it rejects
    for topic_name in (topo.cells, topo.alerts, *topo.agency_topics.values()):
        assert allowed(plan, feed, "DESCRIBE", "TOPIC", topic_name)  # its start-up check sees every topic
        assert not allowed(plan, feed, "READ", "TOPIC", topic_name)
        assert not allowed(plan, feed, "WRITE", "TOPIC", topic_name)
    assert not allowed(plan, feed, "CREATE", "TOPIC", topo.alerts)


def test_agency_names_that_prefix_each_other_are_refused() -> None:
    topo = acls_tool.Topology(("p.v", "p.a"), "cells", "alerts", "dl",
                              {"uscg-d1": "alerts.uscg-d1", "uscg-d11": "alerts.uscg-d11"}, "vigiamar")  # fmt: skip
    with pytest.raises(acls_tool.PlanError, match=r"'uscg-d1'.*would let 'uscg-d1' read 'uscg-d11'"):
        acls_tool.plan_acls(topo)


def test_apply_creates_prefixed_acls_and_scram_users() -> None:
    from kafka.admin import ACLResourcePatternType, ScramMechanism

    class FakeAdmin:
        def __init__(self) -> None:
            self.acls: list[Any] = []
            self.users: list[Any] = []

        def create_acls(self, acls: list[Any]) -> dict[str, list[Any]]:
            self.acls = acls
            return {"succeeded": acls, "failed": []}

        def alter_user_scram_credentials(self, ups: list[Any]) -> dict[str, None]:
            self.users = ups
            return {u.user: None for u in ups}

    topo = acls_tool.topology_from_settings(None)
    plan = acls_tool.plan_acls(topo)
    principals = {a.principal for a in plan}
    passwords = acls_tool.passwords_from_env(principals, {"VIGIAMAR_PASSWORD_AGENCY_USCG_D5": "pw1"})
    assert passwords == {"agency-uscg-d5": "pw1"}
    admin = FakeAdmin()
    assert acls_tool.apply(admin, plan, passwords) == []
    [up] = admin.users
    assert (up.user, up.mechanism) == ("agency-uscg-d5", ScramMechanism.SCRAM_SHA_512)
    mine = [a for a in admin.acls if a.principal == "User:agency-uscg-d5"]
    assert {(a.resource_pattern.resource_name, a.resource_pattern.pattern_type, a.operation.name) for a in mine} == {
        ("alerts.uscg-d5", ACLResourcePatternType.PREFIXED, "READ"),
        ("alerts.uscg-d5", ACLResourcePatternType.PREFIXED, "DESCRIBE"),
        ("uscg-d5.", ACLResourcePatternType.PREFIXED, "READ"),
    }


def test_acl_tool_dry_run_prints_the_plan(capsys: pytest.CaptureFixture[str]) -> None:
    assert acls_tool.main(["--dry-run"]) == 0
    out = capsys.readouterr()
    assert "User:agency-uscg-d5" in out.out and "PREFIXED alerts.uscg-d5" in out.out
    assert "nothing applied" in out.err


# --- the commands' own clients ---------------------------------------------------------------
def test_every_client_the_commands_start_takes_the_security_settings(
    pki: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's faust app, its reads outside the group and its admin client, the feed's
    producer and the alert follower all connect with ``$VIGIAMAR_KAFKA_SECURITY`` / env settings."""
    import asyncio

    import aiokafka
    import kafka

    from models.settings import load_settings
    from streams import admin, backfill, cli_streaming, follow
    from streams.app import FaustOptions, faust_app
    from streams.topics import stream_settings

    made: dict[str, dict[str, Any]] = {}

    def recorder(name: str) -> Any:
        class Client:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                made[name] = kwargs

            async def start(self) -> None:
                raise OSError("not connecting in a unit test")

            async def stop(self) -> None:
                return None

        return Client

    for module, name in ((kafka, "KafkaAdminClient"), (kafka, "KafkaProducer"), (kafka, "KafkaConsumer"),
                         (aiokafka, "AIOKafkaConsumer")):  # fmt: skip
        monkeypatch.setattr(module, name, recorder(name))

    def connect_all() -> Any:
        admin.admin_client("broker:9093")
        cli_streaming._producer("broker:9093")
        follow.make_consumer("broker:9093", ["alerts.uscg-d5"], True)

        async def backfill_once() -> None:
            async for _ in backfill.read_range("broker:9093", type("TP", (), {"topic": "t", "partition": 0})(), 0, 1):
                pass

        with pytest.raises(backfill.BackfillError):
            asyncio.run(backfill_once())
        return faust_app(stream_settings(load_settings()), "broker:9093", FaustOptions()).conf.broker_credentials

    monkeypatch.delenv("VIGIAMAR_KAFKA_SECURITY", raising=False)
    monkeypatch.setenv("VIGIAMAR_KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("VIGIAMAR_KAFKA_CAFILE", pki["cafile"])
    credentials = connect_all()
    assert getattr(credentials.protocol, "value", credentials.protocol) == "SSL"
    assert set(made) == {"KafkaAdminClient", "KafkaProducer", "KafkaConsumer", "AIOKafkaConsumer"}
    for name, kwargs in made.items():
        assert kwargs["security_protocol"] == "SSL", name
        assert isinstance(kwargs["ssl_context"], ssl.SSLContext), name

    made.clear()
    monkeypatch.delenv("VIGIAMAR_KAFKA_SECURITY_PROTOCOL")
    monkeypatch.delenv("VIGIAMAR_KAFKA_CAFILE")
    assert connect_all() is None  # PLAINTEXT: the clients' own defaults
    assert all("security_protocol" not in kwargs for kwargs in made.values())

"""Kafka client security from config: SASL/SCRAM over TLS, mutual TLS, and nothing weaker by accident.

Why this module exists: ``faust.SASLCredentials`` without an ``ssl_context`` silently
means ``SASL_PLAINTEXT``: user name and password (and every alert) cross the network in
clear text. Here a security setting is validated once and turned into the credentials of
each Kafka client vigiamar uses; SASL without TLS is refused unless the config says
``allow_sasl_plaintext = true`` (a lab broker), and credentials that a protocol would
ignore are refused too.

Where the settings come from (they are deployment facts, not thresholds, so they are not
in ``vigiamar.toml``; see docs/security.md):

1. a TOML file named by ``$VIGIAMAR_KAFKA_SECURITY`` (keys of :class:`SecurityConfig`,
   at the top level or under ``[security]``), then
2. environment variables that override single keys (``VIGIAMAR_KAFKA_SECURITY_PROTOCOL``,
   ``VIGIAMAR_KAFKA_USERNAME``, ``VIGIAMAR_KAFKA_CAFILE``, …, see :data:`ENV_KEYS`).

The password is never a config value: it is read from the environment variable named by
``password_env`` (default ``VIGIAMAR_KAFKA_PASSWORD``) or from ``password_file`` (a Docker
or Kubernetes secret). Use::

    sec = load_security()                          # or load_security({"protocol": "SASL_SSL", ...})
    app = faust.App(..., broker_credentials=faust_credentials(sec))
    AIOKafkaConsumer(..., **aiokafka_kwargs(sec))
    KafkaAdminClient(..., **kafka_python_kwargs(sec))
"""

from __future__ import annotations

import os
import ssl
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.configuring import bounds, build_config
from models.errors import ConfigError

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_SSL", "SASL_PLAINTEXT")
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
KEY = "kafka.security"
FILE_ENV = "VIGIAMAR_KAFKA_SECURITY"


@dataclass(frozen=True)
class SecurityConfig:
    protocol: str = field(default="PLAINTEXT", metadata=bounds(choices=PROTOCOLS))
    sasl_mechanism: str = field(default="SCRAM-SHA-512", metadata=bounds(choices=MECHANISMS))
    username: str = ""  # the SASL principal, e.g. "vigiamar-worker" or "agency-uscg-d5"
    password_env: str = "VIGIAMAR_KAFKA_PASSWORD"  # the password is read from this variable …
    password_file: str = ""  # … or from this file (first line), e.g. /run/secrets/kafka_password
    cafile: str = ""  # CA bundle that signed the brokers' certificates (empty: system CAs)
    certfile: str = ""  # client certificate for mutual TLS (PEM; may hold the key too)
    keyfile: str = ""  # its private key (PEM)
    keyfile_password_env: str = ""  # variable holding the key's passphrase, if it has one
    check_hostname: bool = True  # the broker certificate must name the host we connect to
    allow_sasl_plaintext: bool = False  # SASL without TLS: only for a lab broker, never in production

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")


# Environment variables that override one key each (strings; booleans accept true/false/1/0).
ENV_KEYS = {
    "protocol": "VIGIAMAR_KAFKA_SECURITY_PROTOCOL",
    "sasl_mechanism": "VIGIAMAR_KAFKA_SASL_MECHANISM",
    "username": "VIGIAMAR_KAFKA_USERNAME",
    "password_file": "VIGIAMAR_KAFKA_PASSWORD_FILE",
    "cafile": "VIGIAMAR_KAFKA_CAFILE",
    "certfile": "VIGIAMAR_KAFKA_CERTFILE",
    "keyfile": "VIGIAMAR_KAFKA_KEYFILE",
    "check_hostname": "VIGIAMAR_KAFKA_CHECK_HOSTNAME",
    "allow_sasl_plaintext": "VIGIAMAR_KAFKA_ALLOW_SASL_PLAINTEXT",
}
_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def load_security(
    table: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None, source: str | None = None
) -> SecurityConfig:
    """Validated security settings: ``table`` (else the file in ``$VIGIAMAR_KAFKA_SECURITY``), env overrides.

    Raises :class:`ConfigError` naming the key for anything unusable, including SASL
    without TLS (unless allowed), a missing password, or a missing certificate file.
    """
    env = os.environ if env is None else env
    if table is None and env.get(FILE_ENV):
        source = env[FILE_ENV]
        table = _read_file(Path(source))
    values: dict[str, Any] = dict(table or {})
    if isinstance(values.get("security"), Mapping):
        values = dict(values["security"])
    for key, var in ENV_KEYS.items():
        if env.get(var, "") != "":
            raw = env[var]
            if key in ("check_hostname", "allow_sasl_plaintext"):
                if raw.lower() not in _BOOLS:
                    raise ConfigError(var, f"expected true or false, got {raw!r}", "environment")
                values[key] = _BOOLS[raw.lower()]
            else:
                values[key] = raw
    cfg = build_config(SecurityConfig, values, KEY, source)
    _check(cfg, env, source)
    return cfg


def _read_file(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError("(file)", f"cannot read security settings: {exc}", str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("(file)", f"not valid TOML: {exc}", str(path)) from exc


def _check(cfg: SecurityConfig, env: Mapping[str, str], source: str | None) -> None:
    if cfg.protocol == "SASL_PLAINTEXT" and not cfg.allow_sasl_plaintext:
        raise ConfigError(
            f"{KEY}.protocol",
            "SASL without TLS sends the password and every record in clear text: use SASL_SSL "
            "(with cafile), or set allow_sasl_plaintext = true for a lab broker",
            source,
        )
    if cfg.sasl:
        if not cfg.username:
            raise ConfigError(f"{KEY}.username", f"{cfg.protocol} needs a user name (the SASL principal)", source)
        _password(cfg, env, source)  # present and readable now, not at the first connection
    elif cfg.username:
        raise ConfigError(
            f"{KEY}.username", f"a user name is given but protocol {cfg.protocol} ignores it: use SASL_SSL", source
        )
    tls_files = {"cafile": cfg.cafile, "certfile": cfg.certfile, "keyfile": cfg.keyfile}
    if not cfg.tls:
        given = [k for k, v in tls_files.items() if v]
        if given:
            problem = f"TLS files are given but protocol {cfg.protocol} is not TLS"
            raise ConfigError(f"{KEY}.{given[0]}", problem, source)
        return
    if cfg.keyfile and not cfg.certfile:
        raise ConfigError(f"{KEY}.keyfile", "a key without a certificate (certfile)", source)
    for key, value in tls_files.items():
        if value and not Path(value).is_file():
            raise ConfigError(f"{KEY}.{key}", f"no such file: {value}", source)


def _password(cfg: SecurityConfig, env: Mapping[str, str], source: str | None) -> str:
    if cfg.password_file:
        try:
            text = Path(cfg.password_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"{KEY}.password_file", f"cannot read: {exc}", source) from exc
        if not text or not text[0]:
            raise ConfigError(f"{KEY}.password_file", "the file is empty", source)
        return text[0]
    password = env.get(cfg.password_env, "")
    if not password:
        raise ConfigError(
            f"{KEY}.password_env", f"{cfg.protocol} needs a password: set ${cfg.password_env} or password_file", source
        )
    return password


def ssl_context(cfg: SecurityConfig, env: Mapping[str, str] | None = None) -> ssl.SSLContext | None:
    """The TLS context for the brokers (None when the protocol has no TLS): TLS ≥ 1.2, verified."""
    if not cfg.tls:
        return None
    env = os.environ if env is None else env
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cfg.cafile or None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = cfg.check_hostname
    ctx.verify_mode = ssl.CERT_REQUIRED
    if cfg.certfile:
        key_password = env.get(cfg.keyfile_password_env) if cfg.keyfile_password_env else None
        try:
            ctx.load_cert_chain(cfg.certfile, cfg.keyfile or None, key_password)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"{KEY}.certfile", f"cannot load the client certificate/key: {exc}") from exc
    return ctx


@dataclass(frozen=True)
class ClientAuth:
    """Resolved credentials: what every client needs, the password read, the TLS context built."""

    protocol: str
    mechanism: str | None
    username: str | None
    password: str | None
    context: ssl.SSLContext | None

    def __repr__(self) -> str:  # never print the password
        return f"ClientAuth(protocol={self.protocol!r}, mechanism={self.mechanism!r}, username={self.username!r})"


def resolve(cfg: SecurityConfig, env: Mapping[str, str] | None = None) -> ClientAuth:
    env = os.environ if env is None else env
    _check(cfg, env, None)  # a SecurityConfig built by hand gets the same rules
    context = ssl_context(cfg, env)
    if cfg.sasl:
        return ClientAuth(cfg.protocol, cfg.sasl_mechanism, cfg.username, _password(cfg, env, None), context)
    return ClientAuth(cfg.protocol, None, None, None, context)


def faust_credentials(cfg: SecurityConfig, env: Mapping[str, str] | None = None) -> Any:
    """``broker_credentials`` for ``faust.App`` (None for PLAINTEXT).

    Checks that faust ended up with the protocol asked for: a SASL_SSL config can never
    become faust's SASL_PLAINTEXT default.
    """
    import faust

    auth = resolve(cfg, env)
    if auth.protocol == "PLAINTEXT":
        return None
    if auth.protocol == "SSL":
        creds: Any = faust.SSLCredentials(auth.context)
    else:
        creds = faust.SASLCredentials(
            username=auth.username, password=auth.password, ssl_context=auth.context, mechanism=auth.mechanism
        )
    got = getattr(creds.protocol, "value", str(creds.protocol))
    if got != auth.protocol:
        raise ConfigError(f"{KEY}.protocol", f"faust would connect with {got}, not {auth.protocol}")
    return creds


def aiokafka_kwargs(cfg: SecurityConfig, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for aiokafka's producer, consumer and admin client."""
    auth = resolve(cfg, env)
    out: dict[str, Any] = {"security_protocol": auth.protocol}
    if auth.context is not None:
        out["ssl_context"] = auth.context
    if auth.mechanism is not None:
        out.update(sasl_mechanism=auth.mechanism, sasl_plain_username=auth.username, sasl_plain_password=auth.password)
    return out


def kafka_python_kwargs(cfg: SecurityConfig, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for kafka-python's clients (``KafkaAdminClient`` in tools/kafka_acls.py)."""
    return aiokafka_kwargs(cfg, env)  # same names in both libraries


def client_kwargs(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """This process's settings (``$VIGIAMAR_KAFKA_SECURITY``, env overrides) as keyword arguments
    of a kafka-python or aiokafka client: the feed's producer, the alert follower, the admin
    client, the worker's reads outside its group. Empty for PLAINTEXT (the clients' default)."""
    cfg = load_security(env=env)
    return {} if cfg.protocol == "PLAINTEXT" else aiokafka_kwargs(cfg, env)


def app_credentials(env: Mapping[str, str] | None = None) -> Any:
    """This process's settings as faust's ``broker_credentials`` (None for PLAINTEXT)."""
    return faust_credentials(load_security(env=env), env)

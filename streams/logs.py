"""JSON logging: one object per line, with topic/partition/offset on every per-event error.

Set up once at process start (the worker, the feed)::

    from streams.logs import configure_logging, log_bad_event
    configure_logging("INFO")                 # JSON lines on stderr; json=False for humans

In an agent's per-event ``except`` (convention 7: count it, log where it was, dead-letter it)::

    except VigiamarError as exc:
        log_bad_event(log, exc, topic=event.message.topic, partition=event.message.partition,
                      offset=event.message.offset, reason=getattr(exc, "reason", "error"), raw=value)

A line looks like::

    {"time": "2026-11-23T10:00:00.123Z", "level": "ERROR", "logger": "vigiamar.worker",
     "message": "bad event: bad_time", "topic": "positions.vessel", "partition": 3,
     "offset": 1822, "reason": "bad_time", "error": "DecodeError", "raw_bytes": 212,
     "raw_head": "{\\"type\\": \\"vessel\\", ..."}

Every ``extra={...}`` field of a log call becomes a key of the object.
"""

from __future__ import annotations

import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import IO, Any

import orjson

RAW_HEAD_CHARS = 200

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object (UTC time, level, logger, message, extras, exception)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            out["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return orjson.dumps(out, default=str).decode()


def configure_logging(
    level: str | int = "INFO", *, json: bool = True, stream: IO[str] | None = None
) -> logging.Handler:
    """Replace the root logger's handlers with one writing JSON lines (or plain text) to ``stream``."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
    return handler


def event_fields(topic: str, partition: int, offset: int, **more: Any) -> dict[str, Any]:
    """``extra=`` fields that say where an event came from."""
    return {"topic": topic, "partition": partition, "offset": offset, **more}


def log_bad_event(
    logger: logging.Logger,
    error: BaseException,
    *,
    topic: str,
    partition: int,
    offset: int,
    reason: str,
    raw: bytes | str | None = None,
    level: int = logging.ERROR,
) -> None:
    """Log one event that could not be processed: where it was, why, and the head of its bytes."""
    fields = event_fields(topic, partition, offset, reason=reason, error=type(error).__name__, detail=str(error))
    if raw is not None:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes | bytearray) else raw
        fields["raw_bytes"] = len(raw)
        fields["raw_head"] = text[:RAW_HEAD_CHARS]
    exc_info = None if _expected(error) else (type(error), error, error.__traceback__)
    logger.log(level, "bad event: %s", reason, extra=fields, exc_info=exc_info)


def _expected(error: BaseException) -> bool:
    """Expected failures (bad input) log without a traceback; bugs keep theirs."""
    from models.errors import VigiamarError

    return isinstance(error, VigiamarError)

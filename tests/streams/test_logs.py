"""JSON log lines: one object per line, with topic/partition/offset for a bad event."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from models.errors import DecodeError
from streams.logs import configure_logging, log_bad_event


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    buf = io.StringIO()
    configure_logging("INFO", stream=buf)
    yield buf
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def lines(buf: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_bad_event_names_where_it_was_and_why(stream: io.StringIO) -> None:
    log = logging.getLogger("vigiamar.worker")
    raw = b'{"type": "vessel", "id": "367584050", "time": "yesterday"}'
    log_bad_event(log, DecodeError("bad_time", "yesterday"), topic="positions.vessel", partition=3, offset=1822,
                  reason="bad_time", raw=raw)  # fmt: skip
    [rec] = lines(stream)
    assert rec["level"] == "ERROR" and rec["logger"] == "vigiamar.worker"
    assert (rec["topic"], rec["partition"], rec["offset"]) == ("positions.vessel", 3, 1822)
    assert rec["reason"] == "bad_time" and rec["error"] == "DecodeError" and rec["detail"] == "bad_time: yesterday"
    assert rec["raw_bytes"] == len(raw) and str(rec["raw_head"]).startswith('{"type"')
    assert "exception" not in rec  # expected bad input: no traceback
    assert str(rec["time"]).endswith("Z")


def test_a_bug_keeps_its_traceback(stream: io.StringIO) -> None:
    try:
        _ = {}["missing"]
    except KeyError as exc:
        log_bad_event(logging.getLogger("w"), exc, topic="cells", partition=0, offset=7, reason="error")
    [rec] = lines(stream)
    assert "KeyError" in str(rec["exception"]) and rec["offset"] == 7


def test_ordinary_lines_are_json_with_extras(stream: io.StringIO) -> None:
    logging.getLogger("vigiamar").info("assigned %d partitions", 4, extra={"worker": "w1"})
    [rec] = lines(stream)
    assert rec["message"] == "assigned 4 partitions" and rec["worker"] == "w1"

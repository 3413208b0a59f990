"""vigiamar's own JSON Lines position records (the streaming shell's wire format)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import orjson

from models.errors import DecodeError
from models.position import Position
from streams.sources.base import DecoderBase, Item


class JsonLinesDecoder(DecoderBase):
    format_name = "jsonl"

    def decode(self, lines: Iterable[str]) -> Iterator[Item]:
        stats = self.stats
        for lineno, line in enumerate(lines, start=1):
            stats.lines += 1
            text = line.strip()
            if not text:
                self.ignore("blank")
                continue
            try:
                obj = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                yield self.reject(lineno, "bad_json", line, str(exc))
                continue
            try:
                pos = Position.from_wire(obj)
            except DecodeError as exc:
                yield self.reject(lineno, exc.reason, line, exc.detail)
                continue
            yield self.record(pos)

"""vigiamar's own JSON Lines position records (the streaming shell's wire format)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from models.position import Position
from streams.sources.base import DecoderBase, Item


class JsonLinesDecoder(DecoderBase):
    format_name = "jsonl"

    def decode(self, lines: Iterable[str]) -> Iterator[Item]:
        return self.json_lines(lines, Position.from_wire)

"""The MarineCadastre decoder's fast path and the minute cache of parse_time change nothing.

The oracles are the plain implementations from before the optimisation, copied verbatim;
rows of real data are mutated field by field (bad, empty, out of range, non-finite,
quoted, short) and both decoders must yield the same items, rejects and counters.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import astuple
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from models.errors import DecodeError, UnknownFormatError
from models.position import Position, Reject, VesselStatic, check_position
from models.timeutil import parse_iso
from streams.sources import csvutil
from streams.sources.aiscolumns import nav_status
from streams.sources.base import Item, is_ship_mmsi
from streams.sources.csvutil import opt_float, req_float, split_row
from streams.sources.marinecadastre import (
    REQUIRED,
    STATIC_COLUMNS,
    MarineCadastreDecoder,
    norm_cog,
    norm_heading,
    norm_sog,
)
from tests.conftest import REPO, read_lines

# --- oracle: csvutil.parse_time before the minute cache -----------------------------------
_REF_DAYS: dict[str, float] = {}


def ref_parse_time(text: str) -> float:
    n = len(text)
    if (n == 19 or (n == 20 and text[19] == "Z")) and text[10] in "T " and text[13] == ":":
        day = _REF_DAYS.get(text[:10])
        if day is None:
            try:
                day = datetime.strptime(text[:10], "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
            except ValueError as exc:
                raise DecodeError("bad_time", text) from exc
            _REF_DAYS[text[:10]] = day
        try:
            h, m, s = int(text[11:13]), int(text[14:16]), int(text[17:19])
        except ValueError as exc:
            raise DecodeError("bad_time", text) from exc
        if h > 23 or m > 59 or s > 60 or not text[11:13].isdigit():
            raise DecodeError("bad_time", text)
        return day + h * 3600 + m * 60 + s
    try:
        return parse_iso(text)
    except (ValueError, OverflowError) as exc:
        raise DecodeError("bad_time", text) from exc


# --- oracle: MarineCadastreDecoder.decode before the fast path ----------------------------
class RefDecoder(MarineCadastreDecoder):
    def decode(self, lines: Iterable[str]) -> Iterator[Item]:
        it = iter(lines)
        header_line = next(it, None)
        if header_line is None:
            return
        self.stats.lines += 1
        self.ignore("header")
        header = [h.strip().lstrip("\ufeff") for h in split_row(header_line)]
        col = {name: i for i, name in enumerate(header)}
        missing = [c for c in REQUIRED if c not in col]
        if missing:
            raise UnknownFormatError(self.source, f"MarineCadastre CSV lacks columns {', '.join(missing)}", 1)
        i_mmsi, i_time, i_lat, i_lon = (col[c] for c in REQUIRED)
        i_sog, i_cog, i_hdg, i_status = (col.get(c) for c in ("SOG", "COG", "Heading", "Status"))
        static_cols: dict[str, int] = {c: col[c] for c in STATIC_COLUMNS if c in col}
        width = len(header)
        last_static: dict[str, tuple[str, ...]] = {}
        lineno = 1
        stats = self.stats
        for line in it:
            row = split_row(line)
            lineno += 1
            stats.lines += 1
            if not row:
                self.ignore("blank")
                continue
            if len(row) != width:
                yield self.reject(lineno, "wrong_field_count", line, f"{len(row)} fields, expected {width}")
                continue
            try:
                mmsi_text = row[i_mmsi].strip()
                if not mmsi_text.isdigit() or len(mmsi_text) > 9:
                    raise DecodeError("bad_mmsi", mmsi_text)
                pos = Position(
                    "vessel",
                    mmsi_text,
                    ref_parse_time(row[i_time]),
                    req_float(row[i_lat], "bad_lat"),
                    req_float(row[i_lon], "bad_lon"),
                    source="marinecadastre",
                )
                if i_sog is not None:
                    pos.speed_kn = norm_sog(opt_float(row[i_sog], "bad_sog"))
                if i_cog is not None:
                    pos.course_deg = norm_cog(opt_float(row[i_cog], "bad_cog"))
                if i_hdg is not None:
                    pos.heading_deg = norm_heading(opt_float(row[i_hdg], "bad_heading"))
                if i_status is not None and row[i_status]:
                    pos.nav_status = nav_status(row[i_status])
                check_position(pos)
                if i_status is not None and row[i_status] and pos.nav_status is None:
                    stats.notes["unknown_status"] += 1
            except DecodeError as exc:
                yield self.reject(lineno, exc.reason, line, exc.detail)
                continue
            if not is_ship_mmsi(int(mmsi_text)):
                stats.notes["non_ship_mmsi"] += 1
            if static_cols:
                sig = tuple(row[i] for i in static_cols.values())
                if last_static.get(mmsi_text) != sig:
                    last_static[mmsi_text] = sig
                    static = self._static(mmsi_text, pos.ts, row, static_cols)
                    if static is not None:
                        stats.statics += 1
                        yield static
            stats.record_lines += 1
            stats.positions += 1
            yield pos


def _items(decoder: MarineCadastreDecoder, lines: list[str]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    try:
        for item in decoder.decode(lines):
            assert isinstance(item, Position | VesselStatic | Reject)
            out.append((type(item).__name__, *(repr(v) for v in astuple(item))))
    except (ValueError, OverflowError) as exc:  # e.g. VesselType "inf" (a known gap): must fail alike
        out.append(("raised", type(exc).__name__, str(exc)))
    return out


def _same(lines: list[str]) -> None:
    fast, ref = MarineCadastreDecoder("x.csv"), RefDecoder("x.csv")
    items = _items(fast, lines)
    assert items == _items(ref, lines)
    assert fast.stats == ref.stats
    assert fast.stats.balanced() or items[-1][0] == "raised"


BAD_VALUES = ["", " ", "nan", "inf", "-inf", "1e400", "abc", "91", "-90.5", "181", "-180", "180", "90", " 36.5 ",
              "1_0", '"36.5"', "0", "-0.0", "4102444801", "102.3", "-49.6", "360", "511", "-204.8", "²"]  # fmt: skip
BAD_TIMES = ["2020-06-30T24:00:00", "2020-06-30T23:60:00", "2020-06-30T23:59:61", "2020-06-30T23:59:60",
             "2020-06-30 01:02:03", "2020-06-30T01:02:03Z", "2020-02-30T01:02:03", "2020-06-30T1:02:03",
             "2020-06-30T01:02:3x", "2020-06-30T01:02: 3", "2020-06-30T-1:02:03", "1980-01-01T00:00:00",
             "2020-06-30T01:02:03+02:00", "2020-06-30", "", "2020-06-30T01:02:03.5", "2100-01-01T00:00:01",
             "1989-12-31T23:59:59"]  # fmt: skip
BAD_MMSIS = ["", " 367000000 ", "36700000a", "1234567890", "0", "１２３", "²", "-1", "367000000"]


@st.composite
def mutated_files(draw: st.DrawFn) -> list[str]:
    """The full-column sample (statics included) with random fields of random rows replaced."""
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    lines = FULL[: 1 + draw(st.integers(1, 120))]
    out = [lines[0]]
    for line in lines[1:]:
        row = line.rstrip("\n").split(",")
        for _ in range(rng.choice([0, 0, 0, 1, 2])):
            i = rng.randrange(len(row))
            pool = BAD_TIMES if i == 1 else BAD_MMSIS if i == 0 else BAD_VALUES
            row[i] = rng.choice(pool)
        text = ",".join(row)
        kind = rng.random()
        if kind < 0.03:
            text = ""
        elif kind < 0.06:
            text = text.rsplit(",", 1)[0]
        elif kind < 0.08:
            text = '"' + text
        out.append(text + rng.choice(["\n", "\r\n", ""]))
    return out


FULL = read_lines(REPO.parent / "shared/data/ais/nyharbor_2020-06-30_first_hour.csv.gz") if (
    REPO.parent / "shared/data/ais/nyharbor_2020-06-30_first_hour.csv.gz"
).is_file() else read_lines(REPO / "data/samples/virginia_beach_2020-06-04_to_06.csv.gz")[:400]


@settings(max_examples=150, deadline=None)
@given(lines=mutated_files())
def test_fast_path_yields_what_the_plain_decoder_yields(lines: list[str]) -> None:
    _same(lines)


def test_real_files_decode_identically() -> None:
    _same(FULL)
    _same(read_lines(REPO / "data/samples/virginia_beach_2020-06-04_to_06.csv.gz")[:5000])


def _outcome(text: str) -> tuple[str, str]:
    try:
        return "ok", repr(csvutil.parse_time(text))
    except DecodeError as exc:
        return "error", exc.reason


def _ref_outcome(text: str) -> tuple[str, str]:
    try:
        return "ok", repr(ref_parse_time(text))
    except DecodeError as exc:
        return "error", exc.reason


@settings(max_examples=300, deadline=None)
@given(
    prefix=st.sampled_from(["2020-06-30T01:02", "2020-06-30 23:59", "2021-12-31T00:00", "2020-06-30T01:0x"]),
    tail=st.text(alphabet="0123456789:Z -+x.", max_size=5),
)
def test_minute_cache_gives_what_the_plain_parse_gives(prefix: str, tail: str) -> None:
    for text in (prefix + ":00", prefix + tail, prefix + ":" + tail, prefix + tail):  # warm, then hit the cache
        assert _outcome(text) == _ref_outcome(text), text
    for text in BAD_TIMES:
        assert _outcome(text) == _ref_outcome(text), text

"""Rebuild the aerial feed fixtures in this folder from ../shared/data/air (real flights).

    .venv/bin/python tests/data/air/make_fixtures.py

Positions and kinematics are copied from the traffic/OpenSky sample rows; only the *format*
is changed (SBS-1 lines, Remote ID JSON, MAVLink frames written by pymavlink's own encoder),
with units converted for the formats that need them. A few malformed records are added at
the end of each file, on purpose, to exercise rejection. Outputs are deterministic
(gzip mtime 0). Origin and selection are described in tests/data/README.md.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
AIR = HERE.parents[3] / "shared" / "data" / "air"
M_PER_FT = 0.3048
MPS_PER_KN = 1852.0 / 3600.0


def rows(name: str, icao24: str | None, start: str, end: str) -> list[dict[str, str]]:
    path = next(AIR.glob(name + "*"))
    with gzip.open(path, "rt", newline="", encoding="utf-8") as fh:
        return [
            r
            for r in csv.DictReader(fh)
            if (icao24 is None or r["icao24"] == icao24) and start <= r["timestamp"] <= end and r["latitude"]
        ]


def epoch(ts: str) -> float:
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def write_gz(path: Path, text: str) -> None:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        gz.write(text.encode())
    path.write_bytes(buf.getvalue())


# ---------------------------------------------------------------- SBS-1 (port 30003)


def sbs_line(mtype: int, hexid: str, ts: str, **f: str) -> str:
    day = ts[:10].replace("-", "/")
    clock = ts[11:19] + ".000"
    cols = [""] * 22
    cols[0:10] = ["MSG", str(mtype), "1", "1", hexid.upper(), "1", day, clock, day, clock]
    for key, idx in (("callsign", 10), ("alt", 11), ("gs", 12), ("track", 13), ("lat", 14), ("lon", 15), ("vr", 16)):
        cols[idx] = f.get(key, "")
    cols[21] = f.get("ground", "0")
    return ",".join(cols)


def make_sbs() -> None:
    # F-HMAC, Paris area 2021-10-07: low and slow flight, a descent to ~150 ft away from
    # airfields and a climb-out (air_low_slow, air_landing and air_orbit on the CSV).
    lines = []
    for i, r in enumerate(rows("paris_area_traffic", "39b002", "2021-10-07T13:20:00Z", "2021-10-07T14:00:00Z")):
        ts, hexid = r["timestamp"], r["icao24"]
        if i % 30 == 0:
            lines.append(sbs_line(1, hexid, ts, callsign=r["callsign"]))
        if r["groundspeed"]:
            lines.append(sbs_line(4, hexid, ts, gs=r["groundspeed"], track=r["track"], vr=r["vertical_rate"]))
        lines.append(sbs_line(3, hexid, ts, alt=r["altitude"], lat=r["latitude"], lon=r["longitude"]))
    last = "2021-10-07T14:00:01Z"
    lines += [
        "STA,,1,1,39B002,1,2021/10/07,14:00:01.000,2021/10/07,14:00:01.000,RM",
        "CLK,,,,,,2021/10/07,14:00:01.000,2021/10/07,14:00:01.000",
        sbs_line(5, "39b002", last, alt="1800"),
        sbs_line(3, "39b00z", last, alt="1800", lat="48.4", lon="2.1"),  # bad hex ident
        sbs_line(3, "39b002", last, alt="1800"),  # no position
        sbs_line(3, "39b002", last, alt="1800", lat="48.4x", lon="2.1"),  # bad latitude
        sbs_line(3, "39b002", last, alt="1800", lat="95.0", lon="2.1"),  # latitude out of range
        sbs_line(3, "39b002", "2021-10-07T25:00:01Z", alt="1800", lat="48.4", lon="2.1"),  # bad time
        "MSG,3,1,1,39B002,1,2021/10/07,14:00:02.000,2021/10/07,14:00:02.000,,1800",  # truncated
        "MSG,9,1,1,39B002,1,2021/10/07,14:00:02.000,2021/10/07,14:00:02.000,,,,,,,,,,,,0",  # no such type
        "this is not SBS",
    ]
    write_gz(HERE / "sbs_fhmac_2021-10-07.sbs.gz", "\n".join(lines) + "\n")


# ---------------------------------------------------------------- Remote ID JSON


def _num(text: str) -> float | None:
    return float(text) if text else None


def make_remoteid() -> None:
    # G-TEKV (an unmanned aircraft), Dover Strait 2020-04-17 05:30–06:15: patrol orbits.
    # Serial number and operator position are illustrative (the source has neither): the
    # serial is built from the ICAO address, the operator is placed at Lydd (EGMD), its base.
    import orjson

    out = []
    serial = "TKV000000407918"
    operator = {"lat": 50.9561, "lng": 0.93917}
    for i, r in enumerate(rows("surveillance_drone", None, "2020-04-17T05:30:00Z", "2020-04-17T06:15:00Z")):
        alt, gs, trk, vr = (_num(r[k]) for k in ("altitude", "groundspeed", "track", "vertical_rate"))
        alt_m = alt * M_PER_FT if alt is not None else None
        speed = gs * MPS_PER_KN if gs is not None else None
        vspeed = vr * M_PER_FT / 60.0 if vr is not None else None
        if i % 2 == 0:  # Network Remote ID (F3411 RIDFlight + details)
            obj: dict[str, object] = {
                "id": "d5a6f7e0-gtekv",
                "aircraft_type": "Aeroplane",
                "current_state": {
                    "timestamp": {"value": r["timestamp"], "format": "RFC3339"},
                    "operational_status": "Airborne",
                    "position": {"lat": float(r["latitude"]), "lng": float(r["longitude"]), "alt": alt_m},
                    "track": trk if trk is not None else 361.0,
                    "speed": speed if speed is not None else 255.0,
                    "vertical_speed": vspeed if vspeed is not None else 63.0,
                },
                "details": {"uas_id": {"serial_number": serial}, "operator_location": {"position": operator}},
            }
        else:  # broadcast Remote ID as a receiver logs it (opendroneid field names)
            obj = {
                "time": epoch(r["timestamp"]),
                "UASID": serial,
                "UAType": 1,
                "Latitude": float(r["latitude"]),
                "Longitude": float(r["longitude"]),
                "AltitudeGeo": alt_m if alt_m is not None else -1000.0,
                "SpeedHorizontal": speed if speed is not None else 255.0,
                "SpeedVertical": vspeed if vspeed is not None else 63.0,
                "Direction": trk if trk is not None else 361.0,
                "OperatorLatitude": operator["lat"],
                "OperatorLongitude": operator["lng"],
            }
        out.append(orjson.dumps(obj).decode())
    out += [
        '{"time": "2020-04-17T06:15:10Z", "UASID": "TKV000000407918", "Latitude": 0, "Longitude": 0}',
        '{"time": "2020-04-17T06:15:10Z", "Latitude": 50.9, "Longitude": 1.2}',
        '{"UASID": "TKV000000407918", "Latitude": 50.9, "Longitude": 1.2}',
        '{"time": "2020-04-17T06:15:10Z", "UASID": "TKV000000407918", "Latitude": "50.9", "Longitude": 1.2}',
        '{"id": "x", "current_state": {"timestamp": {"value": "yesterday"}, "position": {"lat": 1, "lng": 2}}}',
        '{"id": "x", "current_state": "airborne"}',
        "[1, 2, 3]",
        '{"time": "2020-04-17T06:15:10Z", "UASID": "TKV',
    ]
    write_gz(HERE / "remoteid_gtekv_2020-04-17.jsonl.gz", "\n".join(out) + "\n")


# ---------------------------------------------------------------- MAVLink .tlog


def make_tlog() -> None:
    # G-TEKV 2020-04-17 07:20–07:45: last orbits and the landing at Lydd, as the drone's own
    # GLOBAL_POSITION_INT telemetry (system id 42), with a HEARTBEAT every 10 s.
    from pymavlink.dialects.v20 import common

    mav = common.MAVLink(None, srcSystem=42, srcComponent=1)
    out = bytearray()

    def put(ts: float, msg: object, *, v1: bool = False) -> None:
        out.extend(round(ts * 1e6).to_bytes(8, "big"))
        out.extend(msg.pack(mav, force_mavlink1=v1))  # type: ignore[attr-defined]

    t0 = None
    for i, r in enumerate(rows("surveillance_drone", None, "2020-04-17T07:20:00Z", "2020-04-17T07:45:00Z")):
        ts = epoch(r["timestamp"])
        t0 = t0 if t0 is not None else ts
        put(ts - 0.2, mav.heartbeat_encode(2, 3, 0, 0, 4))
        alt = _num(r["altitude"]) or 0.0
        gs = _num(r["groundspeed"]) or 0.0
        trk = _num(r["track"]) or 0.0
        vr = _num(r["vertical_rate"]) or 0.0
        vn = gs * MPS_PER_KN * math.cos(math.radians(trk)) * 100.0
        ve = gs * MPS_PER_KN * math.sin(math.radians(trk)) * 100.0
        msg = mav.global_position_int_encode(
            int((ts - t0) * 1000),
            round(float(r["latitude"]) * 1e7),
            round(float(r["longitude"]) * 1e7),
            round(alt * M_PER_FT * 1000.0),
            round(alt * M_PER_FT * 1000.0),  # relative to home (Lydd, elevation ~ 0)
            round(vn),
            round(ve),
            round(-vr * M_PER_FT / 60.0 * 100.0),
            round(trk * 100.0) % 36000,
        )
        put(ts, msg, v1=(i % 10 == 5))  # some frames as MAVLink 1, as older autopilots send
    end = epoch("2020-04-17T07:45:10Z")
    put(end, mav.global_position_int_encode(0, 0, 0, 0, 0, 0, 0, 0, 65535))  # no GPS fix
    bad = bytearray(mav.global_position_int_encode(0, 509000000, 10000000, 0, 0, 0, 0, 0, 0).pack(mav))
    bad[15] ^= 0xFF  # corrupt the payload: CRC fails
    out.extend(int((end + 1) * 1e6).to_bytes(8, "big"))
    out.extend(bad)
    out.extend(b"\x00\x01garbage")  # bytes that are no record
    put(end + 2, mav.sys_status_encode(0, 0, 0, 500, 12000, -1, 90, 0, 0, 0, 0, 0, 0))
    tail = mav.global_position_int_encode(0, 509000000, 10000000, 0, 0, 0, 0, 0, 0).pack(mav)
    out.extend(int((end + 3) * 1e6).to_bytes(8, "big"))
    out.extend(tail[:-5])  # the log was cut while writing
    (HERE / "mavlink_gtekv_2020-04-17.tlog").write_bytes(bytes(out))


if __name__ == "__main__":
    make_sbs()
    make_remoteid()
    make_tlog()

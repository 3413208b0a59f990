"""AIS CSV exports by column name: which column holds what, and the text codes some write.

Agencies export AIS with their own headers. A header is matched by name, case and spacing
aside (``# Timestamp``, ``Navigational status`` and ``navigational_status`` are one name):

- **MarineCadastre** (NOAA/BOEM) to 2023: ``MMSI,BaseDateTime,LAT,LON,SOG,COG,Heading,
  VesselName,IMO,CallSign,VesselType,Status,Length,Width,…``; from 2024 the same columns
  in snake case (``mmsi,base_date_time,longitude,latitude,…``);
- **Danish Maritime Authority** (aisdata.ais.dk): ``# Timestamp,Type of mobile,MMSI,
  Latitude,Longitude,Navigational status,ROT,SOG,COG,Heading,IMO,Callsign,Name,Ship type,
  …,Width,Length,…``, times day first (``31/12/2023 23:59:59``), status and ship type as
  text, base stations and aids to navigation among the rows;
- anything else with an MMSI, a time and a position under a common name (``mmsi``,
  ``timestamp``/``time``/``datetime``, ``lat``/``latitude``, ``lon``/``lng``/``longitude``,
  ``sog``/``speed``, ``cog``/``course``, …), times as ISO 8601 or epoch seconds.

Columns are returned under MarineCadastre's names, which the decoder
(:mod:`streams.sources.marinecadastre`) reads.
"""

from __future__ import annotations

from streams.sources.csvutil import req_float

REQUIRED = ("MMSI", "BaseDateTime", "LAT", "LON")

# canonical name -> accepted names, normalised (see _norm)
_ALIASES: dict[str, tuple[str, ...]] = {
    "MMSI": ("mmsi", "userid", "user_id", "mmsi_number"),
    "BaseDateTime": (
        "basedatetime", "base_date_time", "timestamp", "time", "datetime", "date_time", "timestamp_utc",
        "date_time_utc", "time_utc", "ts",
    ),
    "LAT": ("lat", "latitude"),
    "LON": ("lon", "long", "lng", "longitude"),
    "SOG": ("sog", "speed", "speed_over_ground", "speed_kn", "speed_knots"),
    "COG": ("cog", "course", "course_over_ground"),
    "Heading": ("heading", "true_heading", "hdg"),
    "Status": ("status", "navigational_status", "nav_status", "navstatus", "navigation_status"),
    "VesselName": ("vesselname", "vessel_name", "name", "shipname", "ship_name"),
    "IMO": ("imo", "imo_number"),
    "CallSign": ("callsign", "call_sign"),
    "VesselType": ("vesseltype", "vessel_type", "ship_type", "shiptype", "ship_and_cargo_type"),
    "Length": ("length", "length_m"),
    "Width": ("width", "width_m", "beam"),
    "TypeOfMobile": ("type_of_mobile",),
}  # fmt: skip
_BY_ALIAS = {alias: name for name, aliases in _ALIASES.items() for alias in aliases}

# Danish Maritime Authority "Type of mobile" rows that are no vessel
NOT_VESSELS = frozenset({"base station", "aton"})

# ITU-R M.1371 navigational status, as text exports write it
NAV_STATUS = {
    "under way using engine": 0,
    "at anchor": 1,
    "not under command": 2,
    "restricted manoeuverability": 3,
    "restricted maneuverability": 3,
    "restricted manoeuvrability": 3,
    "constrained by her draught": 4,
    "moored": 5,
    "aground": 6,
    "engaged in fishing": 7,
    "under way sailing": 8,
    "ais-sart is active": 14,
    "unknown value": 15,
    "undefined": 15,
}

# Ship type as text (Danish Maritime Authority) → the ITU-R M.1371 code of its class
SHIP_TYPE = {
    "wing in ground": 20,
    "fishing": 30,
    "towing": 31,
    "towing long/wide": 32,
    "dredging": 33,
    "diving": 34,
    "military": 35,
    "sailing": 36,
    "pleasure": 37,
    "hsc": 40,
    "pilot": 50,
    "sar": 51,
    "tug": 52,
    "port tender": 53,
    "anti-pollution": 54,
    "law enforcement": 55,
    "medical": 58,
    "not party to conflict": 59,
    "passenger": 60,
    "cargo": 70,
    "tanker": 80,
    "other": 90,
}


def _norm(name: str) -> str:
    text = name.strip().lstrip("\ufeff").lstrip("#").strip().strip('"').strip().lower()
    return text.replace(" ", "_").replace("-", "_")


def resolve(header: list[str]) -> dict[str, int]:
    """Column index by canonical name, for the columns of ``header`` this module knows.

    An exact MarineCadastre name wins over an alias (a file with both ``LAT`` and ``latitude``
    reads ``LAT``); otherwise the first column with a known name."""
    out: dict[str, int] = {}
    exact: set[str] = set()
    for i, raw in enumerate(header):
        stripped = raw.strip().lstrip("\ufeff")
        if stripped in _ALIASES:
            if stripped not in exact:
                out[stripped] = i
                exact.add(stripped)
            continue
        name = _BY_ALIAS.get(_norm(raw))
        if name is not None and name not in out:
            out[name] = i
    return out


def is_ais_header(line: str) -> bool:
    """A CSV header with an MMSI, a time and a position column."""
    return all(c in resolve(line.split(",")) for c in REQUIRED)


def nav_status(text: str) -> int | None:
    """A status as a code: a number as it is (else DecodeError ``bad_status``), known text by
    :data:`NAV_STATUS`, other text ``None``."""
    if text[:1].isdigit() or text[:1] in ("-", "+", "."):
        return int(req_float(text, "bad_status"))
    return NAV_STATUS.get(text.strip().lower())


def ship_type(text: str) -> int | None:
    """A ship type given as text (``Fishing``, ``Tug``…) as its code, or ``None``."""
    return SHIP_TYPE.get(text.strip().lower())

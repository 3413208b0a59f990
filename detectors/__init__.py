"""Pure detectors and the engines that drive them. No I/O, no faust, no Kafka, no Prometheus."""

from models import compiled as _compiled

_compiled.use("detectors", __path__)

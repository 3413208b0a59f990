"""Pure detectors and the engines that drive them. No I/O, no faust, no Kafka, no Prometheus."""

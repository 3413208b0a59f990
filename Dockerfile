# vigiamar: one image for every subcommand (worker, feed, alerts, replay) and the Kafka tools.
#   docker build -t vigiamar:local .
#   docker run --rm vigiamar:local vigiamar replay /app/data/samples/virginia_beach_2020-06-04_to_06.csv.gz
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Packages first, installed editable: config/ and data/ stay beside them in /app, where the
# settings loader finds its bundled defaults (models/settings.py: DEFAULT_CONFIG).
COPY pyproject.toml README.md ./
COPY models/ models/
COPY detectors/ detectors/
COPY streams/ streams/
RUN pip install -e .

COPY config/ config/
COPY data/ data/
COPY tools/ tools/

RUN useradd --system --uid 10001 --no-create-home --home-dir /app vigiamar
USER vigiamar

# [metrics] port: GET /metrics, /livez, /readyz of `vigiamar worker`.
EXPOSE 9108
CMD ["vigiamar", "--help"]

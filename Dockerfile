# hsmnode member image: `docker build -t hsmnode .` (see README "Operating": compose and Kubernetes).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    GRPC_ENABLE_FORK_SUPPORT=false

WORKDIR /src
COPY pyproject.toml README.md ./
COPY hsmnode ./hsmnode
RUN pip install . && rm -rf /src \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/hsmnode --create-home hsmnode

# non-root; the data dir (HSMNODE_DATA_DIR, /var/lib/hsmnode/data) lives on this volume
USER 10001:10001
WORKDIR /var/lib/hsmnode
VOLUME ["/var/lib/hsmnode"]
# gRPC (clients, admin, health), Raft (members only), Prometheus /metrics (HSMNODE_METRICS_PORT)
EXPOSE 7000 7100 9464

HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["hsmnode", "health", "--from-env"]
ENTRYPOINT ["hsmnode", "serve"]
CMD ["--config-from-env"]

# The field simulator (demo/fieldsim) on the core runner image, which already has eval_runner and the
# simulator's heavy dependencies (numpy, polars, psycopg); only starlette and uvicorn are added.
ARG CORE_IMAGE
FROM ${CORE_IMAGE}
USER 0
COPY ca-certificates.crt /tmp/ca.crt
COPY fieldsim/ /tmp/fieldsim/
RUN PIP_CERT=/tmp/ca.crt /opt/runner/bin/pip install --no-cache-dir /tmp/fieldsim \
    && /opt/runner/bin/pip check && rm -rf /tmp/fieldsim /tmp/ca.crt
LABEL org.opencontainers.image.title="fleet-eval field simulator"
USER 10001:10001
ENTRYPOINT []

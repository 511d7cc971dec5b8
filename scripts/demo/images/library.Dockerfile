# A runner image for one battery-lib version, layered on the runner image without library or extras: pip installs the
# library's wheel and lets it move shared dependencies (0.6.0 needs numpy<2), then `pip check` proves
# the environment is consistent. The demo builds these on the host so the first evaluate needs no
# in-cluster BuildKit build; the evaluate workflow builds the same tags itself when they are missing.
ARG CORE_IMAGE
FROM ${CORE_IMAGE}
ARG LIBRARY_VERSION
ARG RUNNER_VERSION
USER 0
COPY ca-certificates.crt /tmp/ca.crt
COPY wheels/ /tmp/wheels/
RUN PIP_CERT=/tmp/ca.crt /opt/runner/bin/pip install --no-cache-dir /tmp/wheels/*.whl \
    && /opt/runner/bin/pip check && rm -rf /tmp/wheels /tmp/ca.crt
LABEL org.opencontainers.image.version="${LIBRARY_VERSION}-runner-${RUNNER_VERSION}" \
      io.fleet-eval.library.requirement="battery-lib==${LIBRARY_VERSION}" \
      io.fleet-eval.library.version="${LIBRARY_VERSION}"
USER 10001:10001

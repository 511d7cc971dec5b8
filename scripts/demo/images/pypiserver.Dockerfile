# pypiserver (the chart's private package index) in a virtualenv on the cluster's Python base image.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG PYPISERVER_VERSION
USER 0
COPY ca-certificates.crt /tmp/ca.crt
RUN python3 -m venv /opt/pypiserver \
    && PIP_CERT=/tmp/ca.crt /opt/pypiserver/bin/pip install --no-cache-dir "pypiserver==${PYPISERVER_VERSION}" \
    && rm /tmp/ca.crt
LABEL org.opencontainers.image.title="pypiserver ${PYPISERVER_VERSION}"
ENV PATH=/opt/pypiserver/bin:${PATH} HOME=/tmp
USER 10001:10001
ENTRYPOINT []

# The demo's private package index: pypiserver in its own environment on the cluster's Python base, with
# the runner wheelhouse (every wheel of images/runner/requirements/*.txt) served beside the uploads, so
# in-cluster runner builds find every locked dependency without reaching the internet.
ARG BASE_IMAGE
FROM ${BASE_IMAGE} AS build
USER 0
ARG PIP_INDEX_URL
ARG PYPISERVER_VERSION
ARG WAITRESS_VERSION
ENV UV_NO_CACHE=1 UV_PYTHON_DOWNLOADS=never
COPY bootstrap_uv.py tools.txt /tmp/build/
RUN python3 /tmp/build/bootstrap_uv.py --index-url "${PIP_INDEX_URL}" --requirements /tmp/build/tools.txt \
      --dest /usr/local/bin \
    && uv venv --quiet --python /usr/bin/python3 /opt/pypiserver \
    && uv pip install --quiet --python /opt/pypiserver/bin/python --index-url "${PIP_INDEX_URL}" \
      "pypiserver==${PYPISERVER_VERSION}" "waitress==${WAITRESS_VERSION}"

FROM ${BASE_IMAGE}
ARG PYPISERVER_VERSION
ARG WAITRESS_VERSION
LABEL org.opencontainers.image.title="pypiserver ${PYPISERVER_VERSION} on waitress ${WAITRESS_VERSION} with the runner wheelhouse"
COPY --from=build /opt/pypiserver /opt/pypiserver
COPY wheelhouse/ /opt/wheelhouse/
ENV PATH=/opt/pypiserver/bin:${PATH} HOME=/tmp
USER 10001:10001
ENTRYPOINT []

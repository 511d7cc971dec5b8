# The field simulator (demo/fieldsim) on the core runner image, which already holds everything it imports
# (click, numpy, polars, pyarrow, psycopg, starlette, uvicorn; never eval_runner): the package goes on the
# path as it is, its own contract definitions included (fieldsim/contracts.py; the spec files stay out).
ARG CORE_IMAGE
FROM ${CORE_IMAGE}
USER 0
COPY fieldsim/ /opt/fieldsim/fieldsim/
RUN echo /opt/fieldsim >/opt/runner/lib/python3.11/site-packages/fieldsim.pth \
    && printf '#!/opt/runner/bin/python\nimport sys\nfrom fieldsim.cli import main\nsys.exit(main())\n' \
      >/opt/runner/bin/fieldsim && chmod 0755 /opt/runner/bin/fieldsim \
    && /opt/runner/bin/python -c "import fieldsim.cli"
LABEL org.opencontainers.image.title="fleet-eval field simulator"
USER 10001:10001
ENTRYPOINT []

# syntax=docker/dockerfile:1
# Slim CPU image for prior servers, shard writers and prior benchmarks (no CUDA), run as a non-root user:
#   docker build -f docker/prior.Dockerfile -t pfnforge-prior:0.1.0 .
#   docker run --rm -p 8815:8815 -v "$PWD/token:/run/pfnforge-token:ro" pfnforge-prior:0.1.0 \
#       serve gp --host 0.0.0.0 --port 8815 --token-file /run/pfnforge-token
#   docker run --rm pfnforge-prior:0.1.0 priors bench gp --workers 4
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_VERSION=2.13.0
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/pfnforge
ENV PATH=/opt/pfnforge/bin:$PATH
# torch's CPU build keeps the image small; pfnforge accepts any torch>=2.5
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==${TORCH_VERSION}"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY pfnforge ./pfnforge
COPY configs ./configs
COPY priors ./priors
RUN pip install . ./priors

FROM ${PYTHON_IMAGE} AS runtime
COPY --from=build /opt/pfnforge /opt/pfnforge
COPY docker/entrypoint.sh /usr/local/bin/pfnforge-entrypoint
RUN useradd --create-home --uid 10001 pfnforge
ENV PATH=/opt/pfnforge/bin:$PATH \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /home/pfnforge
EXPOSE 8815
ENTRYPOINT ["pfnforge-entrypoint"]
CMD ["priors", "list"]

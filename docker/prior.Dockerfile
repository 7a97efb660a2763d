# Slim CPU image for prior workers and prior benchmarks (no CUDA):
#   docker build -f docker/prior.Dockerfile -t pfnforge-prior .
#   docker run --rm pfnforge-prior priors bench gp --workers 4
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    NUMBA_CACHE_DIR=/var/cache/numba \
    PYTHONUNBUFFERED=1

WORKDIR /opt/pfnforge
COPY pyproject.toml README.md ./
COPY pfnforge ./pfnforge
COPY configs ./configs
COPY priors ./priors

# The CPU build of torch keeps the image small; pfnforge accepts any torch>=2.5.
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch>=2.5" \
    && pip install . ./priors \
    && mkdir -p /var/cache/numba \
    && useradd --create-home pfnforge && chown pfnforge /var/cache/numba

USER pfnforge
ENTRYPOINT ["pfnforge"]
CMD ["priors", "list"]

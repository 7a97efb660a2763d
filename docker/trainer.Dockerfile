# syntax=docker/dockerfile:1
# CUDA image for trainers: torch's CUDA build, pfnforge, the first-party priors and DeepSpeed, run as a
# non-root user. Build from the repository root; run on a GPU host or convert it for a cluster:
#   docker build -f docker/trainer.Dockerfile -t pfnforge-trainer:0.1.0 .
#   docker run --rm --gpus all pfnforge-trainer:0.1.0 train trainer=gpu
#   enroot import -o pfnforge-trainer.sqsh dockerd://pfnforge-trainer:0.1.0     # Pyxis: srun --container-image
#   apptainer build pfnforge-trainer.sif docker-daemon://pfnforge-trainer:0.1.0  # Apptainer: apptainer exec --nv
# Pins: the CUDA base, torch and its CUDA wheel index are build arguments, keep them in step.
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

FROM ${CUDA_IMAGE} AS build
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu128
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008  # Ubuntu's python3 of the pinned base; its security updates are wanted
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/pfnforge
ENV PATH=/opt/pfnforge/bin:$PATH
RUN pip install --index-url "${TORCH_INDEX}" "torch==${TORCH_VERSION}"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY pfnforge ./pfnforge
COPY configs ./configs
COPY priors ./priors
ARG DEEPSPEED_VERSION=0.19.8
# DeepSpeed builds its ops on first use (DS_BUILD_OPS=1 at install breaks without a CUDA toolkit)
RUN pip install "deepspeed==${DEEPSPEED_VERSION}" && pip install . ./priors

FROM ${CUDA_IMAGE} AS runtime
ENV DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008  # the same python3 as the build stage: the virtual environment links to it
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 pfnforge
COPY --from=build /opt/pfnforge /opt/pfnforge
COPY docker/entrypoint.sh /usr/local/bin/pfnforge-entrypoint
ENV PATH=/opt/pfnforge/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    OMP_NUM_THREADS=1
USER 10001:10001
WORKDIR /home/pfnforge
ENTRYPOINT ["pfnforge-entrypoint"]
CMD ["--help"]

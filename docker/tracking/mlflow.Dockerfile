# syntax=docker/dockerfile:1
# The shared MLflow tracking server of a site: MLflow with the PostgreSQL driver (and boto3 for an S3 or
# MinIO artifact store), run as a non-root user. Used by compose.yaml; build it alone with
#   docker build -f docker/tracking/mlflow.Dockerfile -t pfnforge-mlflow:3.17.2 docker/tracking
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm
FROM ${PYTHON_IMAGE}
ARG MLFLOW_VERSION=3.17.2
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
RUN pip install "mlflow==${MLFLOW_VERSION}" "psycopg2-binary==2.9.13" "boto3==1.40.0" \
    && useradd --create-home --uid 10001 mlflow \
    && mkdir -p /mlflow/artifacts && chown 10001:10001 /mlflow/artifacts
COPY entrypoint.sh /usr/local/bin/mlflow-entrypoint
USER 10001:10001
EXPOSE 5000
ENTRYPOINT ["mlflow-entrypoint"]

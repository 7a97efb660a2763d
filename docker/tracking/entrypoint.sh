#!/bin/sh
# Starts `mlflow server` against PostgreSQL, from the environment that compose.yaml sets:
#   POSTGRES_HOST POSTGRES_PORT POSTGRES_DB POSTGRES_USER POSTGRES_PASSWORD (required)
#   MLFLOW_ARTIFACTS_DESTINATION  where artifacts go (default /mlflow/artifacts, a volume; or s3://bucket/path)
#   MLFLOW_HOST (default 0.0.0.0), MLFLOW_PORT (default 5000), MLFLOW_WORKERS (default 4)
# The server proxies artifacts: clients need only its URL (logger.tracking_uri=http://host:5000).
# Extra arguments are passed to `mlflow server`.
set -eu
missing=""
for name in POSTGRES_HOST POSTGRES_DB POSTGRES_USER POSTGRES_PASSWORD; do
  eval "value=\${$name:-}"
  [ -n "$value" ] || missing="$missing $name"
done
if [ -n "$missing" ]; then
  echo "mlflow-entrypoint: set$missing (see docker/tracking/README.md)" >&2
  exit 2
fi
# the password goes in the URI: it must be URL-safe (letters, digits, - . _ ~)
case $POSTGRES_PASSWORD in
  *[!A-Za-z0-9._~-]*) echo "mlflow-entrypoint: POSTGRES_PASSWORD must be URL-safe (letters, digits, - . _ ~)" >&2
    exit 2 ;;
esac
# no background job runner in the server (it would start extra processes and slow start-up)
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}"
exec mlflow server \
  --backend-store-uri "postgresql+psycopg2://${POSTGRES_USER}:${POSTGRES_PASSWORD}@${POSTGRES_HOST}:${POSTGRES_PORT:-5432}/${POSTGRES_DB}" \
  --artifacts-destination "${MLFLOW_ARTIFACTS_DESTINATION:-/mlflow/artifacts}" \
  --host "${MLFLOW_HOST:-0.0.0.0}" --port "${MLFLOW_PORT:-5000}" --workers "${MLFLOW_WORKERS:-4}" "$@"

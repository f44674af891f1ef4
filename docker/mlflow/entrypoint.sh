#!/bin/sh
# Refuse the placeholders of docker/.env.example, then run the server command.
set -eu
for var in MLFLOW_AUTH_ADMIN_PASSWORD MLFLOW_FLASK_SERVER_SECRET_KEY MLFLOW_BACKEND_STORE_URI; do
    value="$(printenv "$var" || true)"
    case "$value" in
        *change-me*) echo "mlflow: $var holds the placeholder of docker/.env.example; run \`make docker-env\`" \
                          "(or set a secret in docker/.env) and recreate the containers" >&2
                     exit 2 ;;
    esac
done
exec "$@"

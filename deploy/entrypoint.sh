#!/usr/bin/env bash
# Entrypoint of the single Liandong image (see deploy/Dockerfile).
#
#   service <name>   run one nameko service: services.<name>.service[:<Class>]
#   migrate          database migrations for $CITY
#   topology         RabbitMQ vhost/exchanges/queues/policies for $CITY
#   anything else    exec'ed unchanged (e.g. `liandong provision --skip-install`, `bash`)
#
# Every branch uses `exec`, so the real process replaces this shell and receives
# SIGTERM directly from tini (PID 1): nameko then stops its entrypoints gracefully.
set -euo pipefail

NAMEKO_CONFIG="${NAMEKO_CONFIG:-/app/deploy/nameko.yml}"

usage() {
    echo "usage: entrypoint.sh service <name> | migrate | topology | <command> [args...]" >&2
}

if [[ $# -eq 0 ]]; then
    usage
    exit 64
fi

case "$1" in
    service)
        if [[ $# -ne 2 ]]; then
            usage
            exit 64
        fi
        name="$2"
        # Only plain module names: services.<name>.service
        if [[ ! "$name" =~ ^[a-z][a-z0-9_]*$ ]]; then
            echo "entrypoint.sh: invalid service name: $name" >&2
            exit 64
        fi
        # nameko must be given the class: a service module also imports the Observable
        # base, which has entrypoints of its own. liandong.settings.SERVICE_CLASSES names
        # it ("services.leads.service:LeadsService"); a service not listed there runs as
        # the whole module services.<name>.service.
        target="$("${PYTHON:-python}" -c '
import sys
try:
    from liandong.settings import SERVICE_CLASSES
except ImportError:
    SERVICE_CLASSES = {}
print(SERVICE_CLASSES.get(sys.argv[1], f"services.{sys.argv[1]}.service"))
' "$name")"
        exec nameko run --config "$NAMEKO_CONFIG" "$target"
        ;;
    migrate)
        shift
        exec liandong migrate --city "${CITY:?CITY must be set}" "$@"
        ;;
    topology)
        shift
        exec liandong topology apply --city "${CITY:?CITY must be set}" "$@"
        ;;
    *)
        exec "$@"
        ;;
esac

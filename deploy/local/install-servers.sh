#!/usr/bin/env bash
# Install and start RabbitMQ and PostgreSQL from Debian/Ubuntu packages on a machine that has
# neither running and no Docker engine. Local development only: PostgreSQL trusts 127.0.0.1.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "run as root (or start RabbitMQ and PostgreSQL yourself)" >&2; exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! command -v rabbitmq-server >/dev/null || ! command -v pg_ctlcluster >/dev/null; then
  apt-get update -q
  apt-get install -y -q rabbitmq-server postgresql
fi
if ! rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
  rabbitmq-server -detached
  for _ in $(seq 60); do rabbitmq-diagnostics -q ping >/dev/null 2>&1 && break; sleep 1; done
fi
rabbitmq-plugins enable rabbitmq_management rabbitmq_shovel rabbitmq_shovel_management
version=$(ls /etc/postgresql | sort -V | tail -1)
hba=/etc/postgresql/$version/main/pg_hba.conf
if ! grep -q "liandong-local" "$hba"; then
  sed -i '1i host all postgres 127.0.0.1/32 trust # liandong-local' "$hba"
fi
pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null \
  || pg_ctlcluster --skip-systemctl-redirect "$version" main reload

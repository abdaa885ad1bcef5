#!/bin/sh
# Initialise $PGDATA on first start as the official postgres image does (superuser
# $POSTGRES_USER with $POSTGRES_PASSWORD, database $POSTGRES_DB), then run the server.
# PGPORT sets the port; POSTGRES_LISTEN the addresses (default: all).
set -eu
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile="$(mktemp)"
  printf '%s\n' "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}" > "$pwfile"
  initdb --username="$user" --pwfile="$pwfile" --auth-host=scram-sha-256 --auth-local=trust \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    pg_ctl --wait --silent -o "-c listen_addresses='' -k /tmp" start
    createdb --host=/tmp --username="$user" "$db"
    pg_ctl --wait --silent stop
  fi
  echo "postgres-entrypoint: initialised $PGDATA (user $user, database $db)"
fi
exec postgres -c listen_addresses="${POSTGRES_LISTEN:-*}" -k /var/run/postgresql "$@"

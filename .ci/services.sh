# Start throwaway PostgreSQL and Redis servers on loopback (no systemd needed).
# Source this file: it exports NLEBENCH_TEST_DATABASE_URL and NLEBENCH_TEST_REDIS_URL and sets
# a trap that stops both servers when the shell exits. Installs the Debian packages if missing.


export DEBIAN_FRONTEND=noninteractive
if ! command -v redis-server >/dev/null || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends postgresql redis-server >/dev/null && apt-get clean
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
SVC_DIR=$(mktemp -d)
PG_PORT=${PG_PORT:-55432}
REDIS_PORT=${REDIS_PORT:-56379}
mkdir -p "$SVC_DIR/pg" "$SVC_DIR/sock" "$SVC_DIR/redis"
chmod 755 "$SVC_DIR"
if [ "$(id -u)" = 0 ]; then
  chown -R postgres:postgres "$SVC_DIR/pg" "$SVC_DIR/sock"
  as_pg() { su postgres -s /bin/sh -c "$1"; }
else
  as_pg() { sh -c "$1"; }
fi
as_pg "$PGBIN/initdb -D $SVC_DIR/pg/data -U postgres -A trust -E UTF8 --no-sync >/dev/null"
as_pg "$PGBIN/pg_ctl -D $SVC_DIR/pg/data -l $SVC_DIR/pg/server.log -w -t 60 \
  -o '-p $PG_PORT -k $SVC_DIR/sock -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300' start >/dev/null"
PG_PID=$(head -1 "$SVC_DIR/pg/data/postmaster.pid")
"$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qAt -c "CREATE DATABASE nlebench_test" >/dev/null
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --dir "$SVC_DIR/redis" \
  --pidfile "$SVC_DIR/redis/redis.pid" --save '' --appendonly no >/dev/null
for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
REDIS_PID=$(cat "$SVC_DIR/redis/redis.pid")

stop_services() {
  kill -INT "$PG_PID" 2>/dev/null || true
  kill -TERM "$REDIS_PID" 2>/dev/null || true
}
trap stop_services EXIT

export NLEBENCH_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/nlebench_test"
export NLEBENCH_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
echo "services: PostgreSQL on $PG_PORT (pid $PG_PID), Redis on $REDIS_PORT (pid $REDIS_PID)"


# Sourced by scripts/demo and scripts/test: make sure PostgreSQL (127.0.0.1:5432, user postgres)
# and Redis (127.0.0.1:6379) answer. In order: already running; start the local installation;
# `docker compose` where a Docker engine runs; install Debian's packages (as root) and start them.
# Set TRADEPIPE_DATABASE_URL / TRADEPIPE_REDIS_URL to use other servers; then nothing is started.

say() { printf '[services] %s\n' "$*" >&2; }

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null || psql "postgres://postgres@127.0.0.1:5432/postgres" -qtAc 'select 1' >/dev/null 2>&1; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

wait_for() { # name check-function seconds
  local i
  for i in $(seq 1 "$3"); do "$2" && return 0; sleep 1; done
  say "$1 did not come up within $3 s"; return 1
}

docker_engine() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

apt_install() {
  if [ "$(id -u)" != 0 ]; then say "cannot install $* without root; please install them"; return 1; fi
  say "installing $* from Debian's packages"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

start_postgres() {
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    if docker_engine; then say "starting PostgreSQL with docker compose"; docker compose up -d postgres; return; fi
    apt_install postgresql postgresql-client || return 1
  fi
  local ver; ver=$(ls /etc/postgresql | sort -V | tail -1)
  local hba="/etc/postgresql/$ver/main/pg_hba.conf"
  # The project's tests and demo connect as postgres over TCP without a password (local only).
  if [ -w "$hba" ] && ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  say "starting PostgreSQL $ver"
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>/dev/null || pg_ctlcluster --skip-systemctl-redirect "$ver" main reload
}

start_redis() {
  if ! command -v redis-server >/dev/null 2>&1; then
    if docker_engine; then say "starting Redis with docker compose"; docker compose up -d redis; return; fi
    apt_install redis-server redis-tools || return 1
  fi
  say "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
}

ensure_services() {
  if [ -z "${TRADEPIPE_DATABASE_URL:-}" ]; then
    pg_up || { start_postgres && wait_for PostgreSQL pg_up 30; } || return 1
  fi
  if [ -z "${TRADEPIPE_REDIS_URL:-}" ]; then
    command -v redis-cli >/dev/null 2>&1 || apt_install redis-tools || true
    redis_up || { start_redis && wait_for Redis redis_up 15; } || return 1
  fi
  say "PostgreSQL and Redis answer"
}

# The operations tests (tests/operations.rs) run promtool and a Prometheus server of their own on a
# free loopback port; Debian's `prometheus` package has both. Where installing it starts the
# packaged service (a systemd host), that service is stopped again: nothing here needs it.
ensure_test_tools() {
  # openssl makes the throw-away CA of the TLS tests (tests/tls_e2e.rs).
  if ! command -v openssl >/dev/null 2>&1; then
    apt_install --no-install-recommends openssl || return 1
    say "openssl installed"
  fi
  if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then return 0; fi
  apt_install --no-install-recommends prometheus || return 1   # not its node exporter
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl disable --now prometheus >/dev/null 2>&1 || true
  fi
  say "promtool and prometheus installed"
}

# A streaming replica of the local primary for tests/read_replica.rs (scripts/pg-replica: a hot
# standby from pg_basebackup on 127.0.0.1:55433; the primary only gets a replication line in
# pg_hba.conf and a reload if it lacks one). Exports its server URL; fails when it cannot be made
# (another primary than the local one, no PostgreSQL binaries, no rights).
ensure_replica() {
  [ -z "${TRADEPIPE_DATABASE_URL:-}" ] || { say "TRADEPIPE_DATABASE_URL is set: no local replica"; return 1; }
  scripts/pg-replica ensure || return 1
  TRADEPIPE_TEST_REPLICA_URL="$(scripts/pg-replica url)"
  export TRADEPIPE_TEST_REPLICA_URL="${TRADEPIPE_TEST_REPLICA_URL%/*}"   # the server; tests add their database
}

# Start a throw-away PostgreSQL server for the postgres collector's tests and export
# SEGFLOW_PG_DSN pointing at it. Source it (`. .ci/postgres.sh`) from bash; .ci/run does.
#
# - Installs Debian's `postgresql` package when no `initdb` is found.
# - Initialises a fresh cluster in $SEGFLOW_PG_DIR (default: /tmp/segflow-ci-pg), after
#   stopping and removing any cluster a previous run left there, so it is idempotent.
# - Listens on 127.0.0.1 only, on $SEGFLOW_PG_PORT (default 54329; the next free port
#   up to +10 when that one is taken), with a superuser `segflow`, a random password
#   and a database `segflow`.
# - Runs the server as the `postgres` user when started as root (initdb refuses root).
# Stop it with: pg_ctl -D "$SEGFLOW_PG_DIR/data" stop

segflow_pg_start() {
    local bindir="" d
    for d in /usr/lib/postgresql/*/bin; do
        [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && bindir="$d"
    done
    if [ -z "$bindir" ] && command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        bindir="$(dirname "$(command -v initdb)")"
    fi
    if [ -z "$bindir" ]; then
        echo "PostgreSQL not found: installing Debian's postgresql package"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq postgresql >/dev/null || return 1
        for d in /usr/lib/postgresql/*/bin; do
            [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && bindir="$d"
        done
        if [ -z "$bindir" ]; then
            echo "installing postgresql gave no initdb/pg_ctl" >&2
            return 1
        fi
    fi

    local base="${SEGFLOW_PG_DIR:-/tmp/segflow-ci-pg}"
    local data="$base/data"
    local run_as=()
    if [ "$(id -u)" = 0 ]; then
        if ! id -u postgres >/dev/null 2>&1; then
            useradd --system --no-create-home --shell /usr/sbin/nologin postgres || return 1
        fi
        run_as=(runuser -u postgres --)
    fi

    # A cluster left by an earlier run: stop it and start afresh.
    if [ -f "$data/PG_VERSION" ]; then
        "${run_as[@]}" "$bindir/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$base"
    mkdir -p "$base"
    chmod 755 "$base"

    local password
    password="ci$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
    local pwfile="$base/pwfile"
    printf '%s\n' "$password" >"$pwfile"
    if [ "${#run_as[@]}" -gt 0 ]; then
        chown postgres "$base" "$pwfile"
    fi
    chmod 600 "$pwfile"

    "${run_as[@]}" "$bindir/initdb" -D "$data" -U segflow --pwfile="$pwfile" \
        --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$base/initdb.log" 2>&1 ||
        "${run_as[@]}" "$bindir/initdb" -D "$data" -U segflow --pwfile="$pwfile" \
            --auth=scram-sha-256 --encoding=UTF8 --no-locale >"$base/initdb.log" 2>&1 || {
        cat "$base/initdb.log" >&2
        return 1
    }
    rm -f "$pwfile"

    local port="${SEGFLOW_PG_PORT:-54329}" last started=""
    last=$((port + 10))
    while [ "$port" -le "$last" ]; do
        if "${run_as[@]}" "$bindir/pg_ctl" -D "$data" -l "$base/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $base -c max_connections=50 -c fsync=off" \
            start >/dev/null 2>&1; then
            started=1
            break
        fi
        port=$((port + 1))
    done
    if [ -z "$started" ]; then
        echo "could not start PostgreSQL; its log:" >&2
        cat "$base/server.log" >&2 || true
        return 1
    fi
    PGPASSWORD="$password" "$bindir/psql" -q -h 127.0.0.1 -p "$port" -U segflow -d postgres \
        -c "CREATE DATABASE segflow" >/dev/null || return 1

    export SEGFLOW_PG_DIR="$base"
    export SEGFLOW_PG_DSN="postgresql://segflow:$password@127.0.0.1:$port/segflow"
    echo "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') listening on 127.0.0.1:$port (SEGFLOW_PG_DSN exported)"
}

segflow_pg_start

#!/usr/bin/env bash
# Make sure the services the integration tests need are up on this machine:
#   - Redis   on 127.0.0.1:6379
#   - MariaDB on 127.0.0.1:3306, user root with an empty password over TCP
#   - Chromium at /usr/bin/chromium, for the browser test of the web console
#     (cmd/seckill.TestConsole, which fails in CI without it)
#   - promtool and prometheus from Debian's prometheus package, for the
#     operations pack's alert tests and scrape test
#     (cmd/seckill.TestOperationsPack*, which fail in CI without them); the
#     package's own service is not needed: the test runs the binary itself
#   - spin, the Promela model checker, for the slot protocol model
#     (stock.TestProtocolModel, which fails in CI without it)
#   - axe-core from npm, for the accessibility scan of the web console
#     (TestConsole and TestConsoleOutage, which fail in CI without it),
#     installed into the cache directory $AXE_DIR, never into the repository:
#     the tests read $AXE_DIR/node_modules/axe-core/axe.min.js (or the file
#     SECKILL_AXE_JS names)
#
# A service that already answers is left alone. An installed but stopped
# server is started; a missing one is installed with apt-get first (Debian).
# Nothing is ever flushed or dropped.
set -euo pipefail

# start-stop-daemon and mariadbd live in sbin, which non-root PATHs may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

readonly HOST=127.0.0.1
readonly REDIS_PORT=6379
readonly MYSQL_PORT=3306
readonly MARIADBD=/usr/sbin/mariadbd
readonly MYSQL_DATADIR=/var/lib/mysql
readonly CHROMIUM=/usr/bin/chromium
readonly WAIT_SECONDS=60
# The exact axe-core the scans run: a new release may add rules and fail the
# console's tests with no change of ours. Another version installed is
# replaced.
readonly AXE_VERSION=4.14.1
readonly AXE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/seckill/axe"
readonly AXE_JS="$AXE_DIR/node_modules/axe-core/axe.min.js"
readonly AXE_PACKAGE="$AXE_DIR/node_modules/axe-core/package.json"

log() { printf 'services: %s\n' "$*"; }
die() { printf 'services: ERROR: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# Run a command as root: directly when we are root, otherwise through sudo
# (non-interactive when there is no terminal, so CI fails instead of hanging).
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif ! have sudo; then
		die "need root for: $* (not root and sudo is not installed)"
	elif [ -t 0 ]; then
		sudo "$@"
	else
		sudo -n "$@"
	fi
}

tcp_open() { (exec 3<>"/dev/tcp/$1/$2") >/dev/null 2>&1; }

mysql_client() {
	if have mariadb; then echo mariadb
	elif have mysql; then echo mysql
	else return 1
	fi
}

redis_up() {
	if have redis-cli; then
		[ "$(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
	else
		tcp_open "$HOST" "$REDIS_PORT"
	fi
}

# The server answers. "ping" succeeds even on "Access denied", but not when
# the server rejects the host (error 1130, e.g. with skip-name-resolve and
# no root@127.0.0.1 account): that still means the server is up.
mysql_up() {
	local admin out
	if have mariadb-admin; then admin=mariadb-admin
	elif have mysqladmin; then admin=mysqladmin
	else
		tcp_open "$HOST" "$MYSQL_PORT"
		return
	fi
	out=$("$admin" -h"$HOST" -P"$MYSQL_PORT" -uroot --connect-timeout=2 ping 2>&1) && return 0
	case $out in
		*"is not allowed to connect"* | *"Access denied"*) return 0 ;;
	esac
	return 1
}

# root can log in over TCP with an empty password.
mysql_root_tcp_ok() {
	local client
	client=$(mysql_client) || return 1
	"$client" -h"$HOST" -P"$MYSQL_PORT" -uroot --password= --connect-timeout=5 \
		-e 'SELECT 1' >/dev/null 2>&1
}

# wait_for NAME CHECK_FUNCTION
wait_for() {
	local name=$1 check=$2 deadline=$((SECONDS + WAIT_SECONDS))
	until "$check"; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			return 1
		fi
		sleep 1
	done
	log "$name is up"
}

install_packages() {
	have apt-get || die "cannot install $*: apt-get not found (install them by hand)"
	log "installing $* with apt-get"
	as_root apt-get update
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y \
		-o DPkg::Lock::Timeout=300 "$@"
}

start_redis() {
	local dir=/var/lib/redis logdir=/var/log/redis logfile
	mkdir -p "$dir" 2>/dev/null || true
	if [ ! -d "$dir" ] || [ ! -w "$dir" ]; then dir=/tmp; fi
	mkdir -p "$logdir" 2>/dev/null || true
	if [ -d "$logdir" ] && [ -w "$logdir" ]; then
		logfile=$logdir/ci.log
	else
		logfile=/tmp/redis-ci.log
	fi
	log "starting redis-server (dir $dir, log $logfile)"
	redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" \
		--save "" --appendonly no --dir "$dir" --logfile "$logfile" ||
		die "Redis: redis-server failed to start (see $logfile)"
	REDIS_LOG=$logfile
}

start_mariadb() {
	if [ ! -d "$MYSQL_DATADIR/mysql" ]; then
		log "initialising MariaDB data directory $MYSQL_DATADIR"
		as_root mariadb-install-db --user=mysql --datadir="$MYSQL_DATADIR" >/dev/null ||
			die "MariaDB: mariadb-install-db failed"
	fi
	as_root install -d -o mysql -g mysql -m 0755 /run/mysqld
	local logfile=/tmp/mariadbd-ci.log
	if [ -d /var/log/mysql ]; then logfile=/var/log/mysql/ci-mariadbd.log; fi
	local output=()
	if start-stop-daemon --help 2>&1 | grep -q -- '--output'; then
		output=(--output "$logfile")
	else
		logfile="the server's error log"
	fi
	log "starting mariadbd"
	# --user=mysql: mariadbd refuses to run as root, and Debian's default
	# config does not set the user.
	as_root start-stop-daemon --start --oknodo --background ${output[@]+"${output[@]}"} \
		--exec "$MARIADBD" -- --user=mysql ||
		die "MariaDB: start-stop-daemon failed to start $MARIADBD"
	MYSQL_LOG=$logfile
}

# A fresh Debian install authenticates root@localhost via unix_socket only.
# Only when the TCP login fails, and only through the local socket as the OS
# root user, give root an empty password (keeping socket login working).
fix_mysql_root() {
	mysql_root_tcp_ok && return 0
	local client
	client=$(mysql_client) || die "MariaDB: no mariadb/mysql client found to configure root login"
	log "MariaDB: root cannot log in over TCP with an empty password; fixing via the local socket"
	as_root "$client" -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket; FLUSH PRIVILEGES;" ||
		die "MariaDB: cannot log in as root via the local socket to set an empty root password"
	mysql_root_tcp_ok && return 0
	# With skip-name-resolve a TCP client from 127.0.0.1 does not match
	# 'root'@'localhost'; give that host its own passwordless root account.
	as_root "$client" -uroot -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; ALTER USER 'root'@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD(''); GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; FLUSH PRIVILEGES;" ||
		die "MariaDB: failed to create 'root'@'127.0.0.1'"
	mysql_root_tcp_ok || die "MariaDB: root still cannot log in over TCP $HOST:$MYSQL_PORT with an empty password"
}

# --- install whatever is missing ---------------------------------------------
missing=()
if ! redis_up && ! have redis-server; then missing+=(redis-server); fi
if ! mysql_up && [ ! -x "$MARIADBD" ]; then missing+=(mariadb-server); fi
if [ ! -x "$CHROMIUM" ]; then missing+=(chromium); fi
if ! have spin; then missing+=(spin); fi
if [ ! -f "$AXE_JS" ] && ! have npm; then missing+=(npm); fi
if [ "${#missing[@]}" -gt 0 ]; then
	install_packages "${missing[@]}"
fi
# Without its recommends (the node exporter and more): only promtool and the
# prometheus binary are used.
if ! have promtool || ! have prometheus; then
	install_packages --no-install-recommends prometheus
fi

# --- Redis -------------------------------------------------------------------
REDIS_LOG=
if redis_up; then
	log "Redis already answers on $HOST:$REDIS_PORT"
else
	start_redis
	wait_for "Redis" redis_up ||
		die "Redis did not answer on $HOST:$REDIS_PORT within ${WAIT_SECONDS}s (see ${REDIS_LOG})"
fi

# --- MariaDB -----------------------------------------------------------------
MYSQL_LOG=
if mysql_up; then
	log "MariaDB already answers on $HOST:$MYSQL_PORT"
else
	[ -x "$MARIADBD" ] || die "MariaDB: $MARIADBD not found"
	start_mariadb
	wait_for "MariaDB" mysql_up ||
		die "MariaDB did not answer on $HOST:$MYSQL_PORT within ${WAIT_SECONDS}s (see ${MYSQL_LOG})"
fi
fix_mysql_root

# --- Chromium, spin and axe-core ---------------------------------------------
[ -x "$CHROMIUM" ] || die "Chromium: $CHROMIUM not found after installing the package chromium"
have spin || die "spin not found after installing the package spin"
have promtool && have prometheus || die "promtool/prometheus not found after installing the package prometheus"
# axe_installed prints the version of the axe-core installed in $AXE_DIR,
# nothing when there is none.
axe_installed() {
	[ -f "$AXE_JS" ] && [ -f "$AXE_PACKAGE" ] || return 0
	grep -m1 -o '"version": *"[^"]*"' "$AXE_PACKAGE" | sed 's/.*"\([^"]*\)"$/\1/' || true
}
installed_axe="$(axe_installed)"
if [ "$installed_axe" = "$AXE_VERSION" ]; then
	log "axe-core $AXE_VERSION already installed in $AXE_DIR"
else
	have npm || die "npm not found after installing the package npm"
	if [ -n "$installed_axe" ]; then
		log "axe-core $installed_axe in $AXE_DIR is not $AXE_VERSION: replacing it"
	fi
	log "installing axe-core@$AXE_VERSION from npm into $AXE_DIR"
	mkdir -p "$AXE_DIR"
	npm install --no-save --no-audit --no-fund --prefix "$AXE_DIR" "axe-core@$AXE_VERSION" ||
		die "axe-core: npm install into $AXE_DIR failed"
	[ -f "$AXE_JS" ] || die "axe-core: $AXE_JS missing after npm install"
	installed_axe="$(axe_installed)"
	[ "$installed_axe" = "$AXE_VERSION" ] || die "axe-core: ${installed_axe:-no version} installed, want $AXE_VERSION"
fi

log "ready: Redis $HOST:$REDIS_PORT, MariaDB root@$HOST:$MYSQL_PORT, Chromium $CHROMIUM, $(command -v spin), $(command -v promtool), axe-core $AXE_VERSION $AXE_JS"

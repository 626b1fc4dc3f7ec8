#!/usr/bin/env bash
# A local cluster in one command (make run-cluster):
#   - a Redis Cluster of 3 masters and 3 replicas (redis-server processes of
#     its own, appendonly yes, on REDIS_PORTS),
#   - seckill broker, the development Kafka-protocol broker, on BROKER_PORT,
#   - three seckill instances on HTTP_PORTS sharing both, MySQL
#     (SECKILL_MYSQL_DSN) and one admin token (SECKILL_ADMIN_TOKEN, generated
#     when unset).
# It prints the URLs and the admin token once every instance is ready, and
# stops everything on Ctrl-C or SIGTERM: the instances first, then the
# broker, then Redis. Binary, data and logs live in a scratch directory
# under ${TMPDIR:-/tmp}, removed at the end unless KEEP=1.
# Started with & from another script, it ignores SIGINT (bash leaves the
# signal ignored in background jobs): stop it with SIGTERM there.
#
# Environment (defaults):
#   REDIS_PORTS        "7001 7002 7003 7004 7005 7006" (six; each port+10000 is its cluster bus)
#   BROKER_PORT        9092
#   HTTP_PORTS         "8081 8082 8083" (three)
#   SECKILL_MYSQL_DSN  root@tcp(127.0.0.1:3306)/seckill?parseTime=true
#   SECKILL_ADMIN_TOKEN  generated
#   KEEP=1             keep the scratch directory (data and logs) at the end
set -euo pipefail

readonly HOST=127.0.0.1
readonly WAIT_SECONDS=60
read -r -a redis_ports <<<"${REDIS_PORTS:-7001 7002 7003 7004 7005 7006}"
read -r -a http_ports <<<"${HTTP_PORTS:-8081 8082 8083}"
readonly broker_port=${BROKER_PORT:-9092}
readonly mysql_dsn=${SECKILL_MYSQL_DSN:-root@tcp(127.0.0.1:3306)/seckill?parseTime=true}

log() { printf 'run-cluster: %s\n' "$*"; }
die() { printf 'run-cluster: ERROR: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
tcp_open() { (exec 3<>"/dev/tcp/$1/$2") >/dev/null 2>&1; }

# --- checks before anything starts -------------------------------------------
for tool in redis-server redis-cli; do
	have "$tool" || die "$tool not found: install Redis (apt-get install redis-server, or scripts/services.sh)"
done
have go || die "go not found: install Go (see go.mod for the version)"
[ "${#redis_ports[@]}" -eq 6 ] || die "REDIS_PORTS must name six ports, got '${redis_ports[*]}'"
[ "${#http_ports[@]}" -eq 3 ] || die "HTTP_PORTS must name three ports, got '${http_ports[*]}'"
for p in "${redis_ports[@]}" "$broker_port" "${http_ports[@]}"; do
	case $p in '' | *[!0-9]*) die "port '$p' is not a number" ;; esac
done
for p in "${redis_ports[@]}"; do
	[ "$p" -ge 1 ] && [ "$p" -le 55535 ] || die "Redis port $p: must be from 1 to 55535 (its cluster bus is port+10000)"
done
if [ "$(printf '%s\n' "${redis_ports[@]}" "$broker_port" "${http_ports[@]}" | sort -u | wc -l)" -ne 10 ]; then
	die "the ports must all differ: REDIS_PORTS '${redis_ports[*]}', BROKER_PORT $broker_port, HTTP_PORTS '${http_ports[*]}'"
fi
check_free() { # port what variable
	if tcp_open "$HOST" "$1"; then die "port $1 ($2) is taken: stop what listens there or set $3"; fi
}
for p in "${redis_ports[@]}"; do
	check_free "$p" "Redis" REDIS_PORTS
	check_free "$((p + 10000))" "Redis cluster bus of $p" REDIS_PORTS
done
check_free "$broker_port" "seckill broker" BROKER_PORT
for p in "${http_ports[@]}"; do check_free "$p" "seckill" HTTP_PORTS; done

# Children run in sessions of their own (setsid), so that Ctrl-C in the
# terminal reaches this script alone and the stop goes in order.
detach=()
if have setsid; then detach=(setsid); fi

# --- scratch directory and the stop on exit ----------------------------------
repo=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/seckill-cluster.XXXXXX")
logs=$scratch/logs
mkdir -p "$logs" "$scratch/bin" "$scratch/kafka"
bin=$scratch/bin/seckill

instance_pids=()
broker_pid=
redis_pids=()
stopping=

# stop_all NAME PID...: SIGTERM to all, wait up to 20 s, then SIGKILL.
stop_all() {
	local what=$1
	shift
	[ "$#" -gt 0 ] || return 0
	[ -z "$stopping" ] || log "stopping $what"
	kill -TERM "$@" 2>/dev/null || true
	local deadline=$((SECONDS + 20)) pid
	for pid in "$@"; do
		while kill -0 "$pid" 2>/dev/null; do
			if [ "$SECONDS" -ge "$deadline" ]; then
				log "$what: pid $pid still runs 20 s after SIGTERM, killing it"
				kill -KILL "$pid" 2>/dev/null || true
			fi
			sleep 0.1
		done
		wait "$pid" 2>/dev/null || true
	done
}

cleanup() {
	local status=$?
	trap - EXIT INT TERM
	if [ -n "$stopping" ]; then status=0; fi # stopped by a signal: a clean stop
	stop_all "the instances" ${instance_pids[@]+"${instance_pids[@]}"}
	stop_all "the broker" ${broker_pid:+"$broker_pid"}
	stop_all "Redis" ${redis_pids[@]+"${redis_pids[@]}"}
	if [ "${KEEP:-}" = 1 ]; then
		log "kept $scratch (data and logs)"
	else
		rm -rf "$scratch"
	fi
	[ -z "$stopping" ] || log "stopped"
	exit "$status"
}
trap cleanup EXIT
trap 'stopping=1; exit 0' INT TERM

# logref LOG: where to read LOG after a failure (the scratch directory goes
# unless KEEP=1).
logref() {
	if [ "${KEEP:-}" = 1 ]; then echo "log: $1"; else echo "KEEP=1 keeps its log"; fi
}

# alive PID NAME LOG: fail with the last line of LOG when PID has exited.
alive() {
	kill -0 "$1" 2>/dev/null && return 0
	die "$2 exited: $(tail -n 1 "$3" 2>/dev/null) ($(logref "$3"))"
}

# wait_until WHAT PID LOG CHECK...: run CHECK until it succeeds, while PID runs.
wait_until() {
	local what=$1 pid=$2 logfile=$3 deadline=$((SECONDS + WAIT_SECONDS))
	shift 3
	until "$@"; do
		alive "$pid" "$what" "$logfile"
		[ "$SECONDS" -lt "$deadline" ] || die "$what: not ready within ${WAIT_SECONDS}s ($(logref "$logfile"))"
		sleep 0.2
	done
}

# --- build, and MySQL --------------------------------------------------------
log "building seckill into $scratch/bin"
version=$(git -C "$repo" describe --tags --always --dirty 2>/dev/null || echo dev)
(cd "$repo" && go build -ldflags "-X main.version=$version" -o "$bin" ./cmd/seckill) ||
	die "go build ./cmd/seckill failed"

# migrate answers whether MySQL is reachable, and creates and migrates the
# database once, before the instances start.
if ! out=$("$bin" migrate -mysql-dsn "$mysql_dsn" 2>&1); then
	die "MySQL is not reachable: ${out##*$'\n'} (scripts/services.sh starts it)"
fi

# --- Redis Cluster -----------------------------------------------------------
redis_addrs=()
for p in "${redis_ports[@]}"; do
	mkdir -p "$scratch/redis/$p"
	${detach[@]+"${detach[@]}"} redis-server --port "$p" --bind "$HOST" --dir "$scratch/redis/$p" \
		--cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 5000 \
		--appendonly yes --save "" --daemonize no --logfile "$logs/redis-$p.log" \
		>/dev/null 2>&1 &
	redis_pids+=("$!")
	redis_addrs+=("$HOST:$p")
done
redis_ping() { [ "$(redis-cli -h "$HOST" -p "$1" ping 2>/dev/null)" = PONG ]; }
for i in "${!redis_ports[@]}"; do
	p=${redis_ports[$i]}
	wait_until "redis-server $HOST:$p" "${redis_pids[$i]}" "$logs/redis-$p.log" redis_ping "$p"
done
log "creating the Redis Cluster on ${redis_addrs[*]}"
redis-cli --cluster create "${redis_addrs[@]}" --cluster-replicas 1 --cluster-yes \
	>"$logs/cluster-create.log" 2>&1 ||
	die "redis-cli --cluster create failed: $(tail -n 1 "$logs/cluster-create.log") ($(logref "$logs/cluster-create.log"))"
cluster_ok() {
	redis-cli -h "$HOST" -p "$1" cluster info 2>/dev/null | grep -q '^cluster_state:ok'
}
for i in "${!redis_ports[@]}"; do
	p=${redis_ports[$i]}
	wait_until "Redis Cluster state on $HOST:$p" "${redis_pids[$i]}" "$logs/redis-$p.log" cluster_ok "$p"
done

# --- broker ------------------------------------------------------------------
${detach[@]+"${detach[@]}"} "$bin" broker -broker-addr "$HOST:$broker_port" -kafka-data-dir "$scratch/kafka" \
	>"$logs/broker.log" 2>&1 &
broker_pid=$!
wait_until "seckill broker" "$broker_pid" "$logs/broker.log" tcp_open "$HOST" "$broker_port"

# --- instances ---------------------------------------------------------------
if [ -n "${SECKILL_ADMIN_TOKEN:-}" ]; then
	admin_token=$SECKILL_ADMIN_TOKEN
else
	admin_token=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
fi
redis_list=$(IFS=,; echo "${redis_addrs[*]}")
urls=()
for p in "${http_ports[@]}"; do
	SECKILL_HTTP_ADDR=$HOST:$p SECKILL_REDIS_ADDR=$redis_list SECKILL_KAFKA_BROKERS=$HOST:$broker_port \
		SECKILL_MYSQL_DSN=$mysql_dsn SECKILL_ADMIN_TOKEN=$admin_token \
		${detach[@]+"${detach[@]}"} "$bin" >"$logs/seckill-$p.log" 2>&1 &
	instance_pids+=("$!")
	urls+=("http://$HOST:$p")
done

# ready PORT: GET /readyz answers 200.
ready() {
	local line
	line=$( (exec 3<>"/dev/tcp/$HOST/$1" &&
		printf 'GET /readyz HTTP/1.0\r\nHost: %s:%s\r\n\r\n' "$HOST" "$1" >&3 &&
		IFS= read -r -t 5 line <&3 && printf '%s' "$line") 2>/dev/null) || return 1
	[[ $line == "HTTP/1."?" 200"* ]]
}
for i in "${!http_ports[@]}"; do
	p=${http_ports[$i]}
	wait_until "seckill on $HOST:$p" "${instance_pids[$i]}" "$logs/seckill-$p.log" ready "$p"
done

url_list=$(IFS=,; echo "${urls[*]}")
cat <<EOF

seckill cluster ready: 3 instances, Redis Cluster of 3 masters and 3 replicas, seckill broker
  urls         ${urls[*]}
  admin token  $admin_token
  redis        $redis_list
  broker       $HOST:$broker_port
  mysql        $mysql_dsn
  logs         $logs

Try it in another terminal: an activity of 3 slots made through the first
instance, joined through the other two:
  export TOKEN=$admin_token
  ID=\$(curl -s -X POST ${urls[0]}/api/v1/admin/activities -H "Authorization: Bearer \$TOKEN" \\
    -d '{"name":"Cluster draw","stock":3,"perUserLimit":1,"beginAt":"'\$(date -u +%FT%TZ)'","endAt":"'\$(date -u -d '+1 hour' +%FT%TZ)'"}' \\
    | sed -E 's/^\{"id":([0-9]+).*/\1/'); echo "activity \$ID"
  curl -s -X POST ${urls[0]}/api/v1/admin/activities/\$ID/approve -H "Authorization: Bearer \$TOKEN"; echo
  curl -s -X POST ${urls[0]}/api/v1/admin/activities/\$ID/open -H "Authorization: Bearer \$TOKEN"; echo
  curl -s -X POST ${urls[1]}/api/v1/activities/\$ID/join -d '{"userId":"alice"}'; echo
  curl -s -X POST ${urls[2]}/api/v1/activities/\$ID/join -d '{"userId":"bob"}'; echo
Load over all three: SECKILL_URL=$url_list SECKILL_ADMIN_TOKEN=\$TOKEN make loadtest-smoke

Ctrl-C stops everything.
EOF

# Run until a signal, or until a process ends by itself.
while :; do
	for i in "${!instance_pids[@]}"; do
		alive "${instance_pids[$i]}" "seckill on $HOST:${http_ports[$i]}" "$logs/seckill-${http_ports[$i]}.log"
	done
	alive "$broker_pid" "seckill broker" "$logs/broker.log"
	for i in "${!redis_pids[@]}"; do
		alive "${redis_pids[$i]}" "redis-server $HOST:${redis_ports[$i]}" "$logs/redis-${redis_ports[$i]}.log"
	done
	sleep 1 &
	wait $! || true
done

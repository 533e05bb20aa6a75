# shellcheck shell=bash
# shellcheck disable=SC2034  # variables used by the scripts that source this
# Shared by test/bin/demo, test/bin/run-tests and test/bin/stop: Debian
# packages, build + install, and a throwaway PostgreSQL 15 cluster under the
# project folder. Source it; do not run it.
#
# Environment overrides:
#   BILLRECON_PGPORT    cluster port (default 55432; Unix socket only, no TCP)
#   BILLRECON_RUN_DIR   where the cluster, its socket and the logs live
#                       (default <project>/.run, or /tmp/billrecon-run-<hash>
#                       when the cluster's owner cannot write there)
#   BILLRECON_KEEP=1    leave the cluster (and the demo's mocks) running
#   BILLRECON_PRELOAD   shared_preload_libraries (default 'billrecon,pg_cron')
#   BILLRECON_PYTHON    Python with Debian's psycopg2 (default /usr/bin/python3)

BR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
BR_PG_BIN=/usr/lib/postgresql/15/bin
BR_PG_CONFIG="$BR_PG_BIN/pg_config"
BR_PORT="${BILLRECON_PGPORT:-55432}"
BR_PYTHON="${BILLRECON_PYTHON:-/usr/bin/python3}"
BR_PRELOAD="${BILLRECON_PRELOAD:-billrecon,pg_cron}"

BR_PACKAGES=(
	postgresql-15 postgresql-server-dev-15 postgresql-15-cron postgresql-15-pgtap
	libtap-parser-sourcehandler-pgtap-perl rapidjson-dev libcurl4-openssl-dev libssl-dev
	googletest libgtest-dev cmake g++ make python3 python3-psycopg2 curl chromium clang libclang-rt-14-dev
)

# Set by br_prepare_run_dir.
BR_RUN_DIR=""
BR_DATA=""
BR_SOCK=""
BR_LOG=""
BR_PGUSER=""
BR_STARTED_CLUSTER=0

br_step() { printf '\n==> %s\n' "$*"; }
br_note() { printf '    %s\n' "$*"; }
br_warn() { printf 'WARNING: %s\n' "$*" >&2; }
br_die() {
	printf 'ERROR: %s\n' "$*" >&2
	exit 1
}

# Print the last lines of a log file, framed (stdout, to keep CI logs in order).
br_tail() {
	local file="$1" lines="${2:-40}"
	[[ -f "$file" ]] || return 0
	printf -- '---- last %s lines of %s ----\n' "$lines" "$file"
	tail -n "$lines" "$file" || true
	printf -- '---- end of %s ----\n' "$file"
}

br_is_root() { [[ "$(id -u)" -eq 0 ]]; }

# Run a command as root: directly when we are root, else through sudo.
br_as_root() {
	if br_is_root; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		br_die "need root for: $* (run as root, or install sudo)"
	fi
}

# ---------------------------------------------------------------- packages

br_missing_packages() {
	local pkg status
	for pkg in "${BR_PACKAGES[@]}"; do
		status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)"
		[[ "$status" == ii* ]] || printf '%s\n' "$pkg"
	done
}

# Install whatever of BR_PACKAGES is missing. apt-get update only then.
# BILLRECON_APT_DRY_RUN=1 only simulates (apt-get -s), for testing this script.
br_install_packages() {
	br_step "checking Debian packages"
	local missing=() log rc=0 sim=()
	mapfile -t missing < <(br_missing_packages)
	if [[ ${#missing[@]} -eq 0 ]]; then
		br_note "all ${#BR_PACKAGES[@]} packages installed"
		return 0
	fi
	[[ "${BILLRECON_APT_DRY_RUN:-0}" == 1 ]] && sim=(-s)
	br_note "installing: ${missing[*]}"
	log="$(mktemp -t billrecon-apt.XXXXXX)"
	{
		br_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
			br_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
				--no-install-recommends "${sim[@]}" "${missing[@]}"
	} >"$log" 2>&1 </dev/null || rc=$?
	if [[ $rc -ne 0 ]]; then
		br_tail "$log" 40
		br_die "package installation failed (log: $log)"
	fi
	[[ ${#sim[@]} -gt 0 ]] && grep -E '^Inst ' "$log" | sed 's/^/    would /'
	rm -f "$log"
}

# ---------------------------------------------------------------- build

# br_build LOGDIR [extra make args...]: make, then make install (as root).
# On failure BR_BUILD_LOG names the log to look at.
BR_BUILD_LOG=""
br_build() {
	local logdir="$1" rc=0
	shift
	local args=(PG_CONFIG="$BR_PG_CONFIG" "$@")
	br_step "building (make -j2${*:+ $*})"
	BR_BUILD_LOG="$logdir/build.log"
	(cd "$BR_ROOT" && make -j2 "${args[@]}") >"$logdir/build.log" 2>&1 </dev/null || rc=$?
	if [[ $rc -ne 0 ]]; then
		br_tail "$logdir/build.log" 60
		br_warn "build failed (log: $logdir/build.log)"
		return 1
	fi
	br_step "installing (make install)"
	BR_BUILD_LOG="$logdir/install.log"
	(cd "$BR_ROOT" && br_as_root make install "${args[@]}") >"$logdir/install.log" 2>&1 || rc=$?
	if [[ $rc -ne 0 ]]; then
		br_tail "$logdir/install.log" 40
		br_warn "make install failed (log: $logdir/install.log)"
		return 1
	fi
	br_note "installed into $("$BR_PG_CONFIG" --pkglibdir) and $("$BR_PG_CONFIG" --sharedir)/extension"
}

# ---------------------------------------------------------------- cluster

# Run a command as the cluster's owner: the Debian postgres user when we are
# root (initdb and postgres refuse root), else ourselves. From / so that a
# working directory the owner cannot read does not matter.
br_as_owner() {
	if br_is_root; then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

br_hash() { printf '%s' "$1" | sha1sum | cut -c1-10; }

# Can the cluster owner create files in DIR? Creates DIR (owned by the owner).
br_try_dir() {
	local dir="$1"
	if br_is_root; then
		mkdir -p "$dir" 2>/dev/null || return 1
		chown postgres:postgres "$dir" 2>/dev/null || return 1
		runuser -u postgres -- test -w "$dir" -a -x "$dir" 2>/dev/null
	else
		mkdir -p "$dir" 2>/dev/null && [[ -w "$dir" && -x "$dir" ]]
	fi
}

# Choose the run directory, data directory, socket directory and log file.
br_prepare_run_dir() {
	if br_is_root; then
		getent passwd postgres >/dev/null || br_die "no 'postgres' user (is postgresql-15 installed?)"
		BR_PGUSER=postgres
	else
		BR_PGUSER="$(id -un)"
	fi
	local suffix="" fallback
	br_is_root || suffix="-$(id -un)"
	fallback="/tmp/billrecon-run-$(br_hash "$BR_ROOT")$suffix"
	if [[ -n "${BILLRECON_RUN_DIR:-}" ]]; then
		BR_RUN_DIR="$BILLRECON_RUN_DIR"
		br_try_dir "$BR_RUN_DIR" || br_die "BILLRECON_RUN_DIR=$BR_RUN_DIR is not writable by user $BR_PGUSER"
	elif br_try_dir "$BR_ROOT/.run"; then
		BR_RUN_DIR="$BR_ROOT/.run"
	elif br_try_dir "$fallback"; then
		BR_RUN_DIR="$fallback"
	else
		br_die "user $BR_PGUSER can write neither $BR_ROOT/.run nor $fallback; set BILLRECON_RUN_DIR"
	fi
	BR_RUN_DIR="$(cd "$BR_RUN_DIR" && pwd -P)"
	BR_DATA="$BR_RUN_DIR/data"
	BR_LOG="$BR_RUN_DIR/server.log"
	BR_SOCK="$BR_RUN_DIR/sock"
	# A Unix socket path must fit in 107 bytes.
	if [[ ${#BR_SOCK} -gt 80 ]]; then
		BR_SOCK="/tmp/billrecon-sock-$(br_hash "$BR_RUN_DIR")$suffix"
	fi
	export PGHOST="$BR_SOCK" PGPORT="$BR_PORT" PGUSER="$BR_PGUSER"
	unset PGDATABASE PGPASSWORD PGSERVICE PGHOSTADDR PGOPTIONS
}

br_pg_ctl() { br_as_owner "$BR_PG_BIN/pg_ctl" -D "$BR_DATA" "$@"; }

# Is the postmaster of BR_DATA alive? (A zombie, left where nothing reaps
# killed processes, is not: pg_ctl would still count it.)
br_postmaster_alive() {
	local pid state
	pid="$(head -n 1 "$BR_DATA/postmaster.pid" 2>/dev/null || true)"
	[[ "$pid" =~ ^[0-9]+$ && -r "/proc/$pid/stat" ]] || return 1
	state="$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$pid/stat" 2>/dev/null || true)"
	[[ -n "$state" && "$state" != Z && "$state" != X ]]
}

# Stop a cluster left by an earlier run (kept, or interrupted) and remove it.
br_cluster_clean() {
	if br_postmaster_alive; then
		br_note "stopping a cluster left running by an earlier run"
		br_pg_ctl stop -m fast -w -t 60 >/dev/null 2>&1 ||
			br_pg_ctl stop -m immediate -w -t 30 >/dev/null 2>&1 ||
			br_die "cannot stop the old cluster in $BR_DATA"
	fi
	br_as_owner rm -rf "$BR_DATA"
	if [[ -d "$BR_SOCK" ]]; then
		br_as_owner rm -f "$BR_SOCK/.s.PGSQL.$BR_PORT" "$BR_SOCK/.s.PGSQL.$BR_PORT.lock"
	fi
}

# initdb + start. Settings for the run; test GUCs are the tests' business,
# apart from test/regress.conf (the pg_regress temp-config) when present.
br_cluster_start() {
	br_step "starting a throwaway cluster (port $BR_PORT, socket $BR_SOCK)"
	br_cluster_clean
	if ! br_try_dir "$BR_SOCK"; then
		br_die "cannot create the socket directory $BR_SOCK"
	fi
	br_as_owner "$BR_PG_BIN/initdb" -D "$BR_DATA" -U "$BR_PGUSER" --auth=trust \
		--encoding=UTF8 --no-locale --no-sync >"$BR_RUN_DIR/initdb.log" 2>&1 ||
		{
			br_tail "$BR_RUN_DIR/initdb.log"
			br_die "initdb failed"
		}
	local conf
	conf="$(
		if [[ -f "$BR_ROOT/test/regress.conf" ]]; then
			printf '\n# ---- from test/regress.conf\n'
			cat "$BR_ROOT/test/regress.conf"
		fi
		cat <<-EOF

			# ---- billrecon throwaway cluster (test/bin/lib.sh)
			port = $BR_PORT
			listen_addresses = ''
			unix_socket_directories = '$BR_SOCK'
			shared_preload_libraries = '$BR_PRELOAD'
			cron.database_name = 'postgres'
			fsync = off
			synchronous_commit = off
			full_page_writes = off
			shared_buffers = 64MB
			max_connections = 40
			max_worker_processes = 16
			log_line_prefix = '%m [%p] %q%a@%d '
			log_min_messages = warning
			log_timezone = 'UTC'
			timezone = 'UTC'
		EOF
	)"
	printf '%s\n' "$conf" | br_as_owner tee -a "$BR_DATA/postgresql.conf" >/dev/null
	# The server log is recreated for every run.
	br_as_owner rm -f "$BR_LOG"
	if ! br_pg_ctl start -w -t 60 -l "$BR_LOG" >"$BR_RUN_DIR/pg_ctl.log" 2>&1; then
		br_tail "$BR_LOG" 30
		br_die "the cluster did not start (server log: $BR_LOG)"
	fi
	BR_STARTED_CLUSTER=1
	br_note "server log: $BR_LOG"
}

br_cluster_stop() {
	[[ -n "$BR_DATA" ]] && br_postmaster_alive || return 0
	br_step "stopping the cluster"
	br_pg_ctl stop -m fast -w -t 60 >/dev/null 2>&1 ||
		br_pg_ctl stop -m immediate -w -t 30 >/dev/null 2>&1 ||
		br_warn "could not stop the cluster in $BR_DATA"
	BR_STARTED_CLUSTER=0
}

# psql against the throwaway cluster, as the invoking user.
br_psql() {
	"$BR_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$BR_SOCK" -p "$BR_PORT" -U "$BR_PGUSER" "$@"
}

# How to reach the kept cluster.
br_print_connect() {
	local db="${1:-postgres}"
	printf '\nThe cluster is still running. Connect with:\n'
	printf '    psql -h %q -p %s -U %s %s\n' "$BR_SOCK" "$BR_PORT" "$BR_PGUSER" "$db"
	printf 'Stop it (and the demo mocks) with:\n'
	printf '    bash %q\n' "$BR_ROOT/test/bin/stop"
}

br_keep_requested() { [[ "${BILLRECON_KEEP:-0}" =~ ^(1|yes|true|on)$ ]]; }

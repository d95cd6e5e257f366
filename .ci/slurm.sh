#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for the SLURM tests and CI.
#
#   bash .ci/slurm.sh start    install Debian's slurmctld/slurmd/munge if missing, write
#                              /etc/slurm/slurm.conf, start munged, slurmctld and
#                              `slurmd -N localhost`, wait until the node is idle (idempotent:
#                              a running cluster with our configuration is left as it is)
#   bash .ci/slurm.sh stop     stop the three daemons (only those started from our pid files)
#   bash .ci/slurm.sh status   exit 0 and show sinfo when the cluster answers, 1 otherwise
#
# Needs root (it installs packages and writes /etc/slurm). Design, measured on a 2-core
# Debian 12 container (no systemd; SLURM needs no cgroups here):
# - No accounting database: AccountingStorageType=accounting_storage/none. Job states are
#   read with squeue, which shows finished jobs for MinJobAge seconds, so MinJobAge=3600
#   (the SLURM executor uses squeue when MinJobAge >= 3 x its first status-check delay).
#   Run snakemake with `--slurm-status-command squeue` (tests/test_slurm.py does): with
#   accounting off, sacct fails and the plugin's default sacct check waits forever.
# - Memory is enforced without cgroups: jobacct_gather/linux samples every task's RSS
#   every second (JobAcctGatherFrequency=task=1) and OverMemoryKill kills a step whose
#   RSS exceeds its --mem. The job ends FAILED (SLURM 22.05), its log saying
#   "StepId=N.0 exceeded memory limit (... > ...), being killed".
# - RealMemory is set (the executor always passes --mem) to the machine's memory less
#   1 GiB; CPUs come from `slurmd -C`.
set -euo pipefail

CONF_DIR=/etc/slurm
CONF="$CONF_DIR/slurm.conf"
STATE_DIR=/var/lib/slurm-ci        # slurmctld state, slurmd spool, pid files
LOG_DIR=/var/log/slurm-ci          # slurmctld.log, slurmd.log (munged: /var/log/munge/)
MARK="# written by .ci/slurm.sh"   # first line of our slurm.conf
WAIT_S=${SLURM_CI_WAIT_S:-30}      # how long to wait for the node to become idle

say() { printf '[slurm.sh] %s\n' "$*" >&2; }

have_binaries() {
    command -v sinfo >/dev/null && command -v slurmctld >/dev/null \
        && command -v slurmd >/dev/null && command -v munged >/dev/null
}

install_packages() {
    if have_binaries; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        say "SLURM is not installed and we are not root: cannot install it"
        return 1
    fi
    say "installing slurmctld slurmd slurm-client munge (apt-get)"
    local t0=$SECONDS
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge \
        >"${TMPDIR:-/tmp}/slurm-ci-apt.log" 2>&1 \
        || { tail -20 "${TMPDIR:-/tmp}/slurm-ci-apt.log" >&2; return 1; }
    say "installed in $((SECONDS - t0)) s"
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_munge() {
    if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
        say "munged already running"
        return 0
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    if [ ! -s /etc/munge/munge.key ]; then
        say "creating /etc/munge/munge.key"
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=128 status=none
    fi
    chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge /etc/munge/munge.key
    chmod 0700 /etc/munge
    chmod 0400 /etc/munge/munge.key
    chmod 0755 /run/munge
    say "starting munged"
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do
        munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    say "munged did not come up; see /var/log/munge/munged.log"
    return 1
}

write_conf() {
    # Hardware as slurmd sees it (CPUs, sockets, cores, threads), named localhost.
    local hw mem_mb real_mb
    hw=$(slurmd -C | head -1 | sed -e 's/^NodeName=[^ ]* //' -e 's/ RealMemory=[0-9]*//')
    mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
    real_mb=$((mem_mb > 2048 ? mem_mb - 1024 : mem_mb))
    mkdir -p "$CONF_DIR"
    local tmp
    tmp=$(mktemp)
    cat >"$tmp" <<EOF
$MARK; CI/test cluster only, not for production.
ClusterName=ci
SlurmctldHost=localhost
AuthType=auth/munge
CryptoType=crypto/munge
# Daemons and jobs as root: this is a throw-away container cluster.
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/d
SlurmctldPidFile=$STATE_DIR/slurmctld.pid
SlurmdPidFile=$STATE_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups: track processes through /proc, no task confinement.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# Schedule cores and memory; a job's --mem is reserved on the node.
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Memory enforcement: sample each task's RSS every second, kill it when over --mem.
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
# No slurmdbd: squeue is the status source, so finished jobs stay visible for 1 h.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=3600
# Bring the node back after a restart; short kill grace for tests.
ReturnToService=2
KillWait=5
InactiveLimit=0
SlurmdParameters=config_overrides
NodeName=localhost $hw RealMemory=$real_mb State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    if [ -f "$CONF" ] && cmp -s "$tmp" "$CONF"; then
        rm -f "$tmp"
        return 1 # unchanged
    fi
    if [ -f "$CONF" ] && ! head -1 "$CONF" | grep -q "^$MARK"; then
        say "keeping a copy of the existing $CONF as $CONF.bak"
        cp "$CONF" "$CONF.bak"
    fi
    mv "$tmp" "$CONF"
    chmod 0644 "$CONF"
    say "wrote $CONF (NodeName=localhost $hw RealMemory=$real_mb)"
    return 0
}

node_state() { timeout -k 2 10 sinfo -h -n localhost -o %t 2>/dev/null | head -1; }

stop_daemons() {
    local name pidf pid
    for name in slurmd slurmctld; do
        pidf="$STATE_DIR/$name.pid"
        if pid_alive "$pidf"; then
            pid=$(cat "$pidf")
            say "stopping $name (pid $pid)"
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$pidf"
    done
}

stop_munge() {
    local pidf=/run/munge/munged.pid pid
    if pid_alive "$pidf"; then
        pid=$(cat "$pidf")
        say "stopping munged (pid $pid)"
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
}

cmd_start() {
    local t0=$SECONDS
    install_packages
    mkdir -p "$STATE_DIR/ctld" "$STATE_DIR/d" "$LOG_DIR"
    local changed=0
    write_conf && changed=1
    if [ "$changed" = 0 ] && pid_alive "$STATE_DIR/slurmctld.pid" \
        && pid_alive "$STATE_DIR/slurmd.pid"; then
        case "$(node_state || true)" in
            idle* | mix* | alloc* | comp*)
                say "cluster already up: $(node_state || true)"
                sinfo >&2
                return 0
                ;;
        esac
    fi
    # Daemons of another configuration (or dead ones): start afresh.
    stop_daemons
    start_munge
    say "starting slurmctld"
    # -c: clear saved jobs; -i: ignore unreadable state files.
    slurmctld -c -i
    say "starting slurmd -N localhost"
    slurmd -N localhost
    local state=""
    for _ in $(seq $((WAIT_S * 5))); do
        state=$(node_state || true)
        case "$state" in
            idle* | mix* | alloc*) break ;;
            down* | drain* | fail*) scontrol update nodename=localhost state=resume \
                2>/dev/null || true ;;
        esac
        sleep 0.2
    done
    case "$state" in
        idle* | mix* | alloc*) ;;
        *)
            say "node not idle after ${WAIT_S} s (state '$state'); log tails:"
            tail -5 "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" >&2 || true
            return 1
            ;;
    esac
    say "cluster up in $((SECONDS - t0)) s: node localhost $state, partition debug"
    sinfo >&2
}

cmd_stop() {
    # Cancel leftover jobs first so slurmd does not leave orphans running.
    if pid_alive "$STATE_DIR/slurmctld.pid"; then
        timeout -k 2 10 scancel --full --user="$(id -un)" 2>/dev/null || true
    fi
    stop_daemons
    stop_munge
    say "stopped"
}

cmd_status() {
    if ! have_binaries; then
        say "SLURM is not installed"
        return 1
    fi
    if timeout -k 2 10 scontrol ping >/dev/null 2>&1 && [ -n "$(node_state)" ]; then
        timeout -k 2 10 sinfo
        return 0
    fi
    say "cluster not running"
    return 1
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 start|stop|status" >&2
        exit 2
        ;;
esac

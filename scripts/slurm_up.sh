#!/usr/bin/env bash
# A real one-node Slurm on this machine, for the slurm-marked tests (and by hand).
#
#   scripts/slurm_up.sh      install (when missing), configure, start, wait until idle
#   scripts/slurm_down.sh    stop exactly the daemons this script started
#
# Needs root on Debian/Ubuntu (apt-get). Installs `slurmctld slurmd slurm-client munge` when
# `slurmctld` is missing. Writes its slurm.conf and state under $WORKBENCH_SLURM_STATE
# (default /var/tmp/workbench-slurm); clients find it through SLURM_CONF (printed at the end,
# also written to $STATE/env) or /etc/slurm/slurm.conf, which is linked to it when absent.
# The node: this host's CPUs and memory (`slurmd -C`), no cgroup plugins
# (proctrack/linuxproc, task/none), no accounting (no slurmdbd: `sacct` does not work), and
# preemption by partition priority with PreemptMode=REQUEUE: a job of partition `high`
# preempts (requeues) jobs of partition `low`; `debug`, the default, is never preempted (so
# a preemption test cannot disturb the other tests' jobs). A Slurm that already answers
# `sinfo` is used as it is: nothing is started, and slurm_down stops nothing; one that an
# earlier slurm_up started gets this script's slurm.conf (`scontrol reconfigure`) when its
# own is older.
# Exit status: 0 when the node is idle; otherwise non-zero with one line on stderr.
set -euo pipefail

STATE="${WORKBENCH_SLURM_STATE:-/var/tmp/workbench-slurm}"
CONF="$STATE/slurm.conf"
STARTED="$STATE/started"
WAIT_S="${WORKBENCH_SLURM_WAIT_S:-90}"

fail() { echo "slurm_up: $*" >&2; exit 1; }
t0=$(date +%s.%N)
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(date +%s.%N)"; }

mkdir -p "$STATE"

# The slurm.conf for this host, written to $1.
write_conf() {
    host=$(hostname -s)
    node_line=$(slurmd -C 2>/dev/null | head -n 1 | sed -e 's/^NodeName=[^ ]* //')
    [ -n "$node_line" ] || node_line="CPUs=$(nproc)"
    mkdir -p "$STATE/ctld" "$STATE/d" "$STATE/log"
    cat > "$1" <<EOF
# Written by workbench's scripts/slurm_up.sh: a one-node test cluster on $host.
ClusterName=workbench
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
ReturnToService=2
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
MinJobAge=300
KillWait=5
InactiveLimit=0
NodeName=$host NodeAddr=127.0.0.1 $node_line State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=OFF
PartitionName=low Nodes=$host MaxTime=INFINITE State=UP PriorityTier=1
PartitionName=high Nodes=$host MaxTime=INFINITE State=UP PriorityTier=10
EOF
}

if [ -s "$STARTED" ] && [ -f "$CONF" ] && SLURM_CONF="$CONF" timeout 10 sinfo -h >/dev/null 2>&1; then
    echo "slurm_up: already up (started by an earlier slurm_up; $STARTED)"
    new="$CONF.new.$$"  # this call's own: two test workers may run slurm_up at once
    write_conf "$new"
    if cmp -s "$new" "$CONF"; then
        rm -f "$new"
    else  # an older slurm_up's configuration (e.g. without partition `low`): this one's
        mv -f "$new" "$CONF"
        SLURM_CONF="$CONF" scontrol reconfigure || fail "scontrol reconfigure refused the new $CONF"
        echo "slurm_up: reconfigured with this script's $CONF"
    fi
    echo "export SLURM_CONF=$CONF"
    exit 0
fi
if [ ! -f "$CONF" ] && command -v sinfo >/dev/null && timeout 10 sinfo -h >/dev/null 2>&1; then
    echo "slurm_up: a Slurm is already running here; using it, starting nothing"
    : > "$STARTED"
    exit 0
fi

# 1. Packages.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
        || ! command -v sbatch >/dev/null; then
    [ "$(id -u)" = 0 ] || fail "Slurm is not installed and this is not root: cannot apt-get install it"
    command -v apt-get >/dev/null || fail "Slurm is not installed and there is no apt-get here"
    ti=$(date +%s.%N)
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || fail "apt-get update failed"
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null \
        || fail "apt-get install slurmctld slurmd slurm-client munge failed"
    echo "slurm_up: installed slurmctld slurmd slurm-client munge in $(elapsed "$ti") s"
fi
[ "$(id -u)" = 0 ] || fail "starting slurmd needs root"

ts=$(date +%s.%N)
: > "$STARTED.new"

# 2. munge: reuse a working munged, else start one as the munge user.
if ! (munge -n 2>/dev/null | unmunge >/dev/null 2>&1); then
    if [ ! -s /etc/munge/munge.key ]; then
        if command -v mungekey >/dev/null; then mungekey --create --keyfile=/etc/munge/munge.key >/dev/null
        else dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none; fi
        chown munge:munge /etc/munge/munge.key
        chmod 400 /etc/munge/munge.key
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    runuser -u munge -- /usr/sbin/munged || fail "munged did not start (see /var/log/munge/munged.log)"
    for _ in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
    [ -s /run/munge/munged.pid ] || fail "munged wrote no pid file"
    echo "munged $(cat /run/munge/munged.pid)" >> "$STARTED.new"
fi

# 3. slurm.conf for this host.
write_conf "$CONF"
echo "export SLURM_CONF=$CONF" > "$STATE/env"
if [ ! -e /etc/slurm/slurm.conf ]; then
    mkdir -p /etc/slurm
    ln -s "$CONF" /etc/slurm/slurm.conf
    echo "link /etc/slurm/slurm.conf" >> "$STARTED.new"
fi
export SLURM_CONF="$CONF"

# 4. Daemons (each daemonises and writes its pid file).
rm -f "$STATE/slurmctld.pid" "$STATE/slurmd.pid"
slurmctld -f "$CONF" || fail "slurmctld did not start (see $STATE/log/slurmctld.log)"
for _ in $(seq 100); do [ -s "$STATE/slurmctld.pid" ] && break; sleep 0.1; done
[ -s "$STATE/slurmctld.pid" ] || fail "slurmctld wrote no pid file (see $STATE/log/slurmctld.log)"
echo "slurmctld $(cat "$STATE/slurmctld.pid")" >> "$STARTED.new"
mv "$STARTED.new" "$STARTED"   # from here on slurm_down can stop what is running
slurmd -f "$CONF" || fail "slurmd did not start (see $STATE/log/slurmd.log)"
for _ in $(seq 100); do [ -s "$STATE/slurmd.pid" ] && break; sleep 0.1; done
[ -s "$STATE/slurmd.pid" ] || fail "slurmd wrote no pid file (see $STATE/log/slurmd.log)"
echo "slurmd $(cat "$STATE/slurmd.pid")" >> "$STARTED"

# 5. Wait until the node is idle.
deadline=$(( $(date +%s) + WAIT_S ))
state=""
while [ "$(date +%s)" -lt "$deadline" ]; do
    state=$(sinfo -h -n "$host" -o %T 2>/dev/null | head -n 1 || true)
    case "$state" in
        idle) break ;;
        down*|drain*|unknown*) scontrol update NodeName="$host" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
done
[ "$state" = idle ] || fail "node $host is '${state:-not listed}' after ${WAIT_S} s (see $STATE/log/)"
echo "slurm_up: node $host idle, started in $(elapsed "$ts") s ($(elapsed "$t0") s in all)"
echo "export SLURM_CONF=$CONF"

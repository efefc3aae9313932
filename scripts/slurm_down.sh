#!/usr/bin/env bash
# Stop exactly what scripts/slurm_up.sh started (the pids it recorded in $STATE/started),
# and remove the /etc/slurm/slurm.conf link it made. A pid whose process is no longer the
# daemon it was (reused) is left alone. Packages stay installed; state stays in $STATE.
set -uo pipefail

STATE="${WORKBENCH_SLURM_STATE:-/var/tmp/workbench-slurm}"
STARTED="$STATE/started"
[ -f "$STARTED" ] || { echo "slurm_down: nothing recorded in $STARTED"; exit 0; }

# Stop in reverse order: slurmd, slurmctld, munged.
tac "$STARTED" | while read -r what arg; do
    case "$what" in
        link)
            if [ -L "$arg" ]; then rm -f "$arg"; fi ;;
        munged|slurmctld|slurmd)
            pid="$arg"
            comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
            if [ "$comm" != "$what" ]; then
                echo "slurm_down: $what ($pid) is not running"
                continue
            fi
            kill -TERM "$pid"
            for _ in $(seq 100); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
            if [ -e "/proc/$pid" ]; then kill -KILL "$pid"; fi
            echo "slurm_down: stopped $what ($pid)" ;;
    esac
done
rm -f "$STARTED"

#!/usr/bin/env bash
# Stop the one-node Slurm cluster `make slurm-up` started (slurmd, slurmctld, munged).
set -uo pipefail
sudo=""
[[ $(id -u) == 0 ]] || sudo="sudo"
for daemon in slurmd slurmctld munged; do
    $sudo pkill -x "$daemon" && echo "slurm-down: stopped $daemon"
done
for _ in $(seq 20); do
    pgrep -x "slurmd|slurmctld|munged" >/dev/null || exit 0
    sleep 0.5
done
echo "slurm-down: daemons still running: $(pgrep -a -x 'slurmd|slurmctld|munged')" >&2
exit 1

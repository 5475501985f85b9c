#!/usr/bin/env bash
# Stop the one-node Slurm cluster `make slurm-up` started (slurmd, slurmctld, slurmdbd,
# MariaDB, munged).
set -uo pipefail
sudo=""
[[ $(id -u) == 0 ]] || sudo="sudo"
for daemon in slurmd slurmctld slurmdbd munged; do
    $sudo pkill -x "$daemon" && echo "slurm-down: stopped $daemon"
done
$sudo mysqladmin shutdown 2>/dev/null && echo "slurm-down: stopped mariadb"
daemons="slurmd|slurmctld|slurmdbd|munged|mariadbd"
for _ in $(seq 20); do
    pgrep -x "$daemons" >/dev/null || exit 0
    sleep 0.5
done
echo "slurm-down: daemons still running: $(pgrep -a -x "$daemons")" >&2
exit 1

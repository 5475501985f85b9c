#!/usr/bin/env bash
# A single-node Slurm cluster on this machine (munge, slurmdbd, slurmctld, slurmd on
# localhost) for cloud=slurm: installs Debian's slurm-wlm, slurmdbd, munge and MariaDB if
# needed (root, apt), writes /etc/slurm/slurm.conf for this host (one partition "debug",
# the machine's cores) and slurmdbd.conf, starts the daemons and waits until the node is
# idle. Accounting (slurmdbd on a local MariaDB) is what lets submitit see a job's final
# state through sacct: without it a cancelled job (scancel) looks unfinished forever.
# `make slurm-down` stops them.
# Exit 0: sinfo shows the node idle. SLURM_UP_TIMEOUT (s) bounds the wait (default 120).
set -euo pipefail
timeout=${SLURM_UP_TIMEOUT:-120}
host=$(hostname)
cpus=$(nproc)
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 8 / 10 ))
sudo=""
[[ $(id -u) == 0 ]] || sudo="sudo"

if ! command -v slurmctld >/dev/null || ! command -v slurmdbd >/dev/null || \
    ! command -v munged >/dev/null || ! command -v mariadbd >/dev/null; then
    echo "slurm-up: installing slurm-wlm, slurmdbd, munge and mariadb-server (apt-get)"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        slurm-wlm slurmdbd munge mariadb-server >/dev/null
fi

$sudo mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge \
    /run/mysqld
$sudo chown mysql:mysql /run/mysqld
$sudo tee /etc/slurm/slurm.conf >/dev/null <<CONF
# written by lret_runner's scripts/slurm-up.sh: a one-node cluster on $host
ClusterName=lret
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
MpiDefault=none
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

$sudo chown -R munge:munge /run/munge /etc/munge 2>/dev/null || true
if ! pgrep -x munged >/dev/null; then
    [[ -f /etc/munge/munge.key ]] || $sudo mungekey --create 2>/dev/null || \
        $sudo /usr/sbin/create-munge-key -f
    $sudo chown munge:munge /etc/munge/munge.key && $sudo chmod 400 /etc/munge/munge.key
    if [[ -n $sudo ]]; then sudo -u munge /usr/sbin/munged; else runuser -u munge -- /usr/sbin/munged; fi
fi
# accounting: MariaDB on its local socket, slurmdbd on it (a database user of its own)
if ! pgrep -x mariadbd >/dev/null; then
    $sudo mysqld_safe --skip-networking >/dev/null 2>&1 &
    for _ in $(seq 60); do $sudo mysqladmin ping >/dev/null 2>&1 && break; sleep 0.5; done
fi
$sudo mysql -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'lret-slurm';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
$sudo tee /etc/slurm/slurmdbd.conf >/dev/null <<CONF
# written by lret_runner's scripts/slurm-up.sh: accounting on the local MariaDB
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=/run/slurmdbd.pid
LogFile=/var/log/slurm/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=lret-slurm
StorageLoc=slurm_acct_db
CONF
$sudo chmod 600 /etc/slurm/slurmdbd.conf
if ! pgrep -x slurmdbd >/dev/null; then
    $sudo slurmdbd
    for _ in $(seq 60); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.5; done
fi
sacctmgr -n list cluster format=cluster | grep -qw lret || sacctmgr -i add cluster lret >/dev/null
pgrep -x slurmctld >/dev/null || $sudo slurmctld
pgrep -x slurmd >/dev/null || $sudo slurmd

deadline=$((SECONDS + timeout))
until sinfo -h -N -o "%T" 2>/dev/null | grep -qE "^idle|^mixed|^allocated"; do
    if ((SECONDS > deadline)); then
        echo "slurm-up: the node did not become idle within ${timeout} s:" >&2
        sinfo -N -l >&2 || true
        tail -5 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
        exit 1
    fi
    # a node that was DOWN from an earlier run is brought back
    scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
    sleep 1
done
echo "slurm-up: one-node cluster on $host ($cpus CPUs) is up:"
sinfo

#!/usr/bin/env bash
# A local Ray cluster on loopback for cloud=ray: `ray start --head` with this venv's ray
# (its workers import lret_runner from the same environment), no dashboard, no usage stats.
# RAY=path/to/ray (default: ray on PATH), RAY_PORT (default 6379), RAY_CPUS (default: all).
# Ray records the address in /tmp/ray/ray_current_cluster, where cloud.address=auto finds it.
set -euo pipefail
ray=${RAY:-ray}
port=${RAY_PORT:-6379}
args=(start --head --node-ip-address=127.0.0.1 --port="$port" --include-dashboard=false
      --disable-usage-stats)
[[ -n ${RAY_CPUS:-} ]] && args+=(--num-cpus="$RAY_CPUS")
"$ray" "${args[@]}" >/dev/null
"$ray" status --address="127.0.0.1:$port" >/dev/null
echo "ray-up: a Ray cluster is up at 127.0.0.1:$port (cloud=ray finds it; make ray-down stops it)"

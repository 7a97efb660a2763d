#!/usr/bin/env bash
# A real single-host Slurm cluster with two emulated nodes (n1, n2), for tests and for trying the
# sbatch scripts on a laptop. Root, no systemd, no munge, no cgroups; everything lives in one directory:
#   slurm/testing/cluster.sh up   DIR   # write DIR/slurm.conf, start slurmctld + 2 slurmd, wait for idle
#   export SLURM_CONF=DIR/slurm.conf    # then sbatch/squeue/scontrol/scancel as usual
#   slurm/testing/cluster.sh down DIR   # cancel jobs, stop the daemons and leftover job processes by PID
# Each node offers 4 CPUs, 4000 MB and 2 "gpu" GRES (a count only, no devices), in partitions cpu and gpu.
set -euo pipefail

usage() { echo "usage: $0 up|down DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
action=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
conf=$dir/slurm.conf
nodes=(n1 n2)

free_ports() {  # N free TCP ports on loopback
  python3 - "$1" <<'PY'
import socket, sys
sockets = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in sockets))
PY
}

write_conf() {
  local host ports
  host=$(hostname -s)
  read -r -a ports <<<"$(free_ports 3)"
  mkdir -p "$dir/state" "$dir/log" "${nodes[@]/#/$dir/spool/}"
  cat >"$conf" <<CONF
ClusterName=pfnforge-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=${ports[0]}
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
# short-lived credentials and a fast scheduler loop: a requeued job restarts in ~20 s, not ~2.5 min
AuthInfo=cred_expire=10
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5,bf_interval=5
SlurmctldParameters=preempt_send_user_signal
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
# without it a job takes a whole node's memory and no two jobs share a node
DefMemPerCPU=500
MpiDefault=none
ReturnToService=2
KillWait=10
JobRequeue=1
# the emulated nodes declare more than this host has
SlurmdParameters=config_overrides
GresTypes=gpu
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.txt
NodeName=n1 NodeHostname=$host NodeAddr=127.0.0.1 Port=${ports[1]} CPUs=4 RealMemory=4000 Gres=gpu:2
NodeName=n2 NodeHostname=$host NodeAddr=127.0.0.1 Port=${ports[2]} CPUs=4 RealMemory=4000 Gres=gpu:2
PartitionName=cpu Nodes=n1,n2 Default=YES MaxTime=60 State=UP
PartitionName=gpu Nodes=n1,n2 MaxTime=60 State=UP
CONF
  cat >"$dir/gres.conf" <<CONF
AutoDetect=off
# two character devices per node stand in for GPUs (Slurm wants device files; none are opened)
NodeName=n[1-2] Name=gpu File=/dev/null,/dev/zero
CONF
}

start() {  # start NAME COMMAND...: a daemon in the foreground of its own session, its PID in DIR/NAME.pid
  local name=$1; shift
  setsid "$@" >>"$dir/log/$name.out" 2>&1 </dev/null &
  echo $! >"$dir/$name.daemon-pid"
}

up() {
  [[ -f $dir/slurmctld.daemon-pid ]] && kill -0 "$(cat "$dir/slurmctld.daemon-pid")" 2>/dev/null \
    && { echo "a cluster already runs from $dir" >&2; exit 1; }
  write_conf
  export SLURM_CONF=$conf
  start slurmctld slurmctld -D -i -f "$conf"
  for node in "${nodes[@]}"; do
    start "slurmd-$node" slurmd -D -N "$node" -f "$conf"
  done
  local deadline=$((SECONDS + ${PFNFORGE_CLUSTER_TIMEOUT:-90}))
  until [[ $(sinfo -h -N -t idle -o %N 2>/dev/null | sort -u | wc -l) -eq ${#nodes[@]} ]]; do
    if ((SECONDS > deadline)); then
      echo "the Slurm cluster in $dir did not come up; logs in $dir/log:" >&2
      tail -n 20 "$dir"/log/*.log >&2 || true
      down; exit 1
    fi
    sleep 1
  done
  echo "Slurm cluster up: export SLURM_CONF=$conf"
}

job_pids() {  # processes started for this cluster's jobs: their environment names this SLURM_CONF

  local path pid
  for path in /proc/[0-9]*; do
    pid=${path#/proc/}
    [[ $pid -eq $$ ]] && continue
    { tr '\0' '\n' <"$path/environ" | grep -qx "SLURM_CONF=$conf" && echo "$pid"; } 2>/dev/null
  done
  return 0
}

stop_pids() {  # TERM, then KILL what is left after 5 s
  [[ $# -eq 0 ]] && return 0
  kill -TERM "$@" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$@" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$@" 2>/dev/null || true
}

down() {
  export SLURM_CONF=$conf
  if [[ -f $conf ]] && squeue -h >/dev/null 2>&1; then
    scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
    for _ in $(seq 30); do [[ -z $(squeue -h 2>/dev/null) ]] && break; sleep 1; done
  fi
  local pids=() file
  for file in "$dir"/*.daemon-pid; do
    [[ -f $file ]] && pids+=("$(cat "$file")") && rm -f "$file"
  done
  stop_pids "${pids[@]}"
  # slurmstepd and job tasks detach from slurmd: end the ones of this cluster, by PID
  read -r -a pids <<<"$(job_pids | tr '\n' ' ')"
  stop_pids "${pids[@]}"
}

case $action in
  up) up ;;
  down) down ;;
  *) usage ;;
esac

#!/usr/bin/env bash
# A throwaway single-node SLURM cluster for tests and CI (Debian packages slurm-wlm and munge).
# Run `scripts/local-slurm.sh --help` for what it does; tests/conftest.py (fixture `slurm_cluster`) drives it.
set -euo pipefail

PROG=${0##*/}
# daemons live in sbin, which a non-root PATH often lacks
export PATH="$PATH:/usr/sbin:/sbin"
CLIENT_CMDS=(sbatch srun squeue sinfo scontrol scancel)
DAEMON_CMDS=(slurmctld slurmd munged munge unmunge)
UP_TIMEOUT_S=${LOCAL_SLURM_UP_TIMEOUT_S:-30}     # bound on waiting for the node to become idle
DOWN_TIMEOUT_S=${LOCAL_SLURM_DOWN_TIMEOUT_S:-20} # bound on waiting for jobs and daemons to end

usage() {
    cat <<EOF
Usage: $PROG install | up [DIR] | down DIR | status DIR | --help

A throwaway single-node SLURM cluster on localhost, for tests and CI. Everything it writes (config,
munge key and socket, state, spool, logs, PID files) lives in one directory, and SLURM_CONF points
clients at it, so /etc/slurm and any system cluster are never touched. Several clusters can run side
by side: each picks free TCP ports and runs its own munged.

Commands
  install     Install the Debian packages slurm-wlm and munge if sbatch/slurmctld/slurmd/munged are
              missing (apt-get, non-interactive; 'apt-get update' only when the package lists do not
              know them). Needs root; without root and with packages missing it prints what to
              install and exits 3. Services are not started by the install.
  up [DIR]    Start a cluster in DIR (default: a new 'mktemp -d' directory): writes DIR/slurm.conf,
              starts munged (own key and socket in DIR), slurmctld then slurmd, and waits (at most
              ${UP_TIMEOUT_S} s, env LOCAL_SLURM_UP_TIMEOUT_S) until sinfo shows the node idle. On
              success prints 'SLURM_CONF=DIR/slurm.conf' and 'LOCAL_SLURM_DIR=DIR' and writes
              DIR/env.sh (source it: exports SLURM_CONF and puts DIR/bin first on PATH). On failure it
              prints the log tails, stops what it started and exits 1.
  down DIR    Cancel the jobs, stop slurmd, slurmctld and munged by their PID files (never by name),
              wait for them to exit, and remove DIR. Idempotent: a missing DIR is fine.
  status DIR  sinfo and squeue of the cluster in DIR.

The cluster
  * node 'localhost' with CPUs = the CPUs this process may use (nproc) and RealMemory = 80 % of
    available memory (MB); memory is a consumable resource (CR_Core_Memory) and DefMemPerCPU =
    RealMemory / CPUs, so that jobs without --mem do not take the whole node.
  * partition 'debug' (default; preemptable, PreemptMode=REQUEUE, GraceTime=${GRACE_TIME_S:-10} s) and
    partition 'urgent' (higher PriorityTier, not preemptable): a job submitted to 'urgent' that needs
    the resources preempts 'debug' jobs.
  * Signals before a job is killed (what submitit relies on for checkpoint + requeue):
      - time limit: the job's own --signal=[B:]SIG@SECONDS (submitit sends --signal=USR2@90, i.e. to
        the job steps, where its python runs under srun) is delivered by slurmctld ahead of the
        limit; at the limit the job gets SIGTERM and, KillWait=5 s later, SIGKILL.
      - preemption: SlurmctldParameters=preempt_send_user_signal delivers that same user signal
        at once when the job is preempted; it is requeued GraceTime seconds later (submitit requeues
        itself sooner). A requeued job is held back ~2 min (BeginTime); to start it at once:
        scontrol update JobId=ID StartTime=now.
    slurmctld checks time limits about every 30 s, so signals and kills can be that late.
  * No slurmdbd: AccountingStorageType=accounting_storage/none. Finished jobs are recorded in the
    job completion log DIR/log/jobcomp.log, and DIR/bin/sacct (first on PATH through env.sh) answers
    the state queries of submitit and the harness (-j, -o JobID,State,..., -n, -P, -X) from squeue
    and that log, so submitit sees real final states (COMPLETED, FAILED, TIMEOUT, ...).
  * MinJobAge=5: finished jobs leave squeue after a few seconds.

Examples
  sudo $PROG install
  eval "\$($PROG up | grep ^SLURM_CONF=)"; export SLURM_CONF    # or: source DIR/env.sh
  sbatch --wrap 'hostname'; $PROG status "\$(dirname "\$SLURM_CONF")"
  $PROG down "\$(dirname "\$SLURM_CONF")"
EOF
}

die() { echo "$PROG: error: $*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }

missing_cmds() {
    local c out=()
    for c in "${CLIENT_CMDS[@]}" "${DAEMON_CMDS[@]}"; do
        command -v "$c" >/dev/null 2>&1 || out+=("$c")
    done
    echo "${out[*]:-}"
}

cmd_install() {
    local missing
    missing=$(missing_cmds)
    if [ -z "$missing" ]; then
        echo "$PROG: slurm and munge already installed ($(slurmctld -V 2>/dev/null || echo '?'))"
        return 0
    fi
    if ! is_root; then
        cat >&2 <<EOF
$PROG: missing commands: $missing
Install them as root (Debian/Ubuntu):
  apt-get update && apt-get install -y --no-install-recommends slurm-wlm munge
EOF
        exit 3
    fi
    command -v apt-get >/dev/null 2>&1 || die "missing commands ($missing) and no apt-get to install slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    # keep the packages' init scripts from starting system daemons (we start our own, by PID)
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
    fi
    local rc=0
    {
        if ! apt-cache policy slurm-wlm munge 2>/dev/null | grep -q 'Candidate: [0-9]'; then
            echo "$PROG: apt-get update (package lists do not know slurm-wlm/munge)"
            apt-get update -q
        fi
        echo "$PROG: apt-get install slurm-wlm munge (missing: $missing)"
        apt-get install -y -q --no-install-recommends \
            -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold slurm-wlm munge
    } || rc=$?
    [ "$made_policy" = 1 ] && rm -f "$policy"
    [ "$rc" = 0 ] || die "apt-get failed (exit $rc)"
    missing=$(missing_cmds)
    [ -z "$missing" ] || die "still missing after install: $missing"
    echo "$PROG: installed $(slurmctld -V 2>/dev/null || echo slurm)"
}

# --- helpers for up/down --------------------------------------------------------------------------

# TCP ports somebody listens on (IPv4 and IPv6), one per line, decimal
listening_ports() {
    local f
    for f in /proc/net/tcp /proc/net/tcp6; do
        [ -r "$f" ] || continue
        # state 0A = LISTEN; local address is ip:PORT, hexadecimal
        local _ addr _r st rest
        while read -r _ addr _r st rest; do
            [ "$st" = 0A ] && echo $((16#${addr##*:}))
        done < <(tail -n +2 "$f" 2>/dev/null)
    done
    return 0
}

# N distinct free ports in 20000-31999 (below the kernel's ephemeral range)
free_ports() {
    local n=$1 used p picked=()
    used=" $(listening_ports | tr '\n' ' ') "
    while [ "${#picked[@]}" -lt "$n" ]; do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
        case "$used ${picked[*]:-} " in *" $p "*) continue ;; esac
        picked+=("$p")
    done
    echo "${picked[*]}"
}

pid_from_file() { # prints the PID in FILE if that process is alive and its command is NAME
    local file=$1 name=$2 pid comm
    [ -s "$file" ] || return 1
    pid=$(tr -dc '0-9' <"$file")
    [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
    [ "$comm" = "$name" ] || return 1 # a recycled PID: not ours
    echo "$pid"
}

log_tails() {
    local dir=$1 f
    for f in "$dir"/log/munged.log "$dir"/log/slurmctld.log "$dir"/log/slurmd.log "$dir"/log/*.out; do
        [ -s "$f" ] || continue
        echo "----- tail of $f -----"
        tail -n 25 "$f"
    done
}

write_sacct_shim() {
    local dir=$1 py
    py=$(command -v python3 || true)
    if [ -z "$py" ]; then
        echo "$PROG: warning: no python3, no sacct stand-in (submitit will report 'Bypassing sacct error')" >&2
        return 0
    fi
    cat >"$dir/bin/sacct" <<EOF
#!$py
"""sacct for the local-slurm cluster in $dir (no slurmdbd).

Answers job-state queries from squeue (jobs slurmctld still knows) and the job completion log
$dir/log/jobcomp.log (finished jobs), the same scheduler records sacct would show. Supports
-j/--jobs ID[,ID] (repeatable; an array id selects all its tasks), -o/--format FIELD[,FIELD]
(JobID JobIDRaw JobName Partition State NodeList ExitCode), -n/--noheader, -P/--parsable2,
-p/--parsable, -X/--allocations, -a/--allusers, -b/--brief. Anything else: exit 1, like a failing sacct.
"""
import re
import subprocess
import sys

JOBCOMP = "$dir/log/jobcomp.log"
FIELDS = {"jobid": "JobID", "jobidraw": "JobIDRaw", "jobname": "JobName", "partition": "Partition",
          "state": "State", "nodelist": "NodeList", "exitcode": "ExitCode"}


def fail(msg):
    print(f"sacct (local-slurm stand-in): {msg}", file=sys.stderr)
    sys.exit(1)


def parse(argv):
    jobs, fmt, header, sep = [], ["JobID", "JobName", "Partition", "State", "ExitCode"], True, None
    it = iter(argv)
    for arg in it:
        key, eq, val = arg.partition("=")
        if key in ("-j", "--jobs", "-o", "--format") or (arg[:2] in ("-j", "-o") and len(arg) > 2):
            if key in ("-j", "--jobs", "-o", "--format"):
                val = val if eq else next(it, None)
            else:
                key, val = arg[:2], arg[2:]
            if val is None:
                fail(f"option {key} needs a value")
            if key in ("-j", "--jobs"):
                jobs += [j for j in val.split(",") if j]
            else:
                fmt = [f.split("%")[0] for f in val.split(",") if f]
        elif arg in ("-n", "--noheader"):
            header = False
        elif arg in ("-P", "--parsable2"):
            sep = "|"
        elif arg in ("-p", "--parsable"):
            sep = "|+"
        elif arg in ("-X", "--allocations", "-a", "--allusers"):
            pass
        elif arg in ("-b", "--brief"):
            fmt = ["JobID", "State", "ExitCode"]
        elif re.fullmatch(r"-[nPpXa]+", arg):
            for c in arg[1:]:
                header = header and c != "n"
                sep = "|" if c == "P" else ("|+" if c == "p" else sep)
        else:
            fail(f"unsupported option {arg!r}")
    for f in fmt:
        if f.lower() not in FIELDS:
            fail(f"unsupported field {f!r} (supported: {', '.join(FIELDS.values())})")
    return jobs, [FIELDS[f.lower()] for f in fmt], header, sep


def records():
    """{display id: record}; squeue (live and recently finished) overrides the completion log."""
    recs = {}
    try:
        with open(JOBCOMP) as fh:
            for line in fh:
                kv = dict(re.findall(r"(\w+)=(\S*)", line))
                if "JobId" not in kv:
                    continue
                raw = kv["JobId"]
                task = kv.get("ArrayTaskId", "")
                shown = f"{kv['ArrayJobId']}_{task}" if kv.get("ArrayJobId") and task not in ("", "4294967294") else raw
                recs[shown] = {"JobID": shown, "JobIDRaw": raw, "JobName": kv.get("Name", ""),
                               "Partition": kv.get("Partition", ""), "State": kv.get("JobState", ""),
                               "NodeList": kv.get("NodeList", ""), "ExitCode": kv.get("ExitCode", "0:0"),
                               "array": kv.get("ArrayJobId", "")}
    except FileNotFoundError:
        pass
    out = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-o", "%i|%A|%F|%T|%N|%P|%j"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        fail(f"squeue failed: {out.stderr.strip()}")
    for line in out.stdout.splitlines():
        shown, raw, array, state, nodes, part, name = (line.split("|", 6) + [""] * 7)[:7]
        recs[shown] = {"JobID": shown, "JobIDRaw": raw, "JobName": name, "Partition": part, "State": state,
                       "NodeList": nodes, "ExitCode": "0:0", "array": array if "_" in shown else ""}
    return recs


def main():
    jobs, fields, header, sep = parse(sys.argv[1:])
    recs = records()
    if jobs:
        want = set(jobs)
        rows = [r for r in recs.values()
                if r["JobID"] in want or r["JobIDRaw"] in want or (r["array"] and r["array"] in want)]
    else:
        rows = list(recs.values())

    def order(r):
        head, _, task = r["JobID"].partition("_")
        return (int(head) if head.isdigit() else 0, int(task) if task.isdigit() else -1, r["JobID"])

    rows.sort(key=order)
    table = ([fields] if header else []) + [[r[f] for f in fields] for r in rows]
    for row in table:
        if sep == "|":
            print("|".join(row))
        elif sep == "|+":
            print("|".join(row) + "|")
        else:
            print(" ".join(f"{v:>12}" for v in row))


if __name__ == "__main__":
    main()
EOF
    chmod 755 "$dir/bin/sacct"
}

write_conf() {
    local dir=$1 ctld_port=$2 slurmd_port=$3 cpus mem_mb defmem user slurmd_user
    cpus=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc) # nproc would honour OpenMP limits
    # RealMemory below what is available now (80 %), in MB
    mem_mb=$(awk '/^MemAvailable:/ { printf "%d", $2 / 1024 * 0.8 }' /proc/meminfo)
    [ "${mem_mb:-0}" -ge 256 ] || mem_mb=256
    defmem=$((mem_mb / cpus))
    user=$(id -un)
    if is_root; then slurmd_user=root; else slurmd_user=$user; fi
    cat >"$dir/slurm.conf" <<EOF
# Throwaway single-node cluster written by scripts/local-slurm.sh; every path is inside $dir.
ClusterName=localslurm
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$user
SlurmdUser=$slurmd_user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/slurmd-%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$dir/plugstack.conf
MailProg=/bin/true
# no cgroups in containers: plain process tracking, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
# no slurmdbd: finished jobs go to the completion log, read by $dir/bin/sacct
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$defmem
ReturnToService=2
SlurmdTimeout=300
InactiveLimit=0
MinJobAge=5
# quick tests: SIGKILL 5 s after SIGTERM; no grace beyond the time limit
KillWait=5
OverTimeLimit=0
JobRequeue=1
# preemption: a job in 'urgent' preempts 'debug' jobs; they first get their --signal user signal
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
SlurmctldParameters=preempt_send_user_signal
# schedule at once on submission; backfill (which also preempts) every 2 s
SchedulerParameters=batch_sched_delay=0,bf_interval=2
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=${GRACE_TIME_S:-10}
PartitionName=urgent Nodes=localhost Default=NO MaxTime=INFINITE State=UP PriorityTier=2 PreemptMode=OFF
EOF
    : >"$dir/plugstack.conf"
}

node_state() { sinfo -h -N -n localhost -o '%T' 2>/dev/null | head -n 1 || true; }

start_daemons() {
    local dir=$1 conf=$1/slurm.conf force=() out ports
    export SLURM_CONF=$conf
    is_root && force=(--force)

    # munge: own key, socket, pid, log and seed inside DIR
    umask 077
    head -c 1024 /dev/urandom >"$dir/munge/munge.key"
    chmod 400 "$dir/munge/munge.key"
    umask 022
    munged "${force[@]}" --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
        --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed" \
        >>"$dir/log/munged.out" 2>&1 || { echo "munged failed to start"; return 1; }
    out=$(munge -n -S "$dir/munge/munge.socket" | unmunge -S "$dir/munge/munge.socket" 2>&1) || true
    grep -q 'STATUS: *Success' <<<"$out" || { echo "munge -n | unmunge failed: $out"; return 1; }

    slurmctld >>"$dir/log/slurmctld.out" 2>&1 || { echo "slurmctld failed to start"; return 1; }
    slurmd >>"$dir/log/slurmd.out" 2>&1 || { echo "slurmd failed to start"; return 1; }

    local start=$SECONDS state="" name
    while :; do
        state=$(node_state)
        case "$state" in idle | mixed | allocated) return 0 ;; esac
        if [ $((SECONDS - start)) -ge 3 ]; then # daemons write their PID files soon after forking
            for name in slurmctld slurmd; do
                pid_from_file "$dir/$name.pid" "$name" >/dev/null || { echo "$name exited"; return 1; }
            done
        fi
        [ $((SECONDS - start)) -lt "$UP_TIMEOUT_S" ] ||
            { echo "node not idle after ${UP_TIMEOUT_S} s (state: '${state:-none}')"; return 1; }
        sleep 0.2
    done
}

cmd_up() {
    local dir=${1:-} made=0 why
    local missing
    missing=$(missing_cmds)
    if [ -n "$missing" ]; then
        echo "$PROG: missing commands: $missing (run '$PROG install' as root)" >&2
        exit 3
    fi
    if [ -z "$dir" ]; then
        dir=$(mktemp -d "${TMPDIR:-/tmp}/local-slurm.XXXXXX")
        made=1
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd -P)
    if pid_from_file "$dir/slurmctld.pid" slurmctld >/dev/null; then
        die "a cluster is already up in $dir (run '$PROG down $dir' first)"
    fi
    # unix socket paths (munge, slurmstepd) must stay under 108 bytes
    [ "${#dir}" -le 60 ] || die "directory path too long for unix sockets (${#dir} > 60 characters): $dir"
    chmod 711 "$dir" # munged wants search permission for all on the socket path
    # a fresh cluster: no jobs or nodes recovered from an earlier run in the same DIR
    rm -rf "$dir/state" "$dir/spool" "$dir/munge" "$dir"/log.failed.*
    mkdir -p "$dir/state" "$dir/spool" "$dir/log" "$dir/bin" "$dir/munge"
    chmod 711 "$dir/munge"
    write_sacct_shim "$dir"

    local attempt ports
    for attempt in 1 2 3; do
        read -r -a ports <<<"$(free_ports 2)"
        write_conf "$dir" "${ports[0]}" "${ports[1]}"
        if why=$(start_daemons "$dir" 2>&1); then
            cat >"$dir/env.sh" <<EOF
# source me: clients of the local-slurm cluster in $dir
export SLURM_CONF='$dir/slurm.conf'
export PATH='$dir/bin':"\$PATH"
EOF
            echo "SLURM_CONF=$dir/slurm.conf"
            echo "LOCAL_SLURM_DIR=$dir"
            return 0
        fi
        # a port taken between picking and binding: try other ports
        if [ "$attempt" -lt 3 ] && grep -qs 'Address already in use' "$dir"/log/slurmctld.log "$dir"/log/slurmd.log; then
            stop_cluster "$dir" >/dev/null 2>&1 || true
            mkdir -p "$dir/log.failed.$attempt" && mv "$dir"/log/* "$dir/log.failed.$attempt/" 2>/dev/null || true
            continue
        fi
        break
    done
    {
        echo "$PROG: error: cluster in $dir did not come up: $why"
        log_tails "$dir"
    } >&2
    stop_cluster "$dir" >/dev/null 2>&1 || true
    if [ "$made" = 1 ]; then rm -rf "$dir"; else echo "$PROG: logs kept in $dir/log" >&2; fi
    exit 1
}

wait_gone() { # wait until PIDs have exited; SIGKILL what is left after TIMEOUT seconds
    local timeout=$1 pid left deadline
    shift
    deadline=$((SECONDS + timeout))
    while :; do
        left=()
        for pid in "$@"; do [ -d "/proc/$pid" ] && ! grep -qs '^State:.*Z' "/proc/$pid/status" && left+=("$pid"); done
        [ "${#left[@]}" -eq 0 ] && return 0
        if [ $SECONDS -ge "$deadline" ]; then
            echo "$PROG: still running after ${timeout} s, SIGKILL: ${left[*]}" >&2
            kill -KILL "${left[@]}" 2>/dev/null || true
            sleep 0.2
            return 0
        fi
        sleep 0.1
    done
}

# PIDs of job processes and step daemons of the cluster whose config is CONF: slurmstepd and the
# jobs inherit SLURM_CONF from slurmd / the submitter. Never this script or its ancestors.
cluster_job_pids() {
    local conf=$1 p env comm skip=" " a=$$
    while [ "${a:-0}" -gt 1 ]; do
        skip+="$a "
        a=$(awk '/^PPid:/ { print $2 }' "/proc/$a/status" 2>/dev/null || echo 0)
    done
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        case "$skip" in *" $p "*) continue ;; esac
        env=$(tr '\0' '\n' 2>/dev/null <"/proc/$p/environ") || continue
        grep -qxF "SLURM_CONF=$conf" <<<"$env" || continue
        comm=$(cat "/proc/$p/comm" 2>/dev/null || true)
        if [ "$comm" = slurmstepd ] || grep -q '^SLURM_JOB_ID=' <<<"$env"; then echo "$p"; fi
    done
}

stop_cluster() {
    local dir=$1 conf=$1/slurm.conf pid pids=() name
    export SLURM_CONF=$conf
    # 1. cancel the jobs while slurmctld and slurmd can still clean them up
    if pid_from_file "$dir/slurmctld.pid" slurmctld >/dev/null; then
        local ids
        ids=$(timeout 10 squeue -h -o '%A' 2>/dev/null | sort -u | tr '\n' ' ' || true)
        if [ -n "${ids// /}" ]; then
            # shellcheck disable=SC2086
            timeout 10 scancel $ids 2>/dev/null || true
            local deadline=$((SECONDS + DOWN_TIMEOUT_S))
            while [ $SECONDS -lt "$deadline" ] &&
                [ -n "$(timeout 10 squeue -h -t PD,R,CG,S,CF,RQ,SE,RS,SO,ST,RF,RH,RD,PR -o '%A' 2>/dev/null || true)" ] &&
                [ -n "$(cluster_job_pids "$conf")" ]; do
                sleep 0.2
            done
        fi
    fi
    # 2. the daemons, by PID file: slurmd, slurmctld, munged
    for name in slurmd slurmctld munged; do
        if pid=$(pid_from_file "$dir/$name.pid" "$name"); then
            kill -TERM "$pid" 2>/dev/null || true
            wait_gone "$DOWN_TIMEOUT_S" "$pid"
        fi
    done
    # 3. anything of this cluster's jobs that survived (e.g. slurmd was gone already)
    read -r -a pids <<<"$(cluster_job_pids "$conf" | tr '\n' ' ')"
    if [ "${#pids[@]}" -gt 0 ]; then
        echo "$PROG: stopping leftover job processes: ${pids[*]}" >&2
        kill -TERM "${pids[@]}" 2>/dev/null || true
        wait_gone 5 "${pids[@]}"
    fi
}

cmd_down() {
    local dir=${1:-}
    [ -n "$dir" ] || die "usage: $PROG down DIR"
    if [ ! -e "$dir" ]; then
        echo "$PROG: $dir does not exist: nothing to stop"
        return 0
    fi
    dir=$(cd "$dir" && pwd -P)
    [ -f "$dir/slurm.conf" ] || [ -f "$dir/munged.pid" ] || [ -d "$dir/munge" ] ||
        die "$dir does not look like a local-slurm directory (no slurm.conf): not touching it"
    stop_cluster "$dir"
    rm -rf "$dir"
    echo "$PROG: stopped and removed $dir"
}

cmd_status() {
    local dir=${1:-}
    [ -n "$dir" ] || die "usage: $PROG status DIR"
    [ -f "$dir/slurm.conf" ] || die "no slurm.conf in $dir"
    dir=$(cd "$dir" && pwd -P)
    export SLURM_CONF=$dir/slurm.conf
    local name pid
    for name in munged slurmctld slurmd; do
        if pid=$(pid_from_file "$dir/$name.pid" "$name"); then echo "$name: running (pid $pid)"; else echo "$name: not running"; fi
    done
    echo "SLURM_CONF=$SLURM_CONF"
    sinfo
    squeue
}

case "${1:-}" in
    install) shift; cmd_install "$@" ;;
    up) shift; cmd_up "$@" ;;
    down) shift; cmd_down "$@" ;;
    status) shift; cmd_status "$@" ;;
    -h | --help | help) usage ;;
    "") usage >&2; exit 2 ;;
    *) echo "$PROG: unknown command '$1'" >&2; usage >&2; exit 2 ;;
esac

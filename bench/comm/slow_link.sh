#!/usr/bin/env bash
# Runs an MPI command on two ranks joined by a slow network link, then removes the link.
#
#   bench/comm/slow_link.sh [--rate 100mbit] [--delay 1ms] [--subnet 10.231.77] -- COMMAND [ARGS...]
#   e.g. flock /tmp/triad-cpu.lock bench/comm/slow_link.sh -- build/bench_comm_collectives --max-mib 16
#
# Two network namespaces joined by a veth pair stand for two hosts; each direction is shaped with tc (netem
# delay + rate when the kernel has sch_netem, else tbf for the rate alone, with a warning). mpirun runs in
# the first namespace and starts the second rank's daemon inside the second one (as ssh would on another
# host), so rank 0 and rank 1 talk only over the shaped veth: Open MPI over TCP (--mca btl tcp,self
# --mca btl_tcp_if_include SUBNET). Both "hosts" share this machine's cores with the kernel thread that
# moves packets across the veth, so MPI yields when idle (--mca mpi_yield_when_idle 1); without it a busy-
# waiting rank delays packet delivery by a scheduler slice (~8 ms per message here). Each "host" would bind
# its one rank to its first core, so both ranks would share CPU 0 (the probe's `cpus` showed [0] and [0]
# until 2026-12-05, halving compute in every earlier slow-link figure): the ranks are not bound. The command runs as
# `mpirun -np 2 COMMAND ARGS` (mpirun options may lead COMMAND); it sees
# TRIAD_SLOW_LINK=RATE/DELAY in its environment. Needs root (ip netns, tc). It touches nothing but the two
# namespaces and the addresses SUBNET.1 and SUBNET.2 it creates, and deletes them on exit.
set -euo pipefail

rate=100mbit
delay=1ms
subnet=10.231.77
while (($#)); do
  case "$1" in
    --rate) rate=$2; shift 2 ;;
    --delay) delay=$2; shift 2 ;;
    --subnet) subnet=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "slow_link.sh: error: unknown option $1 (usage: slow_link.sh [--rate R] [--delay D] -- COMMAND...)" >&2
       exit 2 ;;
  esac
done
if (($# == 0)); then
  echo "slow_link.sh: error: no command (usage: slow_link.sh [--rate R] [--delay D] -- COMMAND...)" >&2
  exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "slow_link.sh: error: needs root for ip netns and tc" >&2
  exit 1
fi
if ip -o addr show | grep -q " ${subnet//./\\.}\."; then
  echo "slow_link.sh: error: addresses in ${subnet}.0/24 are already in use here; pick another --subnet" >&2
  exit 1
fi

id=$$
ns_a=triad-link-a-$id
ns_b=triad-link-b-$id
veth_a=tla$id
veth_b=tlb$id
work=$(mktemp -d /tmp/triad-slow-link.XXXXXX)

cleanup() {
  ip netns del "$ns_a" 2>/dev/null || true  # deleting a namespace deletes its end of the veth pair
  ip netns del "$ns_b" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$ns_a"
ip netns add "$ns_b"
ip link add "$veth_a" netns "$ns_a" type veth peer name "$veth_b" netns "$ns_b"
ip -n "$ns_a" addr add "$subnet.1/24" dev "$veth_a"
ip -n "$ns_b" addr add "$subnet.2/24" dev "$veth_b"
for pair in "$ns_a $veth_a" "$ns_b $veth_b"; do
  read -r ns dev <<<"$pair"
  ip -n "$ns" link set lo up
  ip -n "$ns" link set "$dev" up
  if ! ip netns exec "$ns" tc qdisc add dev "$dev" root netem delay "$delay" rate "$rate" limit 100000 2>/dev/null; then
    ip netns exec "$ns" tc qdisc add dev "$dev" root tbf rate "$rate" burst 64kb latency 400ms
    shaped="tbf $rate (this kernel has no sch_netem: the $delay delay is not applied)"
  else
    shaped="netem $rate, $delay each way"
  fi
done
echo "slow_link.sh: $subnet.1 ($ns_a) <-> $subnet.2 ($ns_b): $shaped" >&2

# The "remote" daemon starts inside the second namespace under its own host name, as ssh would start it.
cat >"$work/agent" <<EOF
#!/bin/sh
# Called by mpirun as: agent HOST ORTED-COMMAND...
shift
exec ip netns exec $ns_b unshare --uts /bin/sh -c "hostname triad-link-b; \$*"
EOF
chmod +x "$work/agent"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export TRIAD_SLOW_LINK="$rate/$delay"
status=0
ip netns exec "$ns_a" unshare --uts /bin/sh -c 'hostname triad-link-a; exec "$@"' sh \
  mpirun -np 2 --host "$subnet.1:1,$subnet.2:1" \
  --mca plm_rsh_agent "$work/agent" \
  --mca oob_tcp_if_include "$subnet.0/24" \
  --mca btl tcp,self --mca btl_tcp_if_include "$subnet.0/24" \
  --mca mpi_yield_when_idle 1 --bind-to none \
  -x TRIAD_SLOW_LINK -x OMPI_ALLOW_RUN_AS_ROOT -x OMPI_ALLOW_RUN_AS_ROOT_CONFIRM \
  "$@" || status=$?

# What actually crossed the link, to check the byte counts GradSync reports.
for pair in "$ns_a $veth_a" "$ns_b $veth_b"; do
  read -r ns dev <<<"$pair"
  bytes=$(ip netns exec "$ns" cat "/sys/class/net/$dev/statistics/tx_bytes")
  echo "slow_link.sh: $dev sent $bytes bytes" >&2
done
exit $status

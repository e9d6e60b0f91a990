#!/usr/bin/env bash
# The cutover an operator scripts today: take the old controller's port off the VIP
# network's bridge, put the new controller's on, and (with ANNOUNCE=1) announce the VIP
# with arping so the network learns the new MAC. One command per step, as in a runbook.
#   cutover_cli.sh OLD_NETNS NEW_NETNS BRIDGE PORT VIP
set -euo pipefail
old=$1 new=$2 bridge=$3 port=$4 vip=$5
ip -n "$old" link set "$port" nomaster
ip -n "$old" link set "$port" down
ip -n "$new" link set "$port" master "$bridge"
ip -n "$new" link set "$port" up
if [ "${ANNOUNCE:-1}" = 1 ]; then
    ip netns exec "$new" arping -q -U -c 1 -I "$bridge" "$vip"
fi

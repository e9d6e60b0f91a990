#!/usr/bin/env bash
# Move bare-metal nodes from one Ironic to another with the openstack CLI, one node after
# another, polling the provision state every second: the way it is scripted by hand today.
#
# usage: forklift_cli.sh FROM TO CREDENTIALS.yaml [NODE...]     (default: every node of FROM)
# env:   OS_CLIENT_CONFIG_FILE  the clouds.yaml holding FROM and TO
#        FORKLIFT_TIMEOUT       longest wait for one provision state, seconds (600)
# needs: openstack (python-ironicclient), jq, python3 with PyYAML
# CREDENTIALS.yaml: {nodes: {NAME-or-UUID: {ipmi_password: ...}}} (the API masks passwords)
set -euo pipefail

SRC=$1 DST=$2 CREDS=$3
shift 3
TIMEOUT=${FORKLIFT_TIMEOUT:-600}
CREDS_JSON=$(python3 -c 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))' "$CREDS")
INTERFACES="bios boot console deploy firmware inspect management network power raid rescue storage vendor"

bm() { openstack --os-cloud "$1" baremetal "${@:2}"; }

wait_state() {  # CLOUD NODE STATE
    local waited=0
    until [ "$(bm "$1" node show "$2" -f value -c provision_state)" = "$3" ]; do
        sleep 1
        waited=$((waited + 1))
        if [ "$waited" -ge "$TIMEOUT" ]; then
            echo "node $2 on $1: not $3 after ${TIMEOUT} s" >&2
            exit 1
        fi
    done
}

kv_args() {  # FLAG JSON_OBJECT -> one line per word: FLAG key=value (non-strings as JSON)
    jq -r --arg flag "$1" \
        'to_entries[] | $flag, "\(.key)=\(.value | if type == "string" then . else tojson end)"' \
        <<<"$2"
}

create_on_target() {  # NODE_JSON PASSWORD
    local node=$1 password=$2 args=() iface value
    for iface in $INTERFACES; do
        value=$(jq -r ".${iface}_interface // empty" <<<"$node")
        [ -z "$value" ] || args+=("--${iface}-interface" "$value")
    done
    mapfile -t -O "${#args[@]}" args < <(kv_args --property "$(jq -c '.properties' <<<"$node")")
    mapfile -t -O "${#args[@]}" args < <(kv_args --extra "$(jq -c '.extra' <<<"$node")")
    mapfile -t -O "${#args[@]}" args < <(kv_args --driver-info "$(jq -c --arg p "$password" \
        '.driver_info + (if $p == "" then {} else {ipmi_password: $p} end)' <<<"$node")")
    bm "$DST" node create --uuid "$(jq -r .uuid <<<"$node")" --name "$(jq -r .name <<<"$node")" \
        --driver "$(jq -r .driver <<<"$node")" \
        --resource-class "$(jq -r '.resource_class // ""' <<<"$node")" "${args[@]}" -f value -c uuid >/dev/null
}

set_owner_and_ports() {  # NODE_JSON PORTS_JSON
    local node=$1 ports=$2 id args=() i port
    id=$(jq -r .uuid <<<"$node")
    [ "$(jq -r '.owner // ""' <<<"$node")" = "" ] || args+=(--owner "$(jq -r .owner <<<"$node")")
    [ "$(jq -r '.lessee // ""' <<<"$node")" = "" ] || args+=(--lessee "$(jq -r .lessee <<<"$node")")
    [ "${#args[@]}" -eq 0 ] || bm "$DST" node set "$id" "${args[@]}"
    for i in $(seq 0 $(($(jq length <<<"$ports") - 1))); do
        port=$(jq -c ".[$i]" <<<"$ports")
        args=()
        mapfile -t args < <(kv_args --extra "$(jq -c '.extra' <<<"$port")")
        bm "$DST" port create "$(jq -r .address <<<"$port")" --node "$id" \
            --uuid "$(jq -r .uuid <<<"$port")" --pxe-enabled "$(jq -r .pxe_enabled <<<"$port")" \
            "${args[@]}" -f value -c uuid >/dev/null
    done
}

move_node() {  # NODE (name or uuid)
    local node ports id name password instance_info args
    node=$(bm "$SRC" node show "$1" -f json)
    id=$(jq -r .uuid <<<"$node")
    name=$(jq -r .name <<<"$node")
    ports=$(bm "$SRC" port list --node "$id" --long -f json)
    password=$(jq -r --arg n "$name" --arg u "$id" \
        '(.nodes[$n] // .nodes[$u] // {}).ipmi_password // empty' <<<"$CREDS_JSON")
    bm "$SRC" node maintenance set "$id" --reason "moving to $DST"
    bm "$SRC" node undeploy "$id"
    wait_state "$SRC" "$id" available
    create_on_target "$node" "$password"
    set_owner_and_ports "$node" "$ports"
    bm "$DST" node maintenance set "$id" --reason "arriving from $SRC"
    bm "$SRC" node delete "$id" >/dev/null
    bm "$DST" node manage "$id"
    wait_state "$DST" "$id" manageable
    bm "$DST" node provide "$id"
    wait_state "$DST" "$id" available
    bm "$DST" node maintenance unset "$id"
    instance_info=$(jq -c '.instance_info | del(.image_type)' <<<"$node")
    args=()
    mapfile -t args < <(kv_args --instance-info "$instance_info")
    [ "${#args[@]}" -eq 0 ] || bm "$DST" node set "$id" "${args[@]}"
    bm "$DST" node deploy "$id"
    wait_state "$DST" "$id" active
}

if [ "$#" -eq 0 ]; then
    mapfile -t NODES < <(bm "$SRC" node list -f value -c UUID)
else
    NODES=("$@")
fi
for n in "${NODES[@]}"; do
    started=$SECONDS
    move_node "$n"
    echo "moved $n in $((SECONDS - started)) s"
done

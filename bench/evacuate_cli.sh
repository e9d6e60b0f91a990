#!/usr/bin/env bash
# Empty a compute host with the openstack CLI, one server after another, polling every
# second: the loop operators script today (what `nova host-evacuate-live` did client-side).
#
# usage: evacuate_cli.sh HOST
# env:   OS_CLIENT_CONFIG_FILE, OS_CLOUD   the cloud
#        EVACUATE_TIMEOUT                  longest wait for one server, seconds (600)
set -euo pipefail

HOST=$1
TIMEOUT=${EVACUATE_TIMEOUT:-600}
export OS_COMPUTE_API_VERSION=2.95

openstack compute service set --disable --disable-reason "evacuating" "$HOST" nova-compute
for id in $(openstack server list --all-projects --host "$HOST" -f value -c ID); do
    openstack server migrate --live-migration "$id"
    waited=0
    while :; do
        eval "$(openstack server show "$id" -f shell \
            -c OS-EXT-SRV-ATTR:host -c status -c OS-EXT-STS:task_state)"
        host=$os_ext_srv_attr_host task=$os_ext_sts_task_state
        if [ "$host" != "$HOST" ] && [ "$status" = "ACTIVE" ] && [ "$task" = "None" ]; then
            break
        fi
        if [ "$status" = "ERROR" ] || [ "$waited" -ge "$TIMEOUT" ]; then
            echo "server $id: $status $task on $host after ${waited} s" >&2
            exit 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
    echo "$id moved to $host"
done

#!/usr/bin/env bash
# Install the Debian services the testbed runs (PostgreSQL and RabbitMQ for Nova, etcd) when
# missing, checked every run; then create .venv and install Ephyra with the testbed's
# services and the dev tools, all pinned, which re-runs only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

debs=(postgresql rabbitmq-server etcd-server etcd-client puppet dpkg-dev wrk chromium iputils-arping prometheus-alertmanager)  # etcd-client, wrk: bench; puppet, dpkg-dev: strategies; chromium: dashboard; arping: netscheme; alertmanager: the upgrade's silences
# One dpkg-query for all (a package removed but for its configuration counts as missing).
installed=" $(dpkg-query -W -f='${Package}=${db:Status-Status} ' "${debs[@]}" 2>/dev/null || true)"
missing=()
for deb in "${debs[@]}"; do
    [[ $installed == *" $deb=installed "* ]] || missing+=("$deb")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} with apt-get (the Nova testbed runs them)" >&2
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    apt_install=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -qq
        -o DPkg::Lock::Timeout=400 install -y --no-install-recommends "${missing[@]}")
    if ! "${apt_install[@]}" >/dev/null; then
        "${sudo[@]}" apt-get -qq -o DPkg::Lock::Timeout=400 update
        "${apt_install[@]}" >/dev/null
    fi
fi

stamp=.venv/.ephyra-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
echo "installing Ephyra and its testbed into .venv (about two minutes the first time)" >&2
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
.venv/bin/pip install --quiet --disable-pip-version-check -e ".[testbed,dev]"
echo "$want" > "$stamp"

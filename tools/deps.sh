#!/bin/bash
# Installs what vmha needs to build, test and run its lab, from Debian's packages (Debian 12
# or 13: the names are the same, except where noted).
# Idempotent and quick when everything is there already.
set -euo pipefail

packages=(
    # build
    gcc meson ninja-build pkg-config libvirt-dev libxml2-dev pacemaker-dev libcmocka-dev
    libgnutls28-dev libxen-dev
    # the real things the tests drive
    libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils ovmf
    pacemaker corosync crmsh pcs resource-agents fence-agents
    # test guests and the lab
    busybox-static cpio uuid-runtime iproute2 procps psmisc util-linux libxml2-utils
    socat bc python3 openssl openssh-client
    # the Debian package (tests/lab/package.sh), and a Debian system booted with systemd
    # (tests/lab/shutdown.sh)
    build-essential debhelper dpkg-dev lintian debootstrap systemd-container
)
# Debian 13 moved systemd's pkg-config file (where unit drop-ins go) into systemd-dev.
if apt-cache show systemd-dev >/dev/null 2>&1; then
    packages+=(systemd-dev)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "vmha: installing ${missing[*]} needs root; run this as root (or with sudo)" >&2
    exit 1
fi
echo "vmha: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# Packaged services must not start on the machine itself: the tests run their own.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null

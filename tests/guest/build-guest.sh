#!/bin/bash
# Build the vmha test guest's boot artifacts from Debian packages:
#   OUTDIR/vmlinuz     Debian's cloud kernel (linux-image-cloud-amd64)
#   OUTDIR/initrd.img  busybox-static initramfs whose /init prints
#                      "vmha-counter N" on ttyS0 (or hvc0) every second.
# Kernel command-line switches understood by /init:
#   vmha.ignore_shutdown=1   ignore the ACPI power button
#   vmha.poweroff_after=N    power off by itself after N seconds
#   vmha.ip=A.B.C.D/NN       configure the virtio NIC, serve the counter
#   vmha.gw=A.B.C.D          on TCP port 7777 (optional default route)
#   vmha.efiboots=1          UEFI: add a VmhaBoot<N> variable at each boot, print N
#   vmha.dirty=N             rewrite N MiB of memory every second, printing
#                            "vmha-dirty MS" (how long each pass took)
#   vmha.install=1           act as an installer: after vmha.install_delay=N seconds
#                            write a marker to the first virtio disk, power off
#   vmha.disk=1              print the marker found on the first virtio disk
#   vmha.witness=1           with vmha.ip: on TCP port 7778 each connection appends the next
#                            numbered record to the first virtio disk (sector N holds
#                            "vmha-rec N UPTIME"), flushed before the guest answers with the
#                            record; a fresh boot goes on after the last record on the disk
#   vmha.console=hvc0        print on hvc0 instead of ttyS0 (a Xen PVH guest)
# A shutdown request powers the guest off, whether it arrives as the ACPI power button
# (QEMU) or through the kernel's orderly poweroff (Xen's control/shutdown).
# Cached: nothing is rebuilt while OUTDIR/.stamp matches this script.
set -euo pipefail

usage() { echo "usage: $0 OUTDIR" >&2; exit 2; }
[[ $# -eq 1 ]] || usage
mkdir -p "$1"
out=$(cd "$1" && pwd)
self=$(readlink -f "${BASH_SOURCE[0]}")
stamp=$(cat "$self" "$(dirname "$self")/../lib/kmods.sh" | sha256sum | cut -d' ' -f1)

if [[ -f $out/vmlinuz && -f $out/initrd.img && -f $out/.stamp ]] &&
   [[ $(cat "$out/.stamp") == "$stamp" ]]; then
    exit 0
fi

# Modules the guest needs: the cloud kernel builds these as modules
# (CONFIG_ACPI_BUTTON=m, CONFIG_INPUT_EVDEV=m, CONFIG_VIRTIO_NET=m, ...);
# it has no e1000 driver at all, so the NIC must be virtio.
modules=(button evdev virtio_pci virtio_net efivarfs virtio_blk)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# apt's _apt sandbox user cannot write into our private temp dir.
apt_opts=()
[[ $EUID -eq 0 ]] && apt_opts=(-o APT::Sandbox::User=root)

# Resolve the versioned kernel package behind the meta package.
resolve_kernel() {
    apt-cache depends linux-image-cloud-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }' || true
}
pkg=$(resolve_kernel)
if [[ -z $pkg ]]; then
    apt-get update -qq
    pkg=$(resolve_kernel)
fi
[[ -n $pkg ]] || { echo "$0: cannot resolve linux-image-cloud-amd64" >&2; exit 1; }

(cd "$tmp" && apt-get "${apt_opts[@]}" download -q "$pkg" >/dev/null)
dpkg-deb -x "$tmp"/"$pkg"_*.deb "$tmp/kpkg"
kver=${pkg#linux-image-}

# busybox-static, not busybox: the initramfs has no libc.
if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
    apt-get install -y -q busybox-static >/dev/null
fi
busybox=$(dpkg -L busybox-static | grep -m1 '/bin/busybox$')
command -v cpio >/dev/null || apt-get install -y -q cpio >/dev/null

root=$tmp/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,etc/acpi/PWRF}
cp "$busybox" "$root/bin/busybox"
# Without /dev/console the kernel warns and /init starts without stdio.
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true

# The wanted modules plus their dependencies (tests/lib/kmods.sh).
. "$(dirname "$self")/../lib/kmods.sh"
copy_modules "$tmp/kpkg" "$kver" "$root" "$root/bin/busybox" "${modules[@]}" ||
    { echo "$0: cannot take the modules from $pkg" >&2; exit 1; }

# busybox acpid maps the power button (KEY_POWER on the evdev of the
# ACPI button driver) to event "PWRF" and runs /etc/acpi/PWRF/00000080.
cat >"$root/etc/acpi/PWRF/00000080" <<'EOS'
#!/bin/sh
exec /bin/vmha-poweroff
EOS

# What a shutdown request runs (the power button, or the kernel's poweroff_cmd).
# Its stdout is /dev/null: talk to the console directly.
cat >"$root/bin/vmha-poweroff" <<'EOS'
#!/bin/sh
con=$(cat /tmp/console)
if [ -e /tmp/ignore_shutdown ]; then
    echo "vmha: shutdown request ignored" >"$con"
    exit 0
fi
echo "vmha: shutdown request, powering off" >"$con"
sync
busybox poweroff -f
EOS

# One TCP connection on port 7778 = one disk record, on the disk before the answer.
cat >"$root/bin/witness-reply" <<'EOS'
#!/bin/sh
n=$(($(cat /tmp/witness) + 1))
# The guest's uptime tells two writes of the same number apart.
rec="vmha-rec $n $(cut -d' ' -f1 /proc/uptime)"
echo "$rec" | dd of=/dev/vda bs=512 seek="$n" conv=sync,notrunc,fsync 2>/dev/null ||
    { echo "vmha-rec-error"; exit 0; }
echo "$n" >/tmp/witness
echo "$rec"
EOS

# The disk benchmark (bench/run-remus-bench), on tcp/7779: a request "lat N" makes N
# synchronous 4 KiB writes (each one waits for the disk), "tput N" writes N MiB (at most 16)
# in direct 1 MiB writes; the answer comes once they are all on the disk. Random bytes, so
# nothing on the way can take them for zeroes.
cat >"$root/bin/diskbench-reply" <<'EOS'
#!/bin/sh
read -r mode n
case $mode in
lat) dd if=/tmp/diskbench-src of=/dev/vda bs=4096 count="$n" seek=256 oflag=direct conv=notrunc 2>/dev/null ;;
tput) dd if=/tmp/diskbench-src of=/dev/vda bs=1M count="$n" seek=2 oflag=direct conv=notrunc 2>/dev/null ;;
*) echo "vmha-diskbench: lat N or tput N"; exit 0 ;;
esac
echo "vmha-diskbench $mode $n done"
EOS

# One TCP connection on port 7777 = one counter line.
cat >"$root/bin/counter-reply" <<'EOS'
#!/bin/sh
echo "vmha-counter $(cat /tmp/counter)"
EOS

cat >"$root/init" <<'EOS'
#!/bin/busybox sh
# PID 1 of the vmha test guest. It must never exit (the kernel panics).
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
con=/dev/ttyS0
for w in $(cat /proc/cmdline); do
    case $w in vmha.console=*) con=/dev/${w#*=} ;; esac
done
echo "$con" >/tmp/console
exec </dev/null >"$con" 2>&1
# Plain \n line ends in the console log (the tty would add \r).
stty -F "$con" -onlcr
echo /bin/vmha-poweroff >/proc/sys/kernel/poweroff_cmd

# arg NAME: value of vmha.NAME= on the kernel command line
arg() {
    # shellcheck disable=SC2013 # words, not lines
    for w in $(cat /proc/cmdline); do
        case $w in vmha.$1=*) echo "${w#*=}"; return 0 ;; esac
    done
    return 1
}

echo 0 >/tmp/counter
[ "$(arg ignore_shutdown)" = 1 ] && : >/tmp/ignore_shutdown
# The ACPI button driver is a module in the cloud kernel; acpid reads
# its key events through evdev (/proc/acpi/event no longer exists).
modprobe button
modprobe evdev
acpid -c /etc/acpi -l /tmp/acpid.log -p /tmp/acpid.pid

# UEFI guests (booted by OVMF): every boot leaves one more variable in the
# firmware's NVRAM, so the boot count shows whether the NVRAM followed the guest.
if [ "$(arg efiboots)" = 1 ] && [ -d /sys/firmware/efi ]; then
    modprobe efivarfs
    mount -t efivarfs efivarfs /sys/firmware/efi/efivars
    guid=5e0b3a7c-6d4f-4b1e-9a2c-766d6861a001
    n=$(ls /sys/firmware/efi/efivars | grep -c "^VmhaBoot.*-$guid$")
    n=$((n + 1))
    # attributes NV|BS|RT, then the value; efivarfs wants it in one write
    printf '\007\000\000\000boot %s' "$n" >"/sys/firmware/efi/efivars/VmhaBoot$n-$guid" &&
        echo "vmha-efiboots $n" || echo "vmha: cannot write VmhaBoot$n"
fi

# The first virtio disk, once its driver is loaded.
disk() {
    modprobe virtio_pci 2>/dev/null # built in from Debian 13 on
    modprobe virtio_blk
    for _ in $(seq 50); do [ -b /dev/vda ] && return 0; sleep 0.1; done
    echo "vmha: no virtio disk"
    return 1
}
if [ "$(arg install)" = 1 ]; then
    (
        echo "vmha-install started"
        sleep "$(arg install_delay || echo 0)"
        disk || exit 0
        printf 'vmha-installed %s\n' "$(cat /proc/sys/kernel/random/uuid)" |
            dd of=/dev/vda bs=512 conv=sync,notrunc 2>/dev/null
        sync
        echo "vmha-install done, powering off"
        poweroff -f
    ) &
elif [ "$(arg disk)" = 1 ]; then
    (disk && echo "vmha-disk $(head -n 1 /dev/vda | tr -d '\000\n')") &
fi

if n=$(arg poweroff_after); then
    (sleep "$n"; echo "vmha: poweroff_after=$n reached"; sync; poweroff -f) &
fi

if ip=$(arg ip); then
    (
        modprobe virtio_pci 2>/dev/null
        modprobe virtio_net
        dev=
        for _ in $(seq 50); do
            for d in /sys/class/net/*; do
                [ "${d##*/}" != lo ] && [ -e "$d" ] && dev=${d##*/} && break
            done
            [ -n "$dev" ] && break
            sleep 0.1
        done
        if [ -z "$dev" ]; then
            echo "vmha: no NIC for vmha.ip=$ip"
            exit 0
        fi
        ip link set lo up
        ip addr add "$ip" dev "$dev"
        ip link set "$dev" up
        gw=$(arg gw) && ip route add default via "$gw"
        echo "vmha: $dev $ip, counter on tcp/7777"
        if [ "$(arg witness)" = 1 ] && disk; then
            # A fresh boot goes on after the last record the disk holds.
            w=0
            while dd if=/dev/vda bs=512 skip=$((w + 1)) count=1 2>/dev/null | grep -q '^vmha-rec'; do
                w=$((w + 1))
            done
            echo "$w" >/tmp/witness
            echo "vmha: disk records from $w on tcp/7778"
            nc -ll -p 7778 -e /bin/witness-reply &
        fi
        if [ "$(arg diskbench)" = 1 ] && disk; then
            dd if=/dev/urandom of=/tmp/diskbench-src bs=1M count=16 2>/dev/null
            echo "vmha: disk benchmark on tcp/7779"
            nc -ll -p 7779 -e /bin/diskbench-reply &
        fi
        nc -ll -p 7777 -e /bin/counter-reply
    ) &
fi

# A workload for the checkpoint benchmark: rewrite N MiB of memory (random bytes, so the
# hypervisor cannot skip them as zero pages) once a second, printing how long each pass took.
if n=$(arg dirty); then
    (
        dd if=/dev/urandom of=/tmp/dirty-src bs=1M count="$n" 2>/dev/null
        while :; do
            t0=$(cut -d' ' -f1 /proc/uptime | tr -d .)
            cat /tmp/dirty-src >/tmp/dirty-dst
            t1=$(cut -d' ' -f1 /proc/uptime | tr -d .)
            echo "vmha-dirty $(( (t1 - t0) * 10 ))"
            sleep 1
        done
    ) &
fi

n=0
while :; do
    echo "$n" >/tmp/counter
    echo "vmha-counter $n"
    n=$((n + 1))
    sleep 1
done
EOS
chmod 755 "$root/init" "$root/bin/counter-reply" "$root/bin/witness-reply" "$root/bin/diskbench-reply" "$root/bin/vmha-poweroff" "$root/etc/acpi/PWRF/00000080"

(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
    cpio --quiet -o -H newc -R 0:0 | gzip -9) >"$tmp/initrd.img"

cp "$tmp/kpkg/boot/vmlinuz-$kver" "$tmp/vmlinuz"
# Install atomically-ish: a half-built OUTDIR must not look complete.
rm -f "$out/.stamp"
mv "$tmp/vmlinuz" "$tmp/initrd.img" "$out/"
echo "$kver" >"$out/kernel-version"
echo "$stamp" >"$out/.stamp"

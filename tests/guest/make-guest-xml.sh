#!/bin/bash
# Fill guest.xml.in for one test guest.
#   GUEST_DIR=/path/with/vmlinuz+initrd.img make-guest-xml.sh NAME OUTFILE [CMDLINE...]
# Extra CMDLINE words are appended to the kernel command line, e.g.
# vmha.ignore_shutdown=1, vmha.poweroff_after=5, vmha.ip=10.0.0.5/24.
# The serial log goes to SERIAL_LOG (default: OUTFILE with .serial.log),
# which must be writable at the same path by the libvirtd that runs it.
# With DISK=IMAGE the guest gets IMAGE (raw) as its first virtio disk.
# With UEFI=NVRAM_PATH the guest boots through OVMF (the firmware loads the kernel, so the
# guest has EFI variables) with its variable store at NVRAM_PATH.
set -euo pipefail

[[ $# -ge 2 ]] || { echo "usage: GUEST_DIR=DIR $0 NAME OUTFILE [CMDLINE...]" >&2; exit 2; }
name=$1 outfile=$2
shift 2
: "${GUEST_DIR:?set GUEST_DIR to build-guest.sh output directory}"
guest_dir=$(cd "$GUEST_DIR" && pwd)
for f in vmlinuz initrd.img; do
    [[ -f $guest_dir/$f ]] || { echo "$0: $guest_dir/$f missing (run build-guest.sh)" >&2; exit 1; }
done
[[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || { echo "$0: bad guest name '$name'" >&2; exit 1; }

outdir=$(cd "$(dirname "$outfile")" && pwd)
outfile=$outdir/$(basename "$outfile")
serial_log=${SERIAL_LOG:-${outfile%.xml}.serial.log}
uuid=$(uuidgen 2>/dev/null || cat /proc/sys/kernel/random/uuid)
# quiet: keep kernel chatter from splitting the counter lines.
cmdline="console=ttyS0 quiet${*:+ $*}"

# XML-escape what goes into text nodes and attributes.
xml_escape() {
    printf '%s' "$1" | sed -e "s/&/\\&amp;/g; s/</\\&lt;/g; s/>/\\&gt;/g" \
        -e "s/'/\\&apos;/g; s/\"/\\&quot;/g"
}
# sed replacement text: escape \, & and the | delimiter.
sed_escape() { printf '%s' "$1" | sed -e 's/[\\&|]/\\&/g'; }
subst() { printf 's|@%s@|%s|g\n' "$1" "$(sed_escape "$(xml_escape "$2")")"; }

template=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/guest.xml.in
sed -f <(
    subst NAME "$name"
    subst UUID "$uuid"
    subst KERNEL "$guest_dir/vmlinuz"
    subst INITRD "$guest_dir/initrd.img"
    subst CMDLINE "$cmdline"
    subst SERIAL_LOG "$serial_log"
    if [[ -n ${DISK:-} ]]; then
        printf 's|    <controller type=.usb.|    <disk type="file" device="disk"><driver name="qemu" type="raw"/><source file="%s"/><target dev="vda" bus="virtio"/></disk>\\n&|\n' \
            "$(sed_escape "$(xml_escape "$DISK")")"
    fi
    if [[ -n ${UEFI:-} ]]; then
        # OVMF and the kernel do not fit in 96 MiB.
        printf 's|<memory unit=.MiB.>96</memory>|<memory unit="MiB">256</memory>|\n'
        printf 's|<currentMemory unit=.MiB.>96</currentMemory>|<currentMemory unit="MiB">256</currentMemory>|\n'
        printf 's|    <kernel>|    <loader readonly="yes" type="pflash">/usr/share/OVMF/OVMF_CODE_4M.fd</loader>\\n    <nvram template="/usr/share/OVMF/OVMF_VARS_4M.fd">%s</nvram>\\n&|\n' \
            "$(sed_escape "$(xml_escape "$UEFI")")"
    fi
) "$template" >"$outfile.tmp"
mv "$outfile.tmp" "$outfile"

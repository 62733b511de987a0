#!/bin/bash
# Build the boot artifacts of a Xen lab host (Debian's Xen, 4.17 or 4.20, under QEMU/TCG) from
# Debian packages, without installing Xen on this machine:
#   OUTDIR/xen            the hypervisor, gunzipped (an ELF32 multiboot image)
#   OUTDIR/vmlinuz        Debian's regular amd64 kernel (dom0 support; the
#                         cloud kernel has none)
#   OUTDIR/dom0.cpio.gz   dom0's userland as an initramfs: busybox, bash, flock,
#                         the Xen toolstack (xl, libxl-save-helper, xenstored,
#                         xen-init-dom0, xenconsoled), dropbear (SSH server), the
#                         OpenSSH client, the Xen and NIC (e1000, virtio-net) modules,
#                         Corosync 3 and Pacemaker 2.1 (daemons and C command-line
#                         tools, nothing started at boot: see xenlab_cluster_up),
#                         ocf:pacemaker:Dummy and the lab's fence agent
#                         /usr/sbin/fence_xenlab (a copy of ./fence_xenlab)
#   OUTDIR/id_ed25519     the client key for root@dom0 (OpenSSH format; also
#                         dom0's own /root/.ssh/id_ed25519, so hosts ssh to each other)
#   OUTDIR/kernel-version, OUTDIR/xen-version
# Dom0's /init reads these words of its kernel command line:
#   vmha.host=N           hostname xenN, inter-host address 10.77.0.N/24
#   vmha.hosts=M          /etc/hosts lists xen1..xenM (default 8)
#   vmha.fence=PORT       fence_xenlab asks the workstation's listener at 10.0.2.2:PORT
# NICs are told apart by MAC address: 52:54:00:77:*:* is the inter-host link,
# any other is the management NIC (QEMU user networking, 10.0.2.15/24).
# A guest's console output lands in /var/log/xen/console/guest-NAME.log (for a guest
# that came by `xl migrate`, in guest-NAME--incoming.log until dom0 renames the file,
# about a second after xl renamed the domain).
# Cached: nothing is rebuilt while OUTDIR/.stamp matches this script.
set -euo pipefail

usage() { echo "usage: $0 OUTDIR" >&2; exit 2; }
[[ $# -eq 1 ]] || usage
mkdir -p "$1"
out=$(cd "$1" && pwd)
self=$(readlink -f "${BASH_SOURCE[0]}")
here=$(dirname "$self")
# The cluster stack is this machine's (see below): a new version of it rebuilds the image.
cluster_pkgs=(corosync pacemaker pacemaker-cli-utils pacemaker-common pacemaker-resource-agents
    resource-agents)
stamp=$({ sha256sum "$self" "$here/fence_xenlab" "$here/../lib/kmods.sh"
          dpkg-query -W "${cluster_pkgs[@]}" 2>/dev/null; } | sha256sum | cut -d' ' -f1)

if [[ -f $out/xen && -f $out/vmlinuz && -f $out/dom0.cpio.gz && -f $out/dom0.files &&
      -f $out/id_ed25519 &&
      -f $out/.stamp ]] && [[ $(cat "$out/.stamp") == "$stamp" ]]; then
    exit 0
fi

die() { echo "$0: $*" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
apt_opts=()
[[ $EUID -eq 0 ]] && apt_opts=(-o APT::Sandbox::User=root)

for tool in cpio ssh-keygen; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install cpio openssh-client)"
done
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
pkg_installed busybox-static || apt-get install -y -q busybox-static >/dev/null
busybox=$(dpkg -L busybox-static | grep -m1 '/bin/busybox$')

# Dom0's toolstack must be the libxenlight the project links against: Xen 4.17 on
# Debian 12, 4.20 on Debian 13.
xv=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' 'libxenmisc4.*' 2>/dev/null |
    sed -n 's/^ii  *libxenmisc//p' | sort -V | tail -1)
[[ -n $xv ]] || die "libxenmisc (libxenlight) is not installed"
xenver=$(dpkg-query -W -f='${Version}' "libxenmisc$xv")

resolve_kernel() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }' || true
}
kpkg=$(resolve_kernel)
if [[ -z $kpkg ]]; then
    apt-get update -qq
    kpkg=$(resolve_kernel)
fi
[[ -n $kpkg ]] || die "cannot resolve linux-image-amd64"
kver=${kpkg#linux-image-}

debs=(
    "xen-hypervisor-$xv-amd64=$xenver" "xen-utils-$xv=$xenver"
    "xen-utils-common=$xenver" "xenstore-utils=$xenver"
    dropbear-bin libtomcrypt1 libtommath1 "$kpkg"
)
mkdir -p "$tmp/debs"
(cd "$tmp/debs" && apt-get "${apt_opts[@]}" download -q "${debs[@]}" >/dev/null) ||
    die "apt-get download ${debs[*]} failed"
pkg=$tmp/pkg
for d in "$tmp"/debs/*.deb; do dpkg-deb -x "$d" "$pkg"; done

# --- the hypervisor and the dom0 kernel
gunzip -c "$pkg/boot/xen-$xv-amd64.gz" >"$tmp/xen"
cp "$pkg/boot/vmlinuz-$kver" "$tmp/vmlinuz"

# --- dom0's root file system (merged /usr like Debian 12, so that ldd's
# /lib/x86_64-linux-gnu/... paths and /usr/lib/... paths are the same files)
root=$tmp/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/lib/x86_64-linux-gnu,usr/lib64,dev,proc,sys,tmp,run,root/.ssh,etc/ssh,etc/dropbear,var/lib,var/log}
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"
ln -s ../run "$root/var/run"
ln -s ../run/lock "$root/var/lock"
chmod 1777 "$root/tmp"
chmod 700 "$root/root" "$root/root/.ssh"
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true

# The Xen toolstack, at the path libxl expects (it runs libxl-save-helper from
# /usr/lib/xen-VERSION/bin). boot/ (hvmloader) is left out: PVH guests need none.
mkdir -p "$root/usr/lib/xen-$xv"
cp -a "$pkg/usr/lib/xen-$xv/bin" "$pkg/usr/lib/xen-$xv/lib" "$root/usr/lib/xen-$xv/"
cp -a "$pkg/etc/xen" "$root/etc/"
for b in "$root"/usr/lib/xen-$xv/bin/*; do
    ln -s "../lib/xen-$xv/bin/${b##*/}" "$root/usr/sbin/${b##*/}"
done
cp -a "$pkg"/usr/bin/xenstore* "$root/usr/bin/"
cp -a "$pkg/usr/sbin/dropbear" "$root/usr/sbin/"
cp -a "$pkg/usr/bin/dropbearkey" "$root/usr/bin/"
cp -a "$pkg"/usr/lib/x86_64-linux-gnu/libtom*.so.* "$root/usr/lib/x86_64-linux-gnu/"
# bash and flock for the hotplug scripts, ssh for migration between hosts.
cp /bin/bash "$root/bin/bash"
cp /usr/bin/flock /usr/bin/ssh "$root/usr/bin/"

# --- Corosync 3 and Pacemaker 2.1: the daemons and the C command-line tools (no python,
# so no crmsh or pcs), from this machine's packages (tools/deps.sh installs them): they
# are the same Debian 12 builds as the libraries collect_libs takes from here. Nothing
# of it starts at boot; xenlab_cluster_up writes corosync.conf and starts it. knet's
# crypto and compression plugins are left out: the lab's corosync.conf uses neither.
for p in "${cluster_pkgs[@]}"; do
    pkg_installed "$p" || die "$p is not installed (run tools/deps.sh)"
done
mkdir -p "$root/usr/lib/pacemaker" "$root/usr/share" "$root/etc/corosync/uidgid.d" \
    "$root/var/lib/corosync" "$root/var/log/corosync" "$root/var/log/pacemaker" \
    "$root/var/lib/pacemaker/cib" "$root/var/lib/pacemaker/pengine" \
    "$root/var/lib/pacemaker/blackbox" "$root/var/lib/pacemaker/cores" \
    "$root/usr/lib/ocf/resource.d/pacemaker" "$root/usr/lib/ocf/resource.d/heartbeat" \
    "$root/usr/lib/ocf/lib/heartbeat"
cp -a /usr/sbin/corosync /usr/sbin/corosync-cfgtool /usr/sbin/corosync-cmapctl \
    /usr/sbin/corosync-quorumtool /usr/sbin/pacemakerd "$root/usr/sbin/"
cp -a /usr/lib/pacemaker/pacemaker-* "$root/usr/lib/pacemaker/"
# util-linux's setpriv (busybox's cannot drop capabilities): corosync runs without the
# right to lock its memory, see xenlab.sh.
cp /usr/bin/setpriv "$root/usr/bin/"
for t in crm_mon cibadmin crm_attribute attrd_updater crm_resource stonith_admin crm_node \
    crm_verify crmadmin crm_error crm_simulate crm_standby crm_failcount; do
    cp -a "/usr/sbin/$t" "$root/usr/sbin/"
done
cp -a /usr/share/pacemaker "$root/usr/share/"
# ocf:pacemaker:Dummy (a resource for cluster tests) and the OCF shell library it sources
cp -a /usr/lib/ocf/resource.d/pacemaker/Dummy "$root/usr/lib/ocf/resource.d/pacemaker/"
cp -a /usr/lib/ocf/resource.d/heartbeat/.ocf-* "$root/usr/lib/ocf/resource.d/heartbeat/"
for f in shellfuncs binaries directories returncodes rarun distro; do
    cp -a "/usr/lib/ocf/lib/heartbeat/ocf-$f" "$root/usr/lib/ocf/lib/heartbeat/"
done
# The fencer finds agents in /usr/sbin only.
install -m 755 "$here/fence_xenlab" "$root/usr/sbin/fence_xenlab"

# Libraries of every ELF file in the tree, found with ldd: the machine's
# libraries are the same Debian 12 builds; libtom* come from the packages.
collect_libs() {
    local f lib
    find "$root" -type f -perm -u+x -print0 |
        while IFS= read -r -d '' f; do
            head -c 4 "$f" | grep -q 'ELF' || continue
            LD_LIBRARY_PATH=$pkg/usr/lib/x86_64-linux-gnu ldd "$f" 2>/dev/null || true
        done |
        awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u |
        while read -r lib; do
            case $lib in "$pkg"/*) continue ;; esac
            [[ -e $root$lib ]] || install -D -m 755 "$(readlink -f "$lib")" "$root$lib"
        done
}
collect_libs
# xl aborts on pthread_cancel without libgcc_s (glibc dlopens it).
cp "$(readlink -f /lib/x86_64-linux-gnu/libgcc_s.so.1)" "$root/usr/lib/x86_64-linux-gnu/libgcc_s.so.1"

# --- kernel modules: the Xen back ends dom0 needs, and the NIC driver.
modules=(xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs xen-blkback xen-netback bridge e1000
    virtio_pci virtio_net)
. "$(dirname "${BASH_SOURCE[0]}")/../lib/kmods.sh"
copy_modules "$pkg" "$kver" "$root" "$root/bin/busybox" "${modules[@]}" ||
    die "cannot take dom0's modules from $kpkg"

# --- SSH: dropbear server with a host key made now; root logs in with the
# lab key. The same key lets one dom0 ssh to another (xl migrate uses ssh).
rm -f "$tmp/id_ed25519" "$tmp/id_ed25519.pub"
ssh-keygen -q -t ed25519 -N '' -C vmha-xenlab -f "$tmp/id_ed25519"
LD_LIBRARY_PATH=$pkg/usr/lib/x86_64-linux-gnu "$pkg/usr/bin/dropbearkey" -t ed25519 \
    -f "$root/etc/dropbear/dropbear_ed25519_host_key" >/dev/null 2>&1 ||
    die "dropbearkey failed"
install -m 600 "$tmp/id_ed25519" "$root/root/.ssh/id_ed25519"
install -m 600 "$tmp/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
cat >"$root/etc/ssh/ssh_config" <<'EOS'
Host *
    StrictHostKeyChecking no
    UserKnownHostsFile /dev/null
    LogLevel ERROR
    ServerAliveInterval 5
    ServerAliveCountMax 3
EOS
cat >"$root/etc/passwd" <<'EOS'
root:x:0:0:root:/root:/bin/sh
sshd:x:100:65534::/run/sshd:/bin/false
hacluster:x:90:90:Pacemaker:/var/lib/pacemaker:/bin/false
EOS
cat >"$root/etc/group" <<'EOS'
root:x:0:
haclient:x:90:hacluster
nogroup:x:65534:
EOS
echo 'root:*:19000:0:99999:7:::' >"$root/etc/shadow"
chmod 600 "$root/etc/shadow"
printf '/bin/sh\n/bin/bash\n' >"$root/etc/shells"
echo 'hosts: files' >"$root/etc/nsswitch.conf"

# --- init: busybox init runs /etc/rcS, then stays PID 1 and reaps orphans.
ln -s bin/busybox "$root/init"
cat >"$root/etc/inittab" <<'EOS'
::sysinit:/etc/rcS
::ctrlaltdel:/bin/busybox poweroff -f
EOS
cat >"$root/etc/rcS" <<'EOS'
#!/bin/busybox sh
# Bring up dom0 of a vmha Xen lab host.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs -o mode=755 tmpfs /run
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mkdir -p /run/lock /run/xen /run/xenstored /var/lib/xen /var/lib/xenstored \
    /var/log/xen/console /var/lib/vmha-test /run/crm
# Pacemaker's daemons run as hacluster (the image's files are all root's).
chown -R hacluster:haclient /var/lib/pacemaker /var/log/pacemaker /run/crm
chmod 750 /var/lib/pacemaker/cib /var/lib/pacemaker/pengine /var/lib/pacemaker/blackbox

say() { echo "vmha-dom0: $*"; }
arg() {
    for w in $(cat /proc/cmdline); do
        case $w in vmha.$1=*) echo "${w#*=}"; return 0 ;; esac
    done
    return 1
}
n=$(arg host || echo 1)
hosts=$(arg hosts || echo 8)
hostname "xen$n"
echo "xen$n" >/etc/hostname
{
    echo "127.0.0.1 localhost"
    i=1
    while [ "$i" -le "$hosts" ]; do echo "10.77.0.$i xen$i"; i=$((i + 1)); done
} >/etc/hosts

for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs e1000 virtio_pci virtio_net \
    bridge xen-netback xen-blkback; do
    modprobe "$m" || say "modprobe $m failed"
done
mount -t xenfs xenfs /proc/xen || say "cannot mount xenfs"

# Network first (it is not Xen): the management NIC answers ssh early.
ip link set lo up
for d in /sys/class/net/*; do
    dev=${d##*/}
    [ "$dev" = lo ] && continue
    mac=$(cat "$d/address")
    case $mac in
        52:54:00:77:*) ip addr add "10.77.0.$n/24" dev "$dev"; ip link set "$dev" up
                       say "$dev $mac 10.77.0.$n (inter-host)" ;;
        *) ip addr add 10.0.2.15/24 dev "$dev"; ip link set "$dev" up
           ip route add default via 10.0.2.2 dev "$dev"
           say "$dev $mac 10.0.2.15 (management)" ;;
    esac
done

/usr/sbin/xenstored --pid-file /run/xenstored.pid || say "xenstored failed"
/usr/sbin/xen-init-dom0 || say "xen-init-dom0 failed"
/usr/sbin/xenconsoled --pid-file=/run/xenconsoled.pid \
    --log=guest --log-dir=/var/log/xen/console || say "xenconsoled failed"

# -W: dropbear's default 24 KiB channel window caps a migration stream at
# ~0.5 MB/s over the emulated link; 4 MiB gives ~10 MB/s.
# -K 5: keepalives, so a session whose client host lost power ends (~15-20 s).
# xenconsoled names a guest's log when the console connects: for a guest that arrives by
# `xl migrate` that is still "NAME--incoming". Once the domain is renamed, give the file
# its final name (the open file goes on receiving the output; an older guest-NAME.log of
# an earlier stay on this host becomes guest-NAME.log.old).
(
    cd /var/log/xen/console || exit 0
    while :; do
        for f in guest-*--incoming.log; do
            [ -e "$f" ] || continue
            name=${f#guest-}
            name=${name%--incoming.log}
            names=$(for d in $(xenstore-list /local/domain 2>/dev/null); do
                        xenstore-read "/local/domain/$d/name" 2>/dev/null; done)
            echo "$names" | grep -qxF -- "$name--incoming" && continue
            echo "$names" | grep -qxF -- "$name" || continue
            [ -e "guest-$name.log" ] && mv -f "guest-$name.log" "guest-$name.log.old"
            mv -f "$f" "guest-$name.log"
        done
        sleep 1
    done
) </dev/null >/dev/null 2>&1 &

dropbear -E -F -p 22 -W 4194304 -K 5 -r /etc/dropbear/dropbear_ed25519_host_key \
    </dev/null >>/var/log/dropbear.log 2>&1 &
say "up: $(hostname)"
EOS
chmod 755 "$root/etc/rcS"

(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
    cpio --quiet -o -H newc -R 0:0 | gzip -6) >"$tmp/dom0.cpio.gz"
# What dom0 holds already: xenlab_up adds only the libraries missing from it.
(cd "$root" && find . -mindepth 1 ! -type d | sed 's/^\.//' | LC_ALL=C sort) >"$tmp/dom0.files"

rm -f "$out/.stamp"
mv "$tmp/xen" "$tmp/vmlinuz" "$tmp/dom0.cpio.gz" "$tmp/dom0.files" "$out/"
install -m 600 "$tmp/id_ed25519" "$out/id_ed25519"
install -m 644 "$tmp/id_ed25519.pub" "$out/id_ed25519.pub"
echo "$kver" >"$out/kernel-version"
echo "$xenver" >"$out/xen-version"
echo "$stamp" >"$out/.stamp"

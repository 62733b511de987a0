#!/bin/bash
# The agent without a hypervisor: meta-data, unknown actions, logging.
# The meta-data is checked against every schema tools validate it with: OCF 1.1 (pcs), the
# resource-agents DTD with the OCF 1.1 additions it declares (ocf-tester), and
# resource-agents' metadata.rng for everything OCF 1.0 knows (the reloadable marks aside).
set -u
. "$(dirname "$0")/../lib/tap.sh"
AGENT=$1
NODE_AGENT=$2
VMHA=$3
md=$(mktemp)
trap 'rm -rf "$md" "$md".*' EXIT

"$AGENT" meta-data >"$md"
ok "meta-data exits 0" eq 0 $?
ok "meta-data validates against OCF 1.1 (pcs's ocf-1.1.rng)" \
    xmllint --noout --relaxng /usr/share/pcs/data/ocf-1.1.rng "$md"
ok "meta-data validates against ra-api-1.dtd as ocf-tester checks it" \
    sh -c "cd /usr/share/resource-agents && xmllint --noout --valid - <'$md'"
sed 's/ reloadable="1"//' "$md" >"$md.10"
ok "meta-data without reloadable marks validates against metadata.rng" \
    xmllint --noout --relaxng /usr/share/resource-agents/metadata.rng "$md.10"
ok "reloadable parameters are marked" grep -q 'name="migration_speed".*reloadable="1"' "$md"
ok "config is required and not reloadable" grep -q '<parameter name="config" unique="1" required="1">' "$md"
ok "every parameter has a default or is required" \
    sh -c "! xmllint --xpath '//parameter[@required=\"0\"]/content[not(@default)]' '$md' 2>/dev/null | grep -q ."
for a in start stop monitor migrate_to migrate_from validate-all meta-data reload-agent \
    promote demote notify; do
    ok "action $a is advertised" grep -q "<action name=\"$a\"" "$md"
done
"$AGENT" frobnicate 2>"$md.err"
ok "an unknown action returns 3" eq 3 $?
ok "an unknown action gives one exit reason" eq 1 "$(grep -c '^ocf-exit-reason:' "$md.err")"
# Under the cluster (crm_feature_set is set by pacemaker-execd), lines go to Pacemaker's log;
# by hand, to stderr. The exit reason goes to stderr either way.
env -i PATH="$PATH" OCF_RESKEY_crm_feature_set=3.16.2 PCMK_logfile="$md.pcmk" \
    OCF_RESKEY_config=/nonexistent/vm.xml "$AGENT" validate-all 2>"$md.err"
ok "validate-all with a missing config -> 5" eq 5 $?
ok "under the cluster, the failure is in Pacemaker's log" \
    contains "$md.pcmk" "vmha-guest"
ok "  with the reason" contains "$md.pcmk" "validate-all failed: config: cannot open /nonexistent/vm.xml"
ok "  and stderr has only the exit reason" eq "ocf-exit-reason:config: cannot open /nonexistent/vm.xml: No such file or directory" "$(cat "$md.err")"
env -i PATH="$PATH" OCF_RESKEY_config=/nonexistent/vm.xml "$AGENT" validate-all 2>"$md.err"
ok "by hand, the log line goes to stderr" contains "$md.err" "vmha-guest: error: validate-all failed"
# A UEFI guest on Xen: libxenlight keeps no variables, validate-all must say so.
cat >"$md.xen" <<'EOX'
<domain type='xen'>
  <name>xenefi</name>
  <memory unit='MiB'>256</memory>
  <os>
    <type arch='x86_64' machine='xenfv'>hvm</type>
    <loader type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>
  </os>
</domain>
EOX
env -i PATH="$PATH" OCF_RESKEY_config="$md.xen" OCF_RESKEY_state_dir=/srv/cluster/vmha \
    "$AGENT" validate-all >/dev/null 2>"$md.err"
ok "validate-all: a UEFI guest on Xen with a state store -> 6" eq 6 $?
ok "  saying its variables cannot be kept" contains "$md.err" "libxenlight keeps no UEFI variables"
env -i PATH="$PATH" OCF_RESKEY_config="$md.xen" "$AGENT" validate-all >/dev/null 2>&1
ok "  (without state_dir nothing is promised: 0)" eq 0 $?
# Promotion exists only for replicated guests: elsewhere it is "not implemented" (3), the
# answer ocf-tester and Pacemaker read as "not a promotable agent here".
env -i PATH="$PATH" OCF_RESKEY_config="$md.xen" "$AGENT" promote >/dev/null 2>"$md.err"
ok "promote of a guest that is not replicated -> 3" eq 3 $?
ok "  saying how to make it replicated" contains "$md.err" "set replicate=true"
env -i PATH="$PATH" OCF_RESKEY_config="$md.xen" "$AGENT" notify >/dev/null 2>&1
ok "notify of a guest that is not replicated -> 0" eq 0 $?
# A replicated guest's writable disks: each node's own raw file or block device, kept in step
# with the checkpoints. What cannot be is refused, with the reason.
cat >"$md.disk" <<'EOX'
<domain type='qemu'>
  <name>ftdisk</name>
  <memory unit='MiB'>96</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><disk type='file' device='disk'><source file='/srv/d.img'/><target dev='vda'/></disk></devices>
</domain>
EOX
env -i PATH="$PATH" OCF_RESKEY_config="$md.disk" OCF_RESKEY_replicate=true "$AGENT" validate-all \
    >/dev/null 2>"$md.err"
ok "validate-all: a replicated guest whose disk is missing here -> 6" eq 6 $?
ok "  naming it" contains "$md.err" "cannot open disk /srv/d.img"
env -i PATH="$PATH" OCF_RESKEY_config="$md.disk" "$AGENT" validate-all >/dev/null 2>&1
ok "  (not replicated, the disk is fine: 0)" eq 0 $?
mkdir -p "$md.disks" && truncate -s 1M "$md.disks/d.img"
disk_xml() { # EXTRA-IN-DISK
    sed -e "s|/srv/d.img|$md.disks/d.img|" -e "s|<target dev='vda'/>|<target dev='vda'/>$1|" \
        -e "s|<os>|<memoryBacking><source type='file'/><access mode='shared'/></memoryBacking><os>|" \
        "$md.disk"
}
vrun() { # CONFIG: validate-all of a replicated guest, its stderr in $md.err
    env -i PATH="$PATH" OCF_RESKEY_config="$1" OCF_RESKEY_replicate=true \
        OCF_RESKEY_replication_insecure=true OCF_RESKEY_CRM_meta_on_node=node1 "$AGENT" \
        validate-all >/dev/null 2>"$md.err"
}
disk_xml "" >"$md.rawdisk"
vrun "$md.rawdisk"
ok "validate-all: a replicated guest with its own raw disk -> 0" eq 0 $?
# A UEFI guest: its checkpoints carry its variable store, which a promotion puts where its
# <nvram> says; without one there is no such place.
uefi_xml() { # NVRAM-ELEMENT
    disk_xml "" | sed "s|</os>|<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>$1</os>|"
}
uefi_xml "<nvram>$md.disks/ftdisk_VARS.fd</nvram>" >"$md.uefi"
vrun "$md.uefi"
ok "validate-all: a replicated UEFI guest with its <nvram> -> 0" eq 0 $?
uefi_xml "" >"$md.uefinonv"
vrun "$md.uefinonv"
ok "validate-all: a replicated UEFI guest without an <nvram> path -> 6" eq 6 $?
ok "  saying what to add" contains "$md.err" "add <nvram>PATH</nvram> to <os>"
disk_xml "<driver name='qemu' type='qcow2'/>" >"$md.qcow"
vrun "$md.qcow"
ok "validate-all: a replicated guest's qcow2 disk -> 6" eq 6 $?
ok "  saying it must be raw" contains "$md.err" "so it must be raw"
disk_xml "<shareable/>" >"$md.shareable"
vrun "$md.shareable"
ok "validate-all: a replicated guest's shareable disk -> 6" eq 6 $?
# Another node's replica marked the disk's directory: the storage is shared.
touch "$md.disks/.vmha-ftdisk.node2"
vrun "$md.rawdisk"
ok "validate-all: a disk on storage another node sees -> 6" eq 6 $?
ok "  naming the node" contains "$md.err" "on storage that node node2 sees too"
rm -f "$md.disks/.vmha-ftdisk.node2"
touch "$md.disks/.vmha-ftdisk.node1"
vrun "$md.rawdisk"
ok "  (this node's own mark: 0)" eq 0 $?
# The replicator reads a replicated guest's memory: it must be a shared file.
grep -v '<devices>' "$md.disk" >"$md.nomemfd"
env -i PATH="$PATH" OCF_RESKEY_config="$md.nomemfd" OCF_RESKEY_replicate=true "$AGENT" \
    validate-all >/dev/null 2>"$md.err"
ok "validate-all: a replicated guest whose memory is not a shared file -> 6" eq 6 $?
ok "  saying what to add" contains "$md.err" "<source type='file'/><access mode='shared'/>"
# A memfd, which QEMU 8.1 and later copies whole into every checkpoint, is refused too.
sed "s|<os>|<memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking><os>|" \
    "$md.nomemfd" >"$md.realmemfd"
env -i PATH="$PATH" OCF_RESKEY_config="$md.realmemfd" OCF_RESKEY_replicate=true \
    OCF_RESKEY_replication_insecure=true "$AGENT" validate-all >/dev/null 2>"$md.err"
ok "validate-all: a replicated guest whose memory is a memfd -> 6" eq 6 $?
ok "  saying why" contains "$md.err" "a memfd is copied whole into every checkpoint"
sed "s|<os>|<memoryBacking><source type='file'/><access mode='shared'/></memoryBacking><os>|" \
    "$md.nomemfd" >"$md.memfd"
# The stream is authenticated with the cluster's key: a replicated guest needs it here.
(umask 077 && head -c 64 /dev/urandom >"$md.authkey")
env -i PATH="$PATH" OCF_RESKEY_config="$md.memfd" OCF_RESKEY_replicate=true \
    OCF_RESKEY_replication_key="$md.authkey" "$AGENT" validate-all >/dev/null 2>&1
ok "  with it (and the cluster's key): 0" eq 0 $?
env -i PATH="$PATH" OCF_RESKEY_config="$md.memfd" OCF_RESKEY_replicate=true \
    OCF_RESKEY_replication_key="$md.nokey" "$AGENT" validate-all >/dev/null 2>"$md.err"
ok "validate-all: a replicated guest without the cluster's key here -> 5" eq 5 $?
ok "  naming the key it looked for" contains "$md.err" "replication_key $md.nokey"
cp "$md.authkey" "$md.openkey" && chmod 644 "$md.openkey"
env -i PATH="$PATH" OCF_RESKEY_config="$md.memfd" OCF_RESKEY_replicate=true \
    OCF_RESKEY_replication_key="$md.openkey" "$AGENT" validate-all >/dev/null 2>"$md.err"
ok "validate-all: a key others can read -> 6" eq 6 $?
ok "  saying so" contains "$md.err" "can be read or written by group or others"
ln -s "$md.authkey" "$md.linkkey"
env -i PATH="$PATH" OCF_RESKEY_config="$md.memfd" OCF_RESKEY_replicate=true \
    OCF_RESKEY_replication_key="$md.linkkey" "$AGENT" validate-all >/dev/null 2>"$md.err"
ok "validate-all: a key behind a symbolic link -> 6" eq 6 $?
env -i PATH="$PATH" OCF_RESKEY_config="$md.memfd" OCF_RESKEY_replicate=true \
    OCF_RESKEY_replication_insecure=true "$AGENT" validate-all >/dev/null 2>&1
ok "validate-all: replication_insecure needs no key -> 0" eq 0 $?
env -i PATH="$PATH" OCF_RESKEY_config="$md.memfd" OCF_RESKEY_replicate=true \
    OCF_RESKEY_replication_insecure=true OCF_RESKEY_replication_tls=true "$AGENT" validate-all \
    >/dev/null 2>"$md.err"
ok "validate-all: replication_insecure with replication_tls -> 6" eq 6 $?
sed "s|<memory unit='MiB'>|<memory unit='b'>1|" "$md.memfd" >"$md.oddmem"
env -i PATH="$PATH" OCF_RESKEY_config="$md.oddmem" OCF_RESKEY_replicate=true \
    OCF_RESKEY_replication_insecure=true "$AGENT" validate-all >/dev/null 2>"$md.err"
ok "validate-all: memory that is not whole pages -> 6" eq 6 $?
# On a real KVM host libvirt gives a virtio NIC vhost-net, whose output QEMU cannot hold:
# refused, naming the XML that makes it replicable; several queues likewise.
nic="<interface type='network'><source network='default'/><model type='virtio'/>"
sed -e "s|<domain type='qemu'>|<domain type='kvm'>|" -e "s|</os>|</os><devices>$nic</interface></devices>|" \
    "$md.memfd" >"$md.vhost"
env -i PATH="$PATH" OCF_RESKEY_config="$md.vhost" OCF_RESKEY_replicate=true \
    OCF_RESKEY_replication_insecure=true "$AGENT" validate-all >/dev/null 2>"$md.err"
ok "validate-all: a kvm guest's virtio NIC with vhost-net -> 6" eq 6 $?
ok "  naming the XML to add" contains "$md.err" "add <driver name='qemu'/> to each <interface>"
sed "s|<model type='virtio'/>|&<driver name='qemu'/>|" "$md.vhost" >"$md.novhost"
env -i PATH="$PATH" OCF_RESKEY_config="$md.novhost" OCF_RESKEY_replicate=true \
    OCF_RESKEY_replication_insecure=true "$AGENT" validate-all >/dev/null 2>"$md.err"
ok "  with it: 0" eq 0 $?
sed "s|<driver name='qemu'/>|<driver name='qemu' queues='2'/>|" "$md.novhost" >"$md.mq"
env -i PATH="$PATH" OCF_RESKEY_config="$md.mq" OCF_RESKEY_replicate=true \
    OCF_RESKEY_replication_insecure=true "$AGENT" validate-all >/dev/null 2>"$md.err"
ok "validate-all: a NIC with 2 queues -> 6" eq 6 $?
ok "  saying what to remove" contains "$md.err" "remove queues= from its <driver/>"

# Install settings and boot artifact digests.
printf 'a kernel' >"$md.vmlinuz"
cat >"$md.direct" <<EOX
<domain type='qemu'>
  <name>direct</name>
  <memory unit='MiB'>96</memory>
  <os><type arch='x86_64'>hvm</type><kernel>$md.vmlinuz</kernel><cmdline>quiet</cmdline></os>
</domain>
EOX
v() { env -i PATH="$PATH" OCF_RESKEY_config="$md.direct" "$@" "$AGENT" validate-all >/dev/null 2>"$md.err"; }
v OCF_RESKEY_install_cmdline=auto=true
ok "validate-all: install settings without state_dir -> 6" eq 6 $?
ok "  saying why" contains "$md.err" "an install configuration needs state_dir"
v OCF_RESKEY_state_dir=/tmp OCF_RESKEY_install_config=/x.xml OCF_RESKEY_install_media=/y.iso
ok "validate-all: install_config and the shorthand together -> 6" eq 6 $?
v OCF_RESKEY_kernel_sha256=abc
ok "validate-all: kernel_sha256 that is not a SHA-256 -> 6" eq 6 $?
good=$(sha256sum "$md.vmlinuz" | cut -d' ' -f1)
v OCF_RESKEY_kernel_sha256="$good"
ok "validate-all: the kernel has its pinned digest -> 0" eq 0 $?
v OCF_RESKEY_kernel_sha256="$(printf 'other' | sha256sum | cut -d' ' -f1)"
ok "validate-all: the kernel differs from its pinned digest -> 5" eq 5 $?
ok "  naming the file and both digests" contains "$md.err" "kernel $md.vmlinuz has sha256 $good here"
# artifact_key: the key file is checked as opened, and with a key the agent never records.
mkdir -m 0700 "$md.sd"
head -c 32 /dev/urandom >"$md.key"
chmod 0600 "$md.key"
v OCF_RESKEY_state_dir="$md.sd" OCF_RESKEY_artifact_key="$md.key"
ok "validate-all: artifact_key and no record of the artifacts -> 6" eq 6 $?
ok "  saying what to check and run" contains "$md.err" \
    "check the kernel and initrd on this host, then run 'vmha boot --record direct'"
ok "  and nothing was recorded" test ! -e "$md.sd/direct/artifacts"
# The operator records (on a file-backed CIB that names the guest): signed, and then a start
# or validate-all takes it.
cibadmin --empty >"$md.bootcib" 2>/dev/null
CIB_file="$md.bootcib" cibadmin -C -o resources -X "<primitive id=\"direct\" class=\"ocf\" provider=\"vmha\" type=\"guest\"><instance_attributes id=\"direct-ia\"><nvpair id=\"direct-a1\" name=\"config\" value=\"$md.direct\"/><nvpair id=\"direct-a2\" name=\"state_dir\" value=\"$md.sd\"/><nvpair id=\"direct-a3\" name=\"artifact_key\" value=\"$md.key\"/></instance_attributes></primitive>" 2>/dev/null
CIB_file="$md.bootcib" "$VMHA" boot --record direct >"$md.out" 2>"$md.err"
ok "vmha boot --record -> 0" eq 0 $?
ok "  it measured the kernel and signed the record" \
    eval 'grep -q "(signed)" "$md.out" && grep -q "^kernel_sha256=$good$" "$md.sd/direct/artifacts" &&
          grep -q "^hmac_sha256=" "$md.sd/direct/artifacts"'
v OCF_RESKEY_state_dir="$md.sd" OCF_RESKEY_artifact_key="$md.key"
ok "validate-all: with the operator's signed record -> 0" eq 0 $?
printf 'another kernel' >"$md.vmlinuz"
v OCF_RESKEY_state_dir="$md.sd" OCF_RESKEY_artifact_key="$md.key"
ok "validate-all: the kernel changed since it was recorded -> 5" eq 5 $?
printf 'a kernel' >"$md.vmlinuz"
rm -f "$md.sd/direct/artifacts"
chmod 0640 "$md.key"
v OCF_RESKEY_state_dir="$md.sd" OCF_RESKEY_artifact_key="$md.key"
ok "validate-all: a key file the group can read -> 6" eq 6 $?
ok "  saying so" contains "$md.err" "can be read or written by group or others"
chmod 0600 "$md.key"
ln -s "$md.key" "$md.keylink"
v OCF_RESKEY_state_dir="$md.sd" OCF_RESKEY_artifact_key="$md.keylink"
ok "validate-all: a key file that is a symlink -> 6" eq 6 $?
ok "  saying so" contains "$md.err" "is a symbolic link"
: >"$md.key0"
chmod 0600 "$md.key0"
v OCF_RESKEY_state_dir="$md.sd" OCF_RESKEY_artifact_key="$md.key0"
ok "validate-all: an empty key file -> 6" eq 6 $?
ok "  saying so" contains "$md.err" "is empty"
v OCF_RESKEY_state_dir="$md.sd"
ok "validate-all: without artifact_key, no record is fine -> 0" eq 0 $?
rm -rf "$md.sd"

# The state store: what a writer to shared storage plants there is refused, with the reason,
# and at once (a FIFO must not hold the agent until its timeout).
mkdir -m 0700 "$md.d"
sd="$md.d/state"
mkdir -m 0700 "$sd"
sv() {
    SECONDS=0
    timeout 60 env -i PATH="$PATH" OCF_RESKEY_config="$md.direct" OCF_RESKEY_state_dir="$sd" \
        "$@" "$AGENT" validate-all >/dev/null 2>"$md.err"
}
sv
ok "validate-all: a guest with direct kernel boot and a state store -> 0" eq 0 $?
chmod 0775 "$sd"
sv
ok "validate-all: a state_dir its group can write -> 6" eq 6 $?
ok "  saying why and what to do" contains "$md.err" "can be written by its group (mode 0775)"
node_run() { env -i PATH="$PATH" VMHA_RUNDIR="$md.run" OCF_RESOURCE_INSTANCE=vmha-node "$@" >"$md.out" 2>"$md.err"; }
node_run OCF_RESKEY_state_dir="$sd" "$NODE_AGENT" validate-all
ok "node: validate-all with a state_dir its group can write -> 6" eq 6 $?
ok "  saying why" contains "$md.err" "ocf-exit-reason:state_dir $sd can be written by its group"
chmod 0700 "$sd"
mkdir -m 0700 "$sd/direct"
mkfifo "$sd/direct/artifacts"
sv
ok "validate-all: a FIFO planted as the artifacts record -> 1" eq 1 $?
ok "  at once" test "$SECONDS" -lt 5
ok "  saying what it is" contains "$md.err" "ocf-exit-reason:cannot check the boot artifacts of guest direct: $sd/direct/artifacts is a FIFO, not a regular file"
rm "$sd/direct/artifacts"
sha256sum "$md.vmlinuz" >"$md.planted"
ln -s "$md.planted" "$sd/direct/artifacts"
sv
ok "validate-all: a symbolic link planted as the artifacts record -> 1" eq 1 $?
ok "  saying so" contains "$md.err" "$sd/direct/artifacts is a symbolic link: the state store follows none"
rm -r "$sd/direct"
mkdir -m 0700 "$md.elsewhere"
ln -s "$md.elsewhere" "$sd/direct"
sv
ok "validate-all: the guest's directory planted as a symbolic link -> 1" eq 1 $?
ok "  saying so" contains "$md.err" "$sd/direct is a symbolic link: the state store follows none"
rm "$sd/direct"
# A guest name is a directory name in the store: '../x' would lead out of it.
sed 's|<name>direct</name>|<name>../x</name>|' "$md.direct" >"$md.badname"
for action in validate-all start; do
    env -i PATH="$PATH" OCF_RESKEY_config="$md.badname" OCF_RESKEY_state_dir="$sd" \
        OCF_RESKEY_CRM_meta_timeout=20000 "$AGENT" $action >/dev/null 2>"$md.err"
    ok "$action: a guest named '../x' -> 6" eq 6 $?
    ok "  saying why" contains "$md.err" "ocf-exit-reason:the guest name '../x' in $md.badname cannot be used"
done
ok "  and nothing was made outside state_dir" test ! -e "$md.d/x"

# --- Xen through libxenlight (hypervisor=libxl): the xl.cfg is checked without a hypervisor;
# actions that need one fail clearly on a machine without Xen, and never say "not running".
printf 'name = "xl1"\ntype = "pvh"\nkernel = "%s"\nmemory = 128\n' "$md.vmlinuz" >"$md.xl"
xlrun() {
    local cfg=$1 action=$2
    shift 2
    env -i PATH="$PATH" OCF_RESKEY_hypervisor=libxl OCF_RESKEY_config="$cfg" \
        OCF_RESKEY_CRM_meta_timeout=20000 "$@" "$AGENT" "$action" >/dev/null 2>"$md.err"
}
xlrun "$md.xl" validate-all
if [ $? -eq 5 ] && grep -q "does not include" "$md.err"; then
    skip "libxl: validate-all of a PVH xl.cfg -> 0" "built without the libxl backend"
else
    xlrun "$md.xl" validate-all
    ok "libxl: validate-all of a PVH xl.cfg -> 0" eq 0 $?
    { cat "$md.xl"; echo "pci = [ '01:00.0' ]"; } >"$md.xlpci"
    xlrun "$md.xlpci" validate-all
    ok "libxl: validate-all of an xl.cfg with a key vmha does not take -> 6" eq 6 $?
    ok "  naming the key" contains "$md.err" "'pci' is not supported by vmha's libxl backend"
    xlrun "$md.xl" validate-all OCF_RESKEY_replicate=true OCF_RESKEY_replication_key="$md.authkey"
    ok "libxl: validate-all of a replicated PVH guest without NIC or writable disk -> 0" eq 0 $?
    { cat "$md.xl"; echo "vif = [ 'bridge=xenbr0' ]"; } >"$md.xlvif"
    xlrun "$md.xlvif" validate-all OCF_RESKEY_replicate=true
    ok "libxl: validate-all refuses replicate=true for a guest with a NIC -> 6" eq 6 $?
    ok "  saying why (no network buffering)" contains "$md.err" "without that network buffering"
    { cat "$md.xl"; echo "disk = [ 'format=raw, vdev=xvda, access=rw, target=$md.vmlinuz' ]"; } \
        >"$md.xldisk"
    xlrun "$md.xldisk" validate-all OCF_RESKEY_replicate=true
    ok "libxl: validate-all refuses replicate=true for a guest with a writable disk -> 6" eq 6 $?
    ok "  saying so" contains "$md.err" "it has a writable disk"
    xlrun "$md.xl" validate-all OCF_RESKEY_replicate=true OCF_RESKEY_replication_tls=true
    ok "libxl: validate-all refuses replication_tls -> 6" eq 6 $?
    ok "  saying it is for libvirt guests" contains "$md.err" "replication_tls is for libvirt guests"
    xlrun "$md.xl" monitor OCF_RESKEY_CRM_meta_interval=0
    ok "libxl: a probe on a host without Xen -> 1, never 7" eq 1 $?
    ok "  saying libxenlight cannot be opened" contains "$md.err" "cannot open libxenlight"
    xlrun "$md.xl" validate-all OCF_RESKEY_migration_transport=tls
    ok "libxl: validate-all with migration_transport=tls -> 6 (ssh only)" eq 6 $?
    ok "  saying so" contains "$md.err" "migrates over ssh only"
    xlrun "$md.xl" validate-all OCF_RESKEY_migrate_target=qemu+tls://%n/system
    ok "libxl: validate-all with a libvirt migrate_target -> 6" eq 6 $?
fi

# --- ocf:vmha:node ---
"$NODE_AGENT" meta-data >"$md.node"
ok "node: meta-data validates against OCF 1.1" \
    xmllint --noout --relaxng /usr/share/pcs/data/ocf-1.1.rng "$md.node"
ok "node: meta-data validates against ra-api-1.dtd" \
    sh -c "cd /usr/share/resource-agents && xmllint --noout --valid - <'$md.node'"
node_run() { env -i PATH="$PATH" VMHA_RUNDIR="$md.run" OCF_RESOURCE_INSTANCE=vmha-node "$@" >"$md.out" 2>"$md.err"; }
node_run "$NODE_AGENT" validate-all
ok "node: validate-all without state_dir -> 6" eq 6 $?
ok "node:   with one exit reason" eq "ocf-exit-reason:the required parameter state_dir is not set" "$(grep ocf-exit-reason "$md.err")"
node_run OCF_RESKEY_state_dir=srv "$NODE_AGENT" validate-all
ok "node: a relative state_dir -> 6" eq 6 $?
node_run OCF_RESKEY_state_dir=/srv/vmha "$NODE_AGENT" monitor
ok "node: monitor before start -> 7" eq 7 $?
node_run OCF_RESKEY_state_dir=/srv/vmha OCF_RESKEY_CRM_meta_timeout=5000 "$NODE_AGENT" start
ok "node: start without a cluster -> 1" eq 1 $?
ok "node:   saying it cannot reach the CIB" contains "$md.err" "ocf-exit-reason:cannot connect to the CIB"

# --- vmha, the tool ---
"$VMHA" --help >"$md.help"
ok "vmha --help -> 0" eq 0 $?
ok "vmha --help fits 80 columns" sh -c "! awk 'length > 80' '$md.help' | grep -q ."
ok "vmha --help as the golden file (tests/agent/data)" diff -u "$(dirname "$0")/data/vmha-help.txt" "$md.help"
"$VMHA" frobnicate >/dev/null 2>"$md.err"
ok "vmha with an unknown command -> 2" eq 2 $?
ok "  and says so" contains "$md.err" "unknown command 'frobnicate'"
"$VMHA" paths --help >"$md.help"
ok "vmha paths --help -> 0" eq 0 $?
ok "  fits 80 columns" sh -c "! awk 'length > 80' '$md.help' | grep -q ."
"$VMHA" --timeout 2 paths >/dev/null 2>"$md.err"
ok "vmha paths without a cluster -> 1" eq 1 $?
ok "  and says why" contains "$md.err" "cannot connect to the CIB"
"$VMHA" --timeout nope paths >/dev/null 2>&1
ok "vmha --timeout nope -> 2" eq 2 $?
# The golden store is the project's own copy of Debian 12's (tests/data/ovmf), whatever the
# host's firmware is; the first line of the output is the file's path.
vars=$md.vars/OVMF_VARS_4M.ms.fd
mkdir -p "$md.vars"
gzip -dc "$(dirname "$0")/../data/ovmf/OVMF_VARS_4M.ms.fd.gz" >"$vars"
"$VMHA" nvram show "$vars" >"$md.nv" 2>&1
ok "vmha nvram show FILE -> 0" eq 0 $?
ok "  shows the deleted BootOrder as none" grep -qx "BootOrder: none" "$md.nv"
sed 1d "$(dirname "$0")/data/OVMF_VARS_4M.ms.show" >"$md.golden"
sed 1d "$md.nv" >"$md.nv1"
ok "  exactly as the golden output (tests/agent/data)" \
    sh -c "diff -u '$md.golden' '$md.nv1' | sed 's/^/# /'; cmp -s '$md.golden' '$md.nv1'"
ok "  and the boot entries" grep -q "^Boot0001\* UEFI QEMU HARDDISK" "$md.nv"
"$VMHA" --json nvram show "$vars" >"$md.json"
ok "vmha --json nvram show FILE is JSON with 3 boot entries" python3 -c \
    "import json,sys; d=json.load(open('$md.json')); assert len(d['boot_entries']) == 3, d"
# The host's own firmware (Debian 12's or 13's) is read too, whatever its facts.
"$VMHA" nvram show /usr/share/OVMF/OVMF_VARS_4M.ms.fd >"$md.nv" 2>&1
ok "vmha nvram show on this host's OVMF_VARS_4M.ms.fd -> 0, an authenticated store" \
    grep -q "^store: authenticated" "$md.nv"
head -c 50000 "$vars" >"$md.cut"
"$VMHA" nvram show "$md.cut" >/dev/null 2>"$md.err"
ok "vmha nvram show on a truncated file -> 1" eq 1 $?
ok "  saying so" contains "$md.err" "truncated: the firmware volume is 540672 bytes, the file 50000"
for c in status migrate failover check boot; do
    "$VMHA" $c --help >"$md.help"
    ok "vmha $c --help -> 0, within 80 columns" sh -c "! awk 'length > 80' '$md.help' | grep -q ."
done
"$VMHA" --timeout 2 status >/dev/null 2>"$md.err"
ok "vmha status without a cluster -> 1" eq 1 $?
ok "  and says why" contains "$md.err" "cannot connect to the CIB"
# On a file-backed CIB (Pacemaker's own way to read a CIB offline): a replicated guest whose
# stream is not authenticated is shouted about; one with the cluster's key is not.
cibadmin --empty >"$md.cib" 2>/dev/null
ft_rsc() { # ID INSECURE
    printf '<clone id="%s-clone"><meta_attributes id="%s-m"><nvpair id="%s-m1" name="promotable" value="true"/></meta_attributes><primitive id="%s" class="ocf" provider="vmha" type="guest"><instance_attributes id="%s-ia"><nvpair id="%s-a1" name="config" value="/srv/%s.xml"/><nvpair id="%s-a2" name="name" value="%s"/><nvpair id="%s-a3" name="replicate" value="true"/><nvpair id="%s-a4" name="replication_insecure" value="%s"/></instance_attributes></primitive></clone>' \
        "$1" "$1" "$1" "$1" "$1" "$1" "$1" "$1" "$1" "$1" "$1" "$2"
}
CIB_file="$md.cib" cibadmin -C -o resources -X "$(ft_rsc lab1 true)" 2>/dev/null &&
    CIB_file="$md.cib" cibadmin -C -o resources -X "$(ft_rsc prod1 false)" 2>/dev/null
CIB_file="$md.cib" "$VMHA" status >"$md.out" 2>"$md.err"
ok "vmha status on a file-backed CIB -> 0" eq 0 $?
ok "  warns of the guest replicated without authentication" \
    contains "$md.out" "WARNING: lab1 replicates WITHOUT AUTHENTICATION"
ok "  and of no other" eval '[ "$(grep -c WARNING "$md.out")" = 1 ]'
CIB_file="$md.cib" "$VMHA" --json status >"$md.out" 2>"$md.err"
ok "  --json says how each stream is authenticated" \
    eval 'grep -q "\"guest\":\"lab1\".*\"replication_auth\":\"none\"" "$md.out" &&
          grep -q "\"guest\":\"prod1\".*\"replication_auth\":\"key\"" "$md.out"'
"$VMHA" status --watch=0.1 >/dev/null 2>&1
ok "vmha status --watch=0.1 -> 2" eq 2 $?
"$VMHA" migrate web1 >/dev/null 2>&1
ok "vmha migrate without a host -> 2" eq 2 $?
"$VMHA" failover web1 extra >/dev/null 2>&1
ok "vmha failover with too many arguments -> 2" eq 2 $?
"$VMHA" nvram frob >/dev/null 2>&1
ok "vmha nvram with an unknown command -> 2" eq 2 $?
"$VMHA" nvram --help >"$md.help"
ok "vmha nvram --help fits 80 columns" sh -c "! awk 'length > 80' '$md.help' | grep -q ."

plan_done
exit $((TAP_FAILED > 0))

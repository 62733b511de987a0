#!/bin/bash
# A private libvirtd for tests, isolated from the machine's own libvirt.
#
#   libvirtd-env.sh start DIR      start it; prints the client URI last
#   libvirtd-env.sh stop DIR       destroy guests, kill everything, unmount
#   libvirtd-env.sh exec DIR CMD…  run CMD inside its mount namespace
#
# A holder process (a small perl subreaper, parent of libvirtd and QEMU)
# keeps a private mount namespace in which /etc/libvirt, /run/libvirt,
# /var/lib/libvirt, /var/log/libvirt and /var/cache/libvirt are bind
# mounts of DIR/{etc,run,lib,log,cache} (and /run a copy-on-write
# overlay). The network namespace is the machine's own. Clients outside use
#   qemu+unix:///system?socket=DIR/libvirt-sock
# (a symlink to DIR/run/libvirt-sock). Files handed to QEMU (kernel,
# initrd, serial logs) must live outside those five directories, e.g.
# under DIR or /tmp, so that they have the same path on both sides.
set -euo pipefail

prog=${0##*/}
die() { echo "$prog: $*" >&2; exit 1; }
log() { echo "$prog: $*" >&2; }
usage() {
    echo "usage: $prog start DIR | stop DIR | exec DIR CMD..." >&2
    exit 2
}

ns_of() { readlink "/proc/$1/ns/mnt" 2>/dev/null || true; }
alive() { # running and not a zombie
    local st
    st=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
    [[ -n $st && $st != Z && $st != X ]]
}
uri() { echo "qemu+unix:///system?socket=$dir/libvirt-sock"; }

# The namespace recorded for DIR if some process of ours still holds it.
# Never returns the namespace we run in: stop must not kill the machine.
our_ns() {
    local ns pid
    ns=$(cat "$dir/holder.ns" 2>/dev/null) || return 1
    [[ -n $ns && $ns != "$(ns_of self)" && $ns != "$(ns_of 1)" ]] || return 1
    for pid in "$(cat "$dir/holder.pid" 2>/dev/null || true)" \
               "$(cat "$dir/libvirtd.pid" 2>/dev/null || true)"; do
        if [[ -n $pid ]] && alive "$pid" && [[ $(ns_of "$pid") == "$ns" ]]; then
            echo "$ns"
            return 0
        fi
    done
    return 1
}

pids_in_ns() { # every live process in mount namespace $1, except $2
    local p pid
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        [[ $pid != "${2:-}" && $(ns_of "$pid") == "$1" ]] && alive "$pid" && echo "$pid"
    done
    return 0
}

# kill_wait SECONDS PID...: SIGTERM, then SIGKILL after SECONDS.
kill_wait() {
    local secs=$1 pid left i
    shift
    [[ $# -gt 0 ]] || return 0
    kill -TERM "$@" 2>/dev/null || true
    for ((i = 0; i < secs * 10 + 50; i++)); do
        left=()
        for pid in "$@"; do alive "$pid" && left+=("$pid"); done
        [[ ${#left[@]} -eq 0 ]] && return 0
        if ((i == secs * 10)); then kill -KILL "${left[@]}" 2>/dev/null || true; fi
        sleep 0.1
    done
    die "processes would not die: ${left[*]}"
}

cmd_stop() {
    local ns holder pids pid name
    if ns=$(our_ns); then
        holder=$(cat "$dir/holder.pid" 2>/dev/null || true)
        alive "${holder:-0}" || holder=
        # Destroy guests through libvirt first so that it records the fact.
        if timeout 5 virsh -q -c "$(uri)" version >/dev/null 2>&1; then
            for name in $(timeout 10 virsh -q -c "$(uri)" list --name 2>/dev/null); do
                timeout 10 virsh -q -c "$(uri)" destroy "$name" >/dev/null 2>&1 || true
            done
        fi
        pid=$(cat "$dir/libvirtd.pid" 2>/dev/null || true)
        if [[ -n $pid ]] && alive "$pid" && [[ $(ns_of "$pid") == "$ns" ]]; then
            kill_wait 10 "$pid"
        fi
        # Whatever else lives in the namespace (QEMU, exec'd commands).
        mapfile -t pids < <(pids_in_ns "$ns" "$holder")
        kill_wait 5 "${pids[@]}"
        if [[ -n $holder ]]; then
            # Not strictly needed (the mounts die with the namespace) but
            # it proves nothing is left busy.
            nsenter -t "$holder" -m -r -- umount -R /run/libvirt /run /etc/libvirt \
                /var/lib/libvirt /var/log/libvirt /var/cache/libvirt 2>/dev/null ||
                log "warning: unmount failed; mounts go away with the namespace"
            kill_wait 2 "$holder"
        fi
        mapfile -t pids < <(pids_in_ns "$ns")
        [[ ${#pids[@]} -eq 0 ]] || die "still in the namespace: ${pids[*]}"
    fi
    rm -f "$dir/holder.pid" "$dir/holder.ns" "$dir/libvirtd.pid" "$dir/libvirt-sock"
}

write_config() {
    local host_uuid
    # A stable, distinct host UUID per DIR: libvirt refuses to migrate
    # between two daemons that report the same one.
    [[ -s $dir/host-uuid ]] || cat /proc/sys/kernel/random/uuid >"$dir/host-uuid"
    host_uuid=$(cat "$dir/host-uuid")

    cp -a /etc/libvirt/. "$dir/etc/"
    # No guests, networks or pools from the machine's configuration: an
    # autostarted "default" network would create virbr0 on the machine.
    rm -rf "$dir/etc/qemu" "$dir/etc/storage" "$dir/etc/secrets"
    mkdir -p "$dir/etc/qemu/networks"

    cat >"$dir/etc/libvirtd.conf" <<EOF
# Written by $prog: only root talks to this daemon.
unix_sock_group = "root"
unix_sock_ro_perms = "0770"
unix_sock_rw_perms = "0770"
unix_sock_admin_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "${VMHA_LIBVIRTD_LOG_LEVEL:-3}:file:$dir/libvirtd.log"
host_uuid = "$host_uuid"
EOF
    cat >"$dir/etc/qemu.conf" <<'EOF'
# Written by libvirtd-env.sh: QEMU as root without confinement, because
# this daemon shares the machine with others and has no systemd.
user = "root"
group = "root"
security_driver = "none"
# No xattrs on shared files (kernel, initrd): several daemons use them.
remember_owner = 0
cgroup_controllers = [ ]
namespaces = [ ]
# No virtlogd here: QEMU writes its log file directly.
stdio_handler = "file"
EOF
}

# Runs inside the new namespace, then execs "$@" (the reaper).
# /run/libvirt does not exist on this machine and creating it would touch
# the real /run: the namespace gets a copy-on-write /run instead (mounts
# under the machine's /run are not visible inside).
# shellcheck disable=SC2016 # expanded by the inner sh
mount_script='
    dir=$1
    shift
    mount -t overlay overlay \
        -o "lowerdir=/run,upperdir=$dir/run-ov/upper,workdir=$dir/run-ov/work" /run
    mkdir -p /run/libvirt
    mount --bind "$dir/run" /run/libvirt
    mount --bind "$dir/etc" /etc/libvirt
    mount --bind "$dir/lib" /var/lib/libvirt
    mount --bind "$dir/log" /var/log/libvirt
    mount --bind "$dir/cache" /var/cache/libvirt
    exec "$@"
'
# Holder and child subreaper: libvirtd and QEMU daemonise, and this
# machine's PID 1 reaps orphans only every second or so, which made every
# guest stop (destroy, poweroff) take ~1.4 s longer. perl-base is
# Essential in Debian; prctl(PR_SET_CHILD_SUBREAPER = 36, 1).
# shellcheck disable=SC2016 # perl code
reaper='
    my %prctl = (x86_64 => 157, aarch64 => 167);
    my $nr = $prctl{(POSIX::uname())[4]};
    defined $nr && syscall($nr, 36, 1, 0, 0, 0) == 0
        or warn "holder: no subreaper, guest exits are reaped late\n";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) { exec @ARGV or die "exec $ARGV[0]: $!" }
    while (1) {
        my $p = waitpid(-1, 0);
        if ($p < 0) { select(undef, undef, undef, 0.2) }
        # libvirtd --daemon returns non-zero if the daemon cannot start:
        # die so that start sees it at once.
        elsif ($p == $pid && $?) { die "holder: $ARGV[0] failed\n" }
    }
'

start_failed() {
    local rc=$?
    log "start failed; see $dir/libvirtd.log"
    cmd_stop || true
    exit "$rc"
}

cmd_start() {
    local holder ns deadline i
    [[ -z $(our_ns) ]] || die "already running in $dir (stop it first)"
    # libvirtd refuses to start without them, even with user = "root";
    # Debian's libvirt-daemon-system creates them in the real /etc.
    if ! getent passwd libvirt-qemu >/dev/null || ! getent group libvirt-qemu >/dev/null; then
        die "user/group libvirt-qemu missing: install libvirt-daemon-system"
    fi
    cmd_stop # leftovers of a crashed run

    # Fresh state on every start, except the QEMU capabilities cache
    # (probing takes seconds) and old logs.
    rm -rf "${dir:?}"/{etc,run,lib,run-ov}
    mkdir -p "$dir"/{etc,run,lib,log/qemu,cache,run-ov/upper,run-ov/work}
    echo "=== $prog start $(date -Is)" >>"$dir/libvirtd.log"
    write_config
    ln -s run/libvirt-sock "$dir/libvirt-sock"

    # Any failure from here on: tear down what was started.
    trap start_failed EXIT
    # The holder: unshare makes the namespace, sh sets up the mounts, then
    # perl stays as holder and subreaper and starts libvirtd. setsid: a
    # test runner that kills its process group must not take the
    # environment down behind stop's back.
    setsid unshare --mount --propagation private -- sh -ec "$mount_script" \
        sh "$dir" perl -MPOSIX -e "$reaper" -- \
        libvirtd --daemon --pid-file "$dir/libvirtd.pid" \
        </dev/null >>"$dir/libvirtd.log" 2>&1 &
    holder=$!
    echo "$holder" >"$dir/holder.pid"
    for ((i = 0; i < 50; i++)); do
        ns=$(ns_of "$holder")
        [[ -n $ns && $ns != "$(ns_of self)" ]] && break
        alive "$holder" || die "holder died"
        sleep 0.1
    done
    [[ -n $ns && $ns != "$(ns_of self)" ]] || die "holder did not unshare"
    echo "$ns" >"$dir/holder.ns"

    deadline=$((SECONDS + 30))
    until virsh -q -c "$(uri)" version >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "libvirtd did not answer within 30 s"
        alive "$holder" || die "holder died"
        sleep 0.2
    done
    # The first QEMU use probes capabilities for seconds: do it now.
    virsh -q -c "$(uri)" domcapabilities --virttype qemu >/dev/null
    trap - EXIT
    uri
}

cmd_exec() {
    local holder
    our_ns >/dev/null || die "not running in $dir"
    holder=$(cat "$dir/holder.pid")
    alive "$holder" || die "holder of $dir is gone"
    exec nsenter -t "$holder" -m -r -- "$@"
}

[[ $# -ge 2 ]] || usage
action=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd)
shift 2
[[ $EUID -eq 0 ]] || die "must run as root"
case $action in
start) [[ $# -eq 0 ]] || usage; cmd_start ;;
stop) [[ $# -eq 0 ]] || usage; cmd_stop ;;
exec) [[ $# -gt 0 ]] || usage; cmd_exec "$@" ;;
*) usage ;;
esac

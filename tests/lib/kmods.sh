# copy_modules PKGROOT KVER DESTROOT BUSYBOX MODULE...: copies each module of the kernel
# package unpacked in PKGROOT, with the modules it depends on, into DESTROOT/lib/modules/KVER,
# then writes DESTROOT's modules.dep (busybox depmod) so that modprobe works there.
# Debian 12's kernel packages keep modules under /lib/modules, plain; Debian 13's under
# /usr/lib/modules, xz-compressed (stored decompressed), some of them built in (skipped).
copy_modules() {
    local pkg=$1 kver=$2 dest=$3 busybox=$4 base kmods m line f
    shift 4
    base=$pkg
    kmods=$base/lib/modules/$kver
    if [[ ! -d $kmods ]]; then
        base=$(mktemp -d)
        mkdir -p "$base/lib"
        ln -s "$pkg/usr/lib/modules" "$base/lib/modules"
        kmods=$base/lib/modules/$kver
    fi
    [[ -d $kmods ]] || { echo "copy_modules: no modules for $kver in $pkg" >&2; return 1; }
    "$busybox" depmod -b "$base" "$kver" || return 1
    for m in "$@"; do
        grep -qE "/$m\.ko$" "$kmods/modules.builtin" 2>/dev/null && continue
        line=$(grep -E "^kernel/.*/$m\.ko(\.xz)?:" "$kmods/modules.dep") ||
            { echo "copy_modules: module $m not in the $kver kernel" >&2; return 1; }
        for f in ${line/:/}; do
            mkdir -p "$(dirname "$dest/lib/modules/$kver/${f%.xz}")"
            case $f in
            *.xz) "$busybox" unxz -c "$kmods/$f" >"$dest/lib/modules/$kver/${f%.xz}" ;;
            *) install -m 644 "$kmods/$f" "$dest/lib/modules/$kver/$f" ;;
            esac
        done
    done
    [[ $base == "$pkg" ]] || rm -rf "$base"
    "$busybox" depmod -b "$dest" "$kver"
}

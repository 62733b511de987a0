# build_deb SRC OUTDIR: builds vmha's Debian package from the tree in SRC (a copy in OUTDIR,
# without build directories; dpkg-buildpackage writes beside it) and prints the .deb's path.
# The unit suite runs in the README's test command already: nocheck here. Its log is
# OUTDIR/build.log.
build_deb() {
    local src=$1 out=$2
    mkdir -p "$out/src/vmha"
    (cd "$src" && { git ls-files -co --exclude-standard 2>/dev/null ||
        find . -type f ! -path './build*' ! -path './.git/*'; }) |
        grep -v '^\(\./\)\?build' | (cd "$src" && tar -cf - -T -) | tar -xf - -C "$out/src/vmha"
    (cd "$out/src/vmha" && DEB_BUILD_OPTIONS=nocheck dpkg-buildpackage -b -uc -us) \
        >"$out/build.log" 2>&1 || return 1
    ls "$out"/src/vmha_*_*.deb | head -n 1
}

/* A replicated guest's writable disks on the backup's side: which they are (this node's
 * configuration names them; a stream only numbers them), and the disk records an epoch
 * carries, checked before anything is written and then written. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmha/cleanup.h"
#include "vmha/remus.h"
#include "vmha/state.h"

VMHA_DEFINE_CLEANUP(DIR *, closedir)

/* A file's or block device's size in bytes. */
static int disk_size(const char *path, uint64_t *ret, struct vmha_err *err)
{
    _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return vmha_err_set(err, -errno, "cannot open disk %s: %s", path, strerror(errno));
    if (S_ISREG(st.st_mode)) {
        *ret = (uint64_t)st.st_size;
        return 0;
    }
    if (S_ISBLK(st.st_mode) && ioctl(fd, BLKGETSIZE64, ret) == 0)
        return 0;
    return vmha_err_set(err, -EINVAL, "disk %s is neither a file nor a block device", path);
}

int remus_disks_add(struct remus_disks *ds, const char *spec, struct vmha_err *err)
{
    const char *eq = strchr(spec, '=');
    if (ds->n == REMUS_DISKS_MAX)
        return vmha_err_set(err, -E2BIG, "more than %d writable disks", REMUS_DISKS_MAX);
    struct remus_disk *d = &ds->d[ds->n];
    if (!eq || eq == spec || (size_t)(eq - spec) >= sizeof(d->target) || eq[1] != '/' ||
        strlen(eq + 1) >= sizeof(d->path))
        return vmha_err_set(err, -EINVAL, "bad disk '%s' (TARGET=/PATH)", spec);
    snprintf(d->target, sizeof(d->target), "%.*s", (int)(eq - spec), spec);
    snprintf(d->path, sizeof(d->path), "%s", eq + 1);
    int r = disk_size(d->path, &d->size, err);
    if (r < 0)
        return r;
    ds->n++;
    return 0;
}

int remus_disks_save(const char *dir, const struct remus_disks *ds, struct vmha_err *err)
{
    _cleanup_(store_kv_clear) struct store_kv kv = {0};
    char key[32], val[32];
    snprintf(val, sizeof(val), "%zu", ds->n);
    int r = store_kv_set(&kv, "n", val);
    for (size_t i = 0; i < ds->n && r == 0; i++) {
        snprintf(key, sizeof(key), "target_%zu", i);
        r = store_kv_set(&kv, key, ds->d[i].target);
        snprintf(key, sizeof(key), "path_%zu", i);
        if (r == 0)
            r = store_kv_set(&kv, key, ds->d[i].path);
        snprintf(key, sizeof(key), "size_%zu", i);
        snprintf(val, sizeof(val), "%" PRIu64, ds->d[i].size);
        if (r == 0)
            r = store_kv_set(&kv, key, val);
    }
    if (r < 0)
        return vmha_err_set(err, r, "cannot record the disks: %s", strerror(-r));
    return store_write(dir, "disks", &kv, false, err);
}

int remus_disks_load(const char *dir, struct remus_disks *ret, struct vmha_err *err)
{
    _cleanup_(store_kv_clear) struct store_kv kv = {0};
    *ret = (struct remus_disks){0};
    int r = store_read(dir, "disks", &kv, err);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    uint64_t n = 0;
    const char *v = store_kv_get(&kv, "n");
    if (!v || vmha_parse_uint(v, REMUS_DISKS_MAX, &n) < 0)
        return vmha_err_set(err, -EINVAL, "%s/disks is garbled", dir);
    for (size_t i = 0; i < n; i++) {
        struct remus_disk *d = &ret->d[i];
        char key[32];
        snprintf(key, sizeof(key), "target_%zu", i);
        const char *t = store_kv_get(&kv, key);
        snprintf(key, sizeof(key), "path_%zu", i);
        const char *p = store_kv_get(&kv, key);
        snprintf(key, sizeof(key), "size_%zu", i);
        const char *z = store_kv_get(&kv, key);
        if (!t || !p || !z || strlen(t) >= sizeof(d->target) || strlen(p) >= sizeof(d->path) ||
            vmha_parse_uint(z, UINT64_MAX, &d->size) < 0)
            return vmha_err_set(err, -EINVAL, "%s/disks is garbled", dir);
        snprintf(d->target, sizeof(d->target), "%s", t);
        snprintf(d->path, sizeof(d->path), "%s", p);
    }
    ret->n = (size_t)n;
    return 0;
}

int remus_drecs_check(const unsigned char *p, size_t len, const struct remus_disks *ds, bool end,
                      size_t *used, struct vmha_err *err)
{
    size_t at = 0;
    for (uint64_t i = 0;; i++) {
        if (at == len && !end) {
            *used = at;
            return 0;
        }
        if (len - at < REMUS_DREC_LEN)
            return vmha_err_set(err, -EPROTO, "disk record %" PRIu64 " cut short", i);
        uint32_t disk = remus_get_be32(p + at), flags = remus_get_be32(p + at + 4);
        uint64_t off = remus_get_be64(p + at + 8), n = remus_get_be64(p + at + 16);
        at += REMUS_DREC_LEN;
        if (disk == REMUS_DREC_END && end && flags == 0 && off == 0 && n == 0) {
            *used = at;
            return 0;
        }
        if (!ds || disk >= ds->n || (flags & ~REMUS_DREC_ZERO) || off > ds->d[disk].size ||
            n > ds->d[disk].size - off)
            return vmha_err_set(err, -EPROTO,
                                "disk record %" PRIu64 " (disk %" PRIu32 ", %" PRIu64
                                " bytes at %" PRIu64 ") is outside the guest's disks",
                                i, disk, n, off);
        if (!(flags & REMUS_DREC_ZERO)) {
            if (n > len - at)
                return vmha_err_set(err, -EPROTO, "disk record %" PRIu64 " cut short", i);
            at += (size_t)n;
        }
    }
}

static int write_zeroes(int fd, uint64_t off, uint64_t n)
{
    static const unsigned char zero[64 << 10];
    while (n > 0) {
        size_t k = n < sizeof(zero) ? (size_t)n : sizeof(zero);
        ssize_t w = pwrite(fd, zero, k, (off_t)off);
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        off += (uint64_t)w;
        n -= (uint64_t)w;
    }
    return 0;
}

static int write_all_at(int fd, const unsigned char *p, uint64_t off, uint64_t n)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, (size_t)n, (off_t)off);
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        p += w;
        off += (uint64_t)w;
        n -= (uint64_t)w;
    }
    return 0;
}

int remus_drecs_apply(const unsigned char *p, size_t len, const struct remus_disks *ds,
                      struct vmha_err *err)
{
    int fds[REMUS_DISKS_MAX];
    for (size_t i = 0; i < REMUS_DISKS_MAX; i++)
        fds[i] = -1;
    int r = 0;
    size_t at = 0;
    while (r == 0 && len - at >= REMUS_DREC_LEN) {
        uint32_t disk = remus_get_be32(p + at), flags = remus_get_be32(p + at + 4);
        uint64_t off = remus_get_be64(p + at + 8), n = remus_get_be64(p + at + 16);
        at += REMUS_DREC_LEN;
        if (disk == REMUS_DREC_END)
            break;
        if (disk >= ds->n) { /* checked before: not reached */
            r = vmha_err_set(err, -EPROTO, "disk record for disk %" PRIu32, disk);
            break;
        }
        if (fds[disk] < 0 && (fds[disk] = open(ds->d[disk].path, O_WRONLY | O_CLOEXEC)) < 0) {
            r = vmha_err_set(err, -errno, "cannot open disk %s: %s", ds->d[disk].path,
                             strerror(errno));
            break;
        }
        int w = (flags & REMUS_DREC_ZERO) ? write_zeroes(fds[disk], off, n)
                                          : write_all_at(fds[disk], p + at, off, n);
        if (w < 0)
            r = vmha_err_set(err, w, "cannot write disk %s: %s", ds->d[disk].path, strerror(-w));
        if (!(flags & REMUS_DREC_ZERO))
            at += (size_t)n;
    }
    for (size_t i = 0; i < REMUS_DISKS_MAX; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return r;
}

/* The directory of a disk file, and the prefix of the marks in it for guest. */
static int mark_dir(const struct remus_disk *d, char *dir, size_t size)
{
    char copy[sizeof(d->path)];
    snprintf(copy, sizeof(copy), "%s", d->path);
    int n = snprintf(dir, size, "%s", dirname(copy));
    return n > 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int remus_disks_mark(const struct remus_disks *ds, const char *guest, const char *node,
                     struct vmha_err *err)
{
    for (size_t i = 0; i < ds->n; i++) {
        char dir[sizeof(ds->d[i].path)], path[sizeof(dir) + 600];
        if (!is_file(ds->d[i].path) || mark_dir(&ds->d[i], dir, sizeof(dir)) < 0)
            continue;
        snprintf(path, sizeof(path), "%s/.vmha-%s.%s", dir, guest, node);
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
            return vmha_err_set(err, -errno, "cannot mark %s: %s", path, strerror(errno));
        close(fd);
    }
    return 0;
}

int remus_disks_shared(const struct remus_disks *ds, const char *guest, const char *node,
                       struct vmha_err *err)
{
    char prefix[300];
    int plen = snprintf(prefix, sizeof(prefix), ".vmha-%s.", guest);
    for (size_t i = 0; i < ds->n; i++) {
        char dir[sizeof(ds->d[i].path)];
        if (!is_file(ds->d[i].path) || mark_dir(&ds->d[i], dir, sizeof(dir)) < 0)
            continue;
        _cleanup_(closedirp) DIR *dp = opendir(dir);
        for (struct dirent *e = dp ? readdir(dp) : NULL; e; e = readdir(dp)) {
            if (strncmp(e->d_name, prefix, (size_t)plen) != 0 ||
                strcmp(e->d_name + plen, node) == 0)
                continue;
            return vmha_err_set(err, -EMEDIUMTYPE,
                                "its disk %s is on storage that node %s sees too (%s/%s): "
                                "each node needs its own copy of a replicated guest's disks, "
                                "or a failover would resume memory older than the disk",
                                ds->d[i].path, e->d_name + plen, dir, e->d_name);
        }
    }
    return 0;
}

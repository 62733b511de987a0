/* vmha's checkpoint engine, incrementally: what an epoch carries and how the backup keeps it.
 *
 * The guest's memory lives in a shared file, so the hypervisor's checkpoint (hv_ckpt_take)
 * holds only the device state; the replicator sends the memory pages that changed since the
 * previous checkpoint itself. The backup keeps the memory as a raw file (ram) and the device
 * state as dev.save. An epoch lands as a journal (ckpt.jrnl, renamed into place whole: the
 * commit) that is then applied; a journal left behind is applied again before anything
 * reads the checkpoint, so the pair is always exactly one committed checkpoint. A promotion
 * hands the pair to hv_ckpt_restore. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmha/cleanup.h"
#include "vmha/remus.h"

uint64_t remus_get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

void remus_put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (56 - 8 * i));
}

uint32_t remus_get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void remus_put_be32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (24 - 8 * i));
}

int remus_body_parse(const unsigned char *b, size_t n, const struct remus_disks *disks,
                     struct remus_body *ret, struct vmha_err *err)
{
    struct remus_body v = {.start = b, .end = b + n};
    const unsigned char *p = b;
    for (unsigned i = 0;; i++) {
        size_t left = (size_t)(v.end - p);
        if (left >= 16 && memcmp(p, REMUS_BODY_DISK, 8) == 0) {
            uint64_t len = remus_get_be64(p + 8);
            size_t used = 0;
            if (i == 0 || v.disk || v.nvram || len > left - 16)
                return vmha_err_set(err, -EPROTO,
                                    "checkpoint body's disk section is not where it "
                                    "belongs (section %u)",
                                    i);
            int r = remus_drecs_check(p + 16, (size_t)len, disks, false, &used, err);
            if (r < 0)
                return r;
            v.disk = p + 16;
            v.disk_len = len;
            p += 16 + len;
            continue;
        }
        if (left >= 16 && memcmp(p, REMUS_BODY_NVRAM, 8) == 0) {
            uint64_t len = remus_get_be64(p + 8);
            if (i == 0 || v.nvram || len > left - 16 || len == 0 || len > REMUS_NVRAM_MAX)
                return vmha_err_set(err, -EPROTO,
                                    "checkpoint body's NVRAM section is not where it belongs or "
                                    "has an impossible size (section %u, %llu bytes)",
                                    i, (unsigned long long)len);
            v.nvram = p + 16;
            v.nvram_len = len;
            p += 16 + len;
            continue;
        }
        bool delta = left >= 16 && memcmp(p, REMUS_BODY_DEVDELTA, 8) == 0;
        if (delta || (left >= 16 && memcmp(p, REMUS_BODY_DEV, 8) == 0)) {
            v.dev_len = remus_get_be64(p + 8);
            if (i == 0 || v.dev_len != left - 16)
                return vmha_err_set(err, -EPROTO,
                                    "checkpoint body's device state is not "
                                    "where it belongs (%llu bytes, %zu left, after %u "
                                    "sections)",
                                    (unsigned long long)v.dev_len, left - 16, i);
            /* A first checkpoint has nothing to be a delta of. */
            if (delta && v.full)
                return vmha_err_set(err, -EPROTO, "a whole checkpoint's device state is a delta");
            int r = delta ? remus_dev_delta_check(p + 16, (size_t)v.dev_len, err) : 0;
            if (r < 0)
                return r;
            v.dev = p + 16;
            v.dev_delta = delta;
            *ret = v;
            return 0;
        }
        if (left < 32 || memcmp(p, REMUS_BODY_RAM, 8) != 0 || v.disk || v.nvram)
            return vmha_err_set(err, -EPROTO,
                                "checkpoint body cut short or garbled "
                                "(section %u)",
                                i);
        uint64_t flags = remus_get_be64(p + 8), size = remus_get_be64(p + 16),
                 count = remus_get_be64(p + 24);
        if (i == 0) {
            v.full = flags & REMUS_BODY_FULL;
            v.ram_size = size;
        }
        /* count is bounded by the memory's pages before it is multiplied: a count near
         * 2^64 / 4104 would wrap the product to a small number. */
        if (size != v.ram_size || size == 0 || size % REMUS_PAGE ||
            ((flags & REMUS_BODY_FULL) && i > 0) || count > size / REMUS_PAGE ||
            count > (left - 32) / (8 + REMUS_PAGE))
            return vmha_err_set(err, -EPROTO,
                                "checkpoint body's memory section %u is "
                                "inconsistent (%llu pages of %llu bytes of memory)",
                                i, (unsigned long long)count, (unsigned long long)size);
        p += 32;
        for (uint64_t k = 0; k < count; k++, p += 8 + REMUS_PAGE)
            if (remus_get_be64(p) >= size / REMUS_PAGE)
                return vmha_err_set(err, -EPROTO,
                                    "checkpoint page %llu is outside the "
                                    "guest's memory",
                                    (unsigned long long)remus_get_be64(p));
        v.npages += count;
    }
}

static int path_in(char *buf, size_t size, const char *dir, const char *file)
{
    int n = snprintf(buf, size, "%s/%s", dir, file);
    return n > 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

/* The whole file, mapped read-only; *len 0 for an empty one. */
static int map_file(const char *path, const unsigned char **ret, size_t *len)
{
    _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return -errno;
    *len = (size_t)st.st_size;
    *ret = NULL;
    if (*len == 0)
        return 0;
    void *m = mmap(NULL, *len, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED)
        return -errno;
    *ret = m;
    return 0;
}

static void unmap(const unsigned char *p, size_t len)
{
    if (p && len)
        munmap((void *)p, len);
}

/* Serializes the backup's files between the receiver and a restore. A holder applies one
 * journal at most (well under a second): give up after LOCK_WAIT_MS. */
#define LOCK_WAIT_MS 10000
static int lock_dir(const char *dir, struct vmha_err *err)
{
    char path[4096];
    if (path_in(path, sizeof(path), dir, "ckpt.lock") < 0)
        return vmha_err_set(err, -ENAMETOOLONG, "path too long in %s", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return vmha_err_set(err, -errno, "cannot lock %s: %s", path, strerror(errno));
    for (int waited = 0; flock(fd, LOCK_EX | LOCK_NB) < 0; waited += 10) {
        int r = -errno;
        if (r != -EWOULDBLOCK || waited >= LOCK_WAIT_MS) {
            close(fd);
            return vmha_err_set(err, r == -EWOULDBLOCK ? -ETIMEDOUT : r, "cannot lock %s: %s", path,
                                r == -EWOULDBLOCK ? "another process holds it" : strerror(-r));
        }
        usleep(10 * 1000);
    }
    return fd;
}

/* A parsed body's device state and memory pages, into dir/dev.save and rpath. */
static int apply_body(const char *dir, const char *rpath, const struct remus_body *b,
                      struct vmha_err *err)
{
    char dpath[4096];
    if (path_in(dpath, sizeof(dpath), dir, "dev.save") < 0)
        return vmha_err_set(err, -ENAMETOOLONG, "path too long in %s", dir);
    /* The receiver rebuilds a delta before it commits: a journal holds the whole state. */
    if (b->dev_delta)
        return vmha_err_set(err, -EPROTO, "a journal holds a device state delta");
    /* The checkpoint only has to outlive the primary, not this host: no fsync. */
    int r = vmha_write_file(dpath, b->dev, b->dev_len, false, err);
    if (r < 0)
        return r;
    /* The NVRAM comes when it changed; a first checkpoint without one has none. */
    char npath[4096];
    if (path_in(npath, sizeof(npath), dir, REMUS_NVRAM_FILE) < 0)
        return vmha_err_set(err, -ENAMETOOLONG, "path too long in %s", dir);
    if (b->nvram && (r = vmha_write_file(npath, b->nvram, b->nvram_len, false, err)) < 0)
        return r;
    if (!b->nvram && b->full && unlink(npath) < 0 && errno != ENOENT)
        return vmha_err_set(err, -errno, "cannot remove %s: %s", npath, strerror(errno));
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (b->full ? O_TRUNC : 0);
    _cleanup_(closep) int fd = open(rpath, flags, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)b->ram_size) < 0)
        return vmha_err_set(err, -errno, "cannot write %s: %s", rpath, strerror(errno));
    /* The sections in order: a later one's page replaces an earlier one's. */
    const unsigned char *ram_end = b->disk ? b->disk - 16 : b->nvram ? b->nvram - 16 : b->dev - 16;
    for (const unsigned char *p = b->start; p < ram_end && r == 0;) {
        uint64_t count = remus_get_be64(p + 24);
        p += 32;
        for (uint64_t i = 0; i < count && r == 0; i++, p += 8 + REMUS_PAGE) {
            off_t at = (off_t)(remus_get_be64(p) * REMUS_PAGE);
            if (pwrite(fd, p + 8, REMUS_PAGE, at) != REMUS_PAGE)
                r = vmha_err_set(err, -EIO, "cannot write %s: %s", rpath, strerror(errno));
        }
    }
    return r;
}

static int apply_locked(const char *dir, struct vmha_err *err)
{
    char jpath[4096], rpath[4096];
    if (path_in(jpath, sizeof(jpath), dir, "ckpt.jrnl") < 0 ||
        path_in(rpath, sizeof(rpath), dir, "ram") < 0)
        return vmha_err_set(err, -ENAMETOOLONG, "path too long in %s", dir);
    const unsigned char *j = NULL;
    size_t jlen = 0;
    int r = map_file(jpath, &j, &jlen);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return vmha_err_set(err, r, "cannot read %s: %s", jpath, strerror(-r));
    struct remus_body b;
    struct remus_disks disks;
    if ((r = remus_disks_load(dir, &disks, err)) == 0 &&
        (r = remus_body_parse(j, jlen, &disks, &b, err)) == 0 &&
        (r = apply_body(dir, rpath, &b, err)) == 0 && b.disk)
        r = remus_drecs_apply(b.disk, (size_t)b.disk_len, &disks, err);
    if (r == 0 && unlink(jpath) < 0)
        r = vmha_err_set(err, -errno, "cannot remove %s: %s", jpath, strerror(errno));
    unmap(j, jlen);
    return r;
}

int remus_journal_apply(const char *dir, struct vmha_err *err)
{
    _cleanup_(closep) int lock = lock_dir(dir, err);
    if (lock < 0)
        return lock;
    return apply_locked(dir, err);
}

int remus_checkpoint_files(const char *dir, char *dev, size_t dev_size, char *ram, size_t ram_size,
                           struct vmha_err *err)
{
    int lock = lock_dir(dir, err);
    if (lock < 0)
        return lock;
    int r = apply_locked(dir, err);
    if (r == 0 &&
        (path_in(dev, dev_size, dir, "dev.save") < 0 || path_in(ram, ram_size, dir, "ram") < 0))
        r = vmha_err_set(err, -ENAMETOOLONG, "path too long in %s", dir);
    if (r == 0 && (access(dev, R_OK) < 0 || access(ram, R_OK) < 0))
        r = vmha_err_set(err, -ENOENT, "no checkpoint here (%s: %s)", dir, strerror(errno));
    if (r < 0) {
        close(lock);
        return r;
    }
    return lock;
}

int remus_checkpoint_drop(const char *dir, struct vmha_err *err)
{
    _cleanup_(closep) int lock = lock_dir(dir, err);
    if (lock < 0)
        return lock;
    static const char *const files[] = {"ckpt.meta", "ckpt.jrnl", "dev.save", "ram",
                                        REMUS_NVRAM_FILE};
    for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++) {
        char path[4096];
        if (path_in(path, sizeof(path), dir, files[i]) < 0)
            return vmha_err_set(err, -ENAMETOOLONG, "path too long in %s", dir);
        if (unlink(path) < 0 && errno != ENOENT)
            return vmha_err_set(err, -errno, "cannot remove %s: %s", path, strerror(errno));
    }
    return 0;
}

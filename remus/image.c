/* The libvirt engine's checkpoint, incrementally: what an epoch carries, how the backup
 * keeps it, and the save image a promotion restores.
 *
 * The guest's memory lives in a shared file (validate-all insists), so QEMU's migration
 * with x-ignore-shared writes only the device state and the small ROM blocks; the
 * replicator sends the memory pages that changed since the previous checkpoint itself.
 * The backup keeps the memory as a raw file (ram) and the device state as dev.save (the
 * save header, the XML, QEMU's stream without the shared RAM). An epoch lands as a
 * journal (ckpt.jrnl, renamed into place whole: the commit) that is then applied; a
 * journal left behind is applied again before anything reads the checkpoint, so the pair
 * is always exactly one committed checkpoint. For a restore, remus_checkpoint_image merges
 * the two into the ordinary save image libvirt reads: QEMU's stream with the RAM block's
 * pages put back in and the x-ignore-shared traces taken out. */
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

/* libvirt's save header: 16 bytes of magic, the version, then the XML area's length. */
#define SAVE_HEADER_LEN 92
#define SAVE_DATA_LEN_AT 20

/* QEMU's migration stream (migration/savevm.c, migration/ram.c). */
#define QEMU_VM_FILE_MAGIC 0x5145564du
#define QEMU_VM_FILE_VERSION 3u
#define QEMU_VM_SECTION_START 0x01
#define QEMU_VM_SUBSECTION 0x05
#define QEMU_VM_CONFIGURATION 0x07
#define RAM_SAVE_FLAG_MEM_SIZE 0x04
#define RAM_SAVE_FLAG_PAGE 0x08
#define RAM_SAVE_FLAG_CONTINUE 0x20

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

int remus_body_parse(const unsigned char *b, size_t n, struct remus_body *ret,
                     struct vmha_err *err)
{
    struct remus_body v = {.start = b, .end = b + n};
    const unsigned char *p = b;
    for (unsigned i = 0;; i++) {
        size_t left = (size_t)(v.end - p);
        if (left >= 16 && memcmp(p, REMUS_BODY_DEV, 8) == 0) {
            v.dev_len = remus_get_be64(p + 8);
            if (i == 0 || v.dev_len != left - 16)
                return vmha_err_set(err, -EPROTO, "checkpoint body's device state is not "
                                    "where it belongs (%llu bytes, %zu left, after %u "
                                    "sections)", (unsigned long long)v.dev_len, left - 16, i);
            v.dev = p + 16;
            *ret = v;
            return 0;
        }
        if (left < 32 || memcmp(p, REMUS_BODY_RAM, 8) != 0)
            return vmha_err_set(err, -EPROTO, "checkpoint body cut short or garbled "
                                "(section %u)", i);
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
            return vmha_err_set(err, -EPROTO, "checkpoint body's memory section %u is "
                                "inconsistent (%llu pages of %llu bytes of memory)", i,
                                (unsigned long long)count, (unsigned long long)size);
        p += 32;
        for (uint64_t k = 0; k < count; k++, p += 8 + REMUS_PAGE)
            if (remus_get_be64(p) >= size / REMUS_PAGE)
                return vmha_err_set(err, -EPROTO, "checkpoint page %llu is outside the "
                                    "guest's memory", (unsigned long long)remus_get_be64(p));
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
            return vmha_err_set(err, r == -EWOULDBLOCK ? -ETIMEDOUT : r, "cannot lock %s: %s",
                                path, r == -EWOULDBLOCK ? "another process holds it"
                                                        : strerror(-r));
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
    /* The checkpoint only has to outlive the primary, not this host: no fsync. */
    int r = vmha_write_file(dpath, b->dev, b->dev_len, false, err);
    if (r < 0)
        return r;
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (b->full ? O_TRUNC : 0);
    _cleanup_(closep) int fd = open(rpath, flags, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)b->ram_size) < 0)
        return vmha_err_set(err, -errno, "cannot write %s: %s", rpath, strerror(errno));
    /* The sections in order: a later one's page replaces an earlier one's. */
    for (const unsigned char *p = b->start; p < b->dev - 16 && r == 0;) {
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
    if ((r = remus_body_parse(j, jlen, &b, err)) == 0)
        r = apply_body(dir, rpath, &b, err);
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

/* A cursor over QEMU's stream; every read fails once it would run past the end. */
struct cur {
    const unsigned char *p;
    size_t left;
    bool bad;
};

static const unsigned char *take(struct cur *c, size_t n)
{
    if (c->bad || n > c->left) {
        c->bad = true;
        return NULL;
    }
    const unsigned char *p = c->p;
    c->p += n;
    c->left -= n;
    return p;
}

static uint64_t take_be(struct cur *c, int bytes)
{
    const unsigned char *p = take(c, (size_t)bytes);
    uint64_t v = 0;
    for (int i = 0; p && i < bytes; i++)
        v = v << 8 | p[i];
    return v;
}

static void put(FILE *f, const void *p, size_t n)
{
    if (n)
        fwrite(p, 1, n, f);
}

static void put_be(FILE *f, uint64_t v, int bytes)
{
    unsigned char b[8];
    for (int i = 0; i < bytes; i++)
        b[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
    put(f, b, (size_t)bytes);
}

static bool is_zero(const unsigned char *p)
{
    static const unsigned char zero[REMUS_PAGE];
    return memcmp(p, zero, REMUS_PAGE) == 0;
}

int remus_stream_merge(const unsigned char *s, size_t n, const unsigned char *ram,
                       size_t ram_size, FILE *out, struct vmha_err *err)
{
    struct cur c = {.p = s, .left = n};
    if (ram_size % REMUS_PAGE)
        return vmha_err_set(err, -EINVAL, "the checkpoint's memory is not whole pages");
    if (take_be(&c, 4) != QEMU_VM_FILE_MAGIC || take_be(&c, 4) != QEMU_VM_FILE_VERSION)
        return vmha_err_set(err, -EPROTO, "the device state is not a QEMU migration stream");
    put_be(out, QEMU_VM_FILE_MAGIC, 4);
    put_be(out, QEMU_VM_FILE_VERSION, 4);
    if (c.left && c.p[0] == QEMU_VM_CONFIGURATION) {
        take(&c, 1);
        uint64_t len = take_be(&c, 4);
        const unsigned char *machine = take(&c, len);
        put_be(out, QEMU_VM_CONFIGURATION, 1);
        put_be(out, len, 4);
        put(out, machine, machine ? len : 0);
        while (!c.bad && c.left && c.p[0] == QEMU_VM_SUBSECTION) {
            take(&c, 1);
            uint64_t nl = take_be(&c, 1);
            const unsigned char *name = take(&c, nl);
            uint64_t version = take_be(&c, 4);
            if (c.bad)
                break;
            const char *caps = "configuration/capabilities", *uuid = "configuration/uuid",
                       *bits = "configuration/target-page-bits";
            size_t copy = 0;
            if (nl == strlen(caps) && memcmp(name, caps, nl) == 0) {
                /* The restore runs without x-ignore-shared: drop it from the list that
                 * QEMU checks against its own capabilities. */
                uint64_t count = take_be(&c, 4);
                const unsigned char *keep[64];
                size_t kept = 0;
                for (uint64_t i = 0; i < count && !c.bad; i++) {
                    const unsigned char *cap = c.p;
                    uint64_t cl = take_be(&c, 1);
                    const unsigned char *cn = take(&c, cl);
                    if (!cn) /* cut short: only whole entries are written out */
                        break;
                    if (kept == 64)
                        return vmha_err_set(err, -EPROTO, "the device state lists more "
                                            "migration capabilities than QEMU has");
                    if (!(cl == 15 && memcmp(cn, "x-ignore-shared", 15) == 0))
                        keep[kept++] = cap;
                }
                if (c.bad)
                    break;
                if (kept == 0)
                    continue;
                put_be(out, QEMU_VM_SUBSECTION, 1);
                put_be(out, nl, 1);
                put(out, name, nl);
                put_be(out, version, 4);
                put_be(out, kept, 4);
                for (size_t i = 0; i < kept; i++)
                    put(out, keep[i], 1 + (size_t)keep[i][0]);
                continue;
            } else if (nl == strlen(uuid) && memcmp(name, uuid, nl) == 0) {
                copy = 16;
            } else if (nl == strlen(bits) && memcmp(name, bits, nl) == 0) {
                copy = 4;
            } else {
                return vmha_err_set(err, -EPROTO, "the device state has a configuration part "
                                    "this vmha does not know (%.*s)", (int)nl, name);
            }
            const unsigned char *body = take(&c, copy);
            put_be(out, QEMU_VM_SUBSECTION, 1);
            put_be(out, nl, 1);
            put(out, name, nl);
            put_be(out, version, 4);
            put(out, body, body ? copy : 0);
        }
    }
    /* RAM is the first section: its setup lists the blocks, then pages may follow. */
    const unsigned char *head = c.p;
    if (take_be(&c, 1) != QEMU_VM_SECTION_START)
        return vmha_err_set(err, -EPROTO, "the device state does not start with its memory");
    take_be(&c, 4); /* section id */
    uint64_t il = take_be(&c, 1);
    const unsigned char *idstr = take(&c, il);
    take_be(&c, 8); /* instance, version */
    if (c.bad || il != 3 || memcmp(idstr, "ram", 3) != 0)
        return vmha_err_set(err, -EPROTO, "the device state does not start with its memory");
    put(out, head, (size_t)(c.p - head));
    uint64_t total = take_be(&c, 8);
    if (!(total & RAM_SAVE_FLAG_MEM_SIZE))
        return vmha_err_set(err, -EPROTO, "the device state does not list its memory");
    put_be(out, total, 8);
    total &= ~(uint64_t)(REMUS_PAGE - 1);
    const unsigned char *ram_id = NULL;
    uint64_t ram_id_len = 0;
    unsigned blocks = 0;
    while (total && !c.bad && blocks++ < 4096) {
        uint64_t bl = take_be(&c, 1);
        const unsigned char *bid = take(&c, bl);
        uint64_t length = take_be(&c, 8);
        take_be(&c, 8); /* its address, sent only with x-ignore-shared */
        if (c.bad || length > total)
            break;
        put_be(out, bl, 1);
        put(out, bid, bl);
        put_be(out, length, 8);
        if (length == ram_size) {
            if (ram_id)
                return vmha_err_set(err, -EPROTO, "two memory blocks of the guest's size: "
                                    "which one is its RAM?");
            ram_id = bid;
            ram_id_len = bl;
        }
        total -= length;
    }
    if (c.bad || total)
        return vmha_err_set(err, -EPROTO, "the device state's list of memory blocks is cut short");
    if (!ram_id)
        return vmha_err_set(err, -EPROTO, "no memory block of the guest's size (%zu bytes) in "
                            "its device state", ram_size);
    /* The RAM block's pages; zero pages stay out (a restored guest's memory starts zeroed). */
    bool first = true;
    for (size_t off = 0; off < ram_size; off += REMUS_PAGE) {
        if (is_zero(ram + off))
            continue;
        if (first) {
            put_be(out, off | RAM_SAVE_FLAG_PAGE, 8);
            put_be(out, ram_id_len, 1);
            put(out, ram_id, ram_id_len);
            first = false;
        } else {
            put_be(out, off | RAM_SAVE_FLAG_PAGE | RAM_SAVE_FLAG_CONTINUE, 8);
        }
        put(out, ram + off, REMUS_PAGE);
    }
    /* The rest is QEMU's own: the setup's end marker, the ROM blocks, the devices. */
    put(out, c.p, c.left);
    if (ferror(out))
        return vmha_err_set(err, -EIO, "cannot write the checkpoint image: %s", strerror(errno));
    return 0;
}

int remus_checkpoint_image(const char *dir, char *path, size_t size, struct vmha_err *err)
{
    _cleanup_(closep) int lock = lock_dir(dir, err);
    if (lock < 0)
        return lock;
    int r = apply_locked(dir, err);
    if (r < 0)
        return r;
    char dpath[4096], rpath[4096], part[4096];
    if (path_in(dpath, sizeof(dpath), dir, "dev.save") < 0 ||
        path_in(rpath, sizeof(rpath), dir, "ram") < 0 ||
        path_in(part, sizeof(part), dir, "ckpt.save.part") < 0 ||
        path_in(path, size, dir, "ckpt.save") < 0)
        return vmha_err_set(err, -ENAMETOOLONG, "path too long in %s", dir);
    const unsigned char *dev = NULL, *ram = NULL;
    size_t dev_len = 0, ram_size = 0;
    if ((r = map_file(dpath, &dev, &dev_len)) < 0)
        return vmha_err_set(err, r, "no checkpoint here (%s: %s)", dpath, strerror(-r));
    if ((r = map_file(rpath, &ram, &ram_size)) < 0) {
        unmap(dev, dev_len);
        return vmha_err_set(err, r, "the checkpoint's memory is missing (%s: %s)", rpath,
                            strerror(-r));
    }
    FILE *out = NULL;
    uint32_t data_len = 0;
    if (dev_len >= SAVE_HEADER_LEN)
        memcpy(&data_len, dev + SAVE_DATA_LEN_AT, sizeof(data_len));
    size_t head = SAVE_HEADER_LEN + (size_t)data_len;
    if (dev_len < SAVE_HEADER_LEN || memcmp(dev, "LibvirtQemudSave", 16) != 0 || head > dev_len) {
        r = vmha_err_set(err, -EPROTO, "%s is not a libvirt save image", dpath);
        goto out;
    }
    if (!(out = fopen(part, "we"))) {
        r = vmha_err_set(err, -errno, "cannot create %s: %s", part, strerror(errno));
        goto out;
    }
    setvbuf(out, NULL, _IOFBF, 1 << 20);
    put(out, dev, head);
    if ((r = remus_stream_merge(dev + head, dev_len - head, ram, ram_size, out, err)) < 0)
        goto out;
    r = fclose(out) == 0 ? 0 : -errno;
    out = NULL;
    if (r == 0 && rename(part, path) < 0)
        r = -errno;
    if (r < 0)
        vmha_err_set(err, r, "cannot write %s: %s", path, strerror(-r));
out:
    if (out)
        fclose(out);
    if (r < 0)
        unlink(part);
    unmap(dev, dev_len);
    unmap(ram, ram_size);
    return r;
}

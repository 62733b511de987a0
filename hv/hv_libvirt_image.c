/* The libvirt backend's checkpoint image: what a replica restores from. A checkpoint is
 * kept as two files, the device state that ckpt_take wrote (libvirt's save header, the XML,
 * QEMU's migration stream taken with x-ignore-shared, so without the guest's RAM) and the
 * RAM as a raw file. A restore runs without x-ignore-shared, so the image merges them into
 * the ordinary save image libvirt reads: QEMU's stream with the RAM block's pages put back
 * in and the x-ignore-shared traces taken out. Both files came over the network: every
 * length is checked before use. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hv_libvirt_private.h"
#include "vmha/cleanup.h"

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
    static const unsigned char zero[HV_LIBVIRT_PAGE];
    return memcmp(p, zero, HV_LIBVIRT_PAGE) == 0;
}

/* The capabilities subsection (name, version read), without x-ignore-shared: the restore runs
 * without it, and QEMU checks the list against its own capabilities. */
static int merge_capabilities(struct cur *c, const unsigned char *name, uint64_t nl,
                              uint64_t version, FILE *out, struct vmha_err *err)
{
    uint64_t count = take_be(c, 4);
    const unsigned char *keep[64];
    size_t kept = 0;
    for (uint64_t i = 0; i < count && !c->bad; i++) {
        const unsigned char *cap = c->p;
        uint64_t cl = take_be(c, 1);
        const unsigned char *cn = take(c, cl);
        if (!cn) /* cut short: only whole entries are written out */
            break;
        if (kept == 64)
            return vmha_err_set(err, -EPROTO,
                                "the device state lists more "
                                "migration capabilities than QEMU has");
        if (!(cl == 15 && memcmp(cn, "x-ignore-shared", 15) == 0))
            keep[kept++] = cap;
    }
    if (c->bad || kept == 0)
        return 0;
    put_be(out, QEMU_VM_SUBSECTION, 1);
    put_be(out, nl, 1);
    put(out, name, nl);
    put_be(out, version, 4);
    put_be(out, kept, 4);
    for (size_t i = 0; i < kept; i++)
        put(out, keep[i], 1 + (size_t)keep[i][0]);
    return 0;
}

/* The configuration section, when there is one: the machine type, then the subsections this
 * vmha knows (capabilities, UUID, page bits), copied but for x-ignore-shared. */
static int merge_configuration(struct cur *c, FILE *out, struct vmha_err *err)
{
    if (!c->left || c->p[0] != QEMU_VM_CONFIGURATION)
        return 0;
    take(c, 1);
    uint64_t len = take_be(c, 4);
    const unsigned char *machine = take(c, len);
    put_be(out, QEMU_VM_CONFIGURATION, 1);
    put_be(out, len, 4);
    put(out, machine, machine ? len : 0);
    static const char caps[] = "configuration/capabilities", uuid[] = "configuration/uuid",
                      bits[] = "configuration/target-page-bits";
    while (!c->bad && c->left && c->p[0] == QEMU_VM_SUBSECTION) {
        take(c, 1);
        uint64_t nl = take_be(c, 1);
        const unsigned char *name = take(c, nl);
        uint64_t version = take_be(c, 4);
        if (c->bad)
            break;
        size_t copy = 0;
        if (nl == strlen(caps) && memcmp(name, caps, nl) == 0) {
            int r = merge_capabilities(c, name, nl, version, out, err);
            if (r < 0)
                return r;
            continue;
        } else if (nl == strlen(uuid) && memcmp(name, uuid, nl) == 0) {
            copy = 16;
        } else if (nl == strlen(bits) && memcmp(name, bits, nl) == 0) {
            copy = 4;
        } else {
            return vmha_err_set(err, -EPROTO,
                                "the device state has a configuration part "
                                "this vmha does not know (%.*s)",
                                (int)nl, name);
        }
        const unsigned char *body = take(c, copy);
        put_be(out, QEMU_VM_SUBSECTION, 1);
        put_be(out, nl, 1);
        put(out, name, nl);
        put_be(out, version, 4);
        put(out, body, body ? copy : 0);
    }
    return 0;
}

/* The RAM section's setup, which comes first: its header and the list of RAM blocks, copied
 * without the addresses x-ignore-shared adds. *ram_id names the block of the guest's size
 * (its RAM), which must be the only one. */
static int merge_ram_setup(struct cur *c, size_t ram_size, const unsigned char **ram_id,
                           uint64_t *ram_id_len, FILE *out, struct vmha_err *err)
{
    const unsigned char *head = c->p;
    if (take_be(c, 1) != QEMU_VM_SECTION_START)
        return vmha_err_set(err, -EPROTO, "the device state does not start with its memory");
    take_be(c, 4); /* section id */
    uint64_t il = take_be(c, 1);
    const unsigned char *idstr = take(c, il);
    take_be(c, 8); /* instance, version */
    if (c->bad || il != 3 || memcmp(idstr, "ram", 3) != 0)
        return vmha_err_set(err, -EPROTO, "the device state does not start with its memory");
    put(out, head, (size_t)(c->p - head));
    uint64_t total = take_be(c, 8);
    if (!(total & RAM_SAVE_FLAG_MEM_SIZE))
        return vmha_err_set(err, -EPROTO, "the device state does not list its memory");
    put_be(out, total, 8);
    total &= ~(uint64_t)(HV_LIBVIRT_PAGE - 1);
    *ram_id = NULL;
    unsigned blocks = 0;
    while (total && !c->bad && blocks++ < 4096) {
        uint64_t bl = take_be(c, 1);
        const unsigned char *bid = take(c, bl);
        uint64_t length = take_be(c, 8);
        take_be(c, 8); /* its address, sent only with x-ignore-shared */
        if (c->bad || length > total)
            break;
        put_be(out, bl, 1);
        put(out, bid, bl);
        put_be(out, length, 8);
        if (length == ram_size) {
            if (*ram_id)
                return vmha_err_set(err, -EPROTO,
                                    "two memory blocks of the guest's size: "
                                    "which one is its RAM?");
            *ram_id = bid;
            *ram_id_len = bl;
        }
        total -= length;
    }
    if (c->bad || total)
        return vmha_err_set(err, -EPROTO, "the device state's list of memory blocks is cut short");
    if (!*ram_id)
        return vmha_err_set(err, -EPROTO,
                            "no memory block of the guest's size (%zu bytes) in "
                            "its device state",
                            ram_size);
    return 0;
}

/* The RAM block's pages as page records of the setup; zero pages stay out (a restored guest's
 * memory starts zeroed). */
static void put_ram_pages(const unsigned char *ram, size_t ram_size, const unsigned char *ram_id,
                          uint64_t ram_id_len, FILE *out)
{
    bool first = true;
    for (size_t off = 0; off < ram_size; off += HV_LIBVIRT_PAGE) {
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
        put(out, ram + off, HV_LIBVIRT_PAGE);
    }
}

/* QEMU's stream of the device state taken with x-ignore-shared, as a restore without it reads
 * it: the same stream with the RAM put back in. */
static int stream_merge(const unsigned char *s, size_t n, const unsigned char *ram, size_t ram_size,
                        FILE *out, struct vmha_err *err)
{
    struct cur c = {.p = s, .left = n};
    if (ram_size % HV_LIBVIRT_PAGE)
        return vmha_err_set(err, -EINVAL, "the checkpoint's memory is not whole pages");
    if (take_be(&c, 4) != QEMU_VM_FILE_MAGIC || take_be(&c, 4) != QEMU_VM_FILE_VERSION)
        return vmha_err_set(err, -EPROTO, "the device state is not a QEMU migration stream");
    put_be(out, QEMU_VM_FILE_MAGIC, 4);
    put_be(out, QEMU_VM_FILE_VERSION, 4);
    const unsigned char *ram_id = NULL;
    uint64_t ram_id_len = 0;
    int r = merge_configuration(&c, out, err);
    if (r < 0 || (r = merge_ram_setup(&c, ram_size, &ram_id, &ram_id_len, out, err)) < 0)
        return r;
    put_ram_pages(ram, ram_size, ram_id, ram_id_len, out);
    /* The rest is QEMU's own: the setup's end marker, the ROM blocks, the devices. */
    put(out, c.p, c.left);
    if (ferror(out))
        return vmha_err_set(err, -EIO, "cannot write the checkpoint image: %s", strerror(errno));
    return 0;
}

int hv_libvirt_ckpt_image(const unsigned char *dev, size_t dev_len, const unsigned char *ram,
                          size_t ram_size, FILE *out, struct vmha_err *err)
{
    uint32_t data_len = 0;
    if (dev_len >= SAVE_HEADER_LEN)
        memcpy(&data_len, dev + SAVE_DATA_LEN_AT, sizeof(data_len));
    size_t head = SAVE_HEADER_LEN + (size_t)data_len;
    if (dev_len < SAVE_HEADER_LEN || memcmp(dev, "LibvirtQemudSave", 16) != 0 || head > dev_len)
        return vmha_err_set(err, -EPROTO,
                            "the checkpoint's device state is not a libvirt save "
                            "image");
    put(out, dev, head);
    return stream_merge(dev + head, dev_len - head, ram, ram_size, out, err);
}

static int map_file(const char *path, const unsigned char **ret, size_t *len)
{
    _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return -errno;
    *len = (size_t)st.st_size;
    *ret = NULL;
    if (!*len)
        return 0;
    void *p = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    *ret = p;
    return 0;
}

int hv_libvirt_ckpt_image_file(const char *dev_path, const char *ram_path, const char *path,
                               struct vmha_err *err)
{
    const unsigned char *dev = NULL, *ram = NULL;
    size_t dev_len = 0, ram_size = 0;
    int r = map_file(dev_path, &dev, &dev_len);
    if (r < 0)
        return vmha_err_set(err, r, "no checkpoint here (%s: %s)", dev_path, strerror(-r));
    if ((r = map_file(ram_path, &ram, &ram_size)) < 0) {
        vmha_err_set(err, r, "the checkpoint's memory is missing (%s: %s)", ram_path, strerror(-r));
        goto out;
    }
    FILE *f = fopen(path, "we");
    if (!f) {
        r = vmha_err_set(err, -errno, "cannot create %s: %s", path, strerror(errno));
        goto out;
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    r = hv_libvirt_ckpt_image(dev, dev_len, ram, ram_size, f, err);
    if (fclose(f) != 0 && r == 0)
        r = vmha_err_set(err, -errno, "cannot write %s: %s", path, strerror(errno));
    if (r < 0)
        unlink(path);
out:
    if (dev)
        munmap((void *)dev, dev_len);
    if (ram)
        munmap((void *)ram, ram_size);
    return r;
}

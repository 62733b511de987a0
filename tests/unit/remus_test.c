/* Unit tests of remus/'s pure parts: the stream's header and trailer, the stale mark, the
 * status file; the epoch's body, the backup's journal; and, through hv's public door, the
 * image a promotion restores, merged from the device state and the memory the backup kept. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmha/hv.h"
#include "vmha/remus.h"

static void header_round_trip(void **state)
{
    struct remus_epoch_id id = {.guest = "ft1", .session = 0x0123456789abcdefull, .epoch = 42};
    char buf[REMUS_HEADER_MAX];
    int n = remus_header_format(&id, buf, sizeof(buf));
    assert_true(n > 0);
    assert_string_equal(buf, "VMHA-CKPT 2 ft1 0123456789abcdef 42\n");
    struct remus_epoch_id back;
    struct vmha_err e = {0};
    assert_int_equal(remus_header_parse(buf, &back, &e), 0);
    assert_string_equal(back.guest, "ft1");
    assert_true(back.session == id.session);
    assert_true(back.epoch == 42);
    /* Names that cannot be a file name, or a second word, never travel. */
    struct remus_epoch_id bad = {.guest = "a/b", .session = 1, .epoch = 1};
    assert_int_equal(remus_header_format(&bad, buf, sizeof(buf)), -EINVAL);
}

static void header_rejects(void **state)
{
    const char *bad[] = {
        "GET / HTTP/1.1\n",
        "VMHA-CKPT 1 ft1 0123456789abcdef 42\n", /* another version */
        "VMHA-CKPT 2 ft1 0123456789abcdef 42",   /* no newline: cut off */
        "VMHA-CKPT 2 ft1 0123456789abcde 42\n",  /* short session */
        "VMHA-CKPT 2 ft1 0123456789abcdef 0\n",  /* epochs start at 1 */
        "VMHA-CKPT 2 ../x 0123456789abcdef 1\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        struct remus_epoch_id id;
        struct vmha_err e = {0};
        if (remus_header_parse(bad[i], &id, &e) != -EPROTO)
            fail_msg("accepted '%s'", bad[i]);
    }
}

static void trailer(void **state)
{
    unsigned char t[REMUS_TRAILER_LEN];
    remus_trailer_make(0x0102030405060708ull, t);
    assert_memory_equal(t, "VMHA-END\1\2\3\4\5\6\7\x08", REMUS_TRAILER_LEN);
    assert_true(remus_trailer_ok(t, 0x0102030405060708ull));
    assert_false(remus_trailer_ok(t, 0x0102030405060709ull));
    t[0] = 'X';
    assert_false(remus_trailer_ok(t, 0x0102030405060708ull));
}

static void stale_marks(void **state)
{
    char mark[64];
    remus_stale_format(0xabcull, 10, mark, sizeof(mark));
    assert_string_equal(mark, "0000000000000abc 10");
    assert_false(remus_stale_covers(NULL, 0xabc, 5));
    assert_false(remus_stale_covers("", 0xabc, 5));
    assert_true(remus_stale_covers(mark, 0xabc, 10)); /* the epoch the primary gave up on */
    assert_true(remus_stale_covers(mark, 0xabc, 3));
    assert_false(remus_stale_covers(mark, 0xabc, 11)); /* a later checkpoint is good again */
    assert_true(remus_stale_covers(mark, 0xdef, 99));  /* another primary's mark */
    assert_true(remus_stale_covers("garbage", 0xabc, 11));
    assert_true(remus_stale_covers("0000000000000abc 10 x", 0xabc, 11));
}

/* A test's temporary directory, and all in it. */
static void remove_dir(const char *dir)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void status_file(void **state)
{
    char dir[] = "/tmp/remus-test-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct remus_status s = {.role = "primary",
                             .state = "protected",
                             .peer = "node2",
                             .session = 0xfeedull,
                             .epoch = 7,
                             .committed_ms = 1700000000123ull,
                             .pause_ms = 12,
                             .ckpt_ms = 150,
                             .bytes = 78000000,
                             .epochs = 7,
                             .failures = 1,
                             .error = "x=y, with spaces"};
    struct vmha_err e = {0};
    assert_int_equal(remus_status_write(dir, &s, &e), 0);
    struct remus_status r;
    assert_int_equal(remus_status_read(dir, &r, &e), 0);
    assert_string_equal(r.role, "primary");
    assert_string_equal(r.state, "protected");
    assert_string_equal(r.peer, "node2");
    assert_true(r.session == 0xfeed && r.epoch == 7 && r.committed_ms == 1700000000123ull);
    assert_true(r.pause_ms == 12 && r.ckpt_ms == 150 && r.bytes == 78000000);
    assert_string_equal(r.error, "x=y, with spaces");
    /* No replicator holds the lock: not running, whatever the pid file says. */
    char path[128];
    snprintf(path, sizeof(path), "%s/send.pid", dir);
    FILE *f = fopen(path, "w");
    fputs("1\n", f);
    fclose(f);
    assert_false(remus_running(dir, "send", NULL));
    uint64_t session, epoch;
    assert_int_equal(remus_checkpoint(dir, &session, &epoch), -ENOENT);
    remove_dir(dir);
}

/* A growing byte string, for building streams. */
struct bytes {
    unsigned char b[64 << 10];
    size_t n;
};

static void add(struct bytes *x, const void *p, size_t n)
{
    assert_true(x->n + n <= sizeof(x->b));
    memcpy(x->b + x->n, p, n);
    x->n += n;
}

static void add_be(struct bytes *x, uint64_t v, int len)
{
    for (int i = len - 1; i >= 0; i--) {
        unsigned char c = (unsigned char)(v >> (8 * i));
        add(x, &c, 1);
    }
}

static void add_str(struct bytes *x, const char *s)
{
    add_be(x, strlen(s), 1);
    add(x, s, strlen(s));
}

#define PG REMUS_PAGE
/* libvirt's save header as ckpt_take writes it, with an empty XML area: a 16-byte magic, the
 * version, the XML area's length (at byte 20) and the rest: 92 bytes. */
#define SAVE_HDR 92
static void fake_save_header(unsigned char *h)
{
    uint32_t version = 2;
    memset(h, 0, SAVE_HDR);
    memcpy(h, "LibvirtQemudSave", 16);
    memcpy(h + 16, &version, sizeof(version));
}

/* The image the libvirt backend makes of device state whose QEMU stream is s (n bytes, in a
 * buffer of exactly its size, so that ASan sees a read past it): the stream part into f. */
static int merge(const unsigned char *s, size_t n, const unsigned char *ram, size_t ram_size,
                 FILE *f, struct vmha_err *e)
{
    unsigned char *dev = malloc(SAVE_HDR + n);
    assert_non_null(dev);
    fake_save_header(dev);
    memcpy(dev + SAVE_HDR, s, n);
    const struct hv_backend *b;
    assert_int_equal(hv_backend_for_uri("qemu:///system", &b, e), 0);
    char *img = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&img, &len);
    int r = hv_ckpt_image(b, dev, SAVE_HDR + n, ram, ram_size, m, e);
    fclose(m);
    if (r == 0) {
        assert_true(len >= SAVE_HDR);
        assert_memory_equal(img, dev, SAVE_HDR);
    }
    if (len > SAVE_HDR)
        fwrite(img + SAVE_HDR, 1, len - SAVE_HDR, f);
    free(img);
    free(dev);
    return r;
}

#define RAM_PAGES 3

/* QEMU 7.2's stream as x-ignore-shared writes it (with_ignore) or as the restore wants it:
 * the capability in the configuration, block addresses, and (restore) the RAM's pages. */
static void qemu_stream(struct bytes *x, bool with_ignore, const unsigned char *ram)
{
    add_be(x, 0x5145564d, 4);
    add_be(x, 3, 4);
    add_be(x, 0x07, 1);
    add_be(x, 13, 4);
    add(x, "pc-i440fx-7.2", 13);
    if (with_ignore) {
        add_be(x, 0x05, 1);
        add_str(x, "configuration/capabilities");
        add_be(x, 1, 4);
        add_be(x, 1, 4);
        add_str(x, "x-ignore-shared");
    }
    add_be(x, 0x01, 1);
    add_be(x, 3, 4);
    add_str(x, "ram");
    add_be(x, 0, 4);
    add_be(x, 4, 4);
    add_be(x, (RAM_PAGES + 1) * PG | 0x04, 8);
    add_str(x, "pc.ram");
    add_be(x, RAM_PAGES * PG, 8);
    if (with_ignore)
        add_be(x, 0, 8);
    add_str(x, "pc.rom");
    add_be(x, PG, 8);
    if (with_ignore)
        add_be(x, 0xc0000, 8);
    if (ram) { /* page 0 is zero: left out */
        add_be(x, 1 * PG | 0x08, 8);
        add_str(x, "pc.ram");
        add(x, ram + PG, PG);
        add_be(x, 2 * PG | 0x08 | 0x20, 8);
        add(x, ram + 2 * PG, PG);
    }
    add_be(x, 0x10, 8); /* EOS */
    add(x, "\x7e\0\0\0\x03 the ROM and the devices", 30);
}

static void stream_merge(void **state)
{
    static unsigned char ram[RAM_PAGES * PG];
    memset(ram + PG, 0xaa, PG);
    memset(ram + 2 * PG, 0x55, PG);
    static struct bytes dev, want;
    dev.n = want.n = 0;
    qemu_stream(&dev, true, NULL);
    qemu_stream(&want, false, ram);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    struct vmha_err e = {0};
    assert_int_equal(merge(dev.b, dev.n, ram, sizeof(ram), f, &e), 0);
    fclose(f);
    assert_int_equal(len, want.n);
    assert_memory_equal(out, want.b, want.n);
    free(out);
    /* No block of the memory's size: refused, not guessed. */
    f = open_memstream(&out, &len);
    assert_int_equal(merge(dev.b, dev.n, ram, 2 * PG, f, &e), -EPROTO);
    assert_non_null(strstr(e.msg, "no memory block of the guest's size"));
    fclose(f);
    free(out);
    /* Cut short anywhere in the block list: refused. */
    f = open_memstream(&out, &len);
    assert_int_equal(merge(dev.b, 90, ram, sizeof(ram), f, &e), -EPROTO);
    fclose(f);
    free(out);
}

/* A memory section of an epoch's body: the listed pages of ram. */
static void ram_section(struct bytes *x, bool full, const unsigned char *ram, const unsigned *pages,
                        size_t n)
{
    add(x, REMUS_BODY_RAM, 8);
    add_be(x, full ? REMUS_BODY_FULL : 0, 8);
    add_be(x, RAM_PAGES * PG, 8);
    add_be(x, n, 8);
    for (size_t i = 0; i < n; i++) {
        add_be(x, pages[i], 8);
        add(x, ram + pages[i] * PG, PG);
    }
}

/* The body's last section: the device state dev. */
static void dev_section(struct bytes *x, const struct bytes *dev)
{
    add(x, REMUS_BODY_DEV, 8);
    add_be(x, dev->n, 8);
    add(x, dev->b, dev->n);
}

/* An epoch's body: one memory section, then the device state dev. */
static void body(struct bytes *x, const struct bytes *dev, bool full, const unsigned char *ram,
                 const unsigned *pages, size_t n)
{
    x->n = 0;
    ram_section(x, full, ram, pages, n);
    dev_section(x, dev);
}

static void put_file(const char *dir, const char *name, const void *p, size_t n)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static size_t get_file(const char *path, unsigned char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, size, f);
    fclose(f);
    return n;
}

static void journal_and_image(void **state)
{
    char dir[] = "/tmp/vmha-remus-XXXXXX";
    assert_non_null(mkdtemp(dir));
    static unsigned char ram[RAM_PAGES * PG], got[RAM_PAGES * PG];
    memset(ram + PG, 0xaa, PG);
    memset(ram + 2 * PG, 0x55, PG);
    /* The device state as ckpt_take writes it: save header, XML, QEMU's stream. */
    static struct bytes dev, b, want;
    dev.n = 0;
    unsigned char hdr[SAVE_HDR];
    size_t hdr_len = SAVE_HDR;
    fake_save_header(hdr);
    add(&dev, hdr, hdr_len);
    qemu_stream(&dev, true, NULL);
    unsigned full_pages[] = {1, 2};
    body(&b, &dev, true, ram, full_pages, 2);
    struct remus_body parsed;
    struct vmha_err e = {0};
    assert_int_equal(remus_body_parse(b.b, b.n, NULL, &parsed, &e), 0);
    assert_int_equal(parsed.npages, 2);
    assert_int_equal(parsed.dev_len, dev.n);
    assert_int_equal(remus_body_parse(b.b, b.n - 1, NULL, &parsed, &e), -EPROTO);
    put_file(dir, "ckpt.jrnl", b.b, b.n);
    /* The image: header and XML as they were, then the stream with the memory back in. */
    char dpath[256], rpath[256];
    int lock = remus_checkpoint_files(dir, dpath, sizeof(dpath), rpath, sizeof(rpath), &e);
    assert_true(lock >= 0);
    want.n = 0;
    add(&want, hdr, hdr_len);
    qemu_stream(&want, false, ram);
    static unsigned char dev_file[64 << 10], ram_file[RAM_PAGES * PG];
    size_t dn = get_file(dpath, dev_file, sizeof(dev_file));
    assert_int_equal(get_file(rpath, ram_file, sizeof(ram_file)), sizeof(ram_file));
    const struct hv_backend *be;
    assert_int_equal(hv_backend_for_uri("qemu:///system", &be, &e), 0);
    char *img = NULL;
    size_t img_len = 0;
    FILE *m = open_memstream(&img, &img_len);
    assert_int_equal(hv_ckpt_image(be, dev_file, dn, ram_file, sizeof(ram_file), m, &e), 0);
    fclose(m);
    close(lock);
    assert_int_equal(img_len, want.n);
    assert_memory_equal(img, want.b, want.n);
    free(img);
    /* The journal is applied and gone; the memory is on file. */
    char p2[256];
    snprintf(p2, sizeof(p2), "%s/ckpt.jrnl", dir);
    assert_int_equal(access(p2, F_OK), -1);
    snprintf(p2, sizeof(p2), "%s/ram", dir);
    assert_int_equal(get_file(p2, got, sizeof(got)), sizeof(ram));
    assert_memory_equal(got, ram, sizeof(ram));
    /* The next epoch changes page 0 only. */
    memset(ram, 0x11, PG);
    unsigned one[] = {0};
    body(&b, &dev, false, ram, one, 1);
    put_file(dir, "ckpt.jrnl", b.b, b.n);
    assert_int_equal(remus_journal_apply(dir, &e), 0);
    assert_int_equal(get_file(p2, got, sizeof(got)), sizeof(ram));
    assert_memory_equal(got, ram, sizeof(ram));
    /* A first checkpoint as the sender takes it: a full base while the guest runs, then
     * with the guest paused what changed under it. Applied in order: the memory at the
     * pause, whatever the base caught. */
    static unsigned char base[RAM_PAGES * PG];
    memset(base, 0x77, sizeof(base)); /* pages 0-2 as the base saw them */
    memset(ram + PG, 0x99, PG);       /* page 1 changed before the pause; page 2 not */
    memcpy(ram + 2 * PG, base + 2 * PG, PG);
    memset(ram, 0, PG); /* page 0 zeroed before the pause */
    unsigned all[] = {0, 1, 2}, changed[] = {0, 1};
    b.n = 0;
    ram_section(&b, true, base, all, 3);
    ram_section(&b, false, ram, changed, 2);
    dev_section(&b, &dev);
    assert_int_equal(remus_body_parse(b.b, b.n, NULL, &parsed, &e), 0);
    assert_true(parsed.full);
    assert_int_equal(parsed.npages, 5);
    put_file(dir, "ckpt.jrnl", b.b, b.n);
    assert_int_equal(remus_journal_apply(dir, &e), 0);
    assert_int_equal(get_file(p2, got, sizeof(got)), sizeof(ram));
    assert_memory_equal(got, ram, sizeof(ram));
    /* A full section anywhere but first: refused. */
    b.n = 0;
    ram_section(&b, false, ram, changed, 2);
    ram_section(&b, true, base, all, 3);
    dev_section(&b, &dev);
    assert_int_equal(remus_body_parse(b.b, b.n, NULL, &parsed, &e), -EPROTO);
    /* A page outside the memory: refused, and the journal stays for a look. */
    body(&b, &dev, false, ram, one, 1);
    remus_put_be64(b.b + 32, RAM_PAGES); /* the first record's page number */
    put_file(dir, "ckpt.jrnl", b.b, b.n);
    assert_int_equal(remus_journal_apply(dir, &e), -EPROTO);
    assert_non_null(strstr(e.msg, "outside the guest's memory"));
    remove_dir(dir);
}

static void disk_record(struct bytes *x, uint32_t disk, bool zero, uint64_t off, uint64_t len,
                        unsigned char fill)
{
    add_be(x, disk, 4);
    add_be(x, zero ? REMUS_DREC_ZERO : 0, 4);
    add_be(x, off, 8);
    add_be(x, len, 8);
    for (uint64_t i = 0; !zero && i < len; i++)
        add(x, &fill, 1);
}

/* An epoch's disk writes: checked against this node's disks before the commit, applied in
 * order with the memory; nothing outside a disk is ever written. */
static void journal_disks(void **state)
{
    char dir[] = "/tmp/vmha-remus-XXXXXX";
    assert_non_null(mkdtemp(dir));
    static unsigned char disk[16 << 10];
    memset(disk, 0xee, sizeof(disk));
    put_file(dir, "vda.img", disk, sizeof(disk));
    char spec[320], dpath[300];
    snprintf(dpath, sizeof(dpath), "%s/vda.img", dir);
    snprintf(spec, sizeof(spec), "vda=%s", dpath);
    struct remus_disks ds = {0};
    struct vmha_err e = {0};
    assert_int_equal(remus_disks_add(&ds, spec, &e), 0);
    assert_int_equal(ds.d[0].size, sizeof(disk));
    assert_int_equal(remus_disks_add(&ds, "vdb", &e), -EINVAL);
    assert_int_equal(remus_disks_save(dir, &ds, &e), 0);
    static struct bytes dev, b, recs;
    dev.n = 0;
    add(&dev, "QEVM", 4);
    static unsigned char ram[RAM_PAGES * PG];
    unsigned one[] = {1};
    recs.n = 0;
    disk_record(&recs, 0, false, 512, 1024, 0x31); /* written, */
    disk_record(&recs, 0, true, 1024, 4096, 0);    /* partly zeroed again, */
    disk_record(&recs, 0, false, 8192, 512, 0x32); /* and elsewhere */
    b.n = 0;
    ram_section(&b, true, ram, one, 1);
    add(&b, REMUS_BODY_DISK, 8);
    add_be(&b, recs.n, 8);
    add(&b, recs.b, recs.n);
    dev_section(&b, &dev);
    struct remus_body parsed;
    assert_int_equal(remus_body_parse(b.b, b.n, &ds, &parsed, &e), 0);
    assert_int_equal(parsed.disk_len, recs.n);
    /* Without disks here, the same body is refused. */
    assert_int_equal(remus_body_parse(b.b, b.n, NULL, &parsed, &e), -EPROTO);
    put_file(dir, "ckpt.jrnl", b.b, b.n);
    assert_int_equal(remus_journal_apply(dir, &e), 0);
    memset(disk + 512, 0x31, 512);
    memset(disk + 1024, 0, 4096);
    memset(disk + 8192, 0x32, 512);
    unsigned char got[sizeof(disk)];
    assert_int_equal(get_file(dpath, got, sizeof(got)), sizeof(disk));
    assert_memory_equal(got, disk, sizeof(disk));
    /* A record past the disk's end, or of a disk not there: refused before anything is
     * written. */
    static const struct {
        uint32_t disk;
        uint64_t off, len;
    } bad[] = {{0, sizeof(disk) - 512, 1024}, {1, 0, 512}, {0, UINT64_MAX - 100, 512}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        recs.n = 0;
        disk_record(&recs, bad[i].disk, true, bad[i].off, bad[i].len, 0);
        b.n = 0;
        ram_section(&b, false, ram, one, 1);
        add(&b, REMUS_BODY_DISK, 8);
        add_be(&b, recs.n, 8);
        add(&b, recs.b, recs.n);
        dev_section(&b, &dev);
        assert_int_equal(remus_body_parse(b.b, b.n, &ds, &parsed, &e), -EPROTO);
    }
    /* A base's records end with the end record; one missing is a stream cut short. */
    recs.n = 0;
    disk_record(&recs, 0, false, 0, 512, 0x33);
    size_t used = 0;
    assert_int_equal(remus_drecs_check(recs.b, recs.n, &ds, true, &used, &e), -EPROTO);
    disk_record(&recs, REMUS_DREC_END, false, 0, 0, 0);
    assert_int_equal(remus_drecs_check(recs.b, recs.n, &ds, true, &used, &e), 0);
    assert_int_equal(used, recs.n);
    remove_dir(dir);
}

static void nvram_section(struct bytes *x, const char *content)
{
    add(x, REMUS_BODY_NVRAM, 8);
    add_be(x, strlen(content), 8);
    add(x, content, strlen(content));
}

/* A UEFI guest's variable store travels when it changed: the backup keeps the last one it
 * got (dir/nvram), drops it with a first checkpoint that has none, and takes the section
 * only once, after the memory and disks. */
static void journal_nvram(void **state)
{
    char dir[] = "/tmp/vmha-remus-XXXXXX";
    assert_non_null(mkdtemp(dir));
    static struct bytes dev, b;
    dev.n = 0;
    add(&dev, "QEVM", 4);
    static unsigned char ram[RAM_PAGES * PG];
    unsigned one[] = {1};
    char npath[300];
    snprintf(npath, sizeof(npath), "%s/%s", dir, REMUS_NVRAM_FILE);
    unsigned char got[64];
    struct remus_body parsed;
    struct vmha_err e = {0};
    b.n = 0;
    ram_section(&b, true, ram, one, 1);
    nvram_section(&b, "vars-1");
    dev_section(&b, &dev);
    assert_int_equal(remus_body_parse(b.b, b.n, NULL, &parsed, &e), 0);
    assert_int_equal(parsed.nvram_len, 6);
    put_file(dir, "ckpt.jrnl", b.b, b.n);
    assert_int_equal(remus_journal_apply(dir, &e), 0);
    assert_int_equal(get_file(npath, got, sizeof(got)), 6);
    assert_memory_equal(got, "vars-1", 6);
    /* Unchanged: no section, the file stays. */
    b.n = 0;
    ram_section(&b, false, ram, one, 1);
    dev_section(&b, &dev);
    put_file(dir, "ckpt.jrnl", b.b, b.n);
    assert_int_equal(remus_journal_apply(dir, &e), 0);
    assert_int_equal(get_file(npath, got, sizeof(got)), 6);
    /* A first checkpoint without one: the old one is no part of it. */
    b.n = 0;
    ram_section(&b, true, ram, one, 1);
    dev_section(&b, &dev);
    put_file(dir, "ckpt.jrnl", b.b, b.n);
    assert_int_equal(remus_journal_apply(dir, &e), 0);
    assert_int_equal(access(npath, F_OK), -1);
    /* Twice, first, empty, or before the disks: refused. */
    b.n = 0;
    ram_section(&b, false, ram, one, 1);
    nvram_section(&b, "a");
    nvram_section(&b, "b");
    dev_section(&b, &dev);
    assert_int_equal(remus_body_parse(b.b, b.n, NULL, &parsed, &e), -EPROTO);
    b.n = 0;
    nvram_section(&b, "a");
    ram_section(&b, false, ram, one, 1);
    dev_section(&b, &dev);
    assert_int_equal(remus_body_parse(b.b, b.n, NULL, &parsed, &e), -EPROTO);
    b.n = 0;
    ram_section(&b, false, ram, one, 1);
    nvram_section(&b, "");
    dev_section(&b, &dev);
    assert_int_equal(remus_body_parse(b.b, b.n, NULL, &parsed, &e), -EPROTO);
    b.n = 0;
    ram_section(&b, false, ram, one, 1);
    nvram_section(&b, "a");
    add(&b, REMUS_BODY_DISK, 8);
    add_be(&b, 0, 8);
    dev_section(&b, &dev);
    assert_int_equal(remus_body_parse(b.b, b.n, NULL, &parsed, &e), -EPROTO);
    remove_dir(dir);
}

/* Found attacking the real replicator: a page count whose product with the record size
 * wraps past 2^64 passed the length check, and the page loop then read past the body. */
static void body_count_overflow(void **state)
{
    static struct bytes b;
    b.n = 0;
    add(&b, REMUS_BODY_RAM, 8);
    add_be(&b, REMUS_BODY_FULL, 8);
    add_be(&b, 0xfffffffffffff000ull, 8); /* memory: as large as a page number allows */
    add_be(&b, 4494820680728449ull, 8);   /* pages: times 4104 is 3080 modulo 2^64 */
    static const unsigned char filler[3200];
    add(&b, filler, sizeof(filler)); /* about 3 KiB in all, as the reproducer */
    struct remus_body parsed;
    struct vmha_err e = {0};
    assert_int_equal(remus_body_parse(b.b, b.n, NULL, &parsed, &e), -EPROTO);
    assert_non_null(strstr(e.msg, "inconsistent"));
}

/* The device state as a delta: only changed chunks travel, the backup rebuilds exactly the
 * primary's, whatever the sizes; a delta of another base, or garbled, is refused. */
static void dev_delta(void **state)
{
    static unsigned char base[10 * REMUS_DELTA_CHUNK + 100], cur[12 * REMUS_DELTA_CHUNK + 7];
    for (size_t i = 0; i < sizeof(base); i++)
        base[i] = (unsigned char)(i * 7 + i / 4096);
    struct vmha_err e = {0};
    unsigned char *d = NULL, *out = NULL;
    size_t dlen = 0, olen = 0;
    /* The same state again: nothing but the header. */
    assert_int_equal(remus_dev_delta_make(base, sizeof(base), base, sizeof(base), &d, &dlen), 0);
    assert_int_equal(dlen, 16);
    assert_int_equal(remus_dev_delta_apply(d, dlen, base, sizeof(base), &out, &olen, &e), 0);
    assert_int_equal(olen, sizeof(base));
    assert_memory_equal(out, base, olen);
    free(d);
    free(out);
    /* Longer, two bytes changed in chunks 2 and 3 (one run) and one in 7: three runs with
     * the tail beyond the base; then shorter. */
    for (size_t len = sizeof(cur); len >= 5 * REMUS_DELTA_CHUNK; len -= 5 * REMUS_DELTA_CHUNK + 3) {
        memcpy(cur, base, len < sizeof(base) ? len : sizeof(base));
        for (size_t i = sizeof(base); i < len; i++)
            cur[i] = (unsigned char)(i * 13);
        cur[2 * REMUS_DELTA_CHUNK + 5] ^= 1;
        cur[3 * REMUS_DELTA_CHUNK] ^= 1;
        if (len > 7 * REMUS_DELTA_CHUNK)
            cur[7 * REMUS_DELTA_CHUNK + 9] ^= 1;
        assert_int_equal(remus_dev_delta_make(base, sizeof(base), cur, len, &d, &dlen), 0);
        assert_true(dlen < len / 2);
        assert_int_equal(remus_dev_delta_apply(d, dlen, base, sizeof(base), &out, &olen, &e), 0);
        assert_int_equal(olen, len);
        assert_memory_equal(out, cur, len);
        free(out);
        /* Against another base: refused. */
        assert_int_equal(remus_dev_delta_apply(d, dlen, base, sizeof(base) - 1, &out, &olen, &e),
                         -ESTALE);
        /* A run pointing past the end, or cut short: refused before anything is written. */
        remus_put_be64(d + 16, len);
        assert_int_equal(remus_dev_delta_check(d, dlen, &e), -EPROTO);
        assert_int_equal(remus_dev_delta_check(d, 16 + 8, &e), -EPROTO);
        free(d);
    }
    /* In a body: only after the memory, never in a whole (first) checkpoint, and a journal
     * never holds one. */
    static struct bytes b;
    static const unsigned char ram[RAM_PAGES * PG];
    unsigned pages[] = {1};
    assert_int_equal(remus_dev_delta_make(base, sizeof(base), base, sizeof(base), &d, &dlen), 0);
    for (int full = 0; full < 2; full++) {
        b.n = 0;
        ram_section(&b, full, ram, pages, 1);
        add(&b, REMUS_BODY_DEVDELTA, 8);
        add_be(&b, dlen, 8);
        add(&b, d, dlen);
        struct remus_body parsed;
        assert_int_equal(remus_body_parse(b.b, b.n, NULL, &parsed, &e), full ? -EPROTO : 0);
        if (!full)
            assert_true(parsed.dev_delta);
    }
    free(d);
    char dir[] = "/tmp/vmha-remus-XXXXXX";
    assert_non_null(mkdtemp(dir));
    put_file(dir, "ckpt.jrnl", b.b, b.n);
    assert_int_equal(remus_journal_apply(dir, &e), -EPROTO);
    assert_non_null(strstr(e.msg, "delta"));
    remove_dir(dir);
}

/* Found by fuzzing: a capability entry cut short at the stream's end was written out with
 * the length it claimed, up to 256 bytes past the buffer. Here the buffer ends right after
 * the length byte (ASan sees any read past it). */
static void merge_capability_cut_short(void **state)
{
    static struct bytes x;
    x.n = 0;
    add_be(&x, 0x5145564d, 4);
    add_be(&x, 3, 4);
    add_be(&x, 0x07, 1);
    add_be(&x, 13, 4);
    add(&x, "pc-i440fx-7.2", 13);
    add_be(&x, 0x05, 1);
    add_str(&x, "configuration/capabilities");
    add_be(&x, 1, 4);
    add_be(&x, 2, 4); /* two capabilities, */
    add_str(&x, "events");
    add_be(&x, 0xff, 1); /* the second claims 255 bytes and has none */
    unsigned char *exact = malloc(x.n);
    assert_non_null(exact);
    memcpy(exact, x.b, x.n);
    static unsigned char ram[RAM_PAGES * PG];
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    struct vmha_err e = {0};
    assert_int_equal(merge(exact, x.n, ram, sizeof(ram), f, &e), -EPROTO);
    fclose(f);
    free(out);
    free(exact);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(header_round_trip), cmocka_unit_test(header_rejects),
        cmocka_unit_test(trailer),           cmocka_unit_test(stale_marks),
        cmocka_unit_test(status_file),       cmocka_unit_test(stream_merge),
        cmocka_unit_test(journal_and_image), cmocka_unit_test(journal_disks),
        cmocka_unit_test(journal_nvram),     cmocka_unit_test(body_count_overflow),
        cmocka_unit_test(dev_delta),         cmocka_unit_test(merge_capability_cut_short),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

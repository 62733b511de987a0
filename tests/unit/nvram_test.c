/* Unit tests of the OVMF variable store reader on real VARS files (golden facts: the project's
 * own copies of Debian 12's, tests/data/ovmf, whatever the build host has) and on crafted
 * damage: every malformation is refused with its precise reason. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "nvram_synth.h"
#include "vmha/nvram.h"

#define MS_VARS GOLDEN_OVMF "/OVMF_VARS_4M.ms.fd"
#define EMPTY_VARS GOLDEN_OVMF "/OVMF_VARS_4M.fd"

static uint8_t *load(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("%s: cannot open the golden file", path);
    uint8_t *b = malloc(1 << 22);
    *len = fread(b, 1, 1 << 22, f);
    fclose(f);
    return b;
}

static void golden_ms_vars(void **state)
{
    size_t len;
    uint8_t *b = load(MS_VARS, &len);
    struct nvram nv;
    struct vmha_err e = {0};
    assert_int_equal(nvram_parse(b, len, &nv, &e), 0);
    assert_true(nv.authenticated);
    assert_int_equal(nv.fv_length, 540672);
    assert_int_equal(nv.store_offset, 72);
    assert_int_equal(nv.store_size, 262072);
    assert_int_equal(nv.n, 57);

    /* Its three BootOrder records are all deleted (0x3c, 0x3c, 0x3d): no boot order. */
    size_t deleted_boot_order = 0;
    for (size_t i = 0; i < nv.n; i++)
        if (strcmp(nv.vars[i].name, "BootOrder") == 0) {
            assert_false(nv.vars[i].live);
            deleted_boot_order++;
        }
    assert_int_equal(deleted_boot_order, 3);
    assert_int_equal(nv.vars[20].state, 0x3c);
    assert_int_equal(nv.vars[46].offset, 0x3b08);
    assert_int_equal(nv.vars[46].state, 0x3d);
    uint16_t order[8];
    size_t n;
    assert_int_equal(nvram_boot_order(&nv, order, 8, &n, &e), -ENOENT);

    /* The boot entries, decoded. */
    static const struct {
        const char *var, *desc, *path;
        uint32_t attr;
        size_t optional;
    } boot[] = {
        {"Boot0000", "UiApp",
         "Fv(7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1)/FvFile(462CAA21-7614-4503-836E-8AB6F4662331)",
         0x109, 0},
        {"Boot0001", "UEFI QEMU HARDDISK QM00001 ",
         "PciRoot(0x0)/Pci(0x1F,0x2)/Sata(0x0,0xFFFF,0x0)", 0x1, 16},
        {"Boot0002", "EFI Internal Shell",
         "Fv(7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1)/FvFile(7C04A583-9E3E-4F1C-AD65-E05268D0B4D1)",
         0x1, 0},
    };
    for (size_t i = 0; i < 3; i++) {
        const struct nvram_var *v = nvram_get(&nv, boot[i].var, NULL);
        assert_non_null(v);
        assert_int_equal(v->attributes, 7); /* NV | BS | RT */
        struct nvram_load_option lo;
        assert_int_equal(nvram_load_option_parse(v->data, v->data_size, &lo, &e), 0);
        assert_string_equal(lo.description, boot[i].desc);
        assert_string_equal(lo.path, boot[i].path);
        assert_int_equal(lo.attributes, boot[i].attr);
        assert_int_equal(lo.optional_size, boot[i].optional);
    }
    assert_null(nvram_get(&nv, "Boot0003", NULL));

    /* Secure Boot keys are there, in their namespaces; superseded records are not live. */
    const struct nvram_var *pk = nvram_get(&nv, "PK", NULL);
    assert_non_null(pk);
    assert_int_equal(pk->data_size, 1005);
    assert_int_equal(pk->attributes, 0x27);
    assert_non_null(nvram_get(&nv, "db", "d719b2cb-3d3a-4596-a3bc-dad00e67656f"));
    assert_null(nvram_get(&nv, "db", NULL));
    const struct nvram_var *conout = nvram_get(&nv, "ConOut", NULL);
    assert_non_null(conout);
    assert_int_equal(conout->offset, 0x3734);
    size_t live = 0;
    for (size_t i = 0; i < nv.n; i++)
        live += nv.vars[i].live;
    assert_int_equal(live, 31);
    nvram_clear(&nv);
    free(b);
}

static void empty_template(void **state)
{
    size_t len;
    uint8_t *b = load(EMPTY_VARS, &len);
    struct nvram nv;
    struct vmha_err e = {0};
    assert_int_equal(nvram_parse(b, len, &nv, &e), 0);
    assert_int_equal(nv.n, 0);
    assert_int_equal(nv.used, 28);
    nvram_clear(&nv);
    free(b);
}

/* Recomputes the firmware volume header checksum after a crafted change to the header. */
static void fix_checksum(uint8_t *b)
{
    size_t hlen = (size_t)(b[48] | b[49] << 8);
    b[50] = b[51] = 0;
    uint16_t sum = 0;
    for (size_t i = 0; i < hlen; i += 2)
        sum = (uint16_t)(sum + (b[i] | b[i + 1] << 8));
    sum = (uint16_t)(0x10000 - sum);
    b[50] = (uint8_t)sum;
    b[51] = (uint8_t)(sum >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void expect_refused(const uint8_t *b, size_t len, const char *reason)
{
    struct nvram nv = {.n = 99};
    struct vmha_err e = {0};
    int r = nvram_parse(b, len, &nv, &e);
    if (r != -EINVAL)
        fail_msg("accepted a file that should fail with '%s' (r=%d)", reason, r);
    if (!strstr(e.msg, reason))
        fail_msg("reason '%s' does not say '%s'", e.msg, reason);
}

static void crafted_damage(void **state)
{
    size_t len;
    uint8_t *orig = load(MS_VARS, &len);
    uint8_t *b = malloc(len);

    memcpy(b, orig, len);
    expect_refused(b, 40, "truncated: 40 bytes");
    expect_refused(b, 300000, "truncated: the firmware volume is 540672 bytes, the file 300000");

    memcpy(b, orig, len);
    b[60] ^= 1; /* a block map byte, checksum left as it was */
    expect_refused(b, len, "checksum is wrong");
    fix_checksum(b);
    expect_refused(b, len, "block map covers");

    memcpy(b, orig, len);
    b[40] = 'X';
    expect_refused(b, len, "no firmware volume signature");

    memcpy(b, orig, len);
    b[16] ^= 0xff;
    expect_refused(b, len, "is not a variable store");

    memcpy(b, orig, len);
    put32(b + 72 + 16, 0x100000); /* store size past the volume */
    expect_refused(b, len, "does not fit");

    memcpy(b, orig, len);
    b[72 + 21] = 0xff; /* store state */
    expect_refused(b, len, "not healthy (state 0xff)");

    memcpy(b, orig, len);
    b[72 + 20] = 0xff;
    expect_refused(b, len, "not formatted");

    memcpy(b, orig, len);
    b[0x2858] = 0x34; /* BootOrder's StartId */
    b[0x2859] = 0x12;
    expect_refused(b, len, "bad StartId 0x1234 at offset 0x2858");

    memcpy(b, orig, len);
    put32(b + 0x28ac + 40, 0x7fffffff); /* Boot0000's DataSize */
    expect_refused(b, len,
                   "variable at offset 0x28ac (name 18 bytes, data 2147483647 bytes) "
                   "runs past the end of the store");

    memcpy(b, orig, len);
    b[0x28ac + 2] = 0x5a; /* a state no write sequence produces */
    expect_refused(b, len, "unknown state 0x5a");

    memcpy(b, orig, len);
    put32(b + 0x28ac + 36, 3); /* odd NameSize */
    expect_refused(b, len, "no valid name");

    /* Two live copies of one variable: flip a deleted BootOrder back to ADDED twice. */
    memcpy(b, orig, len);
    b[0x2858 + 2] = 0x3f;
    b[0x39f8 + 2] = 0x3f;
    expect_refused(b, len, "BootOrder has two live records");

    /* An update cut short: the old record IN_DELETED_TRANSITION is still the live one. */
    memcpy(b, orig, len);
    b[0x3b08 + 2] = 0x3e;
    struct nvram nv;
    struct vmha_err e = {0};
    assert_int_equal(nvram_parse(b, len, &nv, &e), 0);
    uint16_t order[8];
    size_t n;
    assert_int_equal(nvram_boot_order(&nv, order, 8, &n, &e), 0);
    assert_int_equal(n, 3);
    assert_int_equal(order[0], 0);
    assert_int_equal(order[1], 1);
    assert_int_equal(order[2], 2);
    nvram_clear(&nv);
    /* ... unless the new record made it to ADDED. */
    b[0x39f8 + 2] = 0x3f;
    assert_int_equal(nvram_parse(b, len, &nv, &e), 0);
    assert_int_equal(nvram_boot_order(&nv, order, 8, &n, &e), 0);
    assert_int_equal(n, 2);
    nvram_clear(&nv);

    free(b);
    free(orig);
}

/* The live flags the liveness pass before the sort gave, on the same records. */
static void expect_old_liveness(const struct nvram *nv)
{
    struct nvram_var *old = malloc((nv->n ? nv->n : 1) * sizeof(*old));
    memcpy(old, nv->vars, nv->n * sizeof(*old));
    for (size_t i = 0; i < nv->n; i++)
        old[i].live = false;
    struct vmha_err e = {0};
    assert_int_equal(synth_old_liveness(old, nv->n, &e), 0);
    for (size_t i = 0; i < nv->n; i++)
        if (old[i].live != nv->vars[i].live)
            fail_msg("record %zu (%s, state 0x%02x at 0x%zx): live %d, was %d", i, nv->vars[i].name,
                     nv->vars[i].state, nv->vars[i].offset, nv->vars[i].live, old[i].live);
    free(old);
}

static void liveness_as_before_golden(void **state)
{
    size_t len;
    uint8_t *b = load(MS_VARS, &len);
    struct nvram nv;
    struct vmha_err e = {0};
    assert_int_equal(nvram_parse(b, len, &nv, &e), 0);
    expect_old_liveness(&nv);
    nvram_clear(&nv);
    /* The cut-short update of crafted_damage, with and without its new record ADDED. */
    b[0x3b08 + 2] = 0x3e;
    assert_int_equal(nvram_parse(b, len, &nv, &e), 0);
    expect_old_liveness(&nv);
    nvram_clear(&nv);
    b[0x39f8 + 2] = 0x3f;
    assert_int_equal(nvram_parse(b, len, &nv, &e), 0);
    expect_old_liveness(&nv);
    nvram_clear(&nv);
    free(b);
}

/* nvram_parse on recs against the old pass on what it must list: the same records, the same
 * live flags, or the same refusal. */
static void expect_as_before(const struct synth_rec *recs, size_t n, size_t store_size)
{
    size_t len, n_expect;
    struct nvram_var *expect;
    uint8_t *b = synth_store(recs, n, store_size, &len, &expect, &n_expect);
    assert_non_null(b);
    struct nvram nv = {0};
    struct vmha_err e = {0}, old_e = {0};
    int r = nvram_parse(b, len, &nv, &e), old_r = synth_old_liveness(expect, n_expect, &old_e);
    assert_int_equal(r, old_r);
    if (r < 0) {
        assert_string_equal(e.msg, old_e.msg);
    } else {
        assert_int_equal(nv.n, n_expect);
        for (size_t i = 0; i < n_expect; i++) {
            assert_int_equal(nv.vars[i].offset, expect[i].offset);
            assert_string_equal(nv.vars[i].name, expect[i].name);
            if (nv.vars[i].live != expect[i].live)
                fail_msg("record %zu (%s, state 0x%02x): live %d, was %d", i, expect[i].name,
                         expect[i].state, nv.vars[i].live, expect[i].live);
        }
    }
    nvram_clear(&nv);
    free(expect);
    free(b);
}

static void liveness_as_before_synthetic(void **state)
{
    /* Histories of few and of many variables: superseded, deleted, cut-short records. */
    static const size_t sizes[][2] = {{64 << 10, 7}, {64 << 10, 300}, {256 << 10, 40}};
    for (size_t k = 0; k < 3; k++) {
        size_t n = synth_capacity(sizes[k][0]);
        struct synth_rec *recs = synth_history(n, sizes[k][1]);
        expect_as_before(recs, n, sizes[k][0]);
        free(recs);
    }
    /* Two variables with two ADDED records each: B's second comes first in the file, so B is
     * named, whichever of A and B sorts first. */
    struct synth_rec dup[] = {
        {"A", NVRAM_GLOBAL_GUID, 0x3f}, {"B", NVRAM_GLOBAL_GUID, 0x3e},
        {"B", NVRAM_GLOBAL_GUID, 0x3f}, {"A", NVRAM_GLOBAL_GUID, 0x3d},
        {"B", NVRAM_GLOBAL_GUID, 0x3f}, {"A", NVRAM_GLOBAL_GUID, 0x3f},
        {"B", NVRAM_GLOBAL_GUID, 0x3f},
    };
    expect_as_before(dup, 7, 4096);
    dup[0].name[0] = 'C';
    dup[3].name[0] = dup[5].name[0] = 'C';
    expect_as_before(dup, 7, 4096);
    /* One name in two namespaces is two variables; a cut-short record alone is live. */
    struct synth_rec ns[] = {
        {"db", NVRAM_GLOBAL_GUID, 0x3e},  {"db", "d719b2cb-3d3a-4596-a3bc-dad00e67656f", 0x3f},
        {"db", NVRAM_GLOBAL_GUID, 0x3e},  {"db", "d719b2cb-3d3a-4596-a3bc-dad00e67656f", 0x3e},
        {"KEK", NVRAM_GLOBAL_GUID, 0x7f},
    };
    expect_as_before(ns, 5, 4096);
    expect_as_before(NULL, 0, 4096);
}

/* A full 2 MiB store of distinct variables, every one live (the store that took 5.9 s). */
static void large_store(void **state)
{
    size_t size = 2 << 20, n = synth_capacity(size), len, n_expect;
    struct synth_rec *recs = synth_distinct(n);
    struct nvram_var *expect;
    uint8_t *b = synth_store(recs, n, size, &len, &expect, &n_expect);
    assert_non_null(b);
    struct nvram nv;
    struct vmha_err e = {0};
    assert_int_equal(nvram_parse(b, len, &nv, &e), 0);
    assert_int_equal(nv.n, n);
    for (size_t i = 0; i < n; i++)
        assert_true(nv.vars[i].live);
    const struct nvram_var *last = nvram_get(&nv, recs[n - 1].name, recs[n - 1].guid);
    assert_non_null(last);
    assert_int_equal(last->offset, expect[n - 1].offset);
    nvram_clear(&nv);
    free(expect);
    free(recs);
    free(b);
}

static void device_paths(void **state)
{
    char buf[256];
    struct vmha_err e = {0};
    /* HD(1,GPT,...)/\EFI\BOOT\BOOTX64.EFI */
    uint8_t hd[] = {4,    1,    42, 0,    1, 0,   0, 0, 0, 8,    0,    0,    0,    0,    0,
                    0,    0,    0,  16,   0, 0,   0, 0, 0, 0x78, 0x56, 0x34, 0x12, 0xbc, 0x9a,
                    0xf0, 0xde, 1,  2,    3, 4,   5, 6, 7, 8,    2,    2,    4,    4,    12,
                    0,    'A',  0,  '\\', 0, 'B', 0, 0, 0, 0x7f, 0xff, 4,    0};
    assert_int_equal(nvram_device_path_text(hd, sizeof(hd), buf, sizeof(buf), &e), 0);
    assert_string_equal(buf, "HD(1,GPT,12345678-9ABC-DEF0-0102-030405060708,0x800,0x100000)/A\\B");
    /* An unknown node falls back to hex. */
    uint8_t odd[] = {5, 9, 6, 0, 0xab, 0xcd, 0x7f, 0xff, 4, 0};
    assert_int_equal(nvram_device_path_text(odd, sizeof(odd), buf, sizeof(buf), &e), 0);
    assert_string_equal(buf, "Path(5,9,ABCD)");
    /* Malformed: zero length node, past the end, no end node. */
    uint8_t zero[] = {1, 1, 0, 0};
    assert_int_equal(nvram_device_path_text(zero, sizeof(zero), buf, sizeof(buf), &e), -EINVAL);
    uint8_t past[] = {1, 1, 40, 0, 0, 0};
    assert_int_equal(nvram_device_path_text(past, sizeof(past), buf, sizeof(buf), &e), -EINVAL);
    uint8_t noend[] = {1, 1, 6, 0, 1, 2};
    assert_int_equal(nvram_device_path_text(noend, sizeof(noend), buf, sizeof(buf), &e), -EINVAL);
    assert_non_null(strstr(e.msg, "no end node"));
    /* A load option whose path runs past it. */
    uint8_t lo[] = {1, 0, 0, 0, 50, 0, 'x', 0, 0, 0, 0x7f, 0xff, 4, 0};
    struct nvram_load_option opt;
    assert_int_equal(nvram_load_option_parse(lo, sizeof(lo), &opt, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "runs past"));
}

/* A valid variant of the file: one byte of a variable's value changed. */
static void vary(uint8_t *b, size_t len, uint8_t value)
{
    struct nvram nv;
    struct vmha_err e = {0};
    assert_int_equal(nvram_parse(b, len, &nv, &e), 0);
    const struct nvram_var *v = nvram_get(&nv, "Timeout", NULL);
    assert_non_null(v);
    b[v->data - b] = value;
    nvram_clear(&nv);
}

static void generations(void **state)
{
    char gdir[] = "/tmp/vmha-nvgen-test.XXXXXX";
    assert_non_null(mkdtemp(gdir));
    size_t len;
    uint8_t *a = load(MS_VARS, &len);
    uint8_t *b = malloc(len), *c = malloc(len);
    memcpy(b, a, len);
    memcpy(c, a, len);
    vary(b, len, 5);
    vary(c, len, 9);
    struct vmha_err e = {0};
    struct vmha_deadline dl = vmha_deadline_in(5000);
    struct nvram_gen g;
    bool stored;
    uint8_t *out = NULL;
    size_t out_len;
    char note[512];

    assert_int_equal(nvgen_newest_valid(gdir, &out, &out_len, &g, note, sizeof(note), &e), -ENOENT);
    assert_int_equal(nvgen_store(gdir, a, len, "node1", "import", 3, &dl, &g, &stored, &e), 0);
    assert_true(stored);
    assert_int_equal(g.num, 1);
    /* The same content again: nothing new. */
    assert_int_equal(nvgen_store(gdir, a, len, "node2", "periodic", 3, &dl, &g, &stored, &e), 0);
    assert_false(stored);
    assert_int_equal(g.num, 1);
    assert_int_equal(nvgen_store(gdir, b, len, "node2", "stop", 3, &dl, &g, &stored, &e), 0);
    assert_true(stored);
    assert_int_equal(g.num, 2);
    assert_string_equal(g.reason, "stop");
    /* Going back to generation 1's content is a rollback. */
    assert_int_equal(nvgen_store(gdir, a, len, "node3", "migrate", 3, &dl, &g, &stored, &e),
                     -ESTALE);
    assert_non_null(strstr(e.msg, "generation 1"));
    /* A damaged file is never stored. */
    uint8_t *bad = malloc(len);
    memcpy(bad, a, len);
    bad[40] = 0;
    assert_int_equal(nvgen_store(gdir, bad, len, "node3", "stop", 3, &dl, &g, &stored, &e),
                     -EINVAL);
    assert_false(stored);
    assert_int_equal(nvgen_store(gdir, c, len, "node3", "stop", 3, &dl, &g, &stored, &e), 0);
    assert_int_equal(g.num, 3);

    struct nvram_gen *list;
    size_t n;
    assert_int_equal(nvgen_list(gdir, &list, &n, &e), 0);
    assert_int_equal(n, 3);
    assert_int_equal(list[0].num, 1);
    assert_string_equal(list[2].host, "node3");
    free(list);

    /* Keep 3: a fourth pushes out the first. */
    vary(c, len, 11);
    assert_int_equal(nvgen_store(gdir, c, len, "node1", "periodic", 3, &dl, &g, &stored, &e), 0);
    assert_int_equal(g.num, 4);
    assert_int_equal(nvgen_list(gdir, &list, &n, &e), 0);
    assert_int_equal(n, 3);
    assert_int_equal(list[0].num, 2);
    free(list);

    /* The newest damaged on disk: the previous one is used, and the note says why. */
    char path[128];
    snprintf(path, sizeof(path), "%s/nvram/gen-000004.fd", gdir);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 100, SEEK_SET);
    fputc(0x42, f);
    fclose(f);
    assert_int_equal(nvgen_newest_valid(gdir, &out, &out_len, &g, note, sizeof(note), &e), 0);
    assert_int_equal(g.num, 3);
    assert_int_equal(out_len, len);
    assert_non_null(strstr(note, "generation 4 is damaged"));
    free(out);

    /* Files are root's only. */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    unsigned long booted;
    assert_int_equal(nvgen_booted(gdir, &booted, &e), 0);
    assert_int_equal(booted, 0);
    assert_int_equal(nvgen_set_booted(gdir, 3, "node1", &e), 0);
    assert_int_equal(nvgen_booted(gdir, &booted, &e), 0);
    assert_int_equal(booted, 3);

    assert_int_equal(nvgen_keep_forensic(gdir, bad, len, "node2", "stale", &e), 0);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "test $(ls '%s/nvram/forensic' | grep -c 'node2.*fd$') = 1", gdir);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", gdir);
    assert_int_equal(system(cmd), 0);
    free(a);
    free(b);
    free(c);
    free(bad);
}

/* What a writer to shared storage plants in a guest's NVRAM directory is refused, not
 * followed. */
static void generations_follow_no_link(void **state)
{
    char gdir[] = "/tmp/vmha-nvlink-test.XXXXXX";
    assert_non_null(mkdtemp(gdir));
    size_t len;
    uint8_t *a = load(MS_VARS, &len);
    struct vmha_err e = {0};
    struct vmha_deadline dl = vmha_deadline_in(5000);
    struct nvram_gen g;
    bool stored;
    char path[128], elsewhere[128];
    snprintf(elsewhere, sizeof(elsewhere), "%s/elsewhere", gdir);
    assert_int_equal(mkdir(elsewhere, 0700), 0);
    snprintf(path, sizeof(path), "%s/nvram", gdir);
    assert_int_equal(symlink(elsewhere, path), 0);
    struct nvram_gen *list = NULL;
    size_t n;
    assert_int_equal(nvgen_list(gdir, &list, &n, &e), -ELOOP);
    assert_non_null(strstr(e.msg, "nvram is a symbolic link"));
    assert_int_equal(nvgen_store(gdir, a, len, "node1", "stop", 3, &dl, &g, &stored, &e), -ELOOP);
    assert_false(stored);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s')\"", elsewhere);
    assert_int_equal(system(cmd), 0);

    /* A generation's file replaced by a link: damaged, never read through. */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(nvgen_store(gdir, a, len, "node1", "stop", 3, &dl, &g, &stored, &e), 0);
    snprintf(path, sizeof(path), "%s/nvram/gen-000001.fd", gdir);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(symlink(MS_VARS, path), 0);
    uint8_t *out = NULL;
    size_t out_len;
    assert_int_equal(nvgen_read(gdir, &g, &out, &out_len, &e), -ELOOP);
    assert_null(out);
    assert_non_null(strstr(e.msg, "gen-000001.fd is a symbolic link"));

    /* A host name becomes part of a file name: it must stay one name. */
    assert_int_equal(nvgen_keep_forensic(gdir, a, len, "../../x", "stale", &e), -EINVAL);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", gdir);
    assert_int_equal(system(cmd), 0);
    free(a);
}

static void write_file_atomically(void **state)
{
    char dir[] = "/tmp/vmha-nvwrite-test.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[96];
    snprintf(path, sizeof(path), "%s/web1_VARS.fd", dir);
    struct vmha_err e = {0};
    assert_int_equal(nvram_write_file(path, (const uint8_t *)"abc", 3, &e), 0);
    assert_int_equal(nvram_write_file(path, (const uint8_t *)"defg", 4, &e), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 4);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) = 1 && rm -rf '%s'", dir, dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_ms_vars),
        cmocka_unit_test(empty_template),
        cmocka_unit_test(crafted_damage),
        cmocka_unit_test(liveness_as_before_golden),
        cmocka_unit_test(liveness_as_before_synthetic),
        cmocka_unit_test(large_store),
        cmocka_unit_test(device_paths),
        cmocka_unit_test(generations),
        cmocka_unit_test(generations_follow_no_link),
        cmocka_unit_test(write_file_atomically),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

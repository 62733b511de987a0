/* Boot artifacts and install state (see include/vmha/boot.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmha/boot.h"
#include "vmha/cleanup.h"

#define ARTIFACT_MAX (1u << 30)

int boot_file_sha256(const char *path, char out[65], struct vmha_err *err)
{
    _cleanup_free_ uint8_t *buf = NULL;
    size_t len;
    int r = vmha_read_blob(path, ARTIFACT_MAX, &buf, &len, err);
    if (r < 0)
        return r;
    state_sha256_hex(buf, len, out);
    return 0;
}

static void text_sha256(const char *s, char out[65])
{
    state_sha256_hex(s ? s : "", s ? strlen(s) : 0, out);
}

void boot_key_clear(struct boot_key *k)
{
    if (k->bytes)
        explicit_bzero(k->bytes, k->len);
    free(k->bytes);
    *k = (struct boot_key){0};
}

int boot_key_load(const char *path, struct boot_key *ret, struct vmha_err *err)
{
    struct boot_key k = {0};
    int r = vmha_secret_read("artifact_key", path, &k.bytes, &k.len, err);
    if (r == 0)
        *ret = k;
    return r;
}

/* The signed text: a format version, the guest and the record's name (a record signed for
 * one guest or record cannot stand in for another), then every recorded value in a fixed
 * order. Each value carries its length, so no choice of values can read as another. */
static int hmac_of(const struct boot_record_ref *ref, const struct store_kv *kv, char out[65])
{
    static const char *const keys[] = {"kernel", "kernel_sha256", "initrd", "initrd_sha256",
                                       "cmdline_sha256"};
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    if (!f)
        return -ENOMEM;
    fprintf(f, "vmha-boot-artifacts\nformat=%d\nguest=%zu:%s\nrecord=%zu:%s\n", BOOT_RECORD_FORMAT,
            strlen(ref->guest), ref->guest, strlen(ref->name), ref->name);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *v = store_kv_get(kv, keys[i]);
        fprintf(f, "%s=%zu:%s\n", keys[i], strlen(v ? v : ""), v ? v : "");
    }
    if (fclose(f) != 0) {
        free(s);
        return -ENOMEM;
    }
    state_hmac_sha256_hex(ref->key->bytes, ref->key->len, s, len, out);
    free(s);
    return 0;
}

/* Compares in time that does not depend on where the strings differ: a forger learns
 * nothing from how long a refusal took. */
static bool mac_equal(const char *stored, const char mac[65])
{
    if (strlen(stored) != 64 || strlen(mac) != 64)
        return false;
    unsigned char diff = 0;
    for (size_t i = 0; i < 64; i++)
        diff |= (unsigned char)(stored[i] ^ mac[i]);
    return diff == 0;
}

static bool keyed(const struct boot_record_ref *ref)
{
    return ref->key && ref->key->bytes && ref->key->len;
}

/* What the artifacts are now: paths and digests as key=value. */
static int measure(const struct boot_artifacts *a, struct store_kv *kv, struct vmha_err *err)
{
    char d[65];
    int r;
    if (store_kv_set(kv, "kernel", a->kernel ? a->kernel : "") < 0 ||
        store_kv_set(kv, "initrd", a->initrd ? a->initrd : "") < 0)
        return vmha_err_set(err, -EINVAL, "a boot artifact path holds a newline");
    if (a->kernel) {
        if ((r = boot_file_sha256(a->kernel, d, err)) < 0)
            return r;
        store_kv_set(kv, "kernel_sha256", d);
    }
    if (a->initrd) {
        if ((r = boot_file_sha256(a->initrd, d, err)) < 0)
            return r;
        store_kv_set(kv, "initrd_sha256", d);
    }
    text_sha256(a->cmdline, d);
    store_kv_set(kv, "cmdline_sha256", d);
    return 0;
}

static const char *or_none(const char *s)
{
    return s && s[0] ? s : "(none)";
}

/* Measures the artifacts into now and holds them against pinned digests. */
static int measure_pinned(const struct boot_artifacts *a, const char *pinned_kernel,
                          const char *pinned_initrd, struct store_kv *now, struct vmha_err *err)
{
    int r = measure(a, now, err);
    if (r < 0)
        return r;
    if (pinned_kernel && pinned_kernel[0] &&
        strcmp(pinned_kernel, or_none(store_kv_get(now, "kernel_sha256"))) != 0)
        return vmha_err_set(err, -EBADMSG,
                            "kernel %s has sha256 %s here, the guest's "
                            "kernel_sha256 parameter says %s",
                            a->kernel, store_kv_get(now, "kernel_sha256"), pinned_kernel);
    if (pinned_initrd && pinned_initrd[0] &&
        strcmp(pinned_initrd, or_none(store_kv_get(now, "initrd_sha256"))) != 0)
        return vmha_err_set(err, -EBADMSG,
                            "initrd %s has sha256 %s here, the guest's "
                            "initrd_sha256 parameter says %s",
                            a->initrd, store_kv_get(now, "initrd_sha256"), pinned_initrd);
    return 0;
}

/* Adds the format and, under a key, the HMAC to a measured record. */
static int sign(const struct boot_record_ref *ref, struct store_kv *kv, struct vmha_err *err)
{
    char mac[65], fmt[16];
    snprintf(fmt, sizeof(fmt), "%d", BOOT_RECORD_FORMAT);
    if (store_kv_set(kv, "format", fmt) < 0)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    if (!keyed(ref))
        return 0;
    if (hmac_of(ref, kv, mac) < 0 || store_kv_set(kv, "hmac_sha256", mac) < 0)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    return 0;
}

static int verify_signature(const struct boot_record_ref *ref, const struct store_kv *rec,
                            struct vmha_err *err)
{
    char mac[65], fmt[16];
    const char *stored = store_kv_get(rec, "hmac_sha256");
    const char *format = store_kv_get(rec, "format");
    snprintf(fmt, sizeof(fmt), "%d", BOOT_RECORD_FORMAT);
    if (!stored)
        return vmha_err_set(err, -EPERM,
                            "the recorded boot artifact digests in %s/%s are "
                            "not signed under the cluster key: refusing to trust them",
                            ref->gdir, ref->name);
    if (!format || strcmp(format, fmt) != 0)
        return vmha_err_set(err, -EPERM,
                            "the recorded boot artifact digests in %s/%s are "
                            "signed in an older format that does not name the guest: refusing "
                            "to trust them",
                            ref->gdir, ref->name);
    if (hmac_of(ref, rec, mac) < 0)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    if (!mac_equal(stored, mac))
        return vmha_err_set(err, -EPERM,
                            "the recorded boot artifact digests in %s/%s are "
                            "not signed correctly for guest %s under the cluster key: refusing "
                            "to trust them",
                            ref->gdir, ref->name, ref->guest);
    return 0;
}

/* The recorded values against the measured ones. */
static int compare(const struct store_kv *rec, const struct store_kv *now, struct vmha_err *err)
{
    static const struct {
        const char *path, *digest, *what;
    } items[] = {{"kernel", "kernel_sha256", "kernel"}, {"initrd", "initrd_sha256", "initrd"}};
    for (size_t i = 0; i < 2; i++) {
        const char *rp = store_kv_get(rec, items[i].path), *np = store_kv_get(now, items[i].path);
        const char *rd = store_kv_get(rec, items[i].digest);
        const char *nd = store_kv_get(now, items[i].digest);
        if (strcmp(or_none(rp), or_none(np)) != 0)
            return vmha_err_set(err, -EBADMSG,
                                "the guest now boots %s %s, but %s %s was "
                                "recorded",
                                items[i].what, or_none(np), items[i].what, or_none(rp));
        if (strcmp(or_none(rd), or_none(nd)) != 0)
            return vmha_err_set(err, -EBADMSG,
                                "%s %s has sha256 %s on this host, the "
                                "recorded digest is %s",
                                items[i].what, or_none(np), or_none(nd), or_none(rd));
    }
    if (strcmp(or_none(store_kv_get(rec, "cmdline_sha256")),
               or_none(store_kv_get(now, "cmdline_sha256"))) != 0)
        return vmha_err_set(err, -EBADMSG,
                            "the kernel command line differs from the "
                            "recorded one");
    return 0;
}

int boot_artifacts_check(const struct boot_record_ref *ref, const struct boot_artifacts *a,
                         const char *pinned_kernel, const char *pinned_initrd, unsigned flags,
                         struct vmha_err *err)
{
    if (!a->kernel && !a->initrd)
        return 0; /* boots from its disk or firmware: nothing to check */
    _cleanup_(store_kv_clear) struct store_kv now = {0}, rec = {0};
    int r = measure_pinned(a, pinned_kernel, pinned_initrd, &now, err);
    if (r < 0)
        return r;
    struct vmha_err e = {0};
    r = store_read(ref->gdir, ref->name, &rec, &e);
    if (r == -ENOENT && keyed(ref))
        /* Recording whatever is there now would sign a kernel nobody looked at: whoever
         * deletes the record would choose the next kernel. Only an operator records. */
        return vmha_err_set(err, -ENODATA,
                            "there is no signed record of guest %s's boot "
                            "artifacts (%s/%s)",
                            ref->guest, ref->gdir, ref->name);
    if (r == -ENOENT) {
        if (!(flags & BOOT_RECORD_IF_ABSENT))
            return 0;
        if ((r = sign(ref, &now, err)) < 0)
            return r;
        /* Exclusive: when two hosts record at once, the first record wins and is checked. */
        r = store_write(ref->gdir, ref->name, &now, true, &e);
        if (r == -EEXIST)
            return boot_artifacts_check(ref, a, pinned_kernel, pinned_initrd, 0, err);
        return r < 0 ? vmha_err_set(err, r, "%s", e.msg) : 0;
    }
    if (r < 0)
        return vmha_err_set(err, r, "%s", e.msg);
    if (keyed(ref) && (r = verify_signature(ref, &rec, err)) < 0)
        return r;
    return compare(&rec, &now, err);
}

int boot_artifacts_record(const struct boot_record_ref *ref, const struct boot_artifacts *a,
                          const char *pinned_kernel, const char *pinned_initrd,
                          struct vmha_err *err)
{
    if (!a->kernel && !a->initrd)
        return vmha_err_set(err, -ENOENT,
                            "guest %s boots no kernel directly: there are no "
                            "boot artifacts to record",
                            ref->guest);
    _cleanup_(store_kv_clear) struct store_kv now = {0};
    int r = measure_pinned(a, pinned_kernel, pinned_initrd, &now, err);
    if (r < 0 || (r = sign(ref, &now, err)) < 0)
        return r;
    return store_write(ref->gdir, ref->name, &now, false, err);
}

const char *install_state_name(enum install_state s)
{
    switch (s) {
    case INSTALL_RUNNING:
        return "running";
    case INSTALL_DONE:
        return "done";
    default:
        return "not-started";
    }
}

int install_read(const char *gdir, struct install_record *ret, struct vmha_err *err)
{
    memset(ret, 0, sizeof(*ret));
    _cleanup_(store_kv_clear) struct store_kv kv = {0};
    int r = store_read(gdir, STATE_INSTALL, &kv, err);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    const char *s = store_kv_get(&kv, "state");
    if (s && strcmp(s, "running") == 0)
        ret->state = INSTALL_RUNNING;
    else if (s && strcmp(s, "done") == 0)
        ret->state = INSTALL_DONE;
    else if (!s || strcmp(s, "not-started") != 0)
        return vmha_err_set(err, -EINVAL, "%s/install: unknown state '%s'", gdir, s ? s : "");
    snprintf(ret->host, sizeof(ret->host), "%s", store_kv_get(&kv, "host") ?: "");
    uint64_t v;
    const char *a = store_kv_get(&kv, "attempts"), *t = store_kv_get(&kv, "changed");
    if (a && vmha_parse_uint(a, 1000000, &v) == 0)
        ret->attempts = (unsigned)v;
    if (t && vmha_parse_uint(t, UINT32_MAX * 100ull, &v) == 0)
        ret->changed = (long long)v;
    return 0;
}

int install_write(const char *gdir, const struct install_record *rec, struct vmha_err *err)
{
    _cleanup_(store_kv_clear) struct store_kv kv = {0};
    char a[32], t[32];
    snprintf(a, sizeof(a), "%u", rec->attempts);
    snprintf(t, sizeof(t), "%lld", rec->changed ? rec->changed : (long long)time(NULL));
    if (store_kv_set(&kv, "state", install_state_name(rec->state)) < 0 ||
        store_kv_set(&kv, "host", rec->host) < 0 || store_kv_set(&kv, "attempts", a) < 0 ||
        store_kv_set(&kv, "changed", t) < 0)
        return vmha_err_set(err, -EINVAL, "host holds a newline");
    return store_write(gdir, STATE_INSTALL, &kv, false, err);
}

int boot_artifacts_verify_files(const char *gdir, const char *name, bool *recorded,
                                struct vmha_err *err)
{
    _cleanup_(store_kv_clear) struct store_kv rec = {0};
    struct vmha_err e = {0};
    *recorded = false;
    int r = store_read(gdir, name, &rec, &e);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return vmha_err_set(err, r, "%s", e.msg);
    *recorded = true;
    static const char *const what[] = {"kernel", "initrd"};
    for (int i = 0; i < 2; i++) {
        char key[32], d[65];
        const char *path = store_kv_get(&rec, what[i]);
        snprintf(key, sizeof(key), "%s_sha256", what[i]);
        const char *want = store_kv_get(&rec, key);
        if (!path || !path[0] || !want)
            continue;
        if ((r = boot_file_sha256(path, d, &e)) < 0)
            return vmha_err_set(err, -EBADMSG, "%s %s: %s", what[i], path, e.msg);
        if (strcmp(d, want) != 0)
            return vmha_err_set(err, -EBADMSG,
                                "%s %s has sha256 %s on this host, the "
                                "recorded digest is %s",
                                what[i], path, d, want);
    }
    return 0;
}

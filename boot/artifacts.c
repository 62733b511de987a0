/* Boot artifacts and install state (see include/vmha/boot.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <glib.h>

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
    gchar *hex = g_compute_checksum_for_data(G_CHECKSUM_SHA256, buf, len);
    snprintf(out, 65, "%s", hex ? hex : "");
    g_free(hex);
    return 0;
}

static void text_sha256(const char *s, char out[65])
{
    gchar *hex = g_compute_checksum_for_string(G_CHECKSUM_SHA256, s ? s : "", -1);
    snprintf(out, 65, "%s", hex ? hex : "");
    g_free(hex);
}

/* The signed text: every recorded key=value line in a fixed order. */
static void hmac_of(const struct store_kv *kv, const uint8_t *key, size_t key_len, char out[65])
{
    static const char *const keys[] = {"kernel", "kernel_sha256", "initrd", "initrd_sha256",
                                       "cmdline_sha256"};
    GString *s = g_string_new(NULL);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *v = store_kv_get(kv, keys[i]);
        g_string_append_printf(s, "%s=%s\n", keys[i], v ? v : "");
    }
    gchar *hex = g_compute_hmac_for_data(G_CHECKSUM_SHA256, key, key_len,
                                         (const guchar *)s->str, s->len);
    snprintf(out, 65, "%s", hex ? hex : "");
    g_free(hex);
    g_string_free(s, TRUE);
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

int boot_artifacts_check(const char *gdir, const char *name, const struct boot_artifacts *a,
                         const char *pinned_kernel, const char *pinned_initrd,
                         const uint8_t *key, size_t key_len, bool record_if_absent,
                         struct vmha_err *err)
{
    if (!a->kernel && !a->initrd)
        return 0; /* boots from its disk or firmware: nothing to check */
    _cleanup_(store_kv_clear) struct store_kv now = {0}, rec = {0};
    int r = measure(a, &now, err);
    if (r < 0)
        return r;
    if (pinned_kernel && pinned_kernel[0] &&
        strcmp(pinned_kernel, or_none(store_kv_get(&now, "kernel_sha256"))) != 0)
        return vmha_err_set(err, -EBADMSG, "kernel %s has sha256 %s here, the guest's "
                            "kernel_sha256 parameter says %s", a->kernel,
                            store_kv_get(&now, "kernel_sha256"), pinned_kernel);
    if (pinned_initrd && pinned_initrd[0] &&
        strcmp(pinned_initrd, or_none(store_kv_get(&now, "initrd_sha256"))) != 0)
        return vmha_err_set(err, -EBADMSG, "initrd %s has sha256 %s here, the guest's "
                            "initrd_sha256 parameter says %s", a->initrd,
                            store_kv_get(&now, "initrd_sha256"), pinned_initrd);
    struct vmha_err e = {0};
    r = store_read(gdir, name, &rec, &e);
    if (r == -ENOENT) {
        if (!record_if_absent)
            return 0;
        if (key) {
            char mac[65];
            hmac_of(&now, key, key_len, mac);
            store_kv_set(&now, "hmac_sha256", mac);
        }
        /* Exclusive: when two hosts record at once, the first record wins and is checked. */
        r = store_write(gdir, name, &now, true, &e);
        if (r == -EEXIST)
            return boot_artifacts_check(gdir, name, a, pinned_kernel, pinned_initrd, key,
                                        key_len, false, err);
        return r < 0 ? vmha_err_set(err, r, "%s", e.msg) : 0;
    }
    if (r < 0)
        return vmha_err_set(err, r, "%s", e.msg);
    if (key) {
        char mac[65];
        hmac_of(&rec, key, key_len, mac);
        const char *stored = store_kv_get(&rec, "hmac_sha256");
        if (!stored || strcmp(stored, mac) != 0)
            return vmha_err_set(err, -EPERM, "the recorded boot artifact digests in %s/%s are "
                                "%s under the cluster key: refusing to trust them", gdir, name,
                                stored ? "not signed correctly" : "not signed");
    }
    static const struct {
        const char *path, *digest, *what;
    } items[] = {{"kernel", "kernel_sha256", "kernel"}, {"initrd", "initrd_sha256", "initrd"}};
    for (size_t i = 0; i < 2; i++) {
        const char *rp = store_kv_get(&rec, items[i].path), *np = store_kv_get(&now, items[i].path);
        const char *rd = store_kv_get(&rec, items[i].digest);
        const char *nd = store_kv_get(&now, items[i].digest);
        if (strcmp(or_none(rp), or_none(np)) != 0)
            return vmha_err_set(err, -EBADMSG, "the guest now boots %s %s, but %s %s was "
                                "recorded", items[i].what, or_none(np), items[i].what,
                                or_none(rp));
        if (strcmp(or_none(rd), or_none(nd)) != 0)
            return vmha_err_set(err, -EBADMSG, "%s %s has sha256 %s on this host, the "
                                "recorded digest is %s", items[i].what, or_none(np),
                                or_none(nd), or_none(rd));
    }
    if (strcmp(or_none(store_kv_get(&rec, "cmdline_sha256")),
               or_none(store_kv_get(&now, "cmdline_sha256"))) != 0)
        return vmha_err_set(err, -EBADMSG, "the kernel command line differs from the "
                            "recorded one");
    return 0;
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
    int r = store_read(gdir, "install", &kv, err);
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
        return vmha_err_set(err, -EINVAL, "%s/install: unknown state '%s'", gdir,
                            s ? s : "");
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
    return store_write(gdir, "install", &kv, false, err);
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
            return vmha_err_set(err, -EBADMSG, "%s %s has sha256 %s on this host, the "
                                "recorded digest is %s", what[i], path, d, want);
    }
    return 0;
}

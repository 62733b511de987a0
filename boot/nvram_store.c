/* NVRAM generations in the per-guest state store (see include/vmha/nvram.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vmha/cleanup.h"
#include "vmha/nvram.h"
#include "vmha/state.h"

#define NVRAM_MAX (64u << 20)

void nvram_digest(const uint8_t *buf, size_t len, char out[65])
{
    state_sha256_hex(buf, len, out);
}

/* gdir/sub (malloc'd), or NULL with err set. */
static char *sub_dir(const char *gdir, const char *sub, struct vmha_err *err)
{
    char *dir = NULL;
    if (asprintf(&dir, "%s/%s", gdir, sub) < 0) {
        vmha_err_set(err, -ENOMEM, "out of memory");
        return NULL;
    }
    return dir;
}

int nvram_write_file(const char *path, const uint8_t *buf, size_t len, struct vmha_err *err)
{
    return vmha_write_file(path, buf, len, true, err);
}

static int read_meta(int dfd, const char *dir, const char *file, struct nvram_gen *g,
                     struct vmha_err *err)
{
    _cleanup_(store_kv_clear) struct store_kv kv = {0};
    int r = store_read_at(dfd, dir, file, &kv, err);
    if (r < 0)
        return r;
    memset(g, 0, sizeof(*g));
    const char *num = store_kv_get(&kv, "generation"), *dg = store_kv_get(&kv, "digest");
    const char *size = store_kv_get(&kv, "size"), *t = store_kv_get(&kv, "time");
    uint64_t v;
    if (!num || vmha_parse_uint(num, 999999, &v) < 0 || !dg || strlen(dg) != 64)
        return vmha_err_set(err, -EINVAL, "%s/%s is not a generation record", dir, file);
    g->num = (unsigned long)v;
    snprintf(g->digest, sizeof(g->digest), "%s", dg);
    snprintf(g->host, sizeof(g->host), "%s", store_kv_get(&kv, "host") ?: "");
    snprintf(g->reason, sizeof(g->reason), "%s", store_kv_get(&kv, "reason") ?: "");
    if (size && vmha_parse_uint(size, NVRAM_MAX, &v) == 0)
        g->size = (size_t)v;
    if (t && vmha_parse_uint(t, UINT32_MAX * 100ull, &v) == 0)
        g->time = (long long)v;
    return 0;
}

static int cmp_gen(const void *a, const void *b)
{
    const struct nvram_gen *x = a, *y = b;
    return x->num < y->num ? -1 : x->num > y->num;
}

int nvgen_list(const char *gdir, struct nvram_gen **ret, size_t *n, struct vmha_err *err)
{
    *ret = NULL;
    *n = 0;
    _cleanup_free_ char *dir = sub_dir(gdir, STATE_NVRAM_DIR, err);
    if (!dir)
        return -ENOMEM;
    _cleanup_(closep) int dfd = -1;
    struct vmha_err oe = {0};
    int r = store_dir_open(dir, false, &dfd, &oe);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return vmha_err_set(err, r, "%s", oe.msg);
    int lfd = dup(dfd);
    DIR *d = lfd < 0 ? NULL : fdopendir(lfd);
    if (!d) {
        r = vmha_err_set(err, -errno, "cannot read %s: %s", dir, strerror(errno));
        if (lfd >= 0)
            close(lfd);
        return r;
    }
    struct nvram_gen *list = NULL;
    size_t count = 0;
    for (struct dirent *e; (e = readdir(d));) {
        unsigned long num;
        char tail[8];
        if (sscanf(e->d_name, "gen-%6lu.%7s", &num, tail) != 2 || strcmp(tail, "meta") != 0)
            continue;
        struct nvram_gen g;
        if ((r = read_meta(dfd, dir, e->d_name, &g, err)) < 0)
            break;
        struct nvram_gen *m = realloc(list, (count + 1) * sizeof(*m));
        if (!m) {
            r = vmha_err_set(err, -ENOMEM, "out of memory");
            break;
        }
        list = m;
        list[count++] = g;
    }
    closedir(d);
    if (r < 0) {
        free(list);
        return r;
    }
    if (count) /* qsort takes no NULL, even for nothing */
        qsort(list, count, sizeof(*list), cmp_gen);
    *ret = list;
    *n = count;
    return 0;
}

int nvgen_read(const char *gdir, const struct nvram_gen *g, uint8_t **buf, size_t *len,
               struct vmha_err *err)
{
    _cleanup_free_ char *dir = sub_dir(gdir, STATE_NVRAM_DIR, err), *path = NULL;
    if (!dir)
        return -ENOMEM;
    char file[32];
    snprintf(file, sizeof(file), "gen-%06lu.fd", g->num);
    if (asprintf(&path, "%s/%s", dir, file) < 0)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    _cleanup_free_ uint8_t *data = NULL;
    size_t size;
    struct vmha_err e = {0};
    _cleanup_(closep) int dfd = -1;
    int r = store_dir_open(dir, false, &dfd, &e);
    if (r == 0)
        r = vmha_read_blob_at(dfd, file, path, NVRAM_MAX, &data, &size, &e);
    if (r < 0)
        return vmha_err_set(err, r, "generation %lu: %s", g->num, e.msg);
    char digest[65];
    nvram_digest(data, size, digest);
    if (strcmp(digest, g->digest) != 0)
        return vmha_err_set(err, -EBADMSG,
                            "generation %lu is damaged: its digest is %.12s..., "
                            "its record says %.12s...",
                            g->num, digest, g->digest);
    struct nvram nv;
    if ((r = nvram_parse(data, size, &nv, &e)) < 0)
        return vmha_err_set(err, r, "generation %lu is not a valid variable store: %s", g->num,
                            e.msg);
    nvram_clear(&nv);
    *buf = TAKE_PTR(data);
    *len = size;
    return 0;
}

int nvgen_newest_valid(const char *gdir, uint8_t **buf, size_t *len, struct nvram_gen *ret,
                       char *note, size_t note_size, struct vmha_err *err)
{
    _cleanup_free_ struct nvram_gen *gens = NULL;
    size_t n;
    int r = nvgen_list(gdir, &gens, &n, err);
    if (note_size)
        note[0] = '\0';
    if (r < 0)
        return r;
    for (size_t i = n; i-- > 0;) {
        struct vmha_err e = {0};
        if (nvgen_read(gdir, &gens[i], buf, len, &e) == 0) {
            *ret = gens[i];
            return 0;
        }
        size_t used = strlen(note);
        snprintf(note + used, note_size - used, "%s%s", used ? "; " : "", e.msg);
    }
    return vmha_err_set(err, -ENOENT,
                        n ? "no intact NVRAM generation: %s" : "no NVRAM generation stored yet%s",
                        note);
}

int nvgen_store(const char *gdir, const uint8_t *buf, size_t len, const char *host,
                const char *reason, unsigned keep, const struct vmha_deadline *dl,
                struct nvram_gen *ret, bool *stored, struct vmha_err *err)
{
    *stored = false;
    struct nvram nv;
    struct vmha_err e = {0};
    int r = nvram_parse(buf, len, &nv, &e);
    if (r < 0)
        return vmha_err_set(err, r, "not stored: %s", e.msg);
    nvram_clear(&nv);
    _cleanup_free_ char *dir = sub_dir(gdir, STATE_NVRAM_DIR, err);
    if (!dir)
        return -ENOMEM;
    _cleanup_(store_kv_clear) struct store_kv kv = {0};
    _cleanup_free_ struct nvram_gen *gens = NULL;
    int lock = -1;
    if ((r = store_lock(dir, dl, &lock, err)) < 0)
        return r;
    int dfd = -1;
    size_t n;
    if ((r = store_dir_open(dir, false, &dfd, err)) < 0 ||
        (r = nvgen_list(gdir, &gens, &n, err)) < 0)
        goto out;
    struct nvram_gen g = {
        .num = n ? gens[n - 1].num + 1 : 1, .size = len, .time = (long long)time(NULL)};
    nvram_digest(buf, len, g.digest);
    if (n && strcmp(gens[n - 1].digest, g.digest) == 0) {
        *ret = gens[n - 1];
        goto out; /* unchanged */
    }
    for (size_t i = 0; i + 1 < n; i++)
        if (strcmp(gens[i].digest, g.digest) == 0) {
            r = vmha_err_set(err, -ESTALE,
                             "not stored: the file equals generation %lu, older "
                             "than the newest (%lu): storing it would roll the NVRAM back",
                             gens[i].num, gens[n - 1].num);
            goto out;
        }
    snprintf(g.host, sizeof(g.host), "%s", host);
    snprintf(g.reason, sizeof(g.reason), "%s", reason);
    char file[64];
    snprintf(file, sizeof(file), "gen-%06lu.fd", g.num);
    if ((r = store_write_at(dfd, dir, file, buf, len, false, err)) < 0)
        goto out;
    char num[32], size[32], t[32];
    snprintf(num, sizeof(num), "%lu", g.num);
    snprintf(size, sizeof(size), "%zu", len);
    snprintf(t, sizeof(t), "%lld", g.time);
    if (store_kv_set(&kv, "generation", num) < 0 || store_kv_set(&kv, "digest", g.digest) < 0 ||
        store_kv_set(&kv, "size", size) < 0 || store_kv_set(&kv, "host", host) < 0 ||
        store_kv_set(&kv, "reason", reason) < 0 || store_kv_set(&kv, "time", t) < 0) {
        r = vmha_err_set(err, -EINVAL, "host or reason holds a newline");
        goto out;
    }
    snprintf(file, sizeof(file), "gen-%06lu.meta", g.num);
    if ((r = store_write(dir, file, &kv, true, err)) < 0)
        goto out;
    *stored = true;
    *ret = g;
    /* Keep the last `keep`; the newest is never pruned. */
    for (size_t i = 0; keep && i + keep < n + 1; i++) {
        snprintf(file, sizeof(file), "gen-%06lu.meta", gens[i].num);
        unlinkat(dfd, file, 0);
        snprintf(file, sizeof(file), "gen-%06lu.fd", gens[i].num);
        unlinkat(dfd, file, 0);
    }
out:
    if (dfd >= 0)
        close(dfd);
    store_unlock(lock);
    return r;
}

int nvgen_keep_forensic(const char *gdir, const uint8_t *buf, size_t len, const char *host,
                        const char *why, struct vmha_err *err)
{
    /* The host names a file here: it must not be able to name another directory. */
    if (!store_name_ok(host))
        return vmha_err_set(err, -EINVAL, "host name '%.64s' cannot be part of a file name", host);
    _cleanup_free_ char *dir = sub_dir(gdir, "nvram/forensic", err);
    if (!dir)
        return -ENOMEM;
    struct vmha_err e = {0};
    _cleanup_(store_kv_clear) struct store_kv kv = {0};
    char digest[65], name[300];
    nvram_digest(buf, len, digest);
    snprintf(name, sizeof(name), "%lld-%s-%.12s", (long long)time(NULL), host, digest);
    if (store_kv_set(&kv, "host", host) < 0 || store_kv_set(&kv, "why", why) < 0 ||
        store_kv_set(&kv, "digest", digest) < 0)
        return vmha_err_set(err, -EINVAL, "host or reason holds a newline");
    char meta[320], fd_name[320];
    snprintf(meta, sizeof(meta), "%s.meta", name);
    snprintf(fd_name, sizeof(fd_name), "%s.fd", name);
    int r = store_write(dir, meta, &kv, false, &e); /* creates the directory too */
    if (r < 0)
        return vmha_err_set(err, r, "%s", e.msg);
    _cleanup_(closep) int dfd = -1;
    if ((r = store_dir_open(dir, false, &dfd, err)) < 0)
        return r;
    return store_write_at(dfd, dir, fd_name, buf, len, false, err);
}

int nvgen_booted(const char *gdir, unsigned long *num, struct vmha_err *err)
{
    *num = 0;
    _cleanup_free_ char *dir = sub_dir(gdir, STATE_NVRAM_DIR, err);
    if (!dir)
        return -ENOMEM;
    _cleanup_(store_kv_clear) struct store_kv kv = {0};
    int r = store_read(dir, "booted", &kv, err);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    uint64_t v;
    const char *g = store_kv_get(&kv, "generation");
    if (!g || vmha_parse_uint(g, 999999, &v) < 0)
        return vmha_err_set(err, -EINVAL, "%s/booted names no generation", dir);
    *num = (unsigned long)v;
    return 0;
}

int nvgen_set_booted(const char *gdir, unsigned long num, const char *host, struct vmha_err *err)
{
    _cleanup_free_ char *dir = sub_dir(gdir, STATE_NVRAM_DIR, err);
    if (!dir)
        return -ENOMEM;
    char n[32], t[32];
    snprintf(n, sizeof(n), "%lu", num);
    snprintf(t, sizeof(t), "%lld", (long long)time(NULL));
    _cleanup_(store_kv_clear) struct store_kv kv = {0};
    if (store_kv_set(&kv, "generation", n) < 0 || store_kv_set(&kv, "host", host) < 0 ||
        store_kv_set(&kv, "time", t) < 0)
        return vmha_err_set(err, -EINVAL, "host holds a newline");
    return store_write(dir, "booted", &kv, false, err);
}

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

#include <glib.h>

#include "vmha/boot.h"
#include "vmha/cleanup.h"
#include "vmha/nvram.h"

#define NVRAM_MAX (64u << 20)

void nvram_digest(const uint8_t *buf, size_t len, char out[65])
{
    gchar *hex = g_compute_checksum_for_data(G_CHECKSUM_SHA256, buf, len);
    snprintf(out, 65, "%s", hex ? hex : "");
    g_free(hex);
}

static void nv_dir(const char *gdir, char *buf, size_t size)
{
    snprintf(buf, size, "%s/nvram", gdir);
}

int nvram_write_file(const char *path, const uint8_t *buf, size_t len, struct vmha_err *err)
{
    _cleanup_free_ char *tmp = NULL, *dir = strdup(path);
    if (!dir || asprintf(&tmp, "%s.vmha-tmp.%ld", path, (long)getpid()) < 0)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    _cleanup_(closep) int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return vmha_err_set(err, -errno, "cannot create %s: %s", tmp, strerror(errno));
    for (size_t off = 0; off < len;) {
        ssize_t n = write(fd, buf + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int r = vmha_err_set(err, -errno, "cannot write %s: %s", tmp, strerror(errno));
            unlink(tmp);
            return r;
        }
        off += (size_t)n;
    }
    if (fsync(fd) < 0 || rename(tmp, path) < 0) {
        int r = vmha_err_set(err, -errno, "cannot replace %s: %s", path, strerror(errno));
        unlink(tmp);
        return r;
    }
    _cleanup_(closep) int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) < 0)
        return vmha_err_set(err, -errno, "cannot sync the directory of %s: %s", path,
                            strerror(errno));
    return 0;
}

static int read_meta(const char *dir, const char *file, struct nvram_gen *g,
                     struct vmha_err *err)
{
    _cleanup_(store_kv_clear) struct store_kv kv = {0};
    int r = store_read(dir, file, &kv, err);
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
    char dir[4096];
    nv_dir(gdir, dir, sizeof(dir));
    *ret = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0
                               : vmha_err_set(err, -errno, "cannot read %s: %s", dir,
                                              strerror(errno));
    struct nvram_gen *list = NULL;
    size_t count = 0;
    int r = 0;
    for (struct dirent *e; (e = readdir(d));) {
        unsigned long num;
        char tail[8];
        if (sscanf(e->d_name, "gen-%6lu.%7s", &num, tail) != 2 || strcmp(tail, "meta") != 0)
            continue;
        struct nvram_gen g;
        if ((r = read_meta(dir, e->d_name, &g, err)) < 0)
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
    qsort(list, count, sizeof(*list), cmp_gen);
    *ret = list;
    *n = count;
    return 0;
}

int nvgen_read(const char *gdir, const struct nvram_gen *g, uint8_t **buf, size_t *len,
               struct vmha_err *err)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/nvram/gen-%06lu.fd", gdir, g->num);
    _cleanup_free_ uint8_t *data = NULL;
    size_t size;
    struct vmha_err e = {0};
    int r = vmha_read_blob(path, NVRAM_MAX, &data, &size, &e);
    if (r < 0)
        return vmha_err_set(err, r, "generation %lu: %s", g->num, e.msg);
    char digest[65];
    nvram_digest(data, size, digest);
    if (strcmp(digest, g->digest) != 0)
        return vmha_err_set(err, -EBADMSG, "generation %lu is damaged: its digest is %.12s..., "
                            "its record says %.12s...", g->num, digest, g->digest);
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
    return vmha_err_set(err, -ENOENT, n ? "no intact NVRAM generation: %s"
                                        : "no NVRAM generation stored yet%s", note);
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
    char dir[4096];
    nv_dir(gdir, dir, sizeof(dir));
    _cleanup_(store_kv_clear) struct store_kv kv = {0};
    _cleanup_free_ struct nvram_gen *gens = NULL;
    int lock = -1;
    if ((r = store_lock(dir, dl, &lock, err)) < 0)
        return r;
    size_t n;
    if ((r = nvgen_list(gdir, &gens, &n, err)) < 0)
        goto out;
    struct nvram_gen g = {.num = n ? gens[n - 1].num + 1 : 1, .size = len,
                          .time = (long long)time(NULL)};
    nvram_digest(buf, len, g.digest);
    if (n && strcmp(gens[n - 1].digest, g.digest) == 0) {
        *ret = gens[n - 1];
        goto out; /* unchanged */
    }
    for (size_t i = 0; i + 1 < n; i++)
        if (strcmp(gens[i].digest, g.digest) == 0) {
            r = vmha_err_set(err, -ESTALE, "not stored: the file equals generation %lu, older "
                             "than the newest (%lu): storing it would roll the NVRAM back",
                             gens[i].num, gens[n - 1].num);
            goto out;
        }
    snprintf(g.host, sizeof(g.host), "%s", host);
    snprintf(g.reason, sizeof(g.reason), "%s", reason);
    char file[64], path[4200];
    snprintf(file, sizeof(file), "gen-%06lu.fd", g.num);
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    if ((r = nvram_write_file(path, buf, len, err)) < 0)
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
        snprintf(path, sizeof(path), "%s/gen-%06lu.meta", dir, gens[i].num);
        unlink(path);
        snprintf(path, sizeof(path), "%s/gen-%06lu.fd", dir, gens[i].num);
        unlink(path);
    }
out:
    store_unlock(lock);
    return r;
}

int nvgen_keep_forensic(const char *gdir, const uint8_t *buf, size_t len, const char *host,
                        const char *why, struct vmha_err *err)
{
    char dir[4200], path[4400];
    snprintf(dir, sizeof(dir), "%s/nvram/forensic", gdir);
    struct vmha_err e = {0};
    _cleanup_(store_kv_clear) struct store_kv kv = {0};
    char digest[65], name[160];
    nvram_digest(buf, len, digest);
    snprintf(name, sizeof(name), "%lld-%s-%.12s", (long long)time(NULL), host, digest);
    if (store_kv_set(&kv, "host", host) < 0 || store_kv_set(&kv, "why", why) < 0 ||
        store_kv_set(&kv, "digest", digest) < 0)
        return vmha_err_set(err, -EINVAL, "host or reason holds a newline");
    char meta[200];
    snprintf(meta, sizeof(meta), "%s.meta", name);
    int r = store_write(dir, meta, &kv, false, &e); /* creates the directory too */
    if (r < 0)
        return vmha_err_set(err, r, "%s", e.msg);
    snprintf(path, sizeof(path), "%s/%s.fd", dir, name);
    return nvram_write_file(path, buf, len, err);
}

int nvgen_booted(const char *gdir, unsigned long *num, struct vmha_err *err)
{
    char dir[4096];
    nv_dir(gdir, dir, sizeof(dir));
    _cleanup_(store_kv_clear) struct store_kv kv = {0};
    *num = 0;
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

int nvgen_set_booted(const char *gdir, unsigned long num, const char *host,
                     struct vmha_err *err)
{
    char dir[4096], n[32], t[32];
    nv_dir(gdir, dir, sizeof(dir));
    snprintf(n, sizeof(n), "%lu", num);
    snprintf(t, sizeof(t), "%lld", (long long)time(NULL));
    _cleanup_(store_kv_clear) struct store_kv kv = {0};
    if (store_kv_set(&kv, "generation", n) < 0 || store_kv_set(&kv, "host", host) < 0 ||
        store_kv_set(&kv, "time", t) < 0)
        return vmha_err_set(err, -EINVAL, "host holds a newline");
    return store_write(dir, "booted", &kv, false, err);
}

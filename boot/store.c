/* The per-guest state store (see include/vmha/boot.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmha/boot.h"
#include "vmha/cleanup.h"

/* The store's files are small; anything bigger is not ours. */
#define STORE_FILE_MAX (256u << 10)

void store_kv_clear(struct store_kv *kv)
{
    for (size_t i = 0; i < kv->n; i++) {
        free(kv->keys[i]);
        free(kv->values[i]);
    }
    free(kv->keys);
    free(kv->values);
    memset(kv, 0, sizeof(*kv));
}

const char *store_kv_get(const struct store_kv *kv, const char *key)
{
    for (size_t i = 0; i < kv->n; i++)
        if (strcmp(kv->keys[i], key) == 0)
            return kv->values[i];
    return NULL;
}

static bool key_ok(const char *k, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
            return false;
    return true;
}

int store_kv_set(struct store_kv *kv, const char *key, const char *value)
{
    if (!key_ok(key, strlen(key)) || strchr(value, '\n'))
        return -EINVAL;
    for (size_t i = 0; i < kv->n; i++)
        if (strcmp(kv->keys[i], key) == 0) {
            char *v = strdup(value);
            if (!v)
                return -ENOMEM;
            free(kv->values[i]);
            kv->values[i] = v;
            return 0;
        }
    char **k = realloc(kv->keys, (kv->n + 1) * sizeof(*k));
    if (!k)
        return -ENOMEM;
    kv->keys = k;
    char **v = realloc(kv->values, (kv->n + 1) * sizeof(*v));
    if (!v)
        return -ENOMEM;
    kv->values = v;
    kv->keys[kv->n] = strdup(key);
    kv->values[kv->n] = strdup(value);
    if (!kv->keys[kv->n] || !kv->values[kv->n]) {
        free(kv->keys[kv->n]);
        free(kv->values[kv->n]);
        return -ENOMEM;
    }
    kv->n++;
    return 0;
}

int store_kv_parse(const char *text, struct store_kv *ret, struct vmha_err *err)
{
    memset(ret, 0, sizeof(*ret));
    int line = 0;
    for (const char *p = text; *p;) {
        line++;
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (len > 0) {
            if (!eq || !key_ok(p, (size_t)(eq - p))) {
                store_kv_clear(ret);
                return vmha_err_set(err, -EINVAL, "line %d is not key=value", line);
            }
            _cleanup_free_ char *k = strndup(p, (size_t)(eq - p));
            _cleanup_free_ char *v = strndup(eq + 1, len - (size_t)(eq - p) - 1);
            if (!k || !v || store_kv_set(ret, k, v) < 0) {
                store_kv_clear(ret);
                return vmha_err_set(err, -ENOMEM, "out of memory");
            }
        }
        p += len + (nl ? 1 : 0);
    }
    return 0;
}

bool store_name_ok(const char *name)
{
    if (!name || !name[0] || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
        strlen(name) > 200)
        return false;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '.' || *c == ':' || *c == '-'))
            return false;
    return true;
}

int store_read(const char *dir, const char *file, struct store_kv *ret, struct vmha_err *err)
{
    _cleanup_free_ char *path = NULL, *text = NULL;
    memset(ret, 0, sizeof(*ret));
    if (asprintf(&path, "%s/%s", dir, file) < 0)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    int r = vmha_read_file(path, STORE_FILE_MAX, &text, err);
    if (r < 0)
        return r;
    struct vmha_err e = {0};
    if ((r = store_kv_parse(text, ret, &e)) < 0)
        return vmha_err_set(err, r, "%s: %s", path, e.msg);
    return 0;
}

static int mkdir_p(const char *dir, struct vmha_err *err)
{
    _cleanup_free_ char *d = strdup(dir);
    if (!d)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    for (char *s = d + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(d, 0700) < 0 && errno != EEXIST)
            return vmha_err_set(err, -errno, "cannot create %s: %s", d, strerror(errno));
        if (c == '\0')
            return 0;
        *s = c;
    }
}

static int fsync_dir(const char *dir, struct vmha_err *err)
{
    _cleanup_(closep) int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0)
        return vmha_err_set(err, -errno, "cannot sync %s: %s", dir, strerror(errno));
    return 0;
}

int store_write(const char *dir, const char *file, const struct store_kv *kv, bool exclusive,
                struct vmha_err *err)
{
    int r = mkdir_p(dir, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *path = NULL, *tmp = NULL;
    if (asprintf(&path, "%s/%s", dir, file) < 0 ||
        asprintf(&tmp, "%s/.%s.%ld.tmp", dir, file, (long)getpid()) < 0)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    _cleanup_(closep) int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return vmha_err_set(err, -errno, "cannot create %s: %s", tmp, strerror(errno));
    _cleanup_(fclosep) FILE *f = fdopen(fd, "w");
    if (!f) {
        unlink(tmp);
        return vmha_err_set(err, -errno, "cannot write %s: %s", tmp, strerror(errno));
    }
    fd = -1; /* f owns it now */
    for (size_t i = 0; i < kv->n; i++)
        fprintf(f, "%s=%s\n", kv->keys[i], kv->values[i]);
    if (fflush(f) != 0 || fsync(fileno(f)) < 0) {
        r = vmha_err_set(err, -errno, "cannot write %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return r;
    }
    /* link() refuses to replace; rename() replaces atomically. */
    if (exclusive ? link(tmp, path) < 0 : rename(tmp, path) < 0) {
        r = -errno;
        unlink(tmp);
        if (r == -EEXIST)
            return vmha_err_set(err, r, "%s exists already", path);
        return vmha_err_set(err, r, "cannot replace %s: %s", path, strerror(-r));
    }
    if (exclusive)
        unlink(tmp);
    return fsync_dir(dir, err);
}

int store_lock(const char *dir, const struct vmha_deadline *dl, int *fd_ret,
               struct vmha_err *err)
{
    int r = mkdir_p(dir, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *path = NULL;
    if (asprintf(&path, "%s/.lock", dir) < 0)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    _cleanup_(closep) int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return vmha_err_set(err, -errno, "cannot open %s: %s", path, strerror(errno));
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    while (fcntl(fd, F_SETLK, &fl) < 0) {
        if (errno != EACCES && errno != EAGAIN && errno != EINTR)
            return vmha_err_set(err, -errno, "cannot lock %s: %s", path, strerror(errno));
        if (!vmha_deadline_sleep(dl, 50))
            return vmha_err_set(err, -ETIMEDOUT, "%s stayed locked by another node", path);
    }
    *fd_ret = TAKE_FD(fd);
    return 0;
}

void store_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* closing drops the fcntl lock */
}

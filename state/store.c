/* The per-guest state store (see include/vmha/state.h).
 *
 * Whoever can write state_dir (root on any node, an NFS client with no_root_squash) must not
 * be able to steer what root reads or writes here: below the directory a caller names, the
 * store walks one component at a time with openat() and O_NOFOLLOW, trusts no directory
 * others can change, reads only regular files (never waiting on a FIFO) and writes through
 * temporary files created O_EXCL|O_NOFOLLOW. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmha/cleanup.h"
#include "vmha/state.h"

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

#define STORE_KV_MAX 512

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
            /* vmha's records hold a few dozen keys; finding each among those before it is
             * quadratic, which a planted record of many thousands would turn into seconds. */
            if (ret->n == STORE_KV_MAX) {
                store_kv_clear(ret);
                return vmha_err_set(err, -E2BIG, "more than %d keys: not a record of vmha's",
                                    STORE_KV_MAX);
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

/* A guest name as an operator may read it in a message: printable, and not too long. */
static void shown_name(const char *name, char *buf, size_t size)
{
    size_t i = 0;
    for (; name && name[i] && i + 1 < size; i++)
        buf[i] = name[i] >= 0x20 && name[i] < 0x7f ? name[i] : '?';
    buf[i] = '\0';
}

int store_check_state_dir(const char *state_dir, struct vmha_err *err)
{
    struct stat st;
    /* state_dir itself may be the administrator's symbolic link: what it names counts. */
    if (stat(state_dir, &st) < 0) {
        if (errno == ENOENT)
            return 0; /* the store creates it, 0700 */
        return vmha_err_set(err, -errno, "state_dir %s: %s", state_dir, strerror(errno));
    }
    if (!S_ISDIR(st.st_mode))
        return vmha_err_set(err, -ENOTDIR, "state_dir %s is not a directory", state_dir);
    if (st.st_uid != 0 && st.st_uid != geteuid())
        return vmha_err_set(err, -EPERM,
                            "state_dir %s belongs to uid %u, not to root: whoever "
                            "owns it could make root overwrite files on every node; chown "
                            "root it",
                            state_dir, (unsigned)st.st_uid);
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return vmha_err_set(err, -EPERM,
                            "state_dir %s can be written by %s (mode %04o): "
                            "whoever can write it could make root overwrite files on every "
                            "node; chmod go-w it",
                            state_dir, st.st_mode & S_IWOTH ? "anyone" : "its group",
                            (unsigned)(st.st_mode & 07777));
    return 0;
}

/* path with the symbolic links of its longest existing part resolved (state_dir may not
 * exist yet); NULL with errno on failure. */
static char *resolve(const char *path)
{
    _cleanup_free_ char *p = strdup(path);
    if (!p)
        return NULL;
    size_t cut = strlen(p);
    for (;;) {
        char keep = p[cut];
        p[cut] = '\0';
        _cleanup_free_ char *real = realpath(cut ? p : (path[0] == '/' ? "/" : "."), NULL);
        p[cut] = keep;
        if (real) {
            char *out = NULL;
            const char *rest = p + cut;
            bool root = strcmp(real, "/") == 0;
            if (asprintf(&out, "%s%s%s", root && rest[0] == '/' ? "" : real,
                         rest[0] && rest[0] != '/' ? "/" : "", rest) < 0)
                return NULL;
            return out;
        }
        if (errno != ENOENT || cut == 0)
            return NULL;
        char *slash = memrchr(p, '/', cut);
        cut = slash ? (size_t)(slash - p) : 0;
    }
}

int store_guest_dir(const char *state_dir, const char *guest, char **ret, struct vmha_err *err)
{
    char shown[80];
    shown_name(guest, shown, sizeof(shown));
    if (!store_name_ok(guest))
        return vmha_err_set(err, -EINVAL,
                            "the guest name '%s' cannot name a directory of the "
                            "state store: use only letters, digits and _ . : - (at most 200)",
                            shown);
    if (!state_dir || !state_dir[0])
        return vmha_err_set(err, -EINVAL, "state_dir is not set");
    int r = store_check_state_dir(state_dir, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *real = resolve(state_dir);
    if (!real)
        return vmha_err_set(err, errno == ENOMEM ? -ENOMEM : -errno, "state_dir %s: %s", state_dir,
                            strerror(errno));
    char *gdir = NULL;
    if (asprintf(&gdir, "%s/%s", real, guest) < 0)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    if (strlen(gdir) >= PATH_MAX) {
        free(gdir);
        return vmha_err_set(err, -ENAMETOOLONG, "state_dir %s is too long to hold guest %s",
                            state_dir, guest);
    }
    *ret = gdir;
    return 0;
}

/* Whether a directory on the store's path can be trusted: owned by root or by us, and
 * writable by no one else (but a sticky one such as /tmp: there, others cannot replace what
 * we own). */
static int dir_trusted(int fd, const char *shown, struct vmha_err *err)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return vmha_err_set(err, -errno, "cannot stat %s: %s", shown, strerror(errno));
    if (st.st_uid != 0 && st.st_uid != geteuid())
        return vmha_err_set(err, -EPERM,
                            "%s belongs to uid %u, not to root: the state store "
                            "trusts no directory others can change",
                            shown, (unsigned)st.st_uid);
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
        return vmha_err_set(err, -EPERM,
                            "%s can be written by %s (mode %04o): the state store "
                            "trusts no directory others can change",
                            shown, st.st_mode & S_IWOTH ? "anyone" : "its group",
                            (unsigned)(st.st_mode & 07777));
    return 0;
}

/* The component of path that starts at or after *pos, its length in *len; NULL at the end. */
static const char *next_component(const char *path, size_t *pos, size_t *len)
{
    while (path[*pos] == '/')
        (*pos)++;
    if (!path[*pos])
        return NULL;
    const char *c = path + *pos;
    *len = strcspn(c, "/");
    *pos += *len;
    return c;
}

static int open_component(int at, const char *name, bool last, bool create, const char *shown,
                          struct vmha_err *err)
{
    /* Directories on the way are only walked through: O_PATH needs no read permission. */
    int flags = (last ? O_RDONLY : O_PATH) | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int fd = openat(at, name, flags);
    if (fd < 0 && errno == ENOENT && create) {
        if (mkdirat(at, name, 0700) < 0 && errno != EEXIST)
            return vmha_err_set(err, -errno, "cannot create %s: %s", shown, strerror(errno));
        fd = openat(at, name, flags);
    }
    if (fd >= 0)
        return fd;
    int r = -errno;
    struct stat st;
    if ((r == -ENOTDIR || r == -ELOOP) && fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISLNK(st.st_mode))
        return vmha_err_set(err, -ELOOP,
                            "%s is a symbolic link: the state store follows none "
                            "(remove it, or set state_dir to the directory it points to)",
                            shown);
    if (r == -ENOTDIR)
        return vmha_err_set(err, r, "%s is not a directory", shown);
    return vmha_err_set(err, r, "cannot open %s: %s", shown, strerror(-r));
}

int store_dir_open(const char *dir, bool create, int *ret, struct vmha_err *err)
{
    if (!dir || !dir[0])
        return vmha_err_set(err, -EINVAL, "no directory given to the state store");
    _cleanup_free_ char *shown = strdup(dir), *name = strdup(dir);
    if (!shown || !name)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    const char *start = dir[0] == '/' ? "/" : ".";
    _cleanup_(closep) int fd = open(start, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return vmha_err_set(err, -errno, "cannot open %s: %s", start, strerror(errno));
    int r = dir_trusted(fd, start, err);
    if (r < 0)
        return r;
    size_t pos = 0, len = 0;
    const char *c = next_component(dir, &pos, &len);
    while (c) {
        memcpy(name, c, len);
        name[len] = '\0';
        memcpy(shown, dir, pos);
        shown[pos] = '\0';
        size_t after = pos, next_len = 0;
        const char *next = next_component(dir, &after, &next_len);
        if (strcmp(name, "..") == 0)
            return vmha_err_set(err, -EINVAL, "%s: the state store takes no path with '..'", dir);
        if (strcmp(name, ".") != 0 || !next) {
            int nfd = open_component(fd, name, !next, create, shown, err);
            if (nfd < 0)
                return nfd;
            close(fd);
            fd = nfd;
            if ((r = dir_trusted(fd, shown, err)) < 0)
                return r;
        }
        c = next;
        pos = after;
        len = next_len;
    }
    *ret = TAKE_FD(fd);
    return 0;
}

int store_read_at(int dfd, const char *dir, const char *file, struct store_kv *ret,
                  struct vmha_err *err)
{
    memset(ret, 0, sizeof(*ret));
    _cleanup_free_ char *path = NULL;
    _cleanup_free_ uint8_t *text = NULL;
    if (asprintf(&path, "%s/%s", dir, file) < 0)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    if (!store_name_ok(file))
        return vmha_err_set(err, -EINVAL, "%s is not a record of the state store", path);
    size_t len;
    struct vmha_err e = {0};
    int r = vmha_read_blob_at(dfd, file, path, STORE_FILE_MAX, &text, &len, &e);
    if (r == -ELOOP)
        return vmha_err_set(err, r,
                            "%s is a symbolic link: the state store follows none "
                            "(remove it)",
                            path);
    if (r < 0)
        return vmha_err_set(err, r, "%s", e.msg);
    if (memchr(text, '\0', len))
        return vmha_err_set(err, -EINVAL, "%s holds a NUL byte: it is not a record", path);
    if ((r = store_kv_parse((const char *)text, ret, &e)) < 0)
        return vmha_err_set(err, r, "%s: %s", path, e.msg);
    return 0;
}

int store_read(const char *dir, const char *file, struct store_kv *ret, struct vmha_err *err)
{
    memset(ret, 0, sizeof(*ret));
    _cleanup_(closep) int dfd = -1;
    int r = store_dir_open(dir, false, &dfd, err);
    if (r < 0)
        return r;
    return store_read_at(dfd, dir, file, ret, err);
}

int store_write_at(int dfd, const char *dir, const char *file, const void *data, size_t len,
                   bool exclusive, struct vmha_err *err)
{
    if (!store_name_ok(file))
        return vmha_err_set(err, -EINVAL, "%s/%s is not a record of the state store", dir, file);
    return vmha_write_file_at(dfd, dir, file, data, len,
                              VMHA_WRITE_SYNC | (exclusive ? VMHA_WRITE_EXCLUSIVE : 0), err);
}

/* The records as "key=value" lines. */
static char *kv_text(const struct store_kv *kv, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    if (!f)
        return NULL;
    for (size_t i = 0; i < kv->n; i++)
        fprintf(f, "%s=%s\n", kv->keys[i], kv->values[i]);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

int store_write(const char *dir, const char *file, const struct store_kv *kv, bool exclusive,
                struct vmha_err *err)
{
    size_t len = 0;
    _cleanup_free_ char *text = kv_text(kv, &len);
    if (!text)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    _cleanup_(closep) int dfd = -1;
    int r = store_dir_open(dir, true, &dfd, err);
    if (r < 0)
        return r;
    return store_write_at(dfd, dir, file, text, len, exclusive, err);
}

int store_lock(const char *dir, const struct vmha_deadline *dl, int *fd_ret, struct vmha_err *err)
{
    _cleanup_(closep) int dfd = -1;
    int r = store_dir_open(dir, true, &dfd, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *path = NULL;
    if (asprintf(&path, "%s/.lock", dir) < 0)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    /* Shared by every node, so never O_EXCL; but nothing planted there is followed. */
    _cleanup_(closep) int fd =
        openat(dfd, ".lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
    if (fd < 0 && errno == ELOOP)
        return vmha_err_set(err, -ELOOP,
                            "%s is a symbolic link: the state store follows none "
                            "(remove it)",
                            path);
    if (fd < 0)
        return vmha_err_set(err, -errno, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return vmha_err_set(err, -EINVAL, "%s is not a regular file: refusing to lock it", path);
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

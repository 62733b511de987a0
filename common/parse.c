/* Parsers for the value types OCF parameters use, and a bounded file reader. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmha/cleanup.h"
#include "vmha/common.h"

int vmha_parse_uint(const char *s, uint64_t max, uint64_t *ret)
{
    if (!s || *s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end)
        return -EINVAL;
    if (errno == ERANGE || v > max)
        return -ERANGE;
    *ret = v;
    return 0;
}

static const struct {
    const char *suffix;
    uint64_t ms;
} duration_units[] = {
    {"ms", 1},    {"msec", 1},    {"s", 1000},    {"sec", 1000},
    {"m", 60000}, {"min", 60000}, {"h", 3600000}, {"hr", 3600000},
};

int vmha_parse_duration_ms(const char *s, uint64_t default_unit_ms, uint64_t *ret)
{
    if (!s || *s < '0' || *s > '9')
        return -EINVAL;
    size_t digits = strspn(s, "0123456789");
    const char *unit = s + digits;
    uint64_t mult = default_unit_ms;
    if (*unit) {
        mult = 0;
        for (size_t i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++)
            if (strcasecmp(unit, duration_units[i].suffix) == 0)
                mult = duration_units[i].ms;
        if (!mult)
            return -EINVAL;
    }
    _cleanup_free_ char *num = strndup(s, digits);
    if (!num)
        return -ENOMEM;
    uint64_t v;
    int r = vmha_parse_uint(num, UINT64_MAX / mult, &v);
    if (r < 0)
        return r;
    *ret = v * mult;
    return 0;
}

int vmha_parse_bool(const char *s, bool *ret)
{
    static const char *const yes[] = {"1", "true", "yes", "on", "y"};
    static const char *const no[] = {"0", "false", "no", "off", "n"};
    if (!s)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *ret = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *ret = false;
            return 0;
        }
    }
    return -EINVAL;
}

/* What a file that is not a regular one is, for the sentence that refuses it. */
static const char *file_kind(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFIFO:
        return "a FIFO";
    case S_IFSOCK:
        return "a socket";
    case S_IFDIR:
        return "a directory";
    case S_IFCHR:
        return "a character device";
    case S_IFBLK:
        return "a block device";
    case S_IFLNK:
        return "a symbolic link";
    default:
        return "of an unknown type";
    }
}

/* Reads the regular file open on fd; shown names it in messages. */
static int read_fd(int fd, const char *shown, size_t max_bytes, uint8_t **ret, size_t *len_ret,
                   struct vmha_err *err)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return vmha_err_set(err, -errno, "cannot stat %s: %s", shown, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return vmha_err_set(err, -EINVAL, "%s is %s, not a regular file: refusing to read it",
                            shown, file_kind(st.st_mode));
    if ((size_t)st.st_size > max_bytes)
        return vmha_err_set(err, -EFBIG, "%s is larger than %zu bytes", shown, max_bytes);
    _cleanup_free_ char *buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        return vmha_err_set(err, -ENOMEM, "out of memory reading %s", shown);
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return vmha_err_set(err, -errno, "cannot read %s: %s", shown, strerror(errno));
        if (n == 0 || (len += (size_t)n) == (size_t)st.st_size)
            break;
    }
    buf[len] = '\0';
    *ret = (uint8_t *)TAKE_PTR(buf);
    *len_ret = len;
    return 0;
}

/* O_NONBLOCK: opening a FIFO must not wait for a writer that never comes (a regular file's
 * reads ignore the flag). */
#define READ_FLAGS (O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)

int vmha_read_blob(const char *path, size_t max_bytes, uint8_t **ret, size_t *len_ret,
                   struct vmha_err *err)
{
    _cleanup_(closep) int fd = open(path, READ_FLAGS);
    if (fd < 0)
        return vmha_err_set(err, -errno, "cannot open %s: %s", path, strerror(errno));
    return read_fd(fd, path, max_bytes, ret, len_ret, err);
}

int vmha_read_blob_at(int dfd, const char *file, const char *shown, size_t max_bytes, uint8_t **ret,
                      size_t *len, struct vmha_err *err)
{
    _cleanup_(closep) int fd = openat(dfd, file, READ_FLAGS | O_NOFOLLOW);
    if (fd < 0 && errno == ELOOP)
        return vmha_err_set(err, -ELOOP, "%s is a symbolic link: refusing to follow it", shown);
    if (fd < 0)
        return vmha_err_set(err, -errno, "cannot open %s: %s", shown, strerror(errno));
    return read_fd(fd, shown, max_bytes, ret, len, err);
}

int vmha_read_file(const char *path, size_t max_bytes, char **ret, struct vmha_err *err)
{
    size_t len;
    return vmha_read_blob(path, max_bytes, (uint8_t **)ret, &len, err);
}

int vmha_split_hostport(const char *address, char *host, size_t hsize, char *port, size_t psize)
{
    const char *colon = strrchr(address, ':');
    if (!colon || !colon[1])
        return -EINVAL;
    const char *h = address;
    size_t hl = (size_t)(colon - address);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') { /* [v6]:port */
        h++;
        hl -= 2;
    } else if (memchr(h, ':', hl)) {
        return -EINVAL; /* a bare v6 address: which colon is the port's? */
    }
    if (hl == 0 || hl >= hsize || strlen(colon + 1) >= psize)
        return hl == 0 ? -EINVAL : -ENAMETOOLONG;
    memcpy(host, h, hl);
    host[hl] = '\0';
    snprintf(port, psize, "%s", colon + 1);
    return 0;
}

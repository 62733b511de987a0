/* Reading a key file that only root may know: opened once without following a link or
 * blocking on a FIFO, then judged by what was opened (no stat-then-open race). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmha/cleanup.h"
#include "vmha/common.h"

#define SECRET_MIN 16
#define SECRET_MAX (64 << 10)

int vmha_secret_read(const char *path, uint8_t **ret, size_t *len_ret, struct vmha_err *err)
{
    _cleanup_(closep) int fd =
        open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return vmha_err_set(err, errno == ELOOP ? -EPERM : -errno, "key file %s: %s", path,
                            errno == ELOOP ? "a symbolic link (refused: name the file itself)"
                                           : strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0)
        return vmha_err_set(err, -errno, "key file %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return vmha_err_set(err, -EPERM, "key file %s is not a regular file", path);
    if (st.st_uid != 0 && st.st_uid != geteuid())
        return vmha_err_set(err, -EPERM, "key file %s belongs to uid %u, not root", path,
                            (unsigned)st.st_uid);
    if (st.st_mode & 077)
        return vmha_err_set(err, -EPERM, "key file %s can be read or written by others (mode "
                            "%04o): chmod 600 it", path, (unsigned)(st.st_mode & 07777));
    if (st.st_size < SECRET_MIN || st.st_size > SECRET_MAX)
        return vmha_err_set(err, -EINVAL, "key file %s holds %lld bytes: a key has %d to %d",
                            path, (long long)st.st_size, SECRET_MIN, SECRET_MAX);
    _cleanup_free_ uint8_t *buf = malloc((size_t)st.st_size);
    if (!buf)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    size_t len = 0;
    while (len < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return vmha_err_set(err, n < 0 ? -errno : -EIO, "cannot read key file %s: %s",
                                path, n < 0 ? strerror(errno) : "it shrank");
        len += (size_t)n;
    }
    *ret = TAKE_PTR(buf);
    *len_ret = len;
    return 0;
}

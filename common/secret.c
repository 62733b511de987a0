/* Reading a key file that only root may know: opened once without following a link or
 * waiting on a FIFO, then judged by what was opened (no file swapped between a check and the
 * read). The replication stream's key and artifact_key both come through here. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmha/cleanup.h"
#include "vmha/common.h"

/* Why a key file with these attributes must not be used, or NULL. */
static const char *problem_of(const struct stat *st)
{
    if (!S_ISREG(st->st_mode))
        return "is not a regular file";
    if (st->st_uid != 0 && st->st_uid != geteuid())
        return "belongs to another user than root";
    if (st->st_mode & 077)
        return "can be read or written by group or others (chmod 0600 it)";
    if (st->st_size < VMHA_SECRET_MIN)
        return st->st_size ? "is too short to be a secret (less than 16 bytes)" : "is empty";
    if (st->st_size > VMHA_SECRET_MAX)
        return "is longer than a key file can be (64 KiB)";
    return NULL;
}

int vmha_secret_read(const char *what, const char *path, uint8_t **ret, size_t *len_ret,
                     struct vmha_err *err)
{
    _cleanup_(closep) int fd =
        open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return vmha_err_set(err, -errno, "%s %s: %s", what, path,
                            errno == ELOOP ? "is a symbolic link: name the file itself"
                                           : strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0)
        return vmha_err_set(err, -errno, "%s %s: %s", what, path, strerror(errno));
    const char *problem = problem_of(&st);
    if (problem)
        return vmha_err_set(err, -EPERM, "%s %s %s (owner uid %u, mode %04o): refusing to use it",
                            what, path, problem, (unsigned)st.st_uid,
                            (unsigned)(st.st_mode & 07777));
    _cleanup_free_ uint8_t *buf = malloc((size_t)st.st_size);
    if (!buf)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    size_t len = 0;
    while (len < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int r = n < 0 ? -errno : -EIO;
            explicit_bzero(buf, len);
            return vmha_err_set(err, r, "%s %s: %s", what, path,
                                r == -EIO ? "changed while it was read" : strerror(-r));
        }
        len += (size_t)n;
    }
    *ret = TAKE_PTR(buf);
    *len_ret = len;
    return 0;
}

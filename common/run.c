/* Running a helper program with a deadline (see vmha_run in include/vmha/common.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmha/cleanup.h"
#include "vmha/common.h"

extern char **environ;

int vmha_run(char *const argv[], const struct vmha_deadline *dl, struct vmha_err *err)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return vmha_err_set(err, -errno, "cannot run %s: %s", argv[0], strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
    pid_t pid;
    int r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    _cleanup_(closep) int rd = pipefd[0];
    if (r != 0)
        return vmha_err_set(err, -r, "cannot run %s: %s", argv[0], strerror(r));
    char out[512] = "";
    size_t len = 0;
    bool eof = false, exited = false;
    int status = 0;
    while (!(exited && eof)) {
        if (!exited && waitpid(pid, &status, WNOHANG) == pid)
            exited = true;
        uint64_t left = vmha_deadline_left_ms(dl);
        if (left == 0) {
            if (!exited) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
            }
            return vmha_err_set(err, -ETIMEDOUT, "%s did not finish in time", argv[0]);
        }
        if (eof) {
            vmha_deadline_sleep(dl, 5);
            continue;
        }
        struct pollfd p = {.fd = rd, .events = POLLIN};
        if (poll(&p, 1, left > 50 ? 50 : (int)left) > 0) {
            char buf[256];
            ssize_t n = read(rd, buf, sizeof(buf));
            if (n <= 0) {
                eof = true;
                continue;
            }
            size_t take = (size_t)n < sizeof(out) - 1 - len ? (size_t)n : sizeof(out) - 1 - len;
            memcpy(out + len, buf, take);
            len += take;
            out[len] = '\0';
        }
    }
    char *nl = strchr(out, '\n');
    if (nl)
        *nl = '\0';
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        return vmha_err_set(err, -EIO, "%s exited with %d%s%s", argv[0], WEXITSTATUS(status),
                            out[0] ? ": " : "", out);
    return vmha_err_set(err, -EIO, "%s was killed by signal %d", argv[0], WTERMSIG(status));
}

void vmha_program_path(const char *beside, const char *installed, char *out, size_t size)
{
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        /* A path cut short could name another program: only whole ones are tried. */
        if (slash &&
            (size_t)snprintf(out, size, "%.*s/%s", (int)(slash - self), self, beside) < size &&
            access(out, X_OK) == 0)
            return;
    }
    if ((size_t)snprintf(out, size, "%s", installed) >= size && size)
        out[0] = '\0';
}

int vmha_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    bool sock = true;
    while (n) {
        /* On a socket, a vanished peer is -EPIPE, not SIGPIPE killing the process. */
        ssize_t w = sock ? send(fd, p, n, MSG_NOSIGNAL) : write(fd, p, n);
        if (w < 0 && errno == ENOTSOCK && sock) {
            sock = false;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* This host's name as it may appear in a file name. */
static void host_part(char *buf, size_t size)
{
    char host[256] = "";
    if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
        snprintf(host, sizeof(host), "host");
    size_t i = 0;
    for (; host[i] && i + 1 < size && i < 64; i++) {
        char c = host[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.';
        buf[i] = ok ? c : '_';
    }
    buf[i] = '\0';
}

static uint64_t random_part(void)
{
    uint64_t v;
    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v))
        return v;
    /* Entropy not ready yet (early boot): O_EXCL still guarantees a fresh file, the name
     * only has to differ from this host's last few. */
    static uint64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16) ^
           ++counter;
}

int vmha_temp_create_at(int dfd, const char *file, char *name, size_t size)
{
    char host[80];
    host_part(host, sizeof(host));
    for (int attempt = 0; attempt < 16; attempt++) {
        /* The file's own name is cut to keep within NAME_MAX: host and random make it unique. */
        int n = snprintf(name, size, ".%.100s.%s.%016llx.tmp", file, host,
                         (unsigned long long)random_part());
        if (n < 0 || (size_t)n >= size)
            return -ENAMETOOLONG;
        int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0)
            return fd;
        if (errno != EEXIST)
            return -errno;
    }
    return -EEXIST;
}

int vmha_write_file_at(int dfd, const char *dir, const char *file, const void *data, size_t n,
                       unsigned flags, struct vmha_err *err)
{
    char tmp[NAME_MAX + 1];
    _cleanup_(closep) int fd = vmha_temp_create_at(dfd, file, tmp, sizeof(tmp));
    if (fd < 0)
        return vmha_err_set(err, fd, "cannot create a temporary file beside %s/%s: %s", dir,
                            file, strerror(-fd));
    int r = vmha_write_all(fd, data, n);
    if (r == 0 && (flags & VMHA_WRITE_SYNC) && fsync(fd) < 0)
        r = -errno;
    if (r == 0 && close(TAKE_FD(fd)) < 0)
        r = -errno;
    /* linkat() refuses to replace; renameat() replaces atomically. */
    if (r == 0 && ((flags & VMHA_WRITE_EXCLUSIVE) ? linkat(dfd, tmp, dfd, file, 0)
                                                  : renameat(dfd, tmp, dfd, file)) < 0)
        r = -errno;
    if (r < 0 || (flags & VMHA_WRITE_EXCLUSIVE))
        unlinkat(dfd, tmp, 0);
    if (r == -EEXIST)
        return vmha_err_set(err, r, "%s/%s exists already", dir, file);
    if (r < 0)
        return vmha_err_set(err, r, "cannot write %s/%s: %s", dir, file, strerror(-r));
    if ((flags & VMHA_WRITE_SYNC) && fsync(dfd) < 0)
        return vmha_err_set(err, -errno, "cannot sync %s: %s", dir, strerror(errno));
    return 0;
}

int vmha_write_file(const char *path, const void *data, size_t n, bool sync,
                    struct vmha_err *err)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    _cleanup_free_ char *dir =
        slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    if (!base[0] || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return vmha_err_set(err, -EISDIR, "cannot write %s: it names a directory", path);
    _cleanup_(closep) int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return vmha_err_set(err, -errno, "cannot write %s: %s", path, strerror(errno));
    return vmha_write_file_at(dfd, dir, base, data, n, sync ? VMHA_WRITE_SYNC : 0, err);
}

void vmha_tune_socket(int fd, uint64_t timeout_ms)
{
    int one = 1, idle = 1, cnt = 3;
    int intvl = (int)(timeout_ms / 3000) > 0 ? (int)(timeout_ms / 3000) : 1;
    unsigned int user_timeout = (unsigned int)timeout_ms;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

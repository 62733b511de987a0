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

/* Appends what fd has to read to *buf (growing it up to max bytes, -EFBIG beyond) or, when
 * max is 0, to the fixed first-line buffer line. Returns bytes read, 0 at end, -errno. */
static ssize_t drain(int fd, char **buf, size_t *len, size_t *cap, size_t max, char *line,
                     size_t line_size)
{
    char chunk[4096];
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n <= 0)
        return n < 0 && errno != EINTR && errno != EAGAIN ? -errno : n < 0 ? 1 : 0;
    if (!max) {
        size_t used = strlen(line);
        size_t take = (size_t)n < line_size - 1 - used ? (size_t)n : line_size - 1 - used;
        memcpy(line + used, chunk, take);
        line[used + take] = '\0';
        return n;
    }
    if (*len + (size_t)n > max)
        return -EFBIG;
    if (*len + (size_t)n + 1 > *cap) {
        size_t want = *cap ? *cap : 16384;
        while (want < *len + (size_t)n + 1)
            want *= 2;
        char *m = realloc(*buf, want);
        if (!m)
            return -ENOMEM;
        *buf = m;
        *cap = want;
    }
    memcpy(*buf + *len, chunk, (size_t)n);
    *len += (size_t)n;
    (*buf)[*len] = '\0';
    return n;
}

/* argv started with stdin from /dev/null, stderr into a pipe (*erd, its reading end) and, with
 * out, stdout into another (*ord; else /dev/null). */
static int spawn_piped(char *const argv[], bool out, pid_t *pid, int *erd, int *ord,
                       struct vmha_err *err)
{
    int errp[2], outp[2] = {-1, -1};
    if (pipe2(errp, O_CLOEXEC) < 0)
        return vmha_err_set(err, -errno, "cannot run %s: %s", argv[0], strerror(errno));
    if (out && pipe2(outp, O_CLOEXEC) < 0) {
        int e = errno;
        close(errp[0]);
        close(errp[1]);
        return vmha_err_set(err, -e, "cannot run %s: %s", argv[0], strerror(e));
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (out)
        posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
    else
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
    int r = posix_spawnp(pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(errp[1]);
    if (out)
        close(outp[1]);
    *erd = errp[0];
    *ord = outp[0];
    if (r != 0)
        return vmha_err_set(err, -r, "cannot run %s: %s", argv[0], strerror(r));
    return 0;
}

/* What a program run said: the first line of its stderr, its stdout, its exit status. */
struct run_io {
    char said[512];
    char *text;
    size_t len, cap;
    int status;
};

/* Reads both pipes until the program has exited and closed them; at the deadline, on a read
 * error or on more than max_bytes of stdout it is killed and the call fails. */
static int run_collect(char *const argv[], pid_t pid, int *erd, int *ord,
                       const struct vmha_deadline *dl, size_t max_bytes, struct run_io *io,
                       struct vmha_err *err)
{
    int failure = 0;
    bool exited = false;
    while (!exited || *erd >= 0 || *ord >= 0) {
        if (!exited && waitpid(pid, &io->status, WNOHANG) == pid)
            exited = true;
        uint64_t left = vmha_deadline_left_ms(dl);
        if (left == 0 || failure) {
            if (!exited) {
                kill(pid, SIGKILL);
                waitpid(pid, &io->status, 0);
            }
            if (failure == -EFBIG)
                return vmha_err_set(err, -EFBIG, "%s printed more than %zu bytes", argv[0],
                                    max_bytes);
            if (failure)
                return vmha_err_set(err, failure, "reading from %s: %s", argv[0],
                                    strerror(-failure));
            return vmha_err_set(err, -ETIMEDOUT, "%s did not finish in time", argv[0]);
        }
        if (*erd < 0 && *ord < 0) {
            vmha_deadline_sleep(dl, 5);
            continue;
        }
        struct pollfd p[2] = {{.fd = *erd, .events = POLLIN}, {.fd = *ord, .events = POLLIN}};
        if (poll(p, 2, left > 50 ? 50 : (int)left) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (!p[i].revents)
                continue;
            int *fd = i == 0 ? erd : ord;
            ssize_t n = i == 0 ? drain(*fd, NULL, NULL, NULL, 0, io->said, sizeof(io->said))
                               : drain(*fd, &io->text, &io->len, &io->cap, max_bytes, NULL, 0);
            if (n < 0) {
                failure = (int)n;
            } else if (n == 0) {
                close(*fd);
                *fd = -1;
            }
        }
    }
    io->said[strcspn(io->said, "\n")] = '\0';
    return 0;
}

int vmha_run_output(char *const argv[], const struct vmha_deadline *dl, char **out,
                    size_t max_bytes, struct vmha_err *err)
{
    if (out)
        *out = NULL;
    pid_t pid;
    _cleanup_(closep) int erd = -1;
    _cleanup_(closep) int ord = -1;
    int r = spawn_piped(argv, out, &pid, &erd, &ord, err);
    if (r < 0)
        return r;
    struct run_io io = {.said = ""};
    if ((r = run_collect(argv, pid, &erd, &ord, dl, max_bytes, &io, err)) < 0) {
        free(io.text);
        return r;
    }
    if (WIFEXITED(io.status) && WEXITSTATUS(io.status) == 0) {
        if (out)
            *out = io.text ? io.text : strdup("");
        return out && !*out ? vmha_err_set(err, -ENOMEM, "out of memory") : 0;
    }
    free(io.text);
    if (WIFEXITED(io.status))
        return vmha_err_set(err, -EIO, "%s exited with %d%s%s", argv[0], WEXITSTATUS(io.status),
                            io.said[0] ? ": " : "", io.said);
    return vmha_err_set(err, -EIO, "%s was killed by signal %d", argv[0], WTERMSIG(io.status));
}

int vmha_run(char *const argv[], const struct vmha_deadline *dl, struct vmha_err *err)
{
    return vmha_run_output(argv, dl, NULL, 0, err);
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
        return vmha_err_set(err, fd, "cannot create a temporary file beside %s/%s: %s", dir, file,
                            strerror(-fd));
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

int vmha_write_file(const char *path, const void *data, size_t n, bool sync, struct vmha_err *err)
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

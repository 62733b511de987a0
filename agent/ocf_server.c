/* The agent server: the full agent kept warm on a node, so that the monitor Pacemaker runs
 * every few seconds costs a socket round trip instead of loading libvirt and Pacemaker's
 * libraries. It runs the very same monitor code, one request at a time, on a fresh
 * hypervisor connection each time (nothing cached, nothing stale). The front end falls back
 * to running the full agent itself whenever the server is missing, slow or replaced. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "agent_private.h"
#include "vmha/cleanup.h"
#include "vmha/cluster.h"

#define REQUEST_MAX (64 * 1024)
#define IDLE_EXIT_MS (10 * 60 * 1000)
/* How long a new server waits for a dying one to let go of the lock. */
#define LOCK_WAIT_MS 1000

/* Reads NUL-separated KEY=VALUE entries up to an empty one. */
static int read_request(int fd, char *buf, size_t size, size_t *len)
{
    struct vmha_deadline dl = vmha_deadline_in(2000);
    *len = 0;
    while (*len < 2 || buf[*len - 1] != '\0' || buf[*len - 2] != '\0') {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (*len == size || poll(&p, 1, (int)vmha_deadline_left_ms(&dl)) <= 0)
            return -EPROTO;
        ssize_t n = read(fd, buf + *len, size - *len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -EPROTO;
        *len += (size_t)n;
    }
    return 0;
}

static bool exe_replaced(void)
{
    char self[512];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return true;
    self[n] = '\0';
    return strstr(self, " (deleted)") != NULL;
}

static void reply(int fd, const char *text)
{
    ssize_t ignored = write(fd, text, strlen(text));
    (void)ignored;
}

static void serve_one(int fd, const struct ocf_action *monitor)
{
    _cleanup_free_ char *buf = malloc(REQUEST_MAX);
    size_t len = 0;
    if (!buf || read_request(fd, buf, REQUEST_MAX, &len) < 0)
        return;
    char *env[512];
    size_t n = 0;
    for (char *e = buf; *e && n < 511; e += strlen(e) + 1)
        env[n++] = e;
    env[n] = NULL;
    uint64_t at = 0;
    if (n == 0 || sscanf(env[0], "DEADLINE_MS=%llu", (unsigned long long *)&at) != 1)
        return;
    struct vmha_deadline dl = {.at_ms = at};
    /* Its client has given up on it already: do not run a stale request. */
    if (vmha_deadline_passed(&dl))
        return;
    struct ocf_params p = {0};
    struct vmha_err why = {0};
    int rc = OCF_ERR_CONFIGURED;
    if (ocf_params_parse(env, &p, &why) == 0)
        rc = ocf_action_for(monitor, &p)->run(&p, &dl, &why);
    ocf_params_clear(&p);
    char out[700];
    bool quiet = rc == OCF_SUCCESS || rc == OCF_NOT_RUNNING || rc == OCF_RUNNING_PROMOTED;
    if (!quiet)
        cluster_log(LOG_ERR, "monitor failed: %s", vmha_err_msg(&why));
    snprintf(out, sizeof(out), "%d\n%s", rc, quiet ? "" : vmha_err_msg(&why));
    reply(fd, out);
}

static int listen_on(const char *rundir, struct vmha_err *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    const char *path = sa.sun_path;
    /* Cut short, the address would be another file's. */
    if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/agent.sock", rundir) >=
        sizeof(sa.sun_path))
        return vmha_err_set(err, -ENAMETOOLONG,
                            "%s/agent.sock is longer than a socket address "
                            "takes (%zu bytes): set a shorter VMHA_RUNDIR",
                            rundir, sizeof(sa.sun_path) - 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return vmha_err_set(err, -errno, "socket: %s", strerror(errno));
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
        listen(fd, 64) < 0) {
        int r = vmha_err_set(err, -errno, "cannot listen on %s: %s", path, strerror(errno));
        close(fd);
        return r;
    }
    return fd;
}

static bool peer_is_root(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid == 0;
}

/* The socket answers only root, but whoever can change its directory could put another
 * server in its place: the directory must be this user's alone. */
static int check_rundir(const char *rundir, struct vmha_err *err)
{
    struct stat st;
    if (lstat(rundir, &st) < 0)
        return vmha_err_set(err, -errno, "cannot stat %s: %s", rundir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return vmha_err_set(err, -ENOTDIR, "%s is not a directory", rundir);
    if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
        return vmha_err_set(err, -EPERM,
                            "%s belongs to uid %u with mode %04o: the agent server "
                            "needs a directory only uid %u can write",
                            rundir, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777),
                            (unsigned)geteuid());
    return 0;
}

int ocf_serve(const char *rundir, struct vmha_err *err)
{
    if (mkdir(rundir, 0700) < 0 && errno != EEXIST)
        return vmha_err_set(err, -errno, "cannot create %s: %s", rundir, strerror(errno));
    int r = check_rundir(rundir, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *lock_path = NULL, *pid_path = NULL;
    if (asprintf(&lock_path, "%s/agent.lock", rundir) < 0 ||
        asprintf(&pid_path, "%s/agent.pid", rundir) < 0)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    int lock = open(lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
    if (lock < 0)
        return vmha_err_set(err, -errno, "cannot open %s: %s", lock_path, strerror(errno));
    /* A killed server holds the lock until it has finished exiting: give it a moment. */
    struct vmha_deadline wait = vmha_deadline_in(LOCK_WAIT_MS);
    while (flock(lock, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK || !vmha_deadline_sleep(&wait, 25)) {
            close(lock);
            return 0; /* another server runs: nothing to do */
        }
    }
    int fd = listen_on(rundir, err);
    if (fd < 0)
        return fd;
    char pid[32];
    snprintf(pid, sizeof(pid), "%d\n", getpid());
    vmha_write_file(pid_path, pid, strlen(pid), false, NULL);
    signal(SIGPIPE, SIG_IGN);
    cluster_log_init("vmha-guest", true);
    cluster_log(LOG_INFO, "agent server listening on %s/agent.sock", rundir);
    const struct ocf_action *monitor = ocf_action_find("monitor");
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, IDLE_EXIT_MS) == 0)
            break;
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        if (exe_replaced()) {
            /* vmha was upgraded: let the new code answer from now on. */
            reply(c, "restart\n");
            close(c);
            break;
        }
        if (peer_is_root(c))
            serve_one(c, monitor);
        close(c);
    }
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    snprintf(path, sizeof(path), "%s/agent.sock", rundir); /* listen_on checked that it fits */
    unlink(path);
    cluster_log(LOG_INFO, "agent server exits");
    return 0;
}

/* ocf:vmha:guest as Pacemaker runs it. This binary loads no hypervisor or cluster library:
 * loading libvirt alone costs ~15 ms here, more than the whole monitor should. A monitor run
 * by the cluster is answered by the node's agent server (the full agent kept warm, see
 * ocf_server.c) when one runs; everything else, and every doubt, execs the full agent. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_private.h"

extern char **environ;

static void spawn_server(const char *impl)
{
    pid_t pid = fork();
    if (pid < 0)
        return;
    if (pid > 0) {
        waitpid(pid, NULL, 0);
        return;
    }
    /* Detach twice so the server belongs to no operation Pacemaker might clean up after. */
    setsid();
    if (fork() != 0)
        _exit(0);
    int null = open("/dev/null", O_RDWR);
    for (int fd = 0; fd < 3; fd++)
        dup2(null, fd);
    for (int fd = 3; fd < 1024; fd++)
        close(fd);
    char *args[] = {(char *)"guest-agent", (char *)"serve", NULL};
    execv(impl, args);
    _exit(127);
}

/* MSG_NOSIGNAL: a server that goes away mid-request must cost a fallback, not a SIGPIPE that
 * kills the agent and hands Pacemaker a meaningless exit code. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -EIO;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Sends this process's OCF environment and reads "<rc>\n<reason>". -ENOENT/-ECONNREFUSED:
 * no server; -ETIMEDOUT: it did not answer in time; -EAGAIN: it asked us to go elsewhere, or
 * closed without an answer (a killed server's socket takes connections until it has exited). */
static int ask_server(const char *sock, const struct vmha_deadline *dl, int *rc, char *reason,
                      size_t reason_size)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock) >= sizeof(sa.sun_path)) {
        close(fd);
        return -ENAMETOOLONG; /* cut short, it would be another socket */
    }
    int r = 0;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
        r = -errno;
        close(fd);
        return r == -EAGAIN ? -ETIMEDOUT : r;
    }
    char head[64];
    int n = snprintf(head, sizeof(head), "DEADLINE_MS=%llu", (unsigned long long)dl->at_ms);
    r = write_all(fd, head, (size_t)n + 1);
    for (char **e = environ; r == 0 && *e; e++)
        if (strncmp(*e, "OCF_", 4) == 0)
            r = write_all(fd, *e, strlen(*e) + 1);
    if (r == 0)
        r = write_all(fd, "", 1);
    char buf[1024];
    size_t len = 0;
    while (r == 0) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)vmha_deadline_left_ms(dl);
        if (left == 0 || poll(&p, 1, left) == 0) {
            r = -ETIMEDOUT;
            break;
        }
        ssize_t got = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (got < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
    }
    close(fd);
    if (r < 0)
        return r;
    buf[len] = '\0';
    char *nl = strchr(buf, '\n');
    if (!nl || buf[0] < '0' || buf[0] > '9')
        return -EAGAIN;
    *rc = atoi(buf);
    snprintf(reason, reason_size, "%s", nl + 1);
    return 0;
}

/* Recurring monitors only: a probe (interval 0) is rare and may write the state store and
 * node attributes, which the full agent does in a process of its own. */
static bool use_server(int argc, char **argv)
{
    const char *interval = getenv("OCF_RESKEY_CRM_meta_interval");
    return argc == 2 && strcmp(argv[1], "monitor") == 0 && interval && atoi(interval) > 0 &&
           getenv("OCF_RESKEY_crm_feature_set") && !getenv("VMHA_NO_SERVER");
}

int main(int argc, char **argv)
{
    char impl[PATH_MAX];
    /* The full agent: beside this binary in a build tree, in libexecdir once installed. */
    vmha_program_path("guest-agent", VMHA_LIBEXECDIR "/guest-agent", impl, sizeof(impl));
    if (use_server(argc, argv)) {
        uint64_t timeout = 30000;
        const char *t = getenv("OCF_RESKEY_CRM_meta_timeout");
        if (t)
            vmha_parse_uint(t, UINT32_MAX, &timeout);
        struct vmha_deadline end = vmha_deadline_in(timeout);
        /* Half the time for the server; the rest for the full agent if it cannot answer. */
        struct vmha_deadline dl = vmha_deadline_in(timeout / 2);
        const char *rundir = getenv("VMHA_RUNDIR") ? getenv("VMHA_RUNDIR") : VMHA_RUNDIR;
        char sock[sizeof(((struct sockaddr_un *)0)->sun_path)], reason[1024];
        int rc = 0;
        /* A rundir too long for a socket address: the full agent answers every time. */
        int r = (size_t)snprintf(sock, sizeof(sock), "%s/agent.sock", rundir) < sizeof(sock)
                    ? ask_server(sock, &dl, &rc, reason, sizeof(reason))
                    : -ENAMETOOLONG;
        if (r == 0) {
            if (getenv("VMHA_DEBUG"))
                fprintf(stderr, "vmha-guest: debug: monitor answered by the agent server\n");
            if (reason[0])
                fprintf(stderr, "ocf-exit-reason:%s\n", reason);
            return rc;
        }
        /* A server that hangs is not replaced (a new one would find it holding the lock); any
         * other failure starts one, which exits at once if another still serves. */
        if (r != -ETIMEDOUT)
            spawn_server(impl);
        char left[32];
        snprintf(left, sizeof(left), "%llu", (unsigned long long)vmha_deadline_left_ms(&end));
        setenv("OCF_RESKEY_CRM_meta_timeout", left, 1);
    }
    execv(impl, argv);
    fprintf(stderr, "ocf-exit-reason:cannot run the vmha agent %s: %s (reinstall vmha)\n", impl,
            strerror(errno));
    return OCF_ERR_INSTALLED;
}

/* The replicator's session with the world around its engines: the parent waiting for it to
 * be ready, the signals that stop it, the lock that says it lives, and the status it
 * publishes. The engines (sender.c, receiver.c, native.c) call down into this file; main.c
 * calls the engines; nothing calls back up. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "remus_private.h"
#include "vmha/cluster.h"

volatile sig_atomic_t remus_stop_requested, remus_demote_requested;

static void on_term(int sig)
{
    (void)sig;
    remus_stop_requested = 1;
}

static void on_usr1(int sig)
{
    (void)sig;
    remus_demote_requested = 1;
}

void remus_session_signals(void)
{
    struct sigaction sa = {.sa_handler = on_term};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int ready_fd = -1;

void remus_session_ready(const char *msg)
{
    if (ready_fd < 0)
        return;
    (void)!write(ready_fd, msg, strlen(msg));
    close(ready_fd);
    ready_fd = -1;
}

/* The first status a replicator publishes says it is ready: listening, or holding output. */
void remus_publish(struct remus_ctx *x)
{
    struct vmha_err e = {0};
    if (remus_status_write(x->dir, &x->st, &e) < 0)
        cluster_log(LOG_WARNING, "cannot write the replication status: %s", e.msg);
    remus_session_ready("ok");
}

int remus_fail(struct remus_ctx *x, const struct vmha_err *err)
{
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", vmha_err_msg(err));
    remus_session_ready(msg);
    snprintf(x->st.state, sizeof(x->st.state), "failed");
    snprintf(x->st.error, sizeof(x->st.error), "%s", msg);
    remus_publish(x);
    cluster_log(LOG_ERR, "replication of %s failed: %s", x->guest, msg);
    return 1;
}

int remus_session_detach(void)
{
    int pipefd[2] = {-1, -1};
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return 1;
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid > 0) {
        close(pipefd[1]);
        /* One message, written at once (it is shorter than PIPE_BUF): read it, not up to
         * the pipe's end, which a process the replicator forked may hold open. */
        char msg[700] = "";
        ssize_t n;
        while ((n = read(pipefd[0], msg, sizeof(msg) - 1)) < 0 && errno == EINTR)
            ;
        msg[n > 0 ? n : 0] = '\0';
        if (strcmp(msg, "ok") == 0)
            return 0;
        fprintf(stderr, "vmha-replicator: %s\n", msg[0] ? msg : "failed to start");
        return 1;
    }
    close(pipefd[0]);
    ready_fd = pipefd[1];
    setsid();
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        close(null);
    }
    return -1;
}

/* The lock that says "this replicator lives": held for the whole life of the process. */
int remus_session_lock(const char *dir, const char *mode, struct vmha_err *err)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s.pid", dir, mode);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return vmha_err_set(err, -errno, "cannot open %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        close(fd);
        return vmha_err_set(err, -EBUSY, "a %s replicator runs already for %s", mode, dir);
    }
    char pid[32];
    int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        close(fd);
        return vmha_err_set(err, -errno, "cannot write %s", path);
    }
    return fd;
}

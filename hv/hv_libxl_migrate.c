/* Live migration between two Xen hosts, the way `xl migrate` does it: the source runs the
 * receiver on the target over ssh and speaks to it through ssh's stdin and stdout, so
 * Pacemaker's migrate_to on the source does the whole move and migrate_from on the target only
 * confirms it. The guest exists twice only while paused on one side, and runs on exactly one:
 *
 *   receiver                               sender
 *   "VMHA-LIBXL-MIGRATE 1"          ->
 *                                   <-     "config LEN" + the domain's libxl JSON
 *   "ready" (or "error WHY": e.g. the   ->
 *   guest already runs here)
 *                                   <-     libxenlight's stream (live: the guest runs until
 *                                          its last round, then is suspended)
 *   creates NAME--incoming, paused
 *   "received"                      ->     renames itself NAME--migratedaway
 *                                   <-     "go"
 *   renames to NAME, unpauses
 *   "running"                       ->     destroys its copy
 *
 * Before "go" any failure resumes the source; after "go" a silent receiver leaves the source
 * paused (it may run on the target: it must not run twice). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hv_libxl_private.h"
#include "vmha/cleanup.h"

#define BANNER "VMHA-LIBXL-MIGRATE 1"
#define CONFIG_MAX (1u << 20)

extern char **environ;

int hv_libxl_ssh_target(const char *uri, char *dest, size_t dest_size, char *port, size_t port_size,
                        struct vmha_err *err)
{
    if (strncmp(uri, "ssh://", 6) != 0)
        return vmha_err_set(err, -EINVAL,
                            "migration target %s: the libxl backend migrates over ssh, "
                            "ssh://[user@]host[:port]",
                            uri);
    const char *h = uri + 6;
    size_t n = strcspn(h, ":/");
    /* ssh would take "-oProxyCommand=..." as an option: whoever writes the CIB would run
     * commands here as root. ssh gets "--" before the destination as well. */
    const char *at = memrchr(h, '@', n); /* ssh splits user@host at the last '@' */
    if (h[0] == '-' || (at && at[1] == '-'))
        return vmha_err_set(err, -EINVAL,
                            "migration target %s: a user or host name that begins with '-' would "
                            "be read by ssh as an option",
                            uri);
    if (n == 0 || n >= dest_size || (h[n] == '/' && h[n + 1]))
        return vmha_err_set(err, -EINVAL, "migration target %s: no host, or a path after it", uri);
    snprintf(dest, dest_size, "%.*s", (int)n, h);
    port[0] = 0;
    if (h[n] == ':') {
        const char *p = h + n + 1;
        size_t m = strspn(p, "0123456789");
        if (m == 0 || m >= port_size || (p[m] && strcmp(p + m, "/") != 0))
            return vmha_err_set(err, -EINVAL, "migration target %s: bad port", uri);
        snprintf(port, port_size, "%.*s", (int)m, p);
    }
    return 0;
}

/* Reads one line (without its \n) byte by byte, so that nothing after it is consumed: the
 * stream libxenlight reads follows on the same descriptor. */
int hv_libxl_read_line(int fd, char *buf, size_t size, const struct vmha_deadline *dl)
{
    size_t n = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        uint64_t left = vmha_deadline_left_ms(dl);
        if (left == 0)
            return -ETIMEDOUT;
        int r = poll(&p, 1, left > 1000 ? 1000 : (int)left);
        if (r < 0 && errno != EINTR)
            return -errno;
        if (r <= 0)
            continue;
        char ch;
        ssize_t got = read(fd, &ch, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return -errno;
        if (got == 0)
            return -EPIPE;
        if (ch == '\n') {
            buf[n] = 0;
            return 0;
        }
        if (n + 1 >= size)
            return -EPROTO;
        buf[n++] = ch;
    }
}

static int read_exact(int fd, char *buf, size_t len, const struct vmha_deadline *dl)
{
    for (size_t done = 0; done < len;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        uint64_t left = vmha_deadline_left_ms(dl);
        if (left == 0)
            return -ETIMEDOUT;
        if (poll(&p, 1, left > 1000 ? 1000 : (int)left) <= 0)
            continue;
        ssize_t got = read(fd, buf + done, len - done);
        if (got < 0 && errno != EINTR)
            return -errno;
        if (got == 0)
            return -EPIPE;
        done += got > 0 ? (size_t)got : 0;
    }
    return 0;
}

static int say(int fd, const char *line)
{
    char buf[600];
    int n = snprintf(buf, sizeof(buf), "%s\n", line);
    return vmha_write_all(fd, buf, (size_t)n);
}

/* ---- sender ---- */

struct ssh_child {
    pid_t pid;
    int fd;     /* our end of ssh's stdin and stdout */
    int err_fd; /* what ssh and the receiver printed on stderr */
};

static void ssh_child_end(struct ssh_child *s)
{
    if (s->fd >= 0)
        close(s->fd);
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
    }
    if (s->err_fd >= 0)
        close(s->err_fd);
}

/* The last line ssh or the receiver printed on stderr, for the error message. */
static void ssh_stderr(struct ssh_child *s, char *buf, size_t size)
{
    buf[0] = 0;
    char all[4096];
    ssize_t n = pread(s->err_fd, all, sizeof(all) - 1, 0);
    if (n <= 0)
        return;
    all[n] = 0;
    while (n > 0 && all[n - 1] == '\n')
        all[--n] = 0;
    char *last = strrchr(all, '\n');
    /* The last line, cut to the caller's buffer. */
    snprintf(buf, size, "%.*s", size ? (int)size - 1 : 0, last ? last + 1 : all);
}

int hv_libxl_ssh_command(const char *uri, const char *helper, unsigned long long timeout_ms,
                         struct hv_libxl_ssh_cmd *ret, struct vmha_err *err)
{
    int r =
        hv_libxl_ssh_target(uri, ret->dest, sizeof(ret->dest), ret->port, sizeof(ret->port), err);
    if (r < 0)
        return r;
    snprintf(ret->timeout, sizeof(ret->timeout), "%llu", timeout_ms);
    /* Keepalives: a target that vanishes mid-stream must end the migration, not hang it. */
    const char *argv[] = {"ssh",
                          "-o",
                          "BatchMode=yes",
                          "-o",
                          "ConnectTimeout=10",
                          "-o",
                          "ServerAliveInterval=5",
                          "-o",
                          "ServerAliveCountMax=3",
                          "-p",
                          ret->port[0] ? ret->port : "22",
                          "--",
                          ret->dest,
                          helper,
                          "migrate-receive",
                          "--timeout-ms",
                          ret->timeout,
                          NULL};
    _Static_assert(sizeof(argv) <= sizeof(ret->argv), "hv_libxl_ssh_cmd.argv is too short");
    memcpy(ret->argv, argv, sizeof(argv));
    return 0;
}

static int ssh_spawn(const char *uri, const struct vmha_deadline *dl, struct ssh_child *ret,
                     struct vmha_err *err)
{
    const char *helper = getenv("VMHA_LIBXL_REMOTE_HELPER"); /* tests: a build tree's path */
    if (!helper || !helper[0])
        helper = VMHA_LIBEXECDIR "/vmha-libxl-helper";
    struct hv_libxl_ssh_cmd cmd;
    int r = hv_libxl_ssh_command(uri, helper, vmha_deadline_left_ms(dl), &cmd, err);
    if (r < 0)
        return r;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return vmha_err_set(err, -errno, "socketpair: %s", strerror(errno));
    int efd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], 0);
    posix_spawn_file_actions_adddup2(&fa, sv[1], 1);
    if (efd >= 0)
        posix_spawn_file_actions_adddup2(&fa, efd, 2);
    pid_t pid;
    r = posix_spawnp(&pid, "ssh", &fa, NULL, (char **)cmd.argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(sv[1]);
    if (r != 0) {
        close(sv[0]);
        if (efd >= 0)
            close(efd);
        return vmha_err_set(err, -r, "cannot run ssh: %s", strerror(r));
    }
    *ret = (struct ssh_child){.pid = pid, .fd = sv[0], .err_fd = efd};
    return 0;
}

/* Carries libxenlight's stream from a pipe to the target, counting, so the migration reports
 * progress and can be cancelled: closing the pipe stops the save helper that writes it. */
struct pump {
    int in, out;
    uint64_t total, sent, started;
    const struct hv_migrate_params *p;
    struct vmha_deadline dl;
    bool cancelled;
    int error;
};

static void *pump_run(void *arg)
{
    struct pump *pu = arg;
    char buf[1 << 16];
    uint64_t last = vmha_now_ms();
    for (;;) {
        struct pollfd p = {.fd = pu->in, .events = POLLIN};
        int r = poll(&p, 1, 200);
        uint64_t now = vmha_now_ms();
        if (pu->p->progress && now - last >= (pu->p->poll_ms ? pu->p->poll_ms : 1000)) {
            last = now;
            struct hv_progress pr = {.elapsed_ms = now - pu->started,
                                     .data_total = pu->total,
                                     .data_processed = pu->sent,
                                     .data_remaining =
                                         pu->total > pu->sent ? pu->total - pu->sent : 0};
            if (!pu->p->progress(&pr, pu->p->opaque))
                pu->cancelled = true;
        }
        if (vmha_deadline_passed(&pu->dl))
            pu->cancelled = true;
        if (pu->cancelled)
            break;
        if (r <= 0)
            continue;
        ssize_t n = read(pu->in, buf, sizeof(buf));
        if (n == 0)
            break;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || vmha_write_all(pu->out, buf, (size_t)n) < 0) {
            pu->error = errno ? errno : EIO;
            break;
        }
        pu->sent += (uint64_t)n;
    }
    close(pu->in); /* the save helper's next write fails: the suspend ends */
    pu->in = -1;
    return NULL;
}

/* The guest's stream into the ssh channel; the guest ends suspended here when it succeeds. */
static int send_stream(struct hv_conn *c, uint32_t domid, uint64_t memkb, int out,
                       const struct hv_migrate_params *p, const struct vmha_deadline *dl,
                       struct vmha_err *err)
{
    int pp[2];
    if (pipe2(pp, O_CLOEXEC) < 0)
        return vmha_err_set(err, -errno, "pipe: %s", strerror(errno));
    struct pump pu = {.in = pp[0],
                      .out = out,
                      .total = memkb * 1024,
                      .p = p,
                      .dl = *dl,
                      .started = vmha_now_ms()};
    pthread_t t;
    if (pthread_create(&t, NULL, pump_run, &pu) != 0) {
        close(pp[0]);
        close(pp[1]);
        return vmha_err_set(err, -EAGAIN, "cannot start the migration's stream thread");
    }
    int r = libxl_domain_suspend(c->ctx, domid, pp[1], LIBXL_SUSPEND_LIVE, NULL);
    close(pp[1]);
    pthread_join(t, NULL);
    if (pu.cancelled)
        return vmha_err_set(err, -ECANCELED, "the migration was cancelled after %llu MiB",
                            (unsigned long long)(pu.sent >> 20));
    if (pu.error)
        return vmha_err_set(err, -pu.error, "the connection to the target broke after %llu MiB: %s",
                            (unsigned long long)(pu.sent >> 20), strerror(pu.error));
    if (r != 0)
        return hv_libxl_err(c, err, -EIO, "libxenlight could not send the guest");
    return 0;
}

/* Back to running here after a failed attempt (the guest may be suspended). */
static void resume_here(struct hv_conn *c, uint32_t domid)
{
    libxl_dominfo d;
    libxl_dominfo_init(&d);
    if (libxl_domain_info(c->ctx, &d, domid) == 0 && d.shutdown)
        libxl_domain_resume(c->ctx, domid, 1, NULL);
    libxl_dominfo_dispose(&d);
}

int hv_libxl_send_config(struct hv_conn *c, uint32_t domid, int fd, uint64_t *memkb,
                         struct vmha_err *err)
{
    libxl_domain_config d;
    libxl_domain_config_init(&d);
    _cleanup_free_ char *json = NULL;
    int r = 0;
    if (hv_xl_retrieve_config(c->ctx, domid, &d) != 0)
        r = hv_libxl_err(c, err, -EIO, "cannot read the guest's configuration");
    else if (!(json = libxl_domain_config_to_json(c->ctx, &d)))
        r = vmha_err_set(err, -ENOMEM, "cannot write the guest's configuration as JSON");
    *memkb = d.b_info.max_memkb;
    libxl_domain_config_dispose(&d);
    if (r < 0)
        return r;
    char head[64];
    snprintf(head, sizeof(head), "config %zu", strlen(json));
    if (say(fd, head) < 0 || vmha_write_all(fd, json, strlen(json)) < 0)
        return vmha_err_set(err, -EPIPE, "the target closed the connection");
    return 0;
}

/* After "go": the target either runs the guest or says why not. */
static int commit(struct hv_conn *c, const char *name, uint32_t domid, struct ssh_child *s,
                  const struct vmha_deadline *dl, struct vmha_err *err)
{
    char away[300], line[600];
    snprintf(away, sizeof(away), "%s" HV_XL_AWAY, name);
    if (libxl_domain_rename(c->ctx, domid, name, away) != 0) {
        resume_here(c, domid);
        return hv_libxl_err(c, err, -EIO, "cannot rename the guest before handing it over");
    }
    int r = say(s->fd, "go");
    if (r == 0)
        r = hv_libxl_read_line(s->fd, line, sizeof(line), dl);
    if (r == 0 && strcmp(line, "running") == 0) {
        hv_xl_destroy(c->ctx, domid);
        return 0;
    }
    if (r == 0) { /* the target said no: it does not run the guest, so this side does */
        libxl_domain_rename(c->ctx, domid, away, name);
        resume_here(c, domid);
        return vmha_err_set(err, -EIO, "the target could not start the guest: %s", line);
    }
    return vmha_err_set(err, -EIO,
                        "the target stopped answering after the hand-over (%s): the guest may "
                        "run there; it stays paused here as %s",
                        strerror(-r), away);
}

int hv_libxl_migrate(struct hv_conn *c, const char *name, const struct hv_migrate_params *p,
                     struct vmha_err *err)
{
    struct vmha_deadline dl = p->deadline.at_ms ? p->deadline : vmha_deadline_in(600000);
    uint32_t domid;
    int r = hv_libxl_domid(c, name, &domid, err);
    if (r < 0)
        return r;
    _cleanup_(ssh_child_end) struct ssh_child s = {.pid = -1, .fd = -1, .err_fd = -1};
    if ((r = ssh_spawn(p->dest_uri, &dl, &s, err)) < 0)
        return r;
    char line[600], why[300];
    if ((r = hv_libxl_read_line(s.fd, line, sizeof(line), &dl)) < 0 || strcmp(line, BANNER) != 0) {
        ssh_stderr(&s, why, sizeof(why));
        return vmha_err_set(err, r < 0 ? r : -EPROTO, "no migration receiver on %s: %s",
                            p->dest_uri,
                            why[0]  ? why
                            : r < 0 ? strerror(-r)
                                    : line);
    }
    uint64_t memkb = 0;
    if ((r = hv_libxl_send_config(c, domid, s.fd, &memkb, err)) < 0)
        return r;
    if ((r = hv_libxl_read_line(s.fd, line, sizeof(line), &dl)) < 0 || strcmp(line, "ready") != 0) {
        ssh_stderr(&s, why, sizeof(why));
        const char *said = strncmp(line, "error ", 6) == 0 ? line + 6 : line;
        return vmha_err_set(err, -EIO, "the target refused the guest: %s",
                            r == 0   ? said
                            : why[0] ? why
                                     : strerror(-r));
    }
    if ((r = send_stream(c, domid, memkb, s.fd, p, &dl, err)) < 0) {
        resume_here(c, domid);
        return r;
    }
    r = hv_libxl_read_line(s.fd, line, sizeof(line), &dl);
    if (r < 0 || strcmp(line, "received") != 0) {
        resume_here(c, domid);
        ssh_stderr(&s, why, sizeof(why));
        return vmha_err_set(err, -EIO, "the target did not take the guest: %s",
                            r == 0   ? line
                            : why[0] ? why
                                     : strerror(-r));
    }
    return commit(c, name, domid, &s, &dl, err);
}

/* ---- receiver ---- */

int hv_libxl_receive_config(struct hv_conn *c, int in, libxl_domain_config *d,
                            const struct vmha_deadline *dl, struct vmha_err *err)
{
    char line[128];
    unsigned long len = 0;
    int r = hv_libxl_read_line(in, line, sizeof(line), dl);
    if (r < 0 || sscanf(line, "config %lu", &len) != 1 || len == 0 || len > CONFIG_MAX)
        return vmha_err_set(err, -EPROTO, "no guest configuration from the source");
    _cleanup_free_ char *json = calloc(1, len + 1);
    if (!json)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    if ((r = read_exact(in, json, len, dl)) < 0)
        return vmha_err_set(err, r, "the guest's configuration was cut short");
    if (libxl_domain_config_from_json(c->ctx, d, json) != 0)
        return hv_libxl_err(c, err, -EPROTO, "the guest's configuration does not parse");
    return 0;
}

/* Clears what an earlier receive left behind: a paused NAME--incoming never runs. */
static void clear_incoming(struct hv_conn *c, const char *incoming)
{
    uint32_t old;
    if (hv_libxl_domid(c, incoming, &old, NULL) == 0)
        hv_xl_destroy(c->ctx, old);
}

/* Checks that the guest may come here, and names it NAME--incoming until it runs. */
int hv_libxl_prepare_incoming(struct hv_conn *c, libxl_domain_config *d, struct vmha_err *err)
{
    char *name = d->c_info.name;
    uint32_t existing;
    if (hv_libxl_domid(c, name, &existing, NULL) == 0)
        return vmha_err_set(err, -EEXIST,
                            "guest %s already runs on this host: refusing a "
                            "second copy",
                            name);
    if (asprintf(&d->c_info.name, "%s" HV_XL_INCOMING, name) < 0) {
        d->c_info.name = name;
        return vmha_err_set(err, -ENOMEM, "out of memory");
    }
    free(name);
    clear_incoming(c, d->c_info.name);
    return 0;
}

static int restore(struct hv_conn *c, int in, libxl_domain_config *d, uint32_t *domid,
                   struct vmha_err *err)
{
    libxl_domain_restore_params params;
    hv_xl_restore_params(&params, false);
    *domid = HV_XL_NO_DOMID;
    int r = libxl_domain_create_restore(c->ctx, d, domid, in, -1, &params, NULL, NULL);
    libxl_domain_restore_params_dispose(&params);
    if (r != 0) {
        if (*domid != HV_XL_NO_DOMID)
            hv_xl_destroy(c->ctx, *domid);
        return hv_libxl_err(c, err, -EIO, "libxenlight could not restore the guest");
    }
    return 0;
}

int hv_libxl_receive(int in, int out, const struct vmha_deadline *dl, struct vmha_err *err)
{
    /* The source may vanish: a write to it must fail, not kill us with a domain half made. */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    struct hv_conn *c = NULL;
    int r = hv_libxl_backend.open("libxl", dl, &c, err);
    if (r < 0)
        return r;
    libxl_domain_config d;
    libxl_domain_config_init(&d);
    uint32_t domid = HV_XL_NO_DOMID;
    char line[64];
    if ((r = say(out, BANNER)) < 0)
        r = vmha_err_set(err, r, "cannot answer the source");
    else if ((r = hv_libxl_receive_config(c, in, &d, dl, err)) == 0 &&
             (r = hv_libxl_prepare_incoming(c, &d, err)) == 0 && (r = say(out, "ready")) == 0 &&
             (r = restore(c, in, &d, &domid, err)) == 0) {
        /* The final name is the source's, without our suffix. */
        char *incoming = d.c_info.name;
        _cleanup_free_ char *final = strndup(incoming, strlen(incoming) - strlen(HV_XL_INCOMING));
        if (say(out, "received") < 0 || hv_libxl_read_line(in, line, sizeof(line), dl) < 0 ||
            strcmp(line, "go") != 0)
            r = vmha_err_set(err, -EPIPE, "the source did not hand the guest over");
        else if (!final || libxl_domain_rename(c->ctx, domid, incoming, final) != 0 ||
                 hv_xl_unpause(c->ctx, domid) != 0)
            r = hv_libxl_err(c, err, -EIO, "cannot run the received guest");
        if (r < 0)
            hv_xl_destroy(c->ctx, domid);
        else
            say(out, "running");
    }
    if (r < 0 && r != -EPIPE) {
        char msg[600];
        snprintf(msg, sizeof(msg), "error %s", err->msg);
        say(out, msg);
    }
    libxl_domain_config_dispose(&d);
    hv_libxl_backend.close(c);
    return r;
}

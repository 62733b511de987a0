/* vmha-replicator: the long-running half of checkpoint replication, started and stopped by
 * ocf:vmha:guest (promote/demote/start/stop of a replicated guest), one per guest and role.
 *
 *   vmha-replicator send    --guest G --dir D --node N --uri URI [--interval MS] [--timeout MS]
 *                           [--stats FILE] (per epoch: start ms, epoch, pause, time, bytes)
 *   vmha-replicator receive --guest G --dir D --node N --listen ADDR:PORT --memory BYTES
 *                           [--timeout MS] [--uri URI]
 * Both sides authenticate the stream (chan.c): by default with a key derived from the
 * cluster's secret in --key FILE (/etc/corosync/authkey); with --tls by libvirt's x509
 * credentials (/etc/pki/CA/cacert.pem, /etc/pki/libvirt/{server,client}cert.pem and private
 * keys); --insecure believes anyone (a lab only). --memory is the guest's memory as
 * configured: a checkpoint of any other size is refused. --config FILE (a native Remus
 * backup): the guest's own configuration, which its replica is made with; it takes no
 * stream of another guest. Where the --uri's backend has its own Remus (Xen's, through
 * libxenlight) both sides run that (native.c); otherwise vmha's checkpoint engine
 * (sender.c, receiver.c).
 *
 * It returns once it is ready (or has failed, saying why on stderr) and goes on in the
 * background, holding a lock on D/<mode>.pid while it lives. SIGTERM stops it; SIGUSR1
 * asks the sender for a final checkpoint (a demote), after which it leaves the guest paused
 * and exits 0, or 3 when there is no replica to hand over to. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "remus_private.h"
#include "vmha/cleanup.h"
#include "vmha/cluster.h"
#include "vmha/hv.h"

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

static int ready_fd = -1;

/* Tells the waiting parent how the start went (once). */
static void report_ready(const char *msg)
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
    report_ready("ok");
}

int remus_fail(struct remus_ctx *x, const struct vmha_err *err)
{
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", vmha_err_msg(err));
    report_ready(msg);
    snprintf(x->st.state, sizeof(x->st.state), "failed");
    snprintf(x->st.error, sizeof(x->st.error), "%s", msg);
    remus_publish(x);
    cluster_log(LOG_ERR, "replication of %s failed: %s", x->guest, msg);
    return 1;
}

static void usage(FILE *out)
{
    fputs("usage: vmha-replicator send --guest G --dir D --node N --uri URI [--interval MS] "
          "[--timeout MS]\n"
          "       vmha-replicator receive --guest G --dir D --node N --listen ADDR:PORT "
          "[--timeout MS] [--uri URI]\n"
          "Started by ocf:vmha:guest for replicated guests; see vmha(8).\n",
          out);
}

/* The lock that says "this replicator lives": held for the whole life of the process. */
static int take_lock(const char *dir, const char *mode, struct vmha_err *err)
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

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"guest", required_argument, NULL, 'g'},   {"dir", required_argument, NULL, 'd'},
        {"node", required_argument, NULL, 'n'},    {"uri", required_argument, NULL, 'u'},
        {"listen", required_argument, NULL, 'l'},  {"interval", required_argument, NULL, 'i'},
        {"timeout", required_argument, NULL, 't'}, {"foreground", no_argument, NULL, 'f'},
        {"stats", required_argument, NULL, 's'},   {"tls", no_argument, NULL, 'T'},
        {"key", required_argument, NULL, 'k'},     {"insecure", no_argument, NULL, 'I'},
        {"memory", required_argument, NULL, 'm'},  {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    struct remus_ctx x = {.interval_ms = 1000, .timeout_ms = 5000};
    const char *key_file = REMUS_KEY_DEFAULT;
    bool tls = false, insecure = false;
    bool foreground = false;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'g':
            x.guest = optarg;
            break;
        case 'd':
            x.dir = optarg;
            break;
        case 'n':
            x.node = optarg;
            break;
        case 'u':
            x.uri = optarg;
            break;
        case 'l':
            x.listen = optarg;
            break;
        case 'f':
            foreground = true;
            break;
        case 'T':
            tls = true;
            break;
        case 'I':
            insecure = true;
            break;
        case 'k':
            key_file = optarg;
            break;
        case 'c':
            x.config = optarg;
            break;
        case 'm':
            if (vmha_parse_uint(optarg, UINT64_MAX, &x.memory) < 0 || x.memory == 0 ||
                x.memory % REMUS_PAGE) {
                fprintf(stderr, "vmha-replicator: bad --memory '%s' (bytes, whole pages)\n",
                        optarg);
                return 2;
            }
            break;
        case 's':
            if (!(x.stats = fopen(optarg, "a"))) {
                fprintf(stderr, "vmha-replicator: cannot open %s: %s\n", optarg, strerror(errno));
                return 1;
            }
            break;
        case 'i':
        case 't':
            if (vmha_parse_duration_ms(optarg, 1, c == 'i' ? &x.interval_ms : &x.timeout_ms) < 0) {
                fprintf(stderr, "vmha-replicator: bad --%s '%s'\n",
                        c == 'i' ? "interval" : "timeout", optarg);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    const char *mode = optind < argc ? argv[optind] : "";
    bool send = strcmp(mode, "send") == 0, receive = strcmp(mode, "receive") == 0;
    if ((!send && !receive) || optind + 1 != argc || !x.guest || !x.dir || !x.node ||
        (send && !x.uri) || (receive && !x.listen) || (tls && insecure)) {
        usage(stderr);
        return 2;
    }
    char parent[4096];
    snprintf(parent, sizeof(parent), "%s", x.dir);
    for (char *sl = strchr(parent + 1, '/'); sl; sl = strchr(sl + 1, '/')) {
        *sl = '\0';
        mkdir(parent, 0700);
        *sl = '/';
    }
    if (mkdir(x.dir, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "vmha-replicator: cannot create %s: %s\n", x.dir, strerror(errno));
        return 1;
    }
    struct vmha_err err = {0};
    int pipefd[2] = {-1, -1};
    if (!foreground) {
        if (pipe2(pipefd, O_CLOEXEC) < 0)
            return 1;
        pid_t pid = fork();
        if (pid < 0)
            return 1;
        if (pid > 0) {
            close(pipefd[1]);
            char msg[700] = "";
            ssize_t n = 0, got;
            while ((got = read(pipefd[0], msg + n, sizeof(msg) - 1 - (size_t)n)) > 0)
                n += got;
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
    }
    cluster_log_init("vmha-replicator", !foreground);
    int lock = take_lock(x.dir, mode, &err);
    if (lock < 0) {
        report_ready(err.msg);
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_term};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    snprintf(x.st.role, sizeof(x.st.role), "%s", send ? "primary" : "backup");
    /* The engine: the hypervisor's own Remus where its backend has one, else vmha's. */
    const struct hv_backend *b = NULL;
    struct vmha_err be = {0};
    bool native =
        x.uri && hv_backend_for_uri(x.uri, &b, &be) == 0 && hv_backend_can(b, HV_FEAT_NATIVE_REMUS);
    x.auth = insecure ? REMUS_AUTH_NONE : tls ? REMUS_AUTH_X509 : REMUS_AUTH_KEY;
    snprintf(x.st.auth, sizeof(x.st.auth), "%s", remus_auth_name(x.auth));
    int rc;
    if (x.auth == REMUS_AUTH_KEY && chan_load_key(&x, key_file, &err) < 0) {
        /* Without the key a backup would take anyone's checkpoint: refuse to run. */
        struct vmha_err e = {0};
        vmha_err_set(&e, err.code,
                     "replication needs the cluster's key to authenticate its "
                     "stream: %s (set replication_key, or replication_insecure=true in a lab)",
                     err.msg);
        rc = remus_fail(&x, &e);
    } else if (x.uri && !b) {
        rc = remus_fail(&x, &be);
    } else if (receive && native && !x.config) {
        vmha_err_set(&err, -EINVAL,
                     "--config is required: the backup makes its replica with "
                     "the guest's own configuration");
        rc = remus_fail(&x, &err);
    } else if (receive && !native && x.memory == 0) {
        vmha_err_set(&err, -EINVAL,
                     "--memory is required: the backup refuses checkpoints of "
                     "any other size than the guest's");
        rc = remus_fail(&x, &err);
    } else if (native && tls) {
        vmha_err_set(&err, -EOPNOTSUPP,
                     "--tls is for vmha's own replication: the hypervisor's "
                     "Remus runs its own stream");
        rc = remus_fail(&x, &err);
    } else if (native) {
        rc = send ? remus_native_send(&x) : remus_native_receive(&x);
    } else {
        rc = send ? remus_send(&x) : remus_receive(&x);
    }
    report_ready(rc == 0 ? "ok" : "stopped before it was ready");
    close(lock);
    return rc;
}

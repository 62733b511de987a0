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
 * stream of another guest. --disk TARGET=PATH (repeated, in the configuration's order): the
 * guest's writable disks, kept in step with the checkpoints (vmha's engine); the backup
 * also needs --local-dir DIR (this node's own directory of the guest, on disk), where it
 * records that its disks hold a replica, not the guest's own writes. --nvram (receive): the
 * guest boots UEFI, and its checkpoints carry its variable store. Where the --uri's backend has
 * its own Remus (Xen's, through libxenlight) both sides run that (native.c); otherwise vmha's
 * checkpoint engine (sender.c, receiver.c).
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

static void usage(FILE *out)
{
    fputs("usage: vmha-replicator send --guest G --dir D --node N --uri URI [--interval MS] "
          "[--timeout MS]\n"
          "       vmha-replicator receive --guest G --dir D --node N --listen ADDR:PORT "
          "[--timeout MS] [--uri URI]\n"
          "Started by ocf:vmha:guest for replicated guests; see vmha(8).\n",
          out);
}

/* What the command line asks for, beside the context it fills. */
struct args {
    const char *mode, *key_file;
    bool send, tls, insecure, foreground;
};

/* -1 to go on, else the exit code (after saying why). */
static int parse_args(int argc, char **argv, struct remus_ctx *x, struct args *a)
{
    static const struct option opts[] = {{"guest", required_argument, NULL, 'g'},
                                         {"dir", required_argument, NULL, 'd'},
                                         {"node", required_argument, NULL, 'n'},
                                         {"uri", required_argument, NULL, 'u'},
                                         {"listen", required_argument, NULL, 'l'},
                                         {"interval", required_argument, NULL, 'i'},
                                         {"timeout", required_argument, NULL, 't'},
                                         {"foreground", no_argument, NULL, 'f'},
                                         {"stats", required_argument, NULL, 's'},
                                         {"tls", no_argument, NULL, 'T'},
                                         {"key", required_argument, NULL, 'k'},
                                         {"insecure", no_argument, NULL, 'I'},
                                         {"memory", required_argument, NULL, 'm'},
                                         {"config", required_argument, NULL, 'c'},
                                         {"disk", required_argument, NULL, 'D'},
                                         {"local-dir", required_argument, NULL, 'L'},
                                         {"nvram", no_argument, NULL, 'N'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct vmha_err e = {0};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'g':
            x->guest = optarg;
            break;
        case 'd':
            x->dir = optarg;
            break;
        case 'n':
            x->node = optarg;
            break;
        case 'u':
            x->uri = optarg;
            break;
        case 'l':
            x->listen = optarg;
            break;
        case 'f':
            a->foreground = true;
            break;
        case 'T':
            a->tls = true;
            break;
        case 'I':
            a->insecure = true;
            break;
        case 'k':
            a->key_file = optarg;
            break;
        case 'c':
            x->config = optarg;
            break;
        case 'D':
            if (remus_disks_add(&x->disks, optarg, &e) < 0) {
                fprintf(stderr, "vmha-replicator: %s\n", e.msg);
                return 2;
            }
            break;
        case 'L':
            x->local_dir = optarg;
            break;
        case 'N':
            x->nvram = true;
            break;
        case 'm':
            if (vmha_parse_uint(optarg, UINT64_MAX, &x->memory) < 0 || x->memory == 0 ||
                x->memory % REMUS_PAGE) {
                fprintf(stderr, "vmha-replicator: bad --memory '%s' (bytes, whole pages)\n",
                        optarg);
                return 2;
            }
            break;
        case 's':
            if (!(x->stats = fopen(optarg, "a"))) {
                fprintf(stderr, "vmha-replicator: cannot open %s: %s\n", optarg, strerror(errno));
                return 1;
            }
            break;
        case 'i':
        case 't':
            if (vmha_parse_duration_ms(optarg, 1, c == 'i' ? &x->interval_ms : &x->timeout_ms) <
                0) {
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
    a->mode = optind < argc ? argv[optind] : "";
    a->send = strcmp(a->mode, "send") == 0;
    bool receive = strcmp(a->mode, "receive") == 0;
    if ((!a->send && !receive) || optind + 1 != argc || !x->guest || !x->dir || !x->node ||
        (a->send && !x->uri) || (receive && !x->listen) || (a->tls && a->insecure)) {
        usage(stderr);
        return 2;
    }
    return -1;
}

/* The run directory, and its parents (0700). */
static int make_dir(const char *dir)
{
    char parent[4096];
    snprintf(parent, sizeof(parent), "%s", dir);
    for (char *sl = strchr(parent + 1, '/'); sl; sl = strchr(sl + 1, '/')) {
        *sl = '\0';
        mkdir(parent, 0700);
        *sl = '/';
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "vmha-replicator: cannot create %s: %s\n", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* Authentication set up and the engine chosen: the hypervisor's own Remus where its backend
 * has one, else vmha's. 0, or -errno with err set. */
static int prepare(struct remus_ctx *x, const struct args *a, bool *native, struct vmha_err *err)
{
    const struct hv_backend *b = NULL;
    struct vmha_err e = {0};
    x->auth = a->insecure ? REMUS_AUTH_NONE : a->tls ? REMUS_AUTH_X509 : REMUS_AUTH_KEY;
    snprintf(x->st.auth, sizeof(x->st.auth), "%s", remus_auth_name(x->auth));
    if (x->auth == REMUS_AUTH_KEY && chan_load_key(x, a->key_file, &e) < 0)
        /* Without the key a backup would take anyone's checkpoint: refuse to run. */
        return vmha_err_set(err, e.code,
                            "replication needs the cluster's key to authenticate its "
                            "stream: %s (set replication_key, or replication_insecure=true "
                            "in a lab)",
                            e.msg);
    if (x->uri && hv_backend_for_uri(x->uri, &b, err) < 0)
        return err->code;
    *native = b && hv_backend_can(b, HV_FEAT_NATIVE_REMUS);
    if (!a->send && *native && !x->config)
        return vmha_err_set(err, -EINVAL,
                            "--config is required: the backup makes its replica with "
                            "the guest's own configuration");
    if (!a->send && !*native && x->memory == 0)
        return vmha_err_set(err, -EINVAL,
                            "--memory is required: the backup refuses checkpoints of "
                            "any other size than the guest's");
    if (x->disks.n && *native)
        return vmha_err_set(err, -EOPNOTSUPP,
                            "the hypervisor's own Remus does not keep disks in step here");
    if (x->disks.n && !a->send && !x->local_dir)
        return vmha_err_set(err, -EINVAL,
                            "--local-dir is required with --disk: the backup records there "
                            "that its disks hold a replica");
    if (*native && a->tls)
        return vmha_err_set(err, -EOPNOTSUPP,
                            "--tls is for vmha's own replication: the hypervisor's "
                            "Remus runs its own stream");
    return 0;
}

int main(int argc, char **argv)
{
    struct remus_ctx x = {.interval_ms = 1000, .timeout_ms = 5000};
    struct args a = {.key_file = REMUS_KEY_DEFAULT};
    int rc = parse_args(argc, argv, &x, &a);
    if (rc >= 0)
        return rc;
    if (make_dir(x.dir) < 0)
        return 1;
    if (!a.foreground && (rc = remus_session_detach()) >= 0)
        return rc; /* the parent, told how the start went */
    cluster_log_init("vmha-replicator", !a.foreground);
    struct vmha_err err = {0};
    int lock = remus_session_lock(x.dir, a.mode, &err);
    if (lock < 0) {
        remus_session_ready(err.msg);
        return 1;
    }
    remus_session_signals();
    snprintf(x.st.role, sizeof(x.st.role), "%s", a.send ? "primary" : "backup");
    bool native = false;
    if (prepare(&x, &a, &native, &err) < 0)
        rc = remus_fail(&x, &err);
    else if (native)
        rc = a.send ? remus_native_send(&x) : remus_native_receive(&x);
    else
        rc = a.send ? remus_send(&x) : remus_receive(&x);
    remus_session_ready(rc == 0 ? "ok" : "stopped before it was ready");
    close(lock);
    return rc;
}

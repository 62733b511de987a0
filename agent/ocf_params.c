/* The agent's parameters: one table drives parsing, defaults and the meta-data. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "agent_private.h"
#include "vmha/cleanup.h"

static const char *const transports[] = {"ssh", "tcp", "tls", NULL};
static const char *const shutdown_modes[] = {"default", "acpi",     "agent", "initctl",
                                             "signal",  "paravirt", NULL};

/* Per-parameter checks beyond the type, run on the value given (or the default). */
static int check_absolute(const struct ocf_param_desc *d, const char *v, struct vmha_err *err)
{
    if (v[0] && v[0] != '/')
        return vmha_err_set(err, -EINVAL, "%s=%s is not an absolute path", d->name, v);
    return 0;
}

static int check_sha256(const struct ocf_param_desc *d, const char *v, struct vmha_err *err)
{
    static const char hex[] = "0123456789abcdef";
    if (v[0] && (strlen(v) != 64 || strspn(v, hex) != 64))
        return vmha_err_set(err, -EINVAL, "%s=%s is not a SHA-256 in lower-case hex", d->name, v);
    return 0;
}

static int check_port(const struct ocf_param_desc *d, const char *v, struct vmha_err *err)
{
    uint64_t n = 0;
    vmha_parse_uint(v, UINT32_MAX, &n); /* a whole number: checked by its type */
    if (n == 0 || n > 65535)
        return vmha_err_set(err, -EINVAL, "%s=%llu is not a TCP port", d->name,
                            (unsigned long long)n);
    return 0;
}

const struct ocf_param_desc ocf_param_table[] = {
    {.name = "config",
     .offset = offsetof(struct ocf_params, config),
     .check = check_absolute,
     .type = OCF_PT_STRING,
     .required = true,
     .unique = true,
     .shortdesc = "Guest definition (libvirt domain XML, or xl.cfg)",
     .longdesc = "Absolute path to the guest's libvirt domain XML (an xl.cfg file with "
                 "hypervisor=libxl), on storage that every node "
                 "sees. The agent defines the guest from it on the node that starts it, and "
                 "removes the definition again when the guest stops there, so the guest is "
                 "defined only where it runs."},
    {.name = "name",
     .offset = offsetof(struct ocf_params, name),
     .type = OCF_PT_STRING,
     .def = "",
     .unique = true,
     .shortdesc = "Guest name",
     .longdesc = "The guest's name as the hypervisor knows it. Defaults to the name in config. "
                 "Set it: with it the agent finds a running guest even when config cannot be "
                 "read (shared storage lost), and never reports such a guest as stopped."},
    {.name = "hypervisor",
     .offset = offsetof(struct ocf_params, hypervisor),
     .type = OCF_PT_STRING,
     .def = "qemu:///system",
     .shortdesc = "Hypervisor URI",
     .longdesc = "The local hypervisor connection, as a libvirt URI (qemu:///system, "
                 "xen:///system, ...), or libxl for Xen through libxenlight directly (then "
                 "config is an xl.cfg file)."},
    {.name = "migration_transport",
     .offset = offsetof(struct ocf_params, migration_transport),
     .type = OCF_PT_SELECT,
     .def = "ssh",
     .reloadable = true,
     .options = transports,
     .shortdesc = "Migration transport (ssh, tls, tcp)",
     .longdesc = "How the source's libvirtd reaches the target's for a live migration when "
                 "migrate_target is not set, one of: ssh (root's SSH keys between nodes), tls "
                 "(libvirt's TLS certificates) or tcp (unencrypted: only on a private "
                 "migration network with SASL authentication)."},
    {.name = "migrate_target",
     .offset = offsetof(struct ocf_params, migrate_target),
     .type = OCF_PT_STRING,
     .def = "",
     .reloadable = true,
     .shortdesc = "Migration target URI",
     .longdesc = "libvirt URI of the target node's hypervisor for live migration; %n is "
                 "replaced by the target node's name (e.g. qemu+tls://%n-mig.example.com/system "
                 "to use a migration network). Default: built from hypervisor and "
                 "migration_transport, e.g. qemu+ssh://%n/system. With hypervisor=libxl: "
                 "ssh://[user@]host[:port] (default ssh://%n), where vmha's receiver runs."},
    {.name = "migrateuri",
     .offset = offsetof(struct ocf_params, migrateuri),
     .type = OCF_PT_STRING,
     .def = "",
     .reloadable = true,
     .shortdesc = "Migration data URI",
     .longdesc = "Where the guest's memory is sent during live migration, e.g. "
                 "tcp://%n-mig:49152 for a dedicated network; %n is replaced by the target "
                 "node's name. Default: the hypervisor's choice."},
    {.name = "migration_speed",
     .offset = offsetof(struct ocf_params, migration_speed),
     .type = OCF_PT_INTEGER,
     .def = "0",
     .reloadable = true,
     .shortdesc = "Migration bandwidth limit (MiB/s)",
     .longdesc = "Bandwidth limit for live migration in MiB/s; 0 means no limit."},
    {.name = "migration_downtime",
     .offset = offsetof(struct ocf_params, migration_downtime),
     .type = OCF_PT_INTEGER,
     .def = "0",
     .reloadable = true,
     .shortdesc = "Maximum migration downtime (ms)",
     .longdesc = "The longest pause the guest may see when a live migration switches over, in "
                 "milliseconds; 0 keeps the hypervisor's default."},
    {.name = "shutdown_timeout",
     .offset = offsetof(struct ocf_params, shutdown_timeout_ms),
     .type = OCF_PT_SECOND,
     .def = "0",
     .reloadable = true,
     .shortdesc = "Graceful shutdown time (s)",
     .longdesc = "How long stop waits for the guest to power off by itself before destroying "
                 "it, in seconds (90s, 2min and 500ms are understood too). 0 means as long as the "
                 "stop operation's timeout allows while leaving time "
                 "to destroy the guest, so stop never runs into its timeout."},
    {.name = "shutdown_mode",
     .offset = offsetof(struct ocf_params, shutdown_mode),
     .type = OCF_PT_SELECT,
     .def = "default",
     .reloadable = true,
     .options = shutdown_modes,
     .shortdesc = "Shutdown method",
     .longdesc = "How the guest is asked to power off, one of: default (the hypervisor's "
                 "choice), acpi (power button event), agent (guest agent), initctl, signal, "
                 "paravirt."},
    {.name = "force_stop",
     .offset = offsetof(struct ocf_params, force_stop),
     .type = OCF_PT_BOOLEAN,
     .def = "false",
     .reloadable = true,
     .shortdesc = "Destroy on stop",
     .longdesc = "Destroy the guest immediately on stop instead of asking it to shut down. "
                 "Only for guests that may lose their in-memory state at any time."},
    {.name = "state_dir",
     .offset = offsetof(struct ocf_params, state_dir),
     .check = check_absolute,
     .type = OCF_PT_STRING,
     .def = "",
     .shortdesc = "State store",
     .longdesc = "A directory on storage every node sees (e.g. /srv/cluster/vmha) where the "
                 "guest's state lives in state_dir/<guest>/: the highest hypervisor level it "
                 "has run on and its machine type (its migration floor). Setting it turns on "
                 "the migration policy: the guest then only starts or lands on hosts whose "
                 "level (published by the ocf:vmha:node clone) is within migration_window of "
                 "its floor and that have its machine type. Empty: no policy."},
    {.name = "migration_policy",
     .offset = offsetof(struct ocf_params, migration_policy),
     .type = OCF_PT_BOOLEAN,
     .def = "true",
     .reloadable = true,
     .shortdesc = "Enforce migration paths",
     .longdesc = "With state_dir, check every start and live migration against the migration "
                 "policy (levels published by the ocf:vmha:node clone, migration_window, "
                 "machine types). false keeps the state store for NVRAM only."},
    {.name = "migration_window",
     .offset = offsetof(struct ocf_params, migration_window),
     .type = OCF_PT_INTEGER,
     .def = "1",
     .reloadable = true,
     .shortdesc = "Releases a guest may move up",
     .longdesc = "How many releases above its floor a guest may move: QEMU major releases "
                 "(1: from 7.x up to 8.x) or Xen minor releases (1: from 4.17 to 4.18). "
                 "Within one stable branch (same major.minor) a guest moves both ways; it never "
                 "moves below its floor. Needs state_dir."},
    {.name = "nvram_keep",
     .offset = offsetof(struct ocf_params, nvram_keep),
     .type = OCF_PT_INTEGER,
     .def = "10",
     .reloadable = true,
     .shortdesc = "NVRAM generations kept",
     .longdesc = "How many captured generations of a UEFI guest's NVRAM (boot order, boot "
                 "entries, Secure Boot keys) the state store keeps. The NVRAM is restored "
                 "from the newest before every start and captured after a clean stop, "
                 "around live migrations and at monitors when it changed. Needs state_dir."},
    {.name = "install_config",
     .offset = offsetof(struct ocf_params, install_config),
     .type = OCF_PT_STRING,
     .def = "",
     .shortdesc = "Install configuration (one-off XML)",
     .longdesc = "A complete libvirt domain XML for the guest's install boot (same name as "
                 "config). The persistent config is defined first; the install boot runs "
                 "with this one laid over it until the installer powers the guest off by "
                 "itself, after which every start boots config. A crash or failover before "
                 "that runs the install again. Needs state_dir, where the install state lives. "
                 "Or use the install_kernel/install_initrd/install_cmdline/install_media "
                 "shorthand."},
    {.name = "install_kernel",
     .offset = offsetof(struct ocf_params, install_kernel),
     .type = OCF_PT_STRING,
     .def = "",
     .shortdesc = "Install kernel",
     .longdesc = "Kernel of the install boot (direct kernel boot), laid over config."},
    {.name = "install_initrd",
     .offset = offsetof(struct ocf_params, install_initrd),
     .type = OCF_PT_STRING,
     .def = "",
     .shortdesc = "Install initrd",
     .longdesc = "Initrd of the install boot, laid over config."},
    {.name = "install_cmdline",
     .offset = offsetof(struct ocf_params, install_cmdline),
     .type = OCF_PT_STRING,
     .def = "",
     .shortdesc = "Install kernel command line",
     .longdesc = "Kernel command line of the install boot, e.g. the preseed or kickstart "
                 "location."},
    {.name = "install_media",
     .offset = offsetof(struct ocf_params, install_media),
     .type = OCF_PT_STRING,
     .def = "",
     .shortdesc = "Install medium (ISO)",
     .longdesc = "An ISO image attached as a CD-ROM and booted first during the install."},
    {.name = "kernel_sha256",
     .offset = offsetof(struct ocf_params, kernel_sha256),
     .check = check_sha256,
     .type = OCF_PT_STRING,
     .def = "",
     .shortdesc = "Expected kernel digest",
     .longdesc = "SHA-256 the guest's directly booted kernel must have on every host. "
                 "Without it, the digest recorded in state_dir when the guest is first "
                 "defined is used. A host whose file differs is refused (5)."},
    {.name = "initrd_sha256",
     .offset = offsetof(struct ocf_params, initrd_sha256),
     .check = check_sha256,
     .type = OCF_PT_STRING,
     .def = "",
     .shortdesc = "Expected initrd digest",
     .longdesc = "As kernel_sha256, for the initrd."},
    {.name = "artifact_key",
     .offset = offsetof(struct ocf_params, artifact_key),
     .type = OCF_PT_STRING,
     .def = "",
     .shortdesc = "Cluster key for boot digests",
     .longdesc = "A file (root only, the same on every node) with a secret key: recorded boot "
                 "artifact digests are then signed with HMAC-SHA256 and a record that does not "
                 "verify is refused, so a writer to shared storage cannot swap a kernel and "
                 "its digest together. A start never records under a key: run vmha boot "
                 "--record GUEST after checking the files. The key file must be root's, mode "
                 "0600, at least 16 bytes."},
    {.name = "replicate",
     .offset = offsetof(struct ocf_params, replicate),
     .type = OCF_PT_BOOLEAN,
     .def = "false",
     .shortdesc = "Fault tolerance (checkpoint replication)",
     .longdesc = "Run the guest fault-tolerant: configure the resource as a promotable clone "
                 "(clone-max=2 promoted-max=1 notify=true). The promoted instance runs the "
                 "guest and sends a checkpoint of it to the unpromoted instance's host every "
                 "checkpoint_interval, holding the guest's network output until the backup "
                 "has the checkpoint that produced it; promotion (after Pacemaker has fenced "
                 "the old primary) resumes the guest from the last checkpoint, so nothing a "
                 "client saw is undone. Writable disks (raw, each node's own copy at the same "
                 "path) are kept in step with the checkpoints; UEFI guests are refused for "
                 "now."},
    {.name = "checkpoint_interval",
     .offset = offsetof(struct ocf_params, checkpoint_interval_ms),
     .type = OCF_PT_INTEGER,
     .def = "500",
     .reloadable = false,
     .shortdesc = "Checkpoint interval (ms)",
     .longdesc = "How long the guest runs between two checkpoints, in milliseconds. Each "
                 "checkpoint pauses the guest while it finds and sends the memory that changed; "
                 "the guest's network output waits for the next checkpoint, so replies are "
                 "delayed by up to about this much plus one checkpoint's time."},
    {.name = "checkpoint_timeout",
     .offset = offsetof(struct ocf_params, checkpoint_timeout_ms),
     .type = OCF_PT_INTEGER,
     .def = "5000",
     .shortdesc = "Checkpoint timeout (ms)",
     .longdesc = "How long one checkpoint may take, acknowledgement included, before the "
                 "backup counts as lost; the guest then runs unprotected (monitor reports it "
                 "degraded) once the backup's replica is marked stale in the cluster."},
    {.name = "replication_address",
     .offset = offsetof(struct ocf_params, replication_address),
     .type = OCF_PT_STRING,
     .def = "%n",
     .shortdesc = "Replication address",
     .longdesc = "The address the backup listens on for checkpoints, which carry the whole "
                 "memory of the guest: a private replication network. %n is replaced by the "
                 "node's name (e.g. %n-repl). Default: the node's name, i.e. the cluster "
                 "network."},
    {.name = "replication_key",
     .offset = offsetof(struct ocf_params, replication_key),
     .check = check_absolute,
     .type = OCF_PT_STRING,
     .def = "",
     .shortdesc = "Cluster key for the replication stream",
     .longdesc = "A file with a secret every node holds (root only, mode 600, 16 bytes or "
                 "more): both ends of the replication stream prove they know it before a byte "
                 "of a checkpoint is taken, and the stream is encrypted with a key derived from "
                 "it for this guest (TLS with a pre-shared key). Default: Corosync's own "
                 "/etc/corosync/authkey, which every node of the cluster already has. A "
                 "backup without it refuses to start."},
    {.name = "replication_tls",
     .offset = offsetof(struct ocf_params, replication_tls),
     .type = OCF_PT_BOOLEAN,
     .def = "false",
     .shortdesc = "Authenticate by x509 certificates",
     .longdesc = "Authenticate the replication stream with the x509 credentials libvirt's TLS "
                 "transport uses on every node instead of replication_key: "
                 "/etc/pki/CA/cacert.pem, /etc/pki/libvirt/servercert.pem and clientcert.pem "
                 "with their keys in /etc/pki/libvirt/private/. Both sides must present a "
                 "certificate of the CA; the backup's must carry its replication_address name "
                 "and the primary's the name of a node of the cluster."},
    {.name = "replication_insecure",
     .offset = offsetof(struct ocf_params, replication_insecure),
     .type = OCF_PT_BOOLEAN,
     .def = "false",
     .shortdesc = "No authentication (labs only)",
     .longdesc = "Send checkpoints in the clear and believe anyone who reaches the backup's "
                 "port. Whoever can connect then decides what a promotion runs, as root: "
                 "only for a test lab on a network nobody else reaches. Logged as a warning "
                 "and shown by vmha status."},
    {.name = "replication_port",
     .offset = offsetof(struct ocf_params, replication_port),
     .check = check_port,
     .type = OCF_PT_INTEGER,
     .def = "7790",
     .shortdesc = "Replication port",
     .longdesc = "TCP port the backup listens on; every replicated guest needs its own."},
};
const size_t ocf_param_count = sizeof(ocf_param_table) / sizeof(ocf_param_table[0]);

static const char *env_get(char *const *env, const char *key)
{
    size_t n = strlen(key);
    for (; env && *env; env++)
        if (strncmp(*env, key, n) == 0 && (*env)[n] == '=')
            return *env + n + 1;
    return NULL;
}

static const char *param_value(char *const *env, const struct ocf_param_desc *d)
{
    char key[128];
    snprintf(key, sizeof(key), "OCF_RESKEY_%s", d->name);
    const char *v = env_get(env, key);
    return v && *v ? v : d->def;
}

static int parse_meta(char *const *env, struct ocf_params *p, struct vmha_err *err)
{
    const char *v = env_get(env, "OCF_RESKEY_CRM_meta_timeout");
    if (v && *v && vmha_parse_uint(v, UINT32_MAX, &p->timeout_ms) < 0)
        return vmha_err_set(err, -EINVAL, "OCF_RESKEY_CRM_meta_timeout=%s is not in ms", v);
    v = env_get(env, "OCF_RESKEY_CRM_meta_interval");
    if (v && *v && vmha_parse_uint(v, UINT32_MAX, &p->interval_ms) < 0)
        return vmha_err_set(err, -EINVAL, "OCF_RESKEY_CRM_meta_interval=%s is not in ms", v);
    v = env_get(env, "OCF_RESKEY_CRM_meta_migrate_target");
    if (v && *v && !(p->migrate_target_node = strdup(v)))
        return -ENOMEM;
    v = env_get(env, "OCF_RESKEY_CRM_meta_migrate_source");
    if (v && *v && !(p->migrate_source_node = strdup(v)))
        return -ENOMEM;
    v = env_get(env, "OCF_RESOURCE_INSTANCE");
    if (v && *v && !(p->instance = strndup(v, strcspn(v, ":"))))
        return -ENOMEM;
    v = env_get(env, "OCF_RESKEY_CRM_meta_notify_type");
    if (v && *v && !(p->notify_type = strdup(v)))
        return -ENOMEM;
    v = env_get(env, "OCF_RESKEY_CRM_meta_notify_operation");
    if (v && *v && !(p->notify_operation = strdup(v)))
        return -ENOMEM;
    v = env_get(env, "OCF_RESKEY_CRM_meta_notify_promote_uname");
    if (v && !(p->notify_promote_uname = strdup(v)))
        return -ENOMEM;
    v = env_get(env, "OCF_RESKEY_CRM_meta_on_node");
    if (v && *v && !(p->on_node = strdup(v)))
        return -ENOMEM;
    p->run_by_cluster = env_get(env, "OCF_RESKEY_crm_feature_set") != NULL;
    return 0;
}

static bool is_option(const struct ocf_param_desc *d, const char *v)
{
    for (const char *const *o = d->options; *o; o++)
        if (strcmp(*o, v) == 0)
            return true;
    return false;
}

/* The parameter's value, parsed by its type once, into its field of p: a string, a boolean, or
 * a number (a duration in ms); a value its type refuses is an error naming the parameter. */
static int store_value(const struct ocf_param_desc *d, const char *v, struct ocf_params *p,
                       struct vmha_err *err)
{
    void *field = (char *)p + d->offset;
    uint64_t n = 0;
    bool b = false;
    switch (d->type) {
    case OCF_PT_SELECT:
        if (v && !is_option(d, v))
            return vmha_err_set(err, -EINVAL, "%s=%s is not one of the values it accepts", d->name,
                                v);
        /* fall through */
    case OCF_PT_STRING:
        if (!(*(char **)field = strdup(v ? v : "")))
            return vmha_err_set(err, -ENOMEM, "out of memory");
        return 0;
    case OCF_PT_BOOLEAN:
        if (v && vmha_parse_bool(v, &b) < 0)
            return vmha_err_set(err, -EINVAL, "%s=%s is not a boolean (true or false)", d->name, v);
        *(bool *)field = b;
        return 0;
    case OCF_PT_INTEGER:
        if (v && vmha_parse_uint(v, UINT32_MAX, &n) < 0)
            return vmha_err_set(err, -EINVAL, "%s=%s is not a whole number", d->name, v);
        *(uint64_t *)field = n;
        return 0;
    case OCF_PT_SECOND:
        if (v && vmha_parse_duration_ms(v, 1000, &n) < 0)
            return vmha_err_set(err, -EINVAL, "%s=%s is not a duration (e.g. 60, 60s, 2min)",
                                d->name, v);
        *(uint64_t *)field = n;
        return 0;
    }
    return -EINVAL;
}

/* What no single parameter can say alone. */
static int check_combinations(struct ocf_params *p, struct vmha_err *err)
{
    if (p->replication_tls && p->replication_insecure)
        return vmha_err_set(err, -EINVAL,
                            "replication_tls and replication_insecure contradict "
                            "each other: set one");
    if (p->checkpoint_interval_ms < 20 || p->checkpoint_timeout_ms < 500)
        return vmha_err_set(err, -EINVAL,
                            "checkpoint_interval must be at least 20 ms and "
                            "checkpoint_timeout at least 500 ms");
    bool install = p->install_config[0] || p->install_kernel[0] || p->install_initrd[0] ||
                   p->install_cmdline[0] || p->install_media[0];
    if (install && !p->state_dir[0])
        return vmha_err_set(err, -EINVAL,
                            "an install configuration needs state_dir: the "
                            "install state must survive a failover");
    if (p->install_config[0] && (p->install_kernel[0] || p->install_initrd[0] ||
                                 p->install_cmdline[0] || p->install_media[0]))
        return vmha_err_set(err, -EINVAL,
                            "install_config and the install_kernel/initrd/"
                            "cmdline/media shorthand exclude each other");
    return 0;
}

/* One loop over the table: every parameter checked and stored in its field; then what the
 * parameters say together, and Pacemaker's meta attributes. */
static int parse_all(char *const *env, struct ocf_params *p, struct vmha_err *err)
{
    for (size_t i = 0; i < ocf_param_count; i++) {
        const struct ocf_param_desc *d = &ocf_param_table[i];
        const char *v = param_value(env, d);
        int r;
        if (!v && d->required)
            return vmha_err_set(err, -EINVAL, "the required parameter %s is not set", d->name);
        if ((r = store_value(d, v, p, err)) < 0 || (v && d->check && (r = d->check(d, v, err)) < 0))
            return r;
    }
    if (p->nvram_keep == 0)
        p->nvram_keep = 1;
    if (strcmp(p->shutdown_mode, "default") == 0)
        p->shutdown_mode[0] = '\0';
    int r = check_combinations(p, err);
    if (r < 0)
        return r;
    const char *rundir = env_get(env, "VMHA_RUNDIR");
    if (!(p->rundir = strdup(rundir && *rundir ? rundir : VMHA_RUNDIR)))
        return vmha_err_set(err, -ENOMEM, "out of memory");
    return parse_meta(env, p, err);
}

int ocf_params_parse(char *const *env, struct ocf_params *ret, struct vmha_err *err)
{
    struct ocf_params p = {0};
    int r = parse_all(env, &p, err);
    if (r < 0) {
        ocf_params_clear(&p);
        return r;
    }
    *ret = p;
    return 0;
}

void ocf_params_clear(struct ocf_params *p)
{
    free(p->config);
    free(p->name);
    free(p->hypervisor);
    free(p->migration_transport);
    free(p->migrate_target);
    free(p->migrateuri);
    free(p->shutdown_mode);
    free(p->migrate_target_node);
    free(p->migrate_source_node);
    free(p->state_dir);
    free(p->on_node);
    free(p->rundir);
    free(p->install_config);
    free(p->install_kernel);
    free(p->install_initrd);
    free(p->install_cmdline);
    free(p->install_media);
    free(p->kernel_sha256);
    free(p->initrd_sha256);
    free(p->artifact_key);
    free(p->replication_address);
    free(p->replication_key);
    free(p->instance);
    free(p->notify_type);
    free(p->notify_operation);
    free(p->notify_promote_uname);
    *p = (struct ocf_params){0};
}

int ocf_expand_template(const char *tmpl, const char *node, char **ret)
{
    size_t cap = strlen(tmpl) + 1;
    for (const char *s = strstr(tmpl, "%n"); s; s = strstr(s + 2, "%n"))
        cap += strlen(node);
    _cleanup_free_ char *out = malloc(cap);
    if (!out)
        return -ENOMEM;
    char *o = out;
    for (const char *s = tmpl; *s; s++) {
        if (s[0] == '%' && s[1] == 'n') {
            o = stpcpy(o, node);
            s++;
        } else if (s[0] == '%' && s[1] == '%') {
            *o++ = '%';
            s++;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
    *ret = TAKE_PTR(out);
    return 0;
}

int ocf_migration_dest_uri(const struct ocf_params *p, const char *node, char **ret,
                           struct vmha_err *err)
{
    if (p->migrate_target[0])
        return ocf_expand_template(p->migrate_target, node, ret);
    const struct hv_backend *b;
    char tmpl[1024];
    int r = hv_backend_for_uri(p->hypervisor, &b, err);
    if (r < 0 || (r = hv_migrate_target_template(b, p->hypervisor, p->migration_transport, tmpl,
                                                 sizeof(tmpl), err)) < 0)
        return r;
    return ocf_expand_template(tmpl, node, ret);
}

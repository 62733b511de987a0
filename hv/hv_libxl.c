/* The libxl backend: Xen through libxenlight directly (never xl). libxenlight keeps no
 * definitions, so define() keeps the guest's xl.cfg under /run/vmha/libxl/ and start() builds
 * the domain from it. Its calls are synchronous: the agent's watchdog bounds them. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hv_libxl_private.h"
#include "vmha/cleanup.h"

#define HV_LIBXL_DEFDIR "/run/vmha/libxl"

/* A xentoollog logger that keeps the last error: libxenlight reports why a call failed only
 * through its logger, and the operator should read that reason in the exit reason. */
struct hv_xl_logger {
    xentoollog_logger vtable;
    char last[400];
    bool debug; /* VMHA_LIBXL_DEBUG=1: everything libxenlight says goes to stderr */
};

__attribute__((format(printf, 5, 0))) static void log_vmessage(xentoollog_logger *l,
                                                               xentoollog_level level, int errnoval,
                                                               const char *context, const char *fmt,
                                                               va_list ap)
{
    struct hv_xl_logger *me = (struct hv_xl_logger *)l;
    if (me->debug && level >= XTL_DETAIL) {
        va_list copy;
        va_copy(copy, ap);
        fprintf(stderr, "libxl: %s: ", xtl_level_to_string(level));
        vfprintf(stderr, fmt, copy);
        fputc('\n', stderr);
        va_end(copy);
    }
    if (level < XTL_ERROR)
        return;
    int n = vsnprintf(me->last, sizeof(me->last), fmt, ap);
    if (errnoval >= 0 && n >= 0 && (size_t)n < sizeof(me->last))
        snprintf(me->last + n, sizeof(me->last) - (size_t)n, ": %s", strerror(errnoval));
}

static void log_destroy(xentoollog_logger *l)
{
    free(l);
}

const char *hv_libxl_last_error(struct hv_conn *c)
{
    return c->log ? c->log->last : "";
}

int hv_libxl_err(struct hv_conn *c, struct vmha_err *err, int code, const char *what)
{
    const char *why = hv_libxl_last_error(c);
    return vmha_err_set(err, code, "%s%s%s", what, why[0] ? ": " : "", why);
}

enum hv_state hv_libxl_state(const libxl_dominfo *d, bool *powered_off)
{
    *powered_off = false;
    if (d->dying)
        return HV_STATE_SHUTDOWN; /* on its way out: still occupies the host */
    if (d->shutdown) {
        switch (d->shutdown_reason) {
        case LIBXL_SHUTDOWN_REASON_POWEROFF:
            *powered_off = true;
            return HV_STATE_SHUTOFF;
        case LIBXL_SHUTDOWN_REASON_REBOOT:
        case LIBXL_SHUTDOWN_REASON_SOFT_RESET:
            return HV_STATE_SHUTOFF;
        case LIBXL_SHUTDOWN_REASON_SUSPEND:
            return HV_STATE_PAUSED; /* suspended for a save or a migration */
        default:
            return HV_STATE_CRASHED; /* crash, watchdog, unknown */
        }
    }
    if (d->paused)
        return HV_STATE_PAUSED;
    return HV_STATE_RUNNING;
}

uint64_t hv_libxl_version(int major, int minor, const char *extra)
{
    uint64_t micro = 0;
    if (extra && extra[0] == '.')
        micro = strtoull(extra + 1, NULL, 10);
    return (uint64_t)major * 1000000 + (uint64_t)minor * 1000 + (micro > 999 ? 999 : micro);
}

static int xl_open(const char *uri, const struct vmha_deadline *dl, struct hv_conn **ret,
                   struct vmha_err *err)
{
    (void)dl; /* libxl_ctx_alloc only opens xenstore and the hypervisor's device */
    if (strcmp(uri, "libxl") != 0 && strcmp(uri, "libxl:///") != 0)
        return vmha_err_set(err, -EINVAL, "hypervisor=%s: the libxl backend takes \"libxl\"", uri);
    struct hv_conn *c = calloc(1, sizeof(*c));
    struct hv_xl_logger *l = calloc(1, sizeof(*l));
    if (!c || !l) {
        free(c);
        free(l);
        return vmha_err_set(err, -ENOMEM, "out of memory");
    }
    l->vtable.vmessage = log_vmessage;
    l->vtable.destroy = log_destroy;
    const char *dbg = getenv("VMHA_LIBXL_DEBUG");
    l->debug = dbg && strcmp(dbg, "1") == 0;
    c->log = l;
    const char *dir = getenv("VMHA_LIBXL_DEFDIR"); /* tests only */
    snprintf(c->defdir, sizeof(c->defdir), "%s", dir && dir[0] ? dir : HV_LIBXL_DEFDIR);
    if (libxl_ctx_alloc(&c->ctx, LIBXL_VERSION, 0, &l->vtable) != 0) {
        int r = hv_libxl_err(c, err, -EIO,
                             "cannot open libxenlight (is this a Xen dom0 with "
                             "xenstored running?)");
        free(c);
        free(l);
        return r;
    }
    *ret = c;
    return 0;
}

static void xl_close(struct hv_conn *c)
{
    if (!c)
        return;
    libxl_ctx_free(c->ctx);
    xtl_logger_destroy(&c->log->vtable);
    free(c);
}

static int xl_capabilities(struct hv_conn *c, struct hv_caps *ret, struct vmha_err *err)
{
    const libxl_version_info *v = libxl_get_version_info(c->ctx);
    if (!v)
        return hv_libxl_err(c, err, -EIO, "cannot read Xen's version");
    libxl_physinfo pi;
    libxl_physinfo_init(&pi);
    if (libxl_get_physinfo(c->ctx, &pi) != 0) {
        libxl_physinfo_dispose(&pi);
        return hv_libxl_err(c, err, -EIO, "cannot read the host's Xen capabilities");
    }
    struct hv_caps caps = {.hv_version = hv_libxl_version(
                               v->xen_version_major, v->xen_version_minor, v->xen_version_extra)};
    caps.mgmt_version = caps.hv_version; /* libxenlight ships with its hypervisor */
    snprintf(caps.family, sizeof(caps.family), "xen");
    gethostname(caps.hostname, sizeof(caps.hostname) - 1);
    /* The guest types this host can run: PVH needs hardware virtualisation as HVM does. */
    const char *types[3];
    size_t n = 0;
    if (pi.cap_pv)
        types[n++] = "pv";
    if (pi.cap_hvm && (pi.cap_hap || pi.cap_shadow)) {
        types[n++] = "pvh";
        types[n++] = "hvm";
    }
    libxl_physinfo_dispose(&pi);
    caps.machine_types = calloc(n + 1, sizeof(char *));
    for (size_t i = 0; caps.machine_types && i < n; i++)
        if (!(caps.machine_types[i] = strdup(types[i]))) {
            hv_caps_clear(&caps);
            return vmha_err_set(err, -ENOMEM, "out of memory");
        }
    if (!caps.machine_types)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    *ret = caps;
    return 0;
}

static void def_path(struct hv_conn *c, const char *name, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s.cfg", c->defdir, name);
}

/* A migration's or replication's stand-in shares the guest's UUID but is not the guest. */
static bool stand_in(const char *name)
{
    static const char *const suffixes[] = {HV_XL_INCOMING, HV_XL_REPLICA, HV_XL_AWAY};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        size_t m = strlen(suffixes[i]);
        if (n > m && strcmp(name + n - m, suffixes[i]) == 0)
            return true;
    }
    return false;
}

/* The domain whose name or UUID is id, with its info; -ENOENT if none. */
static int find_domain(struct hv_conn *c, const char *id, libxl_dominfo *ret, char **ret_name,
                       struct vmha_err *err)
{
    int n = 0;
    libxl_dominfo *list = libxl_list_domain(c->ctx, &n);
    if (!list)
        return hv_libxl_err(c, err, -EIO, "cannot list Xen's domains");
    int found = -1;
    char *name = NULL;
    for (int i = 0; i < n && found < 0; i++) {
        if (list[i].domid == 0)
            continue;
        char uuid[37];
        snprintf(uuid, sizeof(uuid), LIBXL_UUID_FMT, LIBXL_UUID_BYTES(list[i].uuid));
        name = libxl_domid_to_name(c->ctx, list[i].domid);
        if (name && (strcmp(name, id) == 0 || (strcasecmp(uuid, id) == 0 && !stand_in(name))))
            found = i;
        else
            free(TAKE_PTR(name));
    }
    if (found >= 0)
        libxl_dominfo_copy(c->ctx, ret, &list[found]);
    libxl_dominfo_list_free(list, n);
    if (found < 0)
        return -ENOENT;
    *ret_name = name;
    return 0;
}

int hv_libxl_domid(struct hv_conn *c, const char *name, uint32_t *ret, struct vmha_err *err)
{
    libxl_dominfo d;
    libxl_dominfo_init(&d);
    _cleanup_free_ char *n = NULL;
    int r = find_domain(c, name, &d, &n, err);
    if (r == -ENOENT)
        vmha_err_set(err, r, "Xen runs no domain named %s here", name);
    else if (r == 0)
        *ret = d.domid;
    libxl_dominfo_dispose(&d);
    return r;
}

static int xl_lookup(struct hv_conn *c, const char *id, struct hv_guest_info *ret,
                     struct vmha_err *err)
{
    char path[512];
    def_path(c, id, path, sizeof(path));
    bool defined = access(path, F_OK) == 0;
    libxl_dominfo d;
    libxl_dominfo_init(&d);
    _cleanup_free_ char *name = NULL;
    int r = find_domain(c, id, &d, &name, err);
    if (r < 0 && r != -ENOENT) {
        libxl_dominfo_dispose(&d);
        return r;
    }
    struct hv_guest_info info = {.state = HV_STATE_SHUTOFF, .persistent = defined};
    snprintf(info.name, sizeof(info.name), "%s", name ? name : id);
    if (r == 0) {
        info.state = hv_libxl_state(&d, &info.powered_off);
        info.memory_kib = d.current_memkb;
        snprintf(info.uuid, sizeof(info.uuid), LIBXL_UUID_FMT, LIBXL_UUID_BYTES(d.uuid));
    }
    libxl_dominfo_dispose(&d);
    if (r == -ENOENT && !defined)
        return vmha_err_set(err, -ENOENT, "Xen knows no guest %s here", id);
    *ret = info;
    return 0;
}

static int xl_current_config(struct hv_conn *c, const char *name, struct hv_guest_config *ret,
                             struct vmha_err *err)
{
    uint32_t domid;
    int r = hv_libxl_domid(c, name, &domid, err);
    if (r == -ENOENT) {
        char path[512];
        _cleanup_free_ char *text = NULL;
        def_path(c, name, path, sizeof(path));
        if (vmha_read_file(path, 1u << 20, &text, NULL) < 0)
            return vmha_err_set(err, -ENOENT, "Xen knows no guest %s here", name);
        return hv_libxl_config_parse(text, ret, err);
    }
    if (r < 0)
        return r;
    libxl_domain_config d;
    libxl_domain_config_init(&d);
    if (hv_xl_retrieve_config(c->ctx, domid, &d) != 0)
        r = hv_libxl_err(c, err, -EIO, "cannot read the running guest's configuration");
    else if (hv_libxl_config_from_domain(&d, ret) < 0)
        r = vmha_err_set(err, -ENOMEM, "out of memory");
    libxl_domain_config_dispose(&d);
    return r;
}

static int xl_define(struct hv_conn *c, const char *text, struct vmha_err *err)
{
    /* Check all of it now, as libvirt does at define: a bad disk spec is a config error. */
    libxl_domain_config d;
    int r = hv_libxl_domain_config(text, &d, err);
    if (r < 0)
        return r;
    char path[512];
    def_path(c, d.c_info.name, path, sizeof(path));
    libxl_domain_config_dispose(&d);
    /* The directory and its parent (/run/vmha) vanish at every boot. */
    char parent[sizeof(c->defdir)];
    snprintf(parent, sizeof(parent), "%s", c->defdir);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = 0;
        mkdir(parent, 0755);
    }
    if (mkdir(c->defdir, 0700) < 0 && errno != EEXIST)
        return vmha_err_set(err, -errno, "cannot create %s: %s", c->defdir, strerror(errno));
    return vmha_write_file(path, text, strlen(text), true, err);
}

/* A domain that shut down stays as a shell until someone destroys it (xl's own process does
 * that for xl's guests). Clears such a shell of name; leaves a live domain alone. */
static int clear_shell(struct hv_conn *c, const char *name, struct vmha_err *err);

static int xl_undefine(struct hv_conn *c, const char *name, struct vmha_err *err)
{
    char path[512];
    def_path(c, name, path, sizeof(path));
    int r = clear_shell(c, name, err); /* a stopped guest leaves no trace */
    if (r < 0 && r != -EEXIST)
        return r;
    if (unlink(path) < 0)
        return vmha_err_set(err, -errno, "cannot remove the definition %s: %s", path,
                            strerror(errno));
    return 0;
}

static int clear_shell(struct hv_conn *c, const char *name, struct vmha_err *err)
{
    libxl_dominfo d;
    libxl_dominfo_init(&d);
    _cleanup_free_ char *n = NULL;
    int r = find_domain(c, name, &d, &n, err);
    bool powered_off;
    enum hv_state s = r == 0 ? hv_libxl_state(&d, &powered_off) : HV_STATE_ABSENT;
    uint32_t domid = d.domid;
    libxl_dominfo_dispose(&d);
    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return r;
    if (s != HV_STATE_SHUTOFF && s != HV_STATE_CRASHED)
        return vmha_err_set(err, -EEXIST, "guest %s already exists here (%s)", name,
                            hv_state_to_string(s));
    if (hv_xl_destroy(c->ctx, domid) != 0)
        return hv_libxl_err(c, err, -EIO, "cannot clear the guest's stopped domain");
    return 0;
}

static int xl_start(struct hv_conn *c, const char *name, const char *oneoff, struct vmha_err *err)
{
    if (oneoff)
        return vmha_err_set(err, -EOPNOTSUPP,
                            "the libxl backend has no one-off (install) boot yet");
    char path[512];
    _cleanup_free_ char *text = NULL;
    def_path(c, name, path, sizeof(path));
    int r = vmha_read_file(path, 1u << 20, &text, err);
    if (r < 0)
        return r;
    if ((r = clear_shell(c, name, err)) < 0)
        return r;
    libxl_domain_config d;
    if ((r = hv_libxl_domain_config(text, &d, err)) < 0)
        return r;
    uint32_t domid = HV_XL_NO_DOMID;
    if (libxl_domain_create_new(c->ctx, &d, &domid, NULL, NULL) != 0) {
        r = hv_libxl_err(c, err, -EIO, "libxenlight cannot create the guest");
        if (domid != HV_XL_NO_DOMID) /* half-created: never leave it behind */
            hv_xl_destroy(c->ctx, domid);
    } else if (hv_xl_unpause(c->ctx, domid) != 0) {
        r = hv_libxl_err(c, err, -EIO, "the guest was created but does not run");
        hv_xl_destroy(c->ctx, domid);
    }
    libxl_domain_config_dispose(&d);
    return r;
}

static int xl_resume(struct hv_conn *c, const char *name, struct vmha_err *err)
{
    uint32_t domid;
    int r = hv_libxl_domid(c, name, &domid, err);
    if (r < 0)
        return r;
    libxl_dominfo d;
    libxl_dominfo_init(&d);
    bool known = libxl_domain_info(c->ctx, &d, domid) == 0;
    bool suspended = known && d.shutdown && d.shutdown_reason == LIBXL_SHUTDOWN_REASON_SUSPEND;
    bool runs = known && !d.shutdown && !d.paused;
    libxl_dominfo_dispose(&d);
    if (runs)
        return 0;
    /* Suspended by a failed migration or replication: the guest resumes cooperatively. */
    if (suspended)
        return libxl_domain_resume(c->ctx, domid, 1, NULL) != 0
                   ? hv_libxl_err(c, err, -EIO, "cannot resume the suspended guest")
                   : 0;
    return hv_xl_unpause(c->ctx, domid) != 0 ? hv_libxl_err(c, err, -EIO, "cannot unpause") : 0;
}

static int xl_shutdown(struct hv_conn *c, const char *name, const char *mode, struct vmha_err *err)
{
    uint32_t domid;
    int r = hv_libxl_domid(c, name, &domid, err);
    if (r < 0)
        return r;
    if (mode && (!mode[0] || strcmp(mode, "default") == 0))
        mode = NULL;
    bool acpi = mode && strcmp(mode, "acpi") == 0;
    if (mode && !acpi && strcmp(mode, "paravirt") != 0)
        return vmha_err_set(err, -EINVAL, "shutdown_mode=%s: Xen takes default, paravirt or acpi",
                            mode);
    if (!acpi) {
        r = hv_xl_shutdown(c->ctx, domid);
        /* An HVM guest without PV drivers only hears the power button, as in xl shutdown -F. */
        if (r == ERROR_NOPARAVIRT && !mode)
            acpi = true;
        else if (r != 0)
            return hv_libxl_err(c, err, -EIO, "cannot ask the guest to shut down");
    }
    if (acpi && hv_xl_power_button(c->ctx, domid) != 0)
        return hv_libxl_err(c, err, -EIO, "cannot press the guest's power button");
    return 0;
}

static int xl_destroy(struct hv_conn *c, const char *name, struct vmha_err *err)
{
    uint32_t domid;
    int r = hv_libxl_domid(c, name, &domid, err);
    if (r < 0)
        return r;
    return hv_xl_destroy(c->ctx, domid) != 0 ? hv_libxl_err(c, err, -EIO, "cannot destroy") : 0;
}

/* libxenlight has no daemon to talk to: the source runs the receiver over ssh. */
static int xl_migrate_target_template(const char *uri, const char *transport, char *ret,
                                      size_t size, struct vmha_err *err)
{
    if (strcmp(transport, "ssh") != 0)
        return vmha_err_set(err, -EINVAL,
                            "hypervisor=%s migrates over ssh only, not "
                            "migration_transport=%s",
                            uri, transport);
    snprintf(ret, size, "ssh://%%n");
    return 0;
}

static int xl_migrate_target_check(const char *target, struct vmha_err *err)
{
    if (strncmp(target, "ssh://", 6) != 0)
        return vmha_err_set(err, -EINVAL,
                            "migration target %s: hypervisor=libxl migrates "
                            "over ssh (migrate_target=ssh://[user@]%%n[:port])",
                            target);
    return 0;
}

static int xl_replication_check(const struct hv_guest_config *cfg, bool tls, struct vmha_err *err)
{
    if (cfg->nics)
        return vmha_err_set(err, -EOPNOTSUPP,
                            "it has a network interface: Xen's Remus must "
                            "hold its output until each checkpoint is replicated, and Debian's "
                            "libxenlight is built without that network buffering (remove the "
                            "vif or turn replicate off)");
    if (tls)
        return vmha_err_set(err, -EOPNOTSUPP,
                            "replication_tls is for libvirt guests: Xen's "
                            "Remus runs libxenlight's own stream (keep it on a private "
                            "replication network)");
    return 0;
}

const struct hv_backend hv_libxl_backend = {
    .name = "libxl",
    .config_parse = hv_libxl_config_parse,
    .migrate_target_template = xl_migrate_target_template,
    .migrate_target_check = xl_migrate_target_check,
    .replication_check = xl_replication_check,
    .open = xl_open,
    .close = xl_close,
    .capabilities = xl_capabilities,
    .lookup = xl_lookup,
    .current_config = xl_current_config,
    .define = xl_define,
    .undefine = xl_undefine,
    .start = xl_start,
    .resume = xl_resume,
    .shutdown = xl_shutdown,
    .destroy = xl_destroy,
    .migrate = hv_libxl_migrate,
    .remus_send = hv_libxl_remus_send,
    .remus_receive = hv_libxl_remus_receive,
    .remus_suspended = hv_libxl_remus_suspended,
    .replica_promote = hv_libxl_remus_promote,
    .replica_discard = hv_libxl_remus_discard,
};

/* The libvirt backend: any hypervisor libvirt drives, through libvirt's C API (never virsh).
 * A hung libvirtd must cost a failed call, not a hung agent: connections run libvirt's
 * keepalive on an event-loop thread, and callers bound the rest with their deadline. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "hv_libvirt_private.h"
#include "vmha/cleanup.h"

/* Records libvirt's last error after our own words. */
int hv_libvirt_err(struct vmha_err *err, int code, const char *what)
{
    const char *msg = virGetLastErrorMessage();
    virErrorPtr e = virGetLastError();
    if (e && (e->code == VIR_ERR_NO_DOMAIN))
        code = -ENOENT;
    else if (e && (e->code == VIR_ERR_NO_CONNECT || e->code == VIR_ERR_SYSTEM_ERROR ||
                   e->code == VIR_ERR_RPC || e->code == VIR_ERR_AUTH_FAILED))
        code = code == -EINVAL ? -EIO : code;
    return vmha_err_set(err, code, "%s: %s", what, msg ? msg : "unknown libvirt error");
}

enum hv_state hv_libvirt_state(int vir_state, bool active)
{
    switch (vir_state) {
    case VIR_DOMAIN_NOSTATE:
        return active ? HV_STATE_RUNNING : HV_STATE_SHUTOFF;
    case VIR_DOMAIN_RUNNING:
    case VIR_DOMAIN_BLOCKED:
        return HV_STATE_RUNNING;
    case VIR_DOMAIN_PAUSED:
        return HV_STATE_PAUSED;
    case VIR_DOMAIN_SHUTDOWN:
        return HV_STATE_SHUTDOWN;
    case VIR_DOMAIN_SHUTOFF:
        return HV_STATE_SHUTOFF;
    case VIR_DOMAIN_CRASHED:
        return HV_STATE_CRASHED;
    case VIR_DOMAIN_PMSUSPENDED:
        return HV_STATE_PMSUSPENDED;
    default:
        return HV_STATE_INVALID;
    }
}

static void silence(void *opaque, virErrorPtr e)
{
    (void)opaque;
    (void)e;
}

static void *event_loop(void *arg)
{
    (void)arg;
    for (;;)
        if (virEventRunDefaultImpl() < 0)
            break;
    return NULL;
}

static pthread_once_t event_once = PTHREAD_ONCE_INIT;
static int event_ok;

static void event_start(void)
{
    pthread_t t;
    virSetErrorFunc(NULL, silence);
    if (virEventRegisterDefaultImpl() < 0)
        return;
    if (pthread_create(&t, NULL, event_loop, NULL) != 0)
        return;
    pthread_detach(t);
    event_ok = 1;
}

/* virConnectOpen has no timeout and runs no keepalive until it returns: a frozen libvirtd
 * accepts the socket and never answers. So it runs on a thread of its own, and a caller
 * whose deadline passes walks away; the thread closes whatever it gets when it gets it. */
struct opener {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char *uri;
    virConnectPtr conn;
    char msg[512];
    bool done;
    int refs;
};

static void opener_unref(struct opener *o)
{
    pthread_mutex_lock(&o->lock);
    bool last = --o->refs == 0;
    pthread_mutex_unlock(&o->lock);
    if (!last)
        return;
    if (o->conn)
        virConnectClose(o->conn);
    pthread_cond_destroy(&o->cond);
    pthread_mutex_destroy(&o->lock);
    free(o->uri);
    free(o);
}

static void *opener_thread(void *arg)
{
    struct opener *o = arg;
    virConnectPtr conn = virConnectOpen(o->uri);
    pthread_mutex_lock(&o->lock);
    o->conn = conn;
    if (!conn)
        snprintf(o->msg, sizeof(o->msg), "%s", virGetLastErrorMessage());
    o->done = true;
    pthread_cond_signal(&o->cond);
    pthread_mutex_unlock(&o->lock);
    opener_unref(o);
    return NULL;
}

static struct opener *opener_new(const char *uri)
{
    struct opener *o = calloc(1, sizeof(*o));
    if (!o || !(o->uri = strdup(uri))) {
        free(o);
        return NULL;
    }
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&o->cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&o->lock, NULL);
    o->refs = 2; /* the caller and the thread */
    return o;
}

/* Waits for the opener until dl; returns the connection or NULL (msg says why). */
static virConnectPtr opener_wait(struct opener *o, const struct vmha_deadline *dl, char *msg,
                                 size_t size)
{
    struct timespec at = {.tv_sec = (time_t)(dl->at_ms / 1000),
                          .tv_nsec = (long)(dl->at_ms % 1000) * 1000000};
    pthread_mutex_lock(&o->lock);
    while (!o->done && pthread_cond_timedwait(&o->cond, &o->lock, &at) == 0)
        ;
    virConnectPtr conn = o->done ? TAKE_PTR(o->conn) : NULL;
    snprintf(msg, size, "%s", o->done ? o->msg : "no answer before the deadline");
    pthread_mutex_unlock(&o->lock);
    return conn;
}

static int lv_open(const char *uri, const struct vmha_deadline *dl, struct hv_conn **ret,
                   struct vmha_err *err)
{
    pthread_once(&event_once, event_start);
    _cleanup_free_ struct hv_conn *c = calloc(1, sizeof(*c));
    struct opener *o = opener_new(uri);
    pthread_t t;
    if (!c || !o) {
        if (o) {
            o->refs = 1;
            opener_unref(o);
        }
        return vmha_err_set(err, -ENOMEM, "out of memory");
    }
    if (pthread_create(&t, NULL, opener_thread, o) != 0) {
        o->refs = 1;
        opener_unref(o);
        return vmha_err_set(err, -EAGAIN, "cannot start a thread");
    }
    pthread_detach(t);
    /* A healthy libvirtd answers in milliseconds; one that does not answer in a sixth of the
     * time left (5 s at least) is hung, and the caller is better told now. */
    uint64_t budget = vmha_deadline_left_ms(dl) / 6;
    struct vmha_deadline connect_by =
        vmha_deadline_min(*dl, vmha_deadline_in(budget < 5000 ? 5000 : budget));
    char msg[512];
    c->conn = opener_wait(o, &connect_by, msg, sizeof(msg));
    opener_unref(o);
    if (!c->conn)
        return vmha_err_set(err, vmha_deadline_passed(&connect_by) ? -ETIMEDOUT : -ECONNREFUSED,
                            "cannot connect to the hypervisor: %s", msg);
    if (event_ok) {
        /* Probe often enough that a frozen libvirtd is noticed well before the deadline. */
        uint64_t left_s = vmha_deadline_left_ms(dl) / 1000;
        int interval = (int)(left_s / 6);
        interval = interval < 1 ? 1 : interval > 5 ? 5 : interval;
        virConnectSetKeepAlive(c->conn, interval, 2);
    }
    *ret = TAKE_PTR(c);
    return 0;
}

static void lv_close(struct hv_conn *c)
{
    if (!c)
        return;
    virConnectClose(c->conn);
    free(c);
}

static bool looks_like_uuid(const char *s)
{
    return strlen(s) == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-';
}

int hv_libvirt_domain(struct hv_conn *c, const char *id, virDomainPtr *ret, struct vmha_err *err)
{
    virDomainPtr d = looks_like_uuid(id) ? virDomainLookupByUUIDString(c->conn, id)
                                         : virDomainLookupByName(c->conn, id);
    if (!d) {
        virErrorPtr e = virGetLastError();
        if (e && e->code == VIR_ERR_NO_DOMAIN)
            return vmha_err_set(err, -ENOENT, "guest %s is not known to this host", id);
        return hv_libvirt_err(err, -EIO, "cannot look up the guest");
    }
    *ret = d;
    return 0;
}

static int lv_lookup(struct hv_conn *c, const char *id, struct hv_guest_info *ret,
                     struct vmha_err *err)
{
    _cleanup_(virDomainFreep) virDomainPtr d = NULL;
    int r = hv_libvirt_domain(c, id, &d, err);
    if (r < 0)
        return r;
    int state = 0, reason = 0;
    if (virDomainGetState(d, &state, &reason, 0) < 0)
        return hv_libvirt_err(err, -EIO, "cannot read the guest's state");
    int active = virDomainIsActive(d);
    int persistent = virDomainIsPersistent(d);
    if (active < 0 || persistent < 0)
        return hv_libvirt_err(err, -EIO, "cannot read the guest's state");
    struct hv_guest_info info = {.state = hv_libvirt_state(state, active == 1),
                                 .persistent = persistent == 1,
                                 .powered_off = state == VIR_DOMAIN_SHUTOFF &&
                                                reason == VIR_DOMAIN_SHUTOFF_SHUTDOWN};
    snprintf(info.name, sizeof(info.name), "%s", virDomainGetName(d));
    virDomainGetUUIDString(d, info.uuid);
    *ret = info;
    return 0;
}

static int lv_define(struct hv_conn *c, const char *xml, struct vmha_err *err)
{
    _cleanup_(virDomainFreep) virDomainPtr d =
        virDomainDefineXMLFlags(c->conn, xml, VIR_DOMAIN_DEFINE_VALIDATE);
    if (!d) {
        virErrorPtr e = virGetLastError();
        bool bad =
            e && (e->code == VIR_ERR_XML_ERROR || e->code == VIR_ERR_XML_DETAIL ||
                  e->code == VIR_ERR_CONFIG_UNSUPPORTED || e->code == VIR_ERR_XML_INVALID_SCHEMA);
        return hv_libvirt_err(err, bad ? -EINVAL : -EIO, "libvirt refused the guest definition");
    }
    return 0;
}

static int lv_undefine(struct hv_conn *c, const char *name, struct vmha_err *err)
{
    _cleanup_(virDomainFreep) virDomainPtr d = NULL;
    int r = hv_libvirt_domain(c, name, &d, err);
    if (r < 0)
        return r;
    if (virDomainIsPersistent(d) == 0)
        return 0;
    if (virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_KEEP_NVRAM) < 0)
        return hv_libvirt_err(err, -EIO, "cannot undefine the guest");
    return 0;
}

static int lv_start(struct hv_conn *c, const char *name, const char *oneoff, struct vmha_err *err)
{
    if (oneoff) {
        _cleanup_(virDomainFreep) virDomainPtr d = virDomainCreateXML(c->conn, oneoff, 0);
        return d ? 0
                 : hv_libvirt_err(err, -EIO,
                                  "cannot start the guest with its one-off configuration");
    }
    _cleanup_(virDomainFreep) virDomainPtr d = NULL;
    int r = hv_libvirt_domain(c, name, &d, err);
    if (r < 0)
        return r;
    if (virDomainCreate(d) < 0)
        return hv_libvirt_err(err, -EIO, "cannot start the guest");
    return 0;
}

static int lv_resume(struct hv_conn *c, const char *name, struct vmha_err *err)
{
    _cleanup_(virDomainFreep) virDomainPtr d = NULL;
    int r = hv_libvirt_domain(c, name, &d, err);
    if (r < 0)
        return r;
    return virDomainResume(d) < 0 ? hv_libvirt_err(err, -EIO, "cannot resume the guest") : 0;
}

static const struct {
    const char *name;
    unsigned int flag;
} shutdown_modes[] = {
    {"acpi", VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN}, {"agent", VIR_DOMAIN_SHUTDOWN_GUEST_AGENT},
    {"initctl", VIR_DOMAIN_SHUTDOWN_INITCTL},     {"signal", VIR_DOMAIN_SHUTDOWN_SIGNAL},
    {"paravirt", VIR_DOMAIN_SHUTDOWN_PARAVIRT},
};

static int lv_shutdown(struct hv_conn *c, const char *name, const char *mode, struct vmha_err *err)
{
    unsigned int flags = 0;
    for (size_t i = 0; mode && *mode && i < sizeof(shutdown_modes) / sizeof(*shutdown_modes); i++)
        if (strcmp(mode, shutdown_modes[i].name) == 0)
            flags = shutdown_modes[i].flag;
    if (mode && *mode && !flags)
        return vmha_err_set(err, -EINVAL, "unknown shutdown mode '%s'", mode);
    _cleanup_(virDomainFreep) virDomainPtr d = NULL;
    int r = hv_libvirt_domain(c, name, &d, err);
    if (r < 0)
        return r;
    return virDomainShutdownFlags(d, flags) < 0
               ? hv_libvirt_err(err, -EIO, "cannot shut the guest down")
               : 0;
}

static int lv_destroy(struct hv_conn *c, const char *name, struct vmha_err *err)
{
    _cleanup_(virDomainFreep) virDomainPtr d = NULL;
    int r = hv_libvirt_domain(c, name, &d, err);
    if (r < 0)
        return r;
    if (virDomainDestroy(d) < 0) {
        if (virDomainIsActive(d) == 0)
            return 0;
        return hv_libvirt_err(err, -EIO, "cannot destroy the guest");
    }
    return 0;
}

struct migration {
    virDomainPtr dom;
    const struct hv_migrate_params *p;
    int rc;
    char msg[512];
    bool done;
    pthread_mutex_t lock;
    pthread_cond_t finished;
};

static void *migration_thread(void *arg)
{
    struct migration *m = arg;
    virTypedParameterPtr params = NULL;
    int n = 0, max = 0;
    unsigned int flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PERSIST_DEST |
                         VIR_MIGRATE_UNDEFINE_SOURCE | VIR_MIGRATE_ABORT_ON_ERROR;
    if (m->p->data_uri && *m->p->data_uri)
        virTypedParamsAddString(&params, &n, &max, VIR_MIGRATE_PARAM_URI, m->p->data_uri);
    if (m->p->bandwidth_mib)
        virTypedParamsAddULLong(&params, &n, &max, VIR_MIGRATE_PARAM_BANDWIDTH,
                                m->p->bandwidth_mib);
    int rc = virDomainMigrateToURI3(m->dom, m->p->dest_uri, params, (unsigned int)n, flags);
    pthread_mutex_lock(&m->lock);
    m->rc = rc;
    if (rc < 0)
        snprintf(m->msg, sizeof(m->msg), "%s", virGetLastErrorMessage());
    m->done = true;
    pthread_cond_signal(&m->finished);
    pthread_mutex_unlock(&m->lock);
    virTypedParamsFree(params, n);
    return NULL;
}

/* Waits up to ms for the migration to finish: its end is noticed at once, not at the next
 * progress tick (Pacemaker's next step waits on it). */
static bool migration_wait(struct migration *m, uint64_t ms)
{
    struct vmha_deadline until = vmha_deadline_in(ms);
    struct timespec at = {.tv_sec = (time_t)(until.at_ms / 1000),
                          .tv_nsec = (long)(until.at_ms % 1000) * 1000000};
    pthread_mutex_lock(&m->lock);
    while (!m->done && pthread_cond_timedwait(&m->finished, &m->lock, &at) == 0)
        ;
    bool done = m->done;
    pthread_mutex_unlock(&m->lock);
    return done;
}

/* Fills p from the guest's current job; returns the job type (VIR_DOMAIN_JOB_NONE: none). */
static int job_progress(virDomainPtr d, uint64_t started, struct hv_progress *p)
{
    virTypedParameterPtr params = NULL;
    int n = 0, type = 0;
    *p = (struct hv_progress){.elapsed_ms = started ? vmha_now_ms() - started : 0};
    if (virDomainGetJobStats(d, &type, &params, &n, 0) < 0)
        return -1;
    unsigned long long v;
    if (!started && virTypedParamsGetULLong(params, n, VIR_DOMAIN_JOB_TIME_ELAPSED, &v) == 1)
        p->elapsed_ms = v;
    if (virTypedParamsGetULLong(params, n, VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE, &v) == 1)
        p->dirty_pages_per_s = v;
    if (virTypedParamsGetULLong(params, n, VIR_DOMAIN_JOB_DOWNTIME, &v) == 1)
        p->expected_downtime_ms = v;
    if (virTypedParamsGetULLong(params, n, VIR_DOMAIN_JOB_DATA_TOTAL, &v) == 1)
        p->data_total = v;
    if (virTypedParamsGetULLong(params, n, VIR_DOMAIN_JOB_DATA_PROCESSED, &v) == 1)
        p->data_processed = v;
    if (virTypedParamsGetULLong(params, n, VIR_DOMAIN_JOB_DATA_REMAINING, &v) == 1)
        p->data_remaining = v;
    virTypedParamsFree(params, n);
    return type;
}

static int lv_job_progress(struct hv_conn *c, const char *name, struct hv_progress *ret,
                           struct vmha_err *err)
{
    _cleanup_(virDomainFreep) virDomainPtr d = NULL;
    int r = hv_libvirt_domain(c, name, &d, err);
    if (r < 0)
        return r;
    int type = job_progress(d, 0, ret);
    if (type < 0)
        return hv_libvirt_err(err, -EIO, "cannot read the guest's job");
    if (type == VIR_DOMAIN_JOB_NONE)
        return vmha_err_set(err, -ENOENT, "guest %s has no job running", name);
    return 0;
}

static int lv_migrate(struct hv_conn *c, const char *name, const struct hv_migrate_params *p,
                      struct vmha_err *err)
{
    _cleanup_(virDomainFreep) virDomainPtr d = NULL;
    int r = hv_libvirt_domain(c, name, &d, err);
    if (r < 0)
        return r;
    struct migration m = {.dom = d, .p = p, .lock = PTHREAD_MUTEX_INITIALIZER};
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&m.finished, &attr);
    pthread_condattr_destroy(&attr);
    pthread_t t;
    if (pthread_create(&t, NULL, migration_thread, &m) != 0)
        return vmha_err_set(err, -EAGAIN, "cannot start the migration thread");
    uint64_t started = vmha_now_ms();
    bool downtime_set = p->max_downtime_ms == 0, cancelled = false;
    /* The first look comes early: the downtime limit can only be set once the job runs. */
    uint64_t wait = 50;
    while (!migration_wait(&m, wait)) {
        wait = p->poll_ms ? p->poll_ms : 500;
        /* The downtime limit only applies to a running migration job. */
        if (!downtime_set)
            downtime_set = virDomainMigrateSetMaxDowntime(d, p->max_downtime_ms, 0) == 0;
        struct hv_progress prog;
        job_progress(d, started, &prog);
        if (!cancelled && p->progress && !p->progress(&prog, p->opaque)) {
            cancelled = true;
            virDomainAbortJob(d);
        }
    }
    pthread_join(t, NULL);
    pthread_cond_destroy(&m.finished);
    if (m.rc < 0)
        return vmha_err_set(err, cancelled ? -ETIMEDOUT : -EIO, "migration %s: %s",
                            cancelled ? "cancelled" : "failed", m.msg);
    return 0;
}

static int lv_current_config(struct hv_conn *c, const char *name, struct hv_guest_config *ret,
                             struct vmha_err *err)
{
    _cleanup_(virDomainFreep) virDomainPtr d = NULL;
    int r = hv_libvirt_domain(c, name, &d, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *xml = virDomainGetXMLDesc(d, 0);
    if (!xml)
        return hv_libvirt_err(err, -EIO, "cannot read the guest's definition");
    return hv_libvirt_config_parse(xml, ret, err);
}

static int lv_nvram_path(struct hv_conn *c, const char *name, char **ret, struct vmha_err *err)
{
    _cleanup_(virDomainFreep) virDomainPtr d = NULL;
    int r = hv_libvirt_domain(c, name, &d, err);
    if (r < 0)
        return r;
    _cleanup_free_ char *xml = virDomainGetXMLDesc(d, 0);
    if (!xml)
        return hv_libvirt_err(err, -EIO, "cannot read the guest's definition");
    struct hv_guest_config cfg = {0};
    r = hv_libvirt_config_parse(xml, &cfg, err);
    if (r < 0)
        return r;
    char *path = TAKE_PTR(cfg.nvram);
    hv_guest_config_clear(&cfg);
    if (!path)
        return vmha_err_set(err, -ENOENT, "guest %s has no NVRAM", name);
    *ret = path;
    return 0;
}

static int lv_capabilities(struct hv_conn *c, struct hv_caps *ret, struct vmha_err *err)
{
    struct hv_caps caps = {0};
    const char *type = virConnectGetType(c->conn);
    unsigned long hv = 0, lib = 0;
    if (!type || virConnectGetVersion(c->conn, &hv) < 0 ||
        virConnectGetLibVersion(c->conn, &lib) < 0)
        return hv_libvirt_err(err, -EIO, "cannot read the hypervisor's version");
    for (size_t i = 0; type[i] && i < sizeof(caps.family) - 1; i++)
        caps.family[i] = (char)(type[i] | 0x20);
    caps.hv_version = hv;
    caps.mgmt_version = lib;
    _cleanup_free_ char *host = virConnectGetHostname(c->conn);
    snprintf(caps.hostname, sizeof(caps.hostname), "%s", host ? host : "");
    _cleanup_free_ char *xml = virConnectGetCapabilities(c->conn);
    if (!xml)
        return hv_libvirt_err(err, -EIO, "cannot read the hypervisor's capabilities");
    int r = hv_libvirt_machines_from_caps(xml, NULL, &caps.machine_types, err);
    if (r < 0)
        return r;
    *ret = caps;
    return 0;
}

/* driver[+transport]://[user@host][/path][?query] -> driver+transport://%n/path */
static int lv_migrate_target_template(const char *uri, const char *transport, char *ret,
                                      size_t size, struct vmha_err *err)
{
    const char *sep = strstr(uri, "://");
    if (!sep)
        return vmha_err_set(err, -EINVAL,
                            "cannot derive a migration URI from hypervisor=%s: set "
                            "migrate_target",
                            uri);
    size_t drv = strcspn(uri, "+:");
    const char *path = strchr(sep + 3, '/');
    int n =
        snprintf(ret, size, "%.*s+%s://%%n%s", (int)drv, uri, transport, path ? path : "/system");
    if (n < 0 || (size_t)n >= size)
        return vmha_err_set(err, -ENAMETOOLONG, "hypervisor=%s is too long", uri);
    return 0;
}

const struct hv_backend hv_libvirt_backend = {
    .name = "libvirt",
    .daemon = "libvirtd",
    .config_parse = hv_libvirt_config_parse,
    .migrate_target_template = lv_migrate_target_template,
    .replication_check = hv_libvirt_replication_check,
    .open = lv_open,
    .close = lv_close,
    .capabilities = lv_capabilities,
    .lookup = lv_lookup,
    .job_progress = lv_job_progress,
    .current_config = lv_current_config,
    .define = lv_define,
    .oneoff_config = hv_libvirt_oneoff_config,
    .undefine = lv_undefine,
    .start = lv_start,
    .resume = lv_resume,
    .shutdown = lv_shutdown,
    .destroy = lv_destroy,
    .migrate = lv_migrate,
    .nvram_path = lv_nvram_path,
    .ckpt_hold = hv_libvirt_ckpt_hold,
    .ckpt_release = hv_libvirt_ckpt_release,
    .ckpt_take = hv_libvirt_ckpt_take,
    .ckpt_memory = hv_libvirt_ckpt_memory,
    .ckpt_restore = hv_libvirt_ckpt_restore,
    .ckpt_image = hv_libvirt_ckpt_image,
    .mirror_start = hv_libvirt_mirror_start,
    .mirror_ready = hv_libvirt_mirror_ready,
    .mirror_stop = hv_libvirt_mirror_stop,
};

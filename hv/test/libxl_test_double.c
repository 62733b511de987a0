/* TEST DOUBLE of libxenlight, for unit tests only: an in-memory Xen with a handful of
 * domains, standing in for the few libxl calls that need a hypervisor. Everything else (types,
 * their init/dispose, libxlutil) is the real library. Linked into hv_libxl_test only; the real
 * backend is tested against real Xen in tests/xenlab/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv_libxl_private.h"
#include "libxl_test_double.h"

struct xl_double xl_double;
static char fake_ctx[64];

int libxl_ctx_alloc(libxl_ctx **pctx, int version, unsigned flags, xentoollog_logger *lg)
{
    if (xl_double.no_xenstore) {
        xtl_log(lg, XTL_ERROR, -1, "libxl", "cannot connect to xenstore");
        return ERROR_FAIL;
    }
    xl_double.logger = lg;
    *pctx = (libxl_ctx *)fake_ctx;
    return 0;
}

int libxl_ctx_free(libxl_ctx *ctx)
{
    return 0;
}

static struct xl_double_dom *by_domid(uint32_t domid)
{
    for (int i = 0; i < XL_DOUBLE_MAX; i++)
        if (xl_double.dom[i].used && xl_double.dom[i].domid == domid)
            return &xl_double.dom[i];
    return NULL;
}

libxl_dominfo *libxl_list_domain(libxl_ctx *ctx, int *nb)
{
    libxl_dominfo *l = calloc(XL_DOUBLE_MAX + 1, sizeof(*l));
    int n = 0;
    libxl_dominfo_init(&l[n]);
    l[n++].domid = 0; /* dom0 is always there */
    for (int i = 0; i < XL_DOUBLE_MAX; i++) {
        struct xl_double_dom *d = &xl_double.dom[i];
        if (!d->used)
            continue;
        libxl_dominfo_init(&l[n]);
        l[n] = d->info;
        l[n].ssid_label = NULL;
        l[n++].domid = d->domid;
    }
    *nb = n;
    return l;
}

char *libxl_domid_to_name(libxl_ctx *ctx, uint32_t domid)
{
    struct xl_double_dom *d = by_domid(domid);
    return d ? strdup(d->name) : NULL;
}

int libxl_domain_info(libxl_ctx *ctx, libxl_dominfo *info_r, uint32_t domid)
{
    struct xl_double_dom *d = by_domid(domid);
    if (!d)
        return ERROR_DOMAIN_NOTFOUND;
    *info_r = d->info;
    info_r->domid = domid;
    return 0;
}

int libxl_domain_create_new(libxl_ctx *ctx, libxl_domain_config *c, uint32_t *domid,
                            const libxl_asyncop_how *ao, const libxl_asyncprogress_how *aop)
{
    xl_double.creates++;
    if (xl_double.fail_create) {
        xtl_log(xl_double.logger, XTL_ERROR, -1, "libxl", "kernel image too large");
        return ERROR_FAIL;
    }
    for (int i = 0; i < XL_DOUBLE_MAX; i++) {
        struct xl_double_dom *d = &xl_double.dom[i];
        if (d->used)
            continue;
        *d = (struct xl_double_dom){.used = true, .domid = (uint32_t)(10 + xl_double.creates)};
        snprintf(d->name, sizeof(d->name), "%s", c->c_info.name);
        d->info.paused = true;
        d->info.uuid = c->c_info.uuid;
        d->memkb = c->b_info.target_memkb;
        snprintf(d->kernel, sizeof(d->kernel), "%s", c->b_info.kernel ? c->b_info.kernel : "");
        *domid = d->domid;
        return 0;
    }
    return ERROR_FAIL;
}

int libxl_domain_unpause(libxl_ctx *ctx, uint32_t domid, const libxl_asyncop_how *ao)
{
    struct xl_double_dom *d = by_domid(domid);
    if (!d)
        return ERROR_DOMAIN_NOTFOUND;
    d->info.paused = false;
    d->info.running = true;
    return 0;
}

int libxl_domain_shutdown(libxl_ctx *ctx, uint32_t domid, const libxl_asyncop_how *ao)
{
    struct xl_double_dom *d = by_domid(domid);
    if (!d)
        return ERROR_DOMAIN_NOTFOUND;
    if (d->no_pv_drivers)
        return ERROR_NOPARAVIRT;
    d->shutdown_requests++;
    if (!d->ignores_shutdown) {
        d->info.running = false;
        d->info.shutdown = true;
        d->info.shutdown_reason = LIBXL_SHUTDOWN_REASON_POWEROFF;
    }
    return 0;
}

int libxl_send_trigger(libxl_ctx *ctx, uint32_t domid, libxl_trigger trigger, uint32_t vcpuid,
                       const libxl_asyncop_how *ao)
{
    struct xl_double_dom *d = by_domid(domid);
    if (!d)
        return ERROR_DOMAIN_NOTFOUND;
    if (trigger == LIBXL_TRIGGER_POWER)
        d->power_buttons++;
    return 0;
}

int libxl_domain_destroy(libxl_ctx *ctx, uint32_t domid, const libxl_asyncop_how *ao)
{
    struct xl_double_dom *d = by_domid(domid);
    if (!d)
        return ERROR_DOMAIN_NOTFOUND;
    d->used = false;
    xl_double.destroys++;
    return 0;
}

const libxl_version_info *libxl_get_version_info(libxl_ctx *ctx)
{
    static libxl_version_info v;
    v.xen_version_major = 4;
    v.xen_version_minor = 17;
    v.xen_version_extra = (char *)".5";
    return &v;
}

int libxl_get_physinfo(libxl_ctx *ctx, libxl_physinfo *pi)
{
    pi->cap_pv = true;
    pi->cap_hvm = xl_double.cap_hvm;
    pi->cap_hap = xl_double.cap_hvm;
    return 0;
}

int libxl_retrieve_domain_configuration(libxl_ctx *ctx, uint32_t domid, libxl_domain_config *c,
                                        const libxl_asyncop_how *ao)
{
    struct xl_double_dom *d = by_domid(domid);
    if (!d)
        return ERROR_DOMAIN_NOTFOUND;
    c->c_info.name = strdup(d->name);
    c->c_info.type = LIBXL_DOMAIN_TYPE_PVH;
    c->c_info.uuid = d->info.uuid;
    c->b_info.kernel = strdup(d->kernel);
    c->b_info.target_memkb = d->memkb;
    return 0;
}

int libxl_domain_rename(libxl_ctx *ctx, uint32_t domid, const char *old_name, const char *new_name)
{
    struct xl_double_dom *d = by_domid(domid);
    if (!d || (old_name && strcmp(d->name, old_name) != 0))
        return ERROR_FAIL;
    snprintf(d->name, sizeof(d->name), "%s", new_name);
    return 0;
}

int libxl_domain_pause(libxl_ctx *ctx, uint32_t domid, const libxl_asyncop_how *ao)
{
    struct xl_double_dom *d = by_domid(domid);
    if (!d)
        return ERROR_DOMAIN_NOTFOUND;
    d->info.paused = true;
    d->info.running = false;
    return 0;
}

/* Adds a domain as if it had been restored (paused), for tests of what follows. */
struct xl_double_dom *xl_double_add(const char *name, bool paused)
{
    for (int i = 0; i < XL_DOUBLE_MAX; i++) {
        struct xl_double_dom *d = &xl_double.dom[i];
        if (d->used)
            continue;
        *d = (struct xl_double_dom){.used = true, .domid = (uint32_t)(100 + i)};
        snprintf(d->name, sizeof(d->name), "%s", name);
        d->info.paused = paused;
        d->info.running = !paused;
        return d;
    }
    return NULL;
}

int libxl_domain_resume(libxl_ctx *ctx, uint32_t domid, int suspend_cancel,
                        const libxl_asyncop_how *ao)
{
    struct xl_double_dom *d = by_domid(domid);
    if (!d || !d->info.shutdown)
        return ERROR_FAIL;
    xl_double.resumes++;
    d->info.shutdown = false;
    d->info.running = true;
    return 0;
}

/* The stream's configuration as hv_libxl_test writes it (the real parser needs a real
 * context): {"c_info":{"name":"N","uuid":"U"}}. */
int libxl_domain_config_from_json(libxl_ctx *ctx, libxl_domain_config *p, const char *s)
{
    char name[64], uuid[40];
    if (sscanf(s, "{\"c_info\":{\"name\":\"%63[^\"]\",\"uuid\":\"%39[^\"]\"}}", name, uuid) != 2)
        return ERROR_INVAL;
    if (!(p->c_info.name = strdup(name)))
        return ERROR_NOMEM;
    return libxl_uuid_from_string(&p->c_info.uuid, uuid) ? ERROR_INVAL : 0;
}

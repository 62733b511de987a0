/* xl.cfg, the configuration format Xen's users have, read with libxlutil as xl reads it. vmha
 * takes a documented subset and refuses every other key by name: a guest started without the
 * PCI device or the bootloader its config asks for is worse than one that does not start. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv_libxl_private.h"
#include "vmha/cleanup.h"

static const char *const known_keys[] = {
    "name",     "uuid",        "type",      "builder",  "memory", "maxmem", "vcpus",
    "maxvcpus", "kernel",      "ramdisk",   "cmdline",  "extra",  "root",   "disk",
    "vif",      "on_poweroff", "on_reboot", "on_crash", NULL,
};

/* What vmha reads from an xl.cfg. Strings point into the XLU_Config. */
struct xl_cfg {
    XLU_Config *x;
    const char *name, *uuid, *kernel, *ramdisk;
    char *cmdline; /* owned: cmdline, or root= plus extra */
    libxl_domain_type type;
    long memory, maxmem, vcpus, maxvcpus;
    XLU_ConfigList *disks, *vifs;
    int ndisks, nvifs;
    char *report; /* libxlutil's complaints */
    size_t report_len;
    FILE *report_f;
};

static void xl_cfg_clear(struct xl_cfg *c)
{
    if (c->x)
        xlu_cfg_destroy(c->x);
    if (c->report_f)
        fclose(c->report_f);
    free(c->report);
    free(c->cmdline);
}

/* libxlutil prints its complaints to a FILE: the last line is the one worth showing. */
static const char *xl_report(struct xl_cfg *c)
{
    fflush(c->report_f);
    if (!c->report || !c->report[0])
        return "no details";
    char *end = c->report + strlen(c->report);
    while (end > c->report && end[-1] == '\n')
        *--end = 0;
    char *last = strrchr(c->report, '\n');
    return last ? last + 1 : c->report;
}

static int get_long(struct xl_cfg *c, const char *key, long min, long max, long def, long *ret,
                    struct vmha_err *err)
{
    const char *s;
    if (xlu_cfg_get_string(c->x, key, &s, 1) != 0) {
        *ret = def;
        return 0;
    }
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return vmha_err_set(err, -EINVAL, "xl.cfg: %s=%s is not a number from %ld to %ld", key, s,
                            min, max);
    *ret = v;
    return 0;
}

static int read_type(struct xl_cfg *c, struct vmha_err *err)
{
    const char *s;
    c->type = LIBXL_DOMAIN_TYPE_PV; /* as xl: no type and no builder is a PV guest */
    if (xlu_cfg_get_string(c->x, "type", &s, 1) == 0) {
        if (libxl_domain_type_from_string(s, &c->type) != 0 || c->type == LIBXL_DOMAIN_TYPE_INVALID)
            return vmha_err_set(err, -EINVAL, "xl.cfg: type=\"%s\" is not one of pv, pvh, hvm", s);
    } else if (xlu_cfg_get_string(c->x, "builder", &s, 1) == 0) {
        if (strcmp(s, "hvm") == 0)
            c->type = LIBXL_DOMAIN_TYPE_HVM;
        else if (strcmp(s, "generic") != 0)
            return vmha_err_set(err, -EINVAL, "xl.cfg: builder=\"%s\" is not hvm or generic", s);
    }
    return 0;
}

static int read_cmdline(struct xl_cfg *c, struct vmha_err *err)
{
    const char *cmd = NULL, *root = NULL, *extra = NULL;
    xlu_cfg_get_string(c->x, "cmdline", &cmd, 1);
    xlu_cfg_get_string(c->x, "root", &root, 1);
    xlu_cfg_get_string(c->x, "extra", &extra, 1);
    if (cmd && (root || extra))
        return vmha_err_set(err, -EINVAL, "xl.cfg: cmdline cannot be combined with root or extra");
    int n = 0;
    if (cmd)
        c->cmdline = strdup(cmd);
    else if (root)
        n = asprintf(&c->cmdline, "root=%s%s%s", root, extra ? " " : "", extra ? extra : "");
    else if (extra)
        c->cmdline = strdup(extra);
    return n < 0 || ((cmd || root || extra) && !c->cmdline)
               ? vmha_err_set(err, -ENOMEM, "out of memory")
               : 0;
}

/* The first key of the file (as libxlutil parsed it) that vmha does not take, or NULL; -EPROTO
 * in *r when libxlutil's settings are not laid out as hv_xlu_settings expects. Checked on
 * "name", which the caller found through the public call: the same setting must carry the
 * same string. */
static const char *unknown_key(const struct xl_cfg *c, int *r)
{
    const char *bad = NULL, *name = NULL;
    char *via_walk = NULL;
    bool seen_name = false;
    *r = 0;
    xlu_cfg_get_string(c->x, "name", &name, 1);
    for (const struct hv_xlu_setting *s = hv_xlu_settings(c->x); s; s = s->next) {
        if (!s->name || !s->value) {
            *r = -EPROTO;
            return NULL;
        }
        if (!seen_name && strcmp(s->name, "name") == 0) {
            seen_name = true;
            if (xlu_cfg_value_get_string(c->x, s->value, &via_walk, 1) != 0 || via_walk != name) {
                *r = -EPROTO;
                return NULL;
            }
        }
        bool known = false;
        for (const char *const *k = known_keys; *k && !known; k++)
            known = strcmp(*k, s->name) == 0;
        if (!known)
            bad = s->name; /* the list runs backwards: the last one found is the first */
    }
    if (!seen_name)
        *r = -EPROTO;
    return bad;
}

static int xl_cfg_read(const char *text, struct xl_cfg *c, struct vmha_err *err)
{
    if (text[strspn(text, " \t\r\n")] == '<')
        return vmha_err_set(err, -EINVAL,
                            "this is XML, not an xl.cfg (a libvirt domain XML "
                            "needs a libvirt hypervisor URI, not hypervisor=libxl)");
    c->report_f = open_memstream(&c->report, &c->report_len);
    if (!c->report_f || !(c->x = xlu_cfg_init(c->report_f, "xl.cfg")))
        return vmha_err_set(err, -ENOMEM, "out of memory");
    int r = xlu_cfg_readdata(c->x, text, (int)strlen(text));
    if (r != 0)
        return vmha_err_set(err, -EINVAL, "xl.cfg does not parse: %s", xl_report(c));
    if (xlu_cfg_get_string(c->x, "name", &c->name, 1) != 0 || !c->name[0])
        return vmha_err_set(err, -EINVAL, "xl.cfg names no guest (name=\"...\")");
    const char *bad = unknown_key(c, &r);
    if (r < 0)
        return vmha_err_set(err, r,
                            "this libxlutil keeps its settings in a way vmha does not know, so "
                            "xl.cfg's keys cannot be checked: build vmha against this Xen's "
                            "libxlutil");
    if (bad)
        return vmha_err_set(err, -EINVAL,
                            "xl.cfg: '%s' is not supported by vmha's libxl backend (it takes "
                            "name, uuid, type, builder, memory, maxmem, vcpus, maxvcpus, kernel, "
                            "ramdisk, cmdline, extra, root, disk, vif, on_poweroff, on_reboot, "
                            "on_crash)",
                            bad);
    if (xlu_cfg_get_string(c->x, "uuid", &c->uuid, 1) == 0) {
        libxl_uuid u;
        if (libxl_uuid_from_string(&u, c->uuid) != 0)
            return vmha_err_set(err, -EINVAL, "xl.cfg: uuid=\"%s\" is not a UUID", c->uuid);
    }
    if ((r = read_type(c, err)) < 0 ||
        (r = get_long(c, "memory", 16, 1L << 30, 128, &c->memory, err)) < 0 ||
        (r = get_long(c, "maxmem", c->memory, 1L << 30, c->memory, &c->maxmem, err)) < 0 ||
        (r = get_long(c, "vcpus", 1, 4096, 1, &c->vcpus, err)) < 0 ||
        (r = get_long(c, "maxvcpus", c->vcpus, 4096, c->vcpus, &c->maxvcpus, err)) < 0 ||
        (r = read_cmdline(c, err)) < 0)
        return r;
    xlu_cfg_get_string(c->x, "kernel", &c->kernel, 1);
    xlu_cfg_get_string(c->x, "ramdisk", &c->ramdisk, 1);
    if (c->type != LIBXL_DOMAIN_TYPE_HVM && !c->kernel)
        return vmha_err_set(err, -EINVAL,
                            "xl.cfg: a %s guest needs kernel= (direct kernel boot; bootloader= "
                            "is not supported)",
                            libxl_domain_type_to_string(c->type));
    xlu_cfg_get_list(c->x, "disk", &c->disks, &c->ndisks, 1);
    xlu_cfg_get_list(c->x, "vif", &c->vifs, &c->nvifs, 1);
    return 0;
}

static int parse_disk(struct xl_cfg *c, int i, libxl_device_disk *d, struct vmha_err *err)
{
    const char *spec = xlu_cfg_get_listitem(c->disks, i);
    libxl_device_disk_init(d);
    if (!spec || xlu_disk_parse(c->x, 1, &spec, d) != 0)
        return vmha_err_set(err, -EINVAL, "xl.cfg: disk '%s' does not parse: %s", spec ? spec : "",
                            xl_report(c));
    return 0;
}

int hv_libxl_config_parse(const char *text, struct hv_guest_config *ret, struct vmha_err *err)
{
    _cleanup_(xl_cfg_clear) struct xl_cfg c = {0};
    int r = xl_cfg_read(text, &c, err);
    if (r < 0)
        return r;
    struct hv_guest_config g = {0};
    bool writable = false;
    for (int i = 0; i < c.ndisks; i++) {
        libxl_device_disk d;
        r = parse_disk(&c, i, &d, err);
        writable = writable || (r == 0 && d.readwrite && !d.is_cdrom);
        libxl_device_disk_dispose(&d);
        if (r < 0)
            return r;
    }
    g.name = strdup(c.name);
    g.virt_type = strdup("xen");
    g.arch = strdup("x86_64");
    g.machine = strdup(libxl_domain_type_to_string(c.type));
    g.kernel = c.kernel ? strdup(c.kernel) : NULL;
    g.initrd = c.ramdisk ? strdup(c.ramdisk) : NULL;
    g.cmdline = TAKE_PTR(c.cmdline);
    g.writable_disks = writable;
    g.nics = c.nvifs > 0;
    if (c.uuid) {
        libxl_uuid u;
        libxl_uuid_from_string(&u, c.uuid);
        snprintf(g.uuid, sizeof(g.uuid), LIBXL_UUID_FMT, LIBXL_UUID_BYTES(u));
    }
    if (!g.name || !g.virt_type || !g.arch || !g.machine || (c.kernel && !g.kernel) ||
        (c.ramdisk && !g.initrd)) {
        hv_guest_config_clear(&g);
        return vmha_err_set(err, -ENOMEM, "out of memory");
    }
    *ret = g;
    return 0;
}

static int parse_mac(const char *s, libxl_mac mac)
{
    unsigned v[6];
    char tail;
    if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) !=
        6)
        return -EINVAL;
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)v[i];
    return 0;
}

/* One vif spec, "mac=..,bridge=..": the keys xl documents that vmha takes. */
static int parse_vif(const char *spec, int devid, libxl_device_nic *n, struct vmha_err *err)
{
    libxl_device_nic_init(n);
    n->devid = devid;
    _cleanup_free_ char *copy = strdup(spec);
    if (!copy)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    char *save = NULL;
    for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*kv))
            kv++;
        char *v = strchr(kv, '=');
        if (!v)
            return vmha_err_set(err, -EINVAL, "xl.cfg: vif '%s': '%s' is not key=value", spec, kv);
        *v++ = 0;
        char **field = strcmp(kv, "bridge") == 0    ? &n->bridge
                       : strcmp(kv, "ip") == 0      ? &n->ip
                       : strcmp(kv, "script") == 0  ? &n->script
                       : strcmp(kv, "vifname") == 0 ? &n->ifname
                       : strcmp(kv, "model") == 0   ? &n->model
                                                    : NULL;
        if (field) {
            free(*field);
            if (!(*field = strdup(v)))
                return vmha_err_set(err, -ENOMEM, "out of memory");
        } else if (strcmp(kv, "mac") == 0) {
            if (parse_mac(v, n->mac) < 0)
                return vmha_err_set(err, -EINVAL, "xl.cfg: vif '%s': mac=%s is not a MAC address",
                                    spec, v);
        } else {
            return vmha_err_set(err, -EINVAL,
                                "xl.cfg: vif '%s': '%s' is not supported (vmha takes mac, bridge, "
                                "ip, script, vifname, model)",
                                spec, kv);
        }
    }
    return 0;
}

static int set_action(struct xl_cfg *c, const char *key, libxl_action_on_shutdown def,
                      libxl_action_on_shutdown *ret, struct vmha_err *err)
{
    const char *s;
    *ret = def;
    if (xlu_cfg_get_string(c->x, key, &s, 1) == 0 && libxl_action_on_shutdown_from_string(s, ret))
        return vmha_err_set(err, -EINVAL, "xl.cfg: %s=\"%s\" is not an action xl knows", key, s);
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int build_devices(struct xl_cfg *c, libxl_domain_config *d, struct vmha_err *err)
{
    if (c->ndisks && !(d->disks = calloc((size_t)c->ndisks, sizeof(*d->disks))))
        return vmha_err_set(err, -ENOMEM, "out of memory");
    for (int i = 0; i < c->ndisks; i++) {
        int r = parse_disk(c, i, &d->disks[i], err);
        d->num_disks = i + 1;
        if (r < 0)
            return r;
    }
    if (c->nvifs && !(d->nics = calloc((size_t)c->nvifs, sizeof(*d->nics))))
        return vmha_err_set(err, -ENOMEM, "out of memory");
    for (int i = 0; i < c->nvifs; i++) {
        const char *spec = xlu_cfg_get_listitem(c->vifs, i);
        int r = parse_vif(spec ? spec : "", i, &d->nics[i], err);
        d->num_nics = i + 1;
        if (r < 0)
            return r;
    }
    return 0;
}

static int build_config(struct xl_cfg *c, libxl_domain_config *d, struct vmha_err *err)
{
    d->c_info.type = c->type;
    if (!(d->c_info.name = strdup(c->name)))
        return vmha_err_set(err, -ENOMEM, "out of memory");
    if (c->uuid)
        libxl_uuid_from_string(&d->c_info.uuid, c->uuid);
    else
        libxl_uuid_generate(&d->c_info.uuid);
    libxl_domain_build_info *b = &d->b_info;
    libxl_domain_build_info_init_type(b, c->type);
    b->max_memkb = (uint64_t)c->maxmem * 1024;
    b->target_memkb = (uint64_t)c->memory * 1024;
    b->max_vcpus = (int)c->maxvcpus;
    /* As libxl_bitmap_alloc does, without needing a context (dispose frees map). */
    b->avail_vcpus.size = (uint32_t)(c->maxvcpus + 7) / 8;
    if (!(b->avail_vcpus.map = calloc(b->avail_vcpus.size, 1)))
        return vmha_err_set(err, -ENOMEM, "out of memory");
    for (long i = 0; i < c->vcpus; i++)
        libxl_bitmap_set(&b->avail_vcpus, (int)i);
    hv_xl_set_kernel(b, dup_or_null(c->kernel), dup_or_null(c->ramdisk), TAKE_PTR(c->cmdline));
    int r;
    if ((r = set_action(c, "on_poweroff", LIBXL_ACTION_ON_SHUTDOWN_DESTROY, &d->on_poweroff, err)) <
            0 ||
        (r = set_action(c, "on_reboot", LIBXL_ACTION_ON_SHUTDOWN_RESTART, &d->on_reboot, err)) <
            0 ||
        (r = set_action(c, "on_crash", LIBXL_ACTION_ON_SHUTDOWN_DESTROY, &d->on_crash, err)) < 0)
        return r;
    return build_devices(c, d, err);
}

int hv_libxl_domain_config(const char *text, libxl_domain_config *ret, struct vmha_err *err)
{
    _cleanup_(xl_cfg_clear) struct xl_cfg c = {0};
    int r = xl_cfg_read(text, &c, err);
    if (r < 0)
        return r;
    libxl_domain_config d;
    libxl_domain_config_init(&d);
    if ((r = build_config(&c, &d, err)) < 0) {
        libxl_domain_config_dispose(&d);
        return r;
    }
    *ret = d;
    return 0;
}

int hv_libxl_config_from_domain(const libxl_domain_config *d, struct hv_guest_config *ret)
{
    struct hv_guest_config g = {0};
    g.name = dup_or_null(d->c_info.name);
    g.virt_type = strdup("xen");
    g.arch = strdup("x86_64");
    g.machine = strdup(libxl_domain_type_to_string(d->c_info.type));
    g.kernel = dup_or_null(d->b_info.kernel);
    g.initrd = dup_or_null(d->b_info.ramdisk);
    g.cmdline = dup_or_null(d->b_info.cmdline);
    snprintf(g.uuid, sizeof(g.uuid), LIBXL_UUID_FMT, LIBXL_UUID_BYTES(d->c_info.uuid));
    for (int i = 0; i < d->num_disks; i++)
        g.writable_disks = g.writable_disks || (d->disks[i].readwrite && !d->disks[i].is_cdrom);
    g.nics = d->num_nics > 0;
    if (!g.name || !g.virt_type || !g.arch || !g.machine) {
        hv_guest_config_clear(&g);
        return -ENOMEM;
    }
    *ret = g;
    return 0;
}

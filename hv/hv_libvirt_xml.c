/* Reading libvirt's XML documents (domain definitions, host capabilities) without a connection. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "hv_libvirt_private.h"
#include "vmha/cleanup.h"

VMHA_DEFINE_CLEANUP(xmlDocPtr, xmlFreeDoc)
VMHA_DEFINE_CLEANUP(xmlXPathContextPtr, xmlXPathFreeContext)
VMHA_DEFINE_CLEANUP(xmlXPathObjectPtr, xmlXPathFreeObject)

static int xml_parse(const char *text, const char *what, xmlDocPtr *ret, struct vmha_err *err)
{
    xmlDocPtr doc = xmlReadMemory(text, (int)strlen(text), what, NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc) {
        const xmlError *e = xmlGetLastError();
        char msg[256] = "parse error";
        if (e && e->message) {
            snprintf(msg, sizeof(msg), "line %d: %s", e->line, e->message);
            msg[strcspn(msg, "\n")] = '\0';
        }
        return vmha_err_set(err, -EINVAL, "%s is not well-formed XML (%s)", what, msg);
    }
    *ret = doc;
    return 0;
}

/* The string value of an XPath expression, NULL when empty or absent. */
static char *xpath_string(xmlXPathContextPtr ctx, const char *expr)
{
    _cleanup_(xmlXPathFreeObjectp) xmlXPathObjectPtr obj =
        xmlXPathEvalExpression((const xmlChar *)expr, ctx);
    if (!obj)
        return NULL;
    xmlChar *s = xmlXPathCastToString(obj);
    if (!s)
        return NULL;
    char *out = s[0] ? strdup((const char *)s) : NULL;
    xmlFree(s);
    return out;
}

/* libvirt's <memory>: a number in unit (KiB when none; k, M, G, T are powers of 1024,
 * KB, MB, GB, TB of 1000), into bytes. */
static int memory_bytes(const char *value, const char *unit, uint64_t *ret)
{
    static const struct {
        const char *name;
        uint64_t scale;
    } units[] = {{"", 1024},
                 {"b", 1},
                 {"bytes", 1},
                 {"KB", 1000},
                 {"k", 1024},
                 {"KiB", 1024},
                 {"MB", 1000000},
                 {"M", 1u << 20},
                 {"MiB", 1u << 20},
                 {"GB", 1000000000},
                 {"G", 1u << 30},
                 {"GiB", 1u << 30},
                 {"TB", 1000000000000ull},
                 {"T", 1ull << 40},
                 {"TiB", 1ull << 40}};
    uint64_t n = 0;
    if (vmha_parse_uint(value, UINT64_MAX, &n) < 0)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(unit ? unit : "", units[i].name) != 0)
            continue;
        if (n > UINT64_MAX / units[i].scale)
            return -ERANGE;
        *ret = n * units[i].scale;
        return 0;
    }
    return -EINVAL;
}

static int parse_uuid(const char *in, char out[37])
{
    /* libvirt accepts UUIDs with or without dashes; keep the canonical form. */
    char hex[33];
    size_t n = 0;
    for (const char *p = in; *p; p++) {
        if (*p == '-' || *p == ' ')
            continue;
        if (!strchr("0123456789abcdefABCDEF", *p) || n == 32)
            return -EINVAL;
        hex[n++] = (char)(*p | 0x20);
    }
    if (n != 32)
        return -EINVAL;
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
    return 0;
}

/* The writable disks, in the order of the XML. */
static int writable_disks(xmlXPathContextPtr ctx, struct hv_guest_config *c)
{
    static const char *const sel = "/domain/devices/disk[not(readonly) and "
                                   "(not(@device) or @device='disk' or @device='lun')]";
    _cleanup_(xmlXPathFreeObjectp) xmlXPathObjectPtr obj =
        xmlXPathEvalExpression((const xmlChar *)sel, ctx);
    if (!obj)
        return -ENOMEM;
    int n = obj->nodesetval ? obj->nodesetval->nodeNr : 0;
    c->writable_disks = n > 0;
    if (n == 0)
        return 0;
    if (!(c->disks = calloc((size_t)n, sizeof(*c->disks))))
        return -ENOMEM;
    for (int i = 0; i < n; i++) {
        struct hv_disk *d = &c->disks[c->ndisks++];
        ctx->node = obj->nodesetval->nodeTab[i];
        d->target = xpath_string(ctx, "string(target/@dev)");
        _cleanup_free_ char *type = xpath_string(ctx, "string(@type)");
        d->block = type && strcmp(type, "block") == 0;
        if (!type || strcmp(type, "file") == 0 || d->block)
            d->source =
                xpath_string(ctx, d->block ? "string(source/@dev)" : "string(source/@file)");
        d->format = xpath_string(ctx, "string(driver/@type)");
        _cleanup_free_ char *sh = xpath_string(ctx, "string(count(shareable))");
        d->shareable = sh && strcmp(sh, "0") != 0;
    }
    ctx->node = NULL;
    return 0;
}

/* What the NICs ask of QEMU: vhost-net (which QEMU's network filters cannot buffer) and
 * several queues. */
static void nic_facts(xmlXPathContextPtr ctx, struct hv_guest_config *c)
{
    bool kvm = c->virt_type && strcmp(c->virt_type, "kvm") == 0;
    _cleanup_free_ char *vhost =
        xpath_string(ctx, "string(count(/domain/devices/interface[model/@type='virtio' and "
                          "not(driver/@name='qemu')]))");
    c->vhost_nics = kvm && vhost && strcmp(vhost, "0") != 0;
    _cleanup_(xmlXPathFreeObjectp) xmlXPathObjectPtr obj =
        xmlXPathEvalExpression((const xmlChar *)"/domain/devices/interface/driver/@queues", ctx);
    for (int i = 0; obj && obj->nodesetval && i < obj->nodesetval->nodeNr; i++) {
        xmlChar *q = xmlNodeGetContent(obj->nodesetval->nodeTab[i]);
        uint64_t n = 0;
        if (q && vmha_parse_uint((const char *)q, 65536, &n) == 0 && n > c->nic_queues)
            c->nic_queues = (unsigned)n;
        xmlFree(q);
    }
}

int hv_libvirt_config_parse(const char *xml, struct hv_guest_config *ret, struct vmha_err *err)
{
    _cleanup_(xmlFreeDocp) xmlDocPtr doc = NULL;
    int r = xml_parse(xml, "the domain XML", &doc, err);
    if (r < 0)
        return r;
    xmlNodePtr root = xmlDocGetRootElement(doc);
    if (!root || strcmp((const char *)root->name, "domain") != 0)
        return vmha_err_set(err, -EINVAL, "the domain XML has no <domain> root element");
    _cleanup_(xmlXPathFreeContextp) xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
    if (!ctx)
        return vmha_err_set(err, -ENOMEM, "out of memory");

    struct hv_guest_config c = {0};
    c.name = xpath_string(ctx, "string(/domain/name)");
    if (!c.name)
        return vmha_err_set(err, -EINVAL, "the domain XML has no <name>");
    _cleanup_free_ char *uuid = xpath_string(ctx, "string(/domain/uuid)");
    if (uuid && parse_uuid(uuid, c.uuid) < 0) {
        hv_guest_config_clear(&c);
        return vmha_err_set(err, -EINVAL, "the domain XML has an invalid <uuid> '%s'", uuid);
    }
    c.virt_type = xpath_string(ctx, "string(/domain/@type)");
    c.arch = xpath_string(ctx, "string(/domain/os/type/@arch)");
    c.machine = xpath_string(ctx, "string(/domain/os/type/@machine)");
    c.kernel = xpath_string(ctx, "string(/domain/os/kernel)");
    c.initrd = xpath_string(ctx, "string(/domain/os/initrd)");
    c.cmdline = xpath_string(ctx, "string(/domain/os/cmdline)");
    c.loader = xpath_string(ctx, "string(/domain/os/loader)");
    c.nvram = xpath_string(ctx, "string(/domain/os/nvram)");
    c.nvram_template = xpath_string(ctx, "string(/domain/os/nvram/@template)");
    if (writable_disks(ctx, &c) < 0) {
        hv_guest_config_clear(&c);
        return vmha_err_set(err, -ENOMEM, "out of memory");
    }
    _cleanup_free_ char *nics = xpath_string(ctx, "string(count(/domain/devices/interface))");
    c.nics = nics && strcmp(nics, "0") != 0;
    nic_facts(ctx, &c);
    _cleanup_free_ char *shared =
        xpath_string(ctx, "string(count(/domain/memoryBacking[source/@type='file' and "
                          "access/@mode='shared']) - count(/domain/cpu/numa/cell))");
    c.shared_file_memory = shared && strcmp(shared, "1") == 0;
    _cleanup_free_ char *mem = xpath_string(ctx, "string(/domain/memory)");
    _cleanup_free_ char *unit = xpath_string(ctx, "string(/domain/memory/@unit)");
    if (mem && mem[0] && memory_bytes(mem, unit, &c.memory) < 0) {
        hv_guest_config_clear(&c);
        return vmha_err_set(err, -EINVAL, "the domain XML's <memory> '%s %s' is not a size", mem,
                            unit ? unit : "");
    }
    *ret = c;
    return 0;
}

static int strv_add_unique(char ***v, size_t *n, const char *s)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*v)[i], s) == 0)
            return 0;
    char **nv = realloc(*v, (*n + 2) * sizeof(char *));
    if (!nv)
        return -ENOMEM;
    *v = nv;
    if (!(nv[*n] = strdup(s)))
        return -ENOMEM;
    nv[++*n] = NULL;
    return 0;
}

int hv_libvirt_machines_from_caps(const char *xml, const char *arch, char ***ret,
                                  struct vmha_err *err)
{
    _cleanup_(xmlFreeDocp) xmlDocPtr doc = NULL;
    int r = xml_parse(xml, "the capabilities XML", &doc, err);
    if (r < 0)
        return r;
    _cleanup_(xmlXPathFreeContextp) xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
    _cleanup_free_ char *host_arch =
        ctx && !arch ? xpath_string(ctx, "string(/capabilities/host/cpu/arch)") : NULL;
    if (!arch)
        arch = host_arch ? host_arch : "x86_64";
    char expr[256];
    snprintf(expr, sizeof(expr), "/capabilities/guest[os_type='hvm']/arch[@name='%s']//machine",
             arch);
    _cleanup_(xmlXPathFreeObjectp) xmlXPathObjectPtr obj =
        ctx ? xmlXPathEvalExpression((const xmlChar *)expr, ctx) : NULL;
    if (!obj)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    char **v = calloc(1, sizeof(char *));
    size_t n = 0;
    r = v ? 0 : -ENOMEM;
    for (int i = 0; r == 0 && obj->nodesetval && i < obj->nodesetval->nodeNr; i++) {
        xmlNodePtr node = obj->nodesetval->nodeTab[i];
        xmlChar *text = xmlNodeGetContent(node);
        xmlChar *canon = xmlGetProp(node, (const xmlChar *)"canonical");
        if (text && text[0])
            r = strv_add_unique(&v, &n, (const char *)text);
        if (r == 0 && canon && canon[0])
            r = strv_add_unique(&v, &n, (const char *)canon);
        xmlFree(text);
        xmlFree(canon);
    }
    if (r < 0) {
        for (size_t i = 0; v && i < n; i++)
            free(v[i]);
        free(v);
        return vmha_err_set(err, r, "out of memory");
    }
    *ret = v;
    return 0;
}

/* The first element child of parent named name, or NULL. */
static xmlNodePtr child_named(xmlNodePtr parent, const char *name)
{
    for (xmlNodePtr c = parent ? parent->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && xmlStrEqual(c->name, (const xmlChar *)name))
            return c;
    return NULL;
}

/* Sets <os><name>value</name> (replacing its text), creating it after <type> if absent. */
static void set_os_text(xmlNodePtr os, const char *name, const char *value)
{
    xmlNodePtr n = child_named(os, name);
    if (!n) {
        n = xmlNewNode(NULL, (const xmlChar *)name);
        xmlNodePtr type = child_named(os, "type");
        if (type)
            xmlAddNextSibling(type, n);
        else
            xmlAddChild(os, n);
    }
    xmlNodeSetContent(n, NULL);
    xmlNodeAddContent(n, (const xmlChar *)value);
}

/* Drops every <boot> element under node (os-level and per-device boot order alike). */
static void drop_boot(xmlNodePtr node)
{
    for (xmlNodePtr c = node->children, next; c; c = next) {
        next = c->next;
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (xmlStrEqual(c->name, (const xmlChar *)"boot")) {
            xmlUnlinkNode(c);
            xmlFreeNode(c);
        } else {
            drop_boot(c);
        }
    }
}

/* <uuid> set to uuid (nothing when uuid is NULL or ""). */
static void set_uuid(xmlNodePtr dom, const char *uuid)
{
    if (!uuid || !uuid[0])
        return;
    xmlNodePtr u = child_named(dom, "uuid");
    if (!u) {
        u = xmlNewNode(NULL, (const xmlChar *)"uuid");
        xmlNodePtr name = child_named(dom, "name");
        name ? (void)xmlAddNextSibling(name, u) : (void)xmlAddChild(dom, u);
    }
    xmlNodeSetContent(u, (const xmlChar *)uuid);
}

static int doc_text(xmlDocPtr doc, char **ret, struct vmha_err *err)
{
    xmlChar *out = NULL;
    int len = 0;
    xmlDocDumpMemory(doc, &out, &len);
    if (!out)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    *ret = strdup((const char *)out);
    xmlFree(out);
    return *ret ? 0 : vmha_err_set(err, -ENOMEM, "out of memory");
}

int hv_libvirt_restore_config(const char *config_text, const char *image_xml, char **ret,
                              struct vmha_err *err)
{
    struct hv_guest_config want = {0}, got = {0};
    int r = hv_libvirt_config_parse(config_text, &want, err);
    if (r == 0 && (r = hv_libvirt_config_parse(image_xml, &got, err)) < 0)
        vmha_err_set(err, r, "the checkpoint's own XML is unreadable: %s", err ? err->msg : "");
    if (r == 0 && strcmp(want.name, got.name) != 0)
        r = vmha_err_set(err, -EPERM, "the checkpoint is of guest '%s', not of %s", got.name,
                         want.name);
    else if (r == 0 && (!got.uuid[0] || (want.uuid[0] && strcmp(want.uuid, got.uuid) != 0)))
        r = vmha_err_set(err, -EPERM, "the checkpoint is of another guest (UUID %s, not %s)",
                         got.uuid[0] ? got.uuid : "none", want.uuid);
    _cleanup_(xmlFreeDocp) xmlDocPtr doc = NULL;
    if (r == 0)
        r = xml_parse(config_text, "the guest's config", &doc, err);
    if (r == 0) {
        set_uuid(xmlDocGetRootElement(doc), got.uuid);
        r = doc_text(doc, ret, err);
    }
    hv_guest_config_clear(&want);
    hv_guest_config_clear(&got);
    return r;
}

int hv_libvirt_oneoff_config(const char *config_text, const struct hv_boot_override *o,
                             const char *uuid, char **ret, struct vmha_err *err)
{
    _cleanup_(xmlFreeDocp) xmlDocPtr doc = NULL;
    int r = xml_parse(config_text, "the guest's config", &doc, err);
    if (r < 0)
        return r;
    xmlNodePtr dom = xmlDocGetRootElement(doc);
    xmlNodePtr os = child_named(dom, "os");
    if (!dom || !xmlStrEqual(dom->name, (const xmlChar *)"domain") || !os)
        return vmha_err_set(err, -EINVAL, "the guest's config has no <domain><os>");
    set_uuid(dom, uuid);
    /* Each new element goes right after <type>: add them last to first. */
    if (o->cmdline)
        set_os_text(os, "cmdline", o->cmdline);
    if (o->initrd)
        set_os_text(os, "initrd", o->initrd);
    if (o->kernel)
        set_os_text(os, "kernel", o->kernel);
    if (o->media) {
        /* The medium boots first: per-device boot order, which excludes <os><boot>. */
        drop_boot(dom);
        xmlNodePtr devices = child_named(dom, "devices");
        if (!devices)
            devices = xmlNewChild(dom, NULL, (const xmlChar *)"devices", NULL);
        xmlNodePtr cd = xmlNewChild(devices, NULL, (const xmlChar *)"disk", NULL);
        xmlNewProp(cd, (const xmlChar *)"type", (const xmlChar *)"file");
        xmlNewProp(cd, (const xmlChar *)"device", (const xmlChar *)"cdrom");
        xmlNodePtr src = xmlNewChild(cd, NULL, (const xmlChar *)"source", NULL);
        xmlNewProp(src, (const xmlChar *)"file", (const xmlChar *)o->media);
        /* q35 has no IDE, i440fx no SATA controller by default. */
        xmlChar *machine = xmlGetProp(child_named(os, "type"), (const xmlChar *)"machine");
        bool q35 = machine && strstr((const char *)machine, "q35");
        xmlFree(machine);
        xmlNodePtr tgt = xmlNewChild(cd, NULL, (const xmlChar *)"target", NULL);
        xmlNewProp(tgt, (const xmlChar *)"dev", (const xmlChar *)(q35 ? "sdz" : "hdd"));
        xmlNewProp(tgt, (const xmlChar *)"bus", (const xmlChar *)(q35 ? "sata" : "ide"));
        xmlNewChild(cd, NULL, (const xmlChar *)"readonly", NULL);
        xmlNodePtr b = xmlNewChild(cd, NULL, (const xmlChar *)"boot", NULL);
        xmlNewProp(b, (const xmlChar *)"order", (const xmlChar *)"1");
        for (xmlNodePtr d = devices->children; d; d = d->next) {
            if (d->type != XML_ELEMENT_NODE || !xmlStrEqual(d->name, (const xmlChar *)"disk"))
                continue;
            xmlChar *dev = xmlGetProp(d, (const xmlChar *)"device");
            bool disk = !dev || xmlStrEqual(dev, (const xmlChar *)"disk");
            xmlFree(dev);
            if (disk) {
                xmlNodePtr b2 = xmlNewChild(d, NULL, (const xmlChar *)"boot", NULL);
                xmlNewProp(b2, (const xmlChar *)"order", (const xmlChar *)"2");
                break;
            }
        }
    }
    /* An installer that reboots at the end must end the install boot, not start it over. */
    xmlNodePtr reboot = child_named(dom, "on_reboot");
    if (!reboot)
        reboot = xmlNewChild(dom, NULL, (const xmlChar *)"on_reboot", NULL);
    xmlNodeSetContent(reboot, (const xmlChar *)"destroy");
    xmlChar *out = NULL;
    int len = 0;
    xmlDocDumpFormatMemory(doc, &out, &len, 0);
    if (!out)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    *ret = strdup((const char *)out);
    xmlFree(out);
    return *ret ? 0 : vmha_err_set(err, -ENOMEM, "out of memory");
}

int hv_libvirt_mirror_ready_in(const char *xml, const char *target)
{
    if (strpbrk(target, "'\""))
        return -EINVAL;
    _cleanup_(xmlFreeDocp) xmlDocPtr doc = NULL;
    if (xml_parse(xml, "the domain XML", &doc, NULL) < 0)
        return -EINVAL;
    _cleanup_(xmlXPathFreeContextp) xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
    if (!ctx)
        return -ENOMEM;
    char expr[256];
    snprintf(expr, sizeof(expr), "string(/domain/devices/disk[target/@dev='%s']/mirror/@ready)",
             target);
    _cleanup_free_ char *ready = xpath_string(ctx, expr);
    snprintf(expr, sizeof(expr), "count(/domain/devices/disk[target/@dev='%s']/mirror)", target);
    _cleanup_free_ char *n = xpath_string(ctx, expr);
    if (!n || strcmp(n, "0") == 0)
        return -ENOENT;
    return ready && strcmp(ready, "yes") == 0;
}

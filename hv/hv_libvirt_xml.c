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
    snprintf(expr, sizeof(expr),
             "/capabilities/guest[os_type='hvm']/arch[@name='%s']//machine", arch);
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

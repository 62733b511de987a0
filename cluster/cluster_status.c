/* Where resources run, computed from the CIB the way crm_mon does (libpe_status). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <crm/cib.h>
#include <crm/common/xml.h>
#include <crm/crm.h>
#include <crm/pengine/status.h>

#include "vmha/cleanup.h"
#include "vmha/cluster.h"
#include "cluster_private.h"

void cluster_resource_states_free(struct cluster_rsc_state *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(s[i].id);
        free(s[i].agent);
        for (char **p = s[i].nodes; p && *p; p++)
            free(*p);
        free(s[i].nodes);
    }
    free(s);
}

struct collect {
    struct cluster_rsc_state *list;
    size_t n;
    int err;
};

static void add_primitive(pe_resource_t *rsc, struct collect *c)
{
    struct cluster_rsc_state *m = realloc(c->list, (c->n + 1) * sizeof(*m));
    if (!m) {
        c->err = -ENOMEM;
        return;
    }
    c->list = m;
    struct cluster_rsc_state *s = &m[c->n++];
    memset(s, 0, sizeof(*s));
    const char *cls = crm_element_value(rsc->xml, "class");
    const char *prov = crm_element_value(rsc->xml, "provider");
    const char *type = crm_element_value(rsc->xml, "type");
    s->id = strdup(rsc->id);
    if (asprintf(&s->agent, "%s:%s%s%s", cls ? cls : "", prov ? prov : "", prov ? ":" : "",
                 type ? type : "") < 0)
        s->agent = NULL;
    snprintf(s->role, sizeof(s->role), "%s", role2text(rsc->role));
    s->failed = rsc->flags & pe_rsc_failed;
    s->managed = rsc->flags & pe_rsc_managed;
    size_t k = g_list_length(rsc->running_on), i = 0;
    s->nodes = calloc(k + 1, sizeof(*s->nodes));
    for (GList *l = rsc->running_on; s->nodes && l; l = l->next)
        s->nodes[i++] = strdup(((pe_node_t *)l->data)->details->uname);
    if (!s->id || !s->agent || !s->nodes)
        c->err = -ENOMEM;
}

static void walk(GList *resources, struct collect *c)
{
    for (GList *l = resources; l && !c->err; l = l->next) {
        pe_resource_t *rsc = l->data;
        if (rsc->children)
            walk(rsc->children, c);
        else
            add_primitive(rsc, c);
    }
}


int cluster_resource_states(const struct vmha_deadline *dl, struct cluster_rsc_state **ret,
                            size_t *n, struct vmha_err *err)
{
    *ret = NULL;
    *n = 0;
    xmlNode *xml = NULL;
    int rc = cluster_query_cib(dl, &xml, err);
    if (rc < 0)
        return rc;
    pe_working_set_t *ws = pe_new_working_set();
    if (!ws) {
        free_xml(xml);
        return vmha_err_set(err, -ENOMEM, "out of memory");
    }
    ws->input = xml; /* the working set frees it */
    cluster_status(ws);
    struct collect c = {0};
    walk(ws->resources, &c);
    pe_free_working_set(ws);
    if (c.err) {
        cluster_resource_states_free(c.list, c.n);
        return vmha_err_set(err, c.err, "out of memory reading the cluster's state");
    }
    *ret = c.list;
    *n = c.n;
    return 0;
}

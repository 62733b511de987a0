/* The agent's meta-data (OCF 1.1), rendered from the parameter and action tables. */
#include <errno.h>
#include <string.h>

#include "agent_private.h"

static const char *const type_names[] = {
    [OCF_PT_STRING] = "string",  [OCF_PT_BOOLEAN] = "boolean", [OCF_PT_INTEGER] = "integer",
    [OCF_PT_SECOND] = "integer", [OCF_PT_SELECT] = "string",
};

static void put_escaped(FILE *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '&':
            fputs("&amp;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        default:
            fputc(*s, out);
        }
    }
}

static void put_param(FILE *out, const struct ocf_param_desc *d)
{
    fprintf(out, "<parameter name=\"%s\" unique=\"%d\" required=\"%d\"%s>\n", d->name, d->unique,
            d->required, d->reloadable ? " reloadable=\"1\"" : "");
    fputs("<longdesc lang=\"en\">\n", out);
    put_escaped(out, d->longdesc);
    fputs("\n</longdesc>\n<shortdesc lang=\"en\">", out);
    put_escaped(out, d->shortdesc);
    /* Durations are rendered as integer seconds and choices as strings: "second", "time" and
     * "select" are each missing from one of the schemas tools validate against.
     * Choices are listed in longdesc and checked by the agent: ra-api-1.dtd's content element
     * cannot hold <option> children, and ocf-tester validates against it. */
    fprintf(out, "</shortdesc>\n<content type=\"%s\"", type_names[d->type]);
    if (d->def) {
        fputs(" default=\"", out);
        put_escaped(out, d->def);
        fputc('"', out);
    }
    fputs(" />\n</parameter>\n\n", out);
}

int ocf_metadata_print(FILE *out)
{
    fputs("<?xml version=\"1.0\"?>\n"
          /* ra-api-1.dtd predates OCF 1.1: declare its additions so that DTD-validating
           * tools (ocf-tester) accept what Pacemaker 2.1, crm shell and pcs read. */
          "<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\" [\n"
          "<!ATTLIST parameter reloadable (1|0) \"0\">\n"
          "<!ATTLIST action name CDATA #REQUIRED>\n"
          "]>\n"
          "<resource-agent name=\"guest\" version=\"" VMHA_VERSION "\">\n"
          "<version>1.1</version>\n\n"
          "<longdesc lang=\"en\">\n"
          "Manages a virtual machine through the hypervisor's API (libvirt): start, graceful "
          "stop with escalation to destroy before the timeout, monitor, and live migration. "
          "The agent never reports a running guest as stopped: it finds the guest by name "
          "even when its configuration cannot be read, and every hypervisor call is bounded "
          "by the operation's timeout, so a hung libvirtd fails an operation instead of "
          "hanging it. With replicate=true, as a promotable clone, it keeps the guest "
          "fault-tolerant: the unpromoted instance holds a continuously refreshed checkpoint "
          "of the guest and promotion resumes it from there.\n"
          "</longdesc>\n"
          "<shortdesc lang=\"en\">Manages a virtual machine (vmha)</shortdesc>\n\n"
          "<parameters>\n",
          out);
    for (size_t i = 0; i < ocf_param_count; i++)
        put_param(out, &ocf_param_table[i]);
    fputs("</parameters>\n\n<actions>\n", out);
    static const char *const lines[] = {
        "<action name=\"start\" timeout=\"90s\" />",
        "<action name=\"stop\" timeout=\"90s\" />",
        "<action name=\"monitor\" depth=\"0\" timeout=\"30s\" interval=\"10s\" />",
        "<action name=\"monitor\" depth=\"0\" timeout=\"30s\" interval=\"10s\" "
        "role=\"Promoted\" />",
        "<action name=\"monitor\" depth=\"0\" timeout=\"30s\" interval=\"11s\" "
        "role=\"Unpromoted\" />",
        "<action name=\"promote\" timeout=\"90s\" />",
        "<action name=\"demote\" timeout=\"90s\" />",
        "<action name=\"notify\" timeout=\"20s\" />",
        "<action name=\"migrate_to\" timeout=\"120s\" />",
        "<action name=\"migrate_from\" timeout=\"60s\" />",
        "<action name=\"reload-agent\" timeout=\"10s\" />",
        "<action name=\"meta-data\" timeout=\"5s\" />",
        "<action name=\"validate-all\" timeout=\"10s\" />",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        fprintf(out, "%s\n", lines[i]);
    fputs("</actions>\n</resource-agent>\n", out);
    return ferror(out) ? -EIO : 0;
}

/* Logging: Pacemaker's libcrmcommon under the cluster, plain stderr by hand. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <crm/common/logging.h>
#include <crm/crm.h>

#include "vmha/cluster.h"

static bool use_pacemaker;
static const char *log_entity = "vmha";

void cluster_log_init(const char *entity, bool via_pacemaker)
{
    log_entity = entity;
    use_pacemaker = via_pacemaker;
    if (via_pacemaker) {
        char *argv[] = {(char *)entity, NULL};
        crm_log_init(entity, LOG_INFO, FALSE, FALSE, 1, argv, TRUE);
    }
}

void cluster_log(int priority, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (!use_pacemaker) {
        static const char *const names[] = {"emerg",   "alert",  "crit", "error",
                                            "warning", "notice", "info", "debug"};
        if (priority <= LOG_INFO || getenv("VMHA_DEBUG"))
            fprintf(stderr, "%s: %s: %s\n", log_entity, names[priority & 7], line);
        return;
    }
    switch (priority) {
    case LOG_EMERG:
    case LOG_ALERT:
    case LOG_CRIT:
    case LOG_ERR:
        crm_err("%s", line);
        break;
    case LOG_WARNING:
        crm_warn("%s", line);
        break;
    case LOG_NOTICE:
        crm_notice("%s", line);
        break;
    case LOG_INFO:
        crm_info("%s", line);
        break;
    default:
        crm_debug("%s", line);
        break;
    }
}

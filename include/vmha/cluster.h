/* The only door to Pacemaker: logging through libcrmcommon now; node attributes and CIB
 * reads as later issues need them. */
#pragma once

#include <stdbool.h>
#include <syslog.h>

/* Logs through Pacemaker's logging when the cluster runs us (so lines land in the
 * cluster's log with everything else), to stderr when run by hand. */
void cluster_log_init(const char *entity, bool via_pacemaker);
void cluster_log(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

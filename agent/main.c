/* ocf:vmha:guest — entry point: pick the action, parse parameters once, bound the action by
 * its timeout, and turn the result into an exit code with at most one exit reason. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "agent_private.h"
#include "vmha/cluster.h"

extern char **environ;

static void usage(FILE *out)
{
    fputs("usage: guest {start|stop|monitor|migrate_to|migrate_from|promote|demote|notify|"
          "validate-all|reload-agent|meta-data}\n"
          "ocf:vmha:guest is an OCF resource agent run by Pacemaker; its parameters come as\n"
          "OCF_RESKEY_<name> environment variables (see 'guest meta-data').\n",
          out);
}

/* The environment with only the parameters that find the guest and say how it runs. */
static char **locating_env(void)
{
    static const char *const keep[] = {"OCF_RESKEY_CRM_meta_",
                                       "OCF_RESKEY_config=", "OCF_RESKEY_name=",
                                       "OCF_RESKEY_hypervisor=", "OCF_RESKEY_replicate="};
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 1, sizeof(*env));
    size_t k = 0;
    for (size_t i = 0; env && i < n; i++) {
        bool ok = strncmp(environ[i], "OCF_RESKEY_", 11) != 0;
        for (size_t j = 0; !ok && j < sizeof(keep) / sizeof(keep[0]); j++)
            ok = strncmp(environ[i], keep[j], strlen(keep[j])) == 0;
        if (ok)
            env[k++] = environ[i];
    }
    return env;
}

static int run(const struct ocf_action *a)
{
    struct ocf_params p = {0};
    struct vmha_err why = {0};
    if (ocf_params_parse(environ, &p, &why) < 0) {
        /* A stop or a probe must still answer for the guest: a stop that fails gets the node
         * fenced, over a typo. With only what finds the guest, they do; anything else fails. */
        struct vmha_err again = {0};
        char **env =
            strcmp(a->name, "stop") == 0 || strcmp(a->name, "monitor") == 0 ? locating_env() : NULL;
        int r = env ? ocf_params_parse(env, &p, &again) : -EINVAL;
        free(env);
        if (r < 0) {
            fprintf(stderr, "ocf-exit-reason:%s\n", vmha_err_msg(&why));
            return OCF_ERR_CONFIGURED;
        }
        cluster_log_init("vmha-guest", p.run_by_cluster);
        cluster_log(LOG_WARNING, "%s with the guest's other parameters at their defaults: %s",
                    a->name, vmha_err_msg(&why));
        why = (struct vmha_err){0};
    }
    cluster_log_init("vmha-guest", p.run_by_cluster);
    uint64_t timeout = p.timeout_ms ? p.timeout_ms : a->default_timeout_ms;
    /* Finish (or give up) a little before Pacemaker's own timeout would kill us. */
    uint64_t margin = timeout / 10;
    margin = margin < 500 ? 500 : margin > 3000 ? 3000 : margin;
    margin = margin > timeout / 2 ? timeout / 2 : margin;
    /* Pacemaker's clock started at exec: starting up (loading libraries, a sanitizer's set-up,
     * a slow host) spends the same timeout. Capped, so an odd clock cannot eat the action. */
    uint64_t spent = vmha_process_age_ms();
    spent = spent > timeout / 2 ? timeout / 2 : spent;
    struct vmha_deadline dl = vmha_deadline_in(timeout - margin - spent);
    ocf_watchdog_arm(a->name, timeout, timeout - margin / 2 - spent);
    a = ocf_action_for(a, &p); /* the replicated guest's table, or the plain one's */
    int rc = a->run(&p, &dl, &why);
    bool probe_answer = (rc == OCF_NOT_RUNNING || rc == OCF_RUNNING_PROMOTED) &&
                        (strcmp(a->name, "monitor") == 0 || strcmp(a->name, "status") == 0);
    if (rc != OCF_SUCCESS && !probe_answer) {
        const char *msg = why.code || why.msg[0] ? vmha_err_msg(&why) : "unknown error";
        cluster_log(LOG_ERR, "%s failed: %s", a->name, msg);
        fprintf(stderr, "ocf-exit-reason:%s\n", msg);
    }
    ocf_params_clear(&p);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        usage(stderr);
        return OCF_ERR_ARGS;
    }
    if (strcmp(argv[1], "serve") == 0) {
        /* Not an OCF action: the warm agent server the front end starts (ocf_server.c). */
        struct vmha_err err = {0};
        const char *rundir = getenv("VMHA_RUNDIR") ? getenv("VMHA_RUNDIR") : VMHA_RUNDIR;
        if (ocf_serve(rundir, &err) < 0) {
            fprintf(stderr, "vmha-guest: %s\n", vmha_err_msg(&err));
            return OCF_ERR_GENERIC;
        }
        return OCF_SUCCESS;
    }
    if (strcmp(argv[1], "usage") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return OCF_SUCCESS;
    }
    const struct ocf_action *a = ocf_action_find(argv[1]);
    if (!a) {
        fprintf(stderr, "ocf-exit-reason:action '%s' is not implemented\n", argv[1]);
        usage(stderr);
        return OCF_ERR_UNIMPLEMENTED;
    }
    if (!a->run)
        return ocf_metadata_print(stdout) < 0 ? OCF_ERR_GENERIC : OCF_SUCCESS;
    return run(a);
}

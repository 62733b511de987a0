/* Fuzzes the agent's parameter parser (agent/ocf_params.c): ocf_params_parse over an
 * environment made of the input's NUL-separated KEY=VALUE entries, as the agent server builds
 * one from a request, then what the agent derives from accepted parameters: the migration
 * target's URI and the replication address expanded for a node, the guest's store directory. */
#include <stdlib.h>
#include <string.h>

#include "agent_private.h"
#include "fuzz.h"

#define ENV_MAX 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (!buf)
        abort();
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *env[ENV_MAX];
    size_t n = 0;
    for (char *e = buf; e < buf + size && n < ENV_MAX - 1; e += strlen(e) + 1)
        env[n++] = e;
    env[n] = NULL;

    struct ocf_params p;
    struct vmha_err err = {0};
    if (ocf_params_parse(env, &p, &err) == 0) {
        static const char *const nodes[] = {"node1", "%n%%n", ""};
        for (size_t i = 0; i < 3; i++) {
            char *s = NULL;
            if (ocf_migration_dest_uri(&p, nodes[i], &s, &err) == 0)
                free(s);
            if (ocf_expand_template(p.replication_address, nodes[i], &s) == 0)
                free(s);
        }
        ocf_params_clear(&p);
    }
    free(buf);
    return 0;
}

/* Fuzzes the warm monitor server's request handling (agent/ocf_server.c): a request read off
 * the unix socket (read_request: NUL-separated entries up to an empty one), split into an
 * environment, its DEADLINE_MS entry, the parameters parsed, the answer formatted. These are
 * static functions of a file that also runs the socket server; the file is included here,
 * unchanged, to reach serve_one with a socketpair and a stand-in for the monitor action (the
 * real one talks to the hypervisor). Nothing else of the agent's server runs. */
#include <stdio.h>
#include <sys/socket.h>

/* The stand-in monitor answers for every guest, replicated or not (a replicated guest's real
 * one would reach for a hypervisor). */
#include "agent_private.h"
#define ocf_action_for(a, p) (a)
#include "../../agent/ocf_server.c"
#include "fuzz.h"

/* The stand-in monitor: fails with a reason made from the parameters, so the answer's
 * formatting sees long and odd reasons. */
static enum ocf_rc fake_monitor(const struct ocf_params *p, const struct vmha_deadline *dl,
                                struct vmha_err *why)
{
    (void)dl;
    if (!p->name[0])
        return OCF_SUCCESS;
    vmha_err_set(why, -EINVAL, "guest %s on %s: %s", p->name, p->config, p->hypervisor);
    return OCF_ERR_GENERIC;
}

static const struct ocf_action monitor = {.name = "monitor", .run = fake_monitor};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool quiet;
    if (!quiet) {
        /* serve_one logs every failed request through cluster_log to stderr: thousands of
         * lines a second. Sanitizers and libFuzzer write their reports to fd 2 themselves. */
        FILE *null = fopen("/dev/null", "we");
        if (!null)
            abort();
        stderr = null;
        quiet = true;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    /* The server reads at most REQUEST_MAX; a client may send more, unread. */
    size_t n = size < REQUEST_MAX + 1 ? size : REQUEST_MAX + 1;
    if (n && write(sv[0], data, n) != (ssize_t)n)
        abort();
    shutdown(sv[0], SHUT_WR);
    serve_one(sv[1], &monitor);
    close(sv[1]);
    char answer[1024];
    while (read(sv[0], answer, sizeof(answer)) > 0)
        ;
    close(sv[0]);
    return 0;
}

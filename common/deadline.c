/* Deadlines on the monotonic clock: every wait in vmha is bounded by the action's timeout. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmha/common.h"

uint64_t vmha_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct vmha_deadline vmha_deadline_in(uint64_t ms)
{
    return (struct vmha_deadline){.at_ms = vmha_now_ms() + ms};
}

uint64_t vmha_deadline_left_ms(const struct vmha_deadline *d)
{
    uint64_t now = vmha_now_ms();
    return d->at_ms > now ? d->at_ms - now : 0;
}

bool vmha_deadline_passed(const struct vmha_deadline *d)
{
    return vmha_deadline_left_ms(d) == 0;
}

struct vmha_deadline vmha_deadline_before(const struct vmha_deadline *d, uint64_t reserve_ms)
{
    uint64_t now = vmha_now_ms();
    uint64_t at = d->at_ms > reserve_ms ? d->at_ms - reserve_ms : 0;
    return (struct vmha_deadline){.at_ms = at > now ? at : now};
}

struct vmha_deadline vmha_deadline_min(struct vmha_deadline a, struct vmha_deadline b)
{
    return a.at_ms < b.at_ms ? a : b;
}

bool vmha_deadline_sleep(const struct vmha_deadline *d, uint64_t ms)
{
    uint64_t left = vmha_deadline_left_ms(d);
    if (left == 0)
        return false;
    if (ms > left)
        ms = left;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    return true;
}

uint64_t vmha_process_age_ms(void)
{
    /* starttime (field 22 of /proc/self/stat) counts clock ticks since boot, as /proc/uptime
     * counts seconds; the command name before it may hold spaces, so skip past its ')'. */
    char stat[1024], up[64];
    FILE *f = fopen("/proc/self/stat", "re");
    size_t n = f ? fread(stat, 1, sizeof(stat) - 1, f) : 0;
    if (f)
        fclose(f);
    stat[n] = 0;
    f = fopen("/proc/uptime", "re");
    bool got_up = f && fgets(up, sizeof(up), f);
    if (f)
        fclose(f);
    const char *p = strrchr(stat, ')');
    long hz = sysconf(_SC_CLK_TCK);
    if (!p || !got_up || hz <= 0)
        return 0;
    unsigned long long start = 0;
    /* After ')': state is field 3, so starttime is the 20th word. */
    for (int field = 3; field <= 22 && p; field++)
        p = strchr(p + 1, ' ');
    if (!p || sscanf(p + 1, "%llu", &start) != 1)
        return 0;
    double uptime = strtod(up, NULL);
    double age = uptime * 1000.0 - (double)start * 1000.0 / (double)hz;
    return age > 0 ? (uint64_t)age : 0;
}

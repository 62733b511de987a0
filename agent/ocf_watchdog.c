/* The last line of defence against a hung call: when an action runs out of time, say what it
 * was doing and exit, so Pacemaker sees a failed operation rather than a timed-out one. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "agent_private.h"

static char prefix[160];
static char step[256] = "starting";

void ocf_step(const char *fmt, ...)
{
    char buf[sizeof(step)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    /* The signal handler reads step: never let it see half a sentence. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGALRM);
    sigprocmask(SIG_BLOCK, &block, &old);
    memcpy(step, buf, sizeof(step));
    sigprocmask(SIG_SETMASK, &old, NULL);
}

static void put(const char *s)
{
    ssize_t ignored = write(STDERR_FILENO, s, strlen(s));
    (void)ignored;
}

static void on_alarm(int sig)
{
    (void)sig;
    put(prefix);
    put(step);
    put("\n");
    _exit(OCF_ERR_GENERIC);
}

void ocf_watchdog_arm(const char *action, uint64_t timeout_ms, uint64_t fire_ms)
{
    snprintf(prefix, sizeof(prefix), "ocf-exit-reason:%s gave up before its %llu ms timeout while ",
             action, (unsigned long long)timeout_ms);
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {.it_value = {.tv_sec = (time_t)(fire_ms / 1000),
                                        .tv_usec = (suseconds_t)(fire_ms % 1000) * 1000}};
    if (fire_ms == 0)
        it.it_value.tv_usec = 1;
    setitimer(ITIMER_REAL, &it, NULL);
}

/* What the replicator's files share. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "vmha/remus.h"

struct remus_ctx {
    const char *guest, *dir, *node; /* node: this node's cluster name */
    const char *uri;                /* send: the hypervisor */
    const char *listen;             /* receive: address:port */
    uint64_t interval_ms, timeout_ms;
    FILE *stats; /* send --stats FILE: one line per committed epoch, for bench/ */
    struct remus_status st;
};

extern volatile sig_atomic_t remus_stop_requested, remus_demote_requested;

int remus_send(struct remus_ctx *x);
int remus_receive(struct remus_ctx *x);

/* Writes the status file (a failure to is logged, not fatal). */
void remus_publish(struct remus_ctx *x);
/* Records err as the replicator's final state "failed" and returns 1. */
int remus_fail(struct remus_ctx *x, const struct vmha_err *err);
/* Keepalive and TCP_USER_TIMEOUT: a peer that vanishes without a word is noticed. */
void remus_tune_socket(int fd, uint64_t timeout_ms);

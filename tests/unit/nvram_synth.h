/* Synthetic OVMF variable stores of any size for nvram_test and bench/nvram_bench, and the
 * liveness pass boot/nvram.c had until it sorted (quadratic), kept as the oracle the new one
 * must agree with and as the benchmark's baseline. Header-only: static inline functions. */
#pragma once

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmha/common.h"
#include "vmha/nvram.h"

/* One record to write: its variable (name, GUID) and state. */
struct synth_rec {
    char name[32];
    const char *guid; /* one of synth_guids */
    uint8_t state;
};

static const char *const synth_guids[] = {
    NVRAM_GLOBAL_GUID,
    "d719b2cb-3d3a-4596-a3bc-dad00e67656f",
    "4c19049f-4137-4dd3-9c10-8b97a83ffdfa",
};

static const uint8_t synth_guid_bytes[][16] = {
    {0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b,
     0x8c},
    {0xcb, 0xb2, 0x19, 0xd7, 0x3a, 0x3d, 0x96, 0x45, 0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65,
     0x6f},
    {0x9f, 0x04, 0x19, 0x4c, 0x37, 0x41, 0xd3, 0x4d, 0x9c, 0x10, 0x8b, 0x97, 0xa8, 0x3f, 0xfd,
     0xfa},
};

/* fff12b8d-7696-4c8b-a985-2747075b4f50 and aaf32c78-947b-439a-a180-2e144ec37792 */
static const uint8_t synth_fv_guid[16] = {0x8d, 0x2b, 0xf1, 0xff, 0x96, 0x76, 0x8b, 0x4c,
                                          0xa9, 0x85, 0x27, 0x47, 0x07, 0x5b, 0x4f, 0x50};
static const uint8_t synth_auth_guid[16] = {0x78, 0x2c, 0xf3, 0xaa, 0x7b, 0x94, 0x9a, 0x43,
                                            0xa1, 0x80, 0x2e, 0x14, 0x4e, 0xc3, 0x77, 0x92};

#define SYNTH_FV_HEADER 72u
#define SYNTH_RECORD_HEADER 60u
#define SYNTH_DATA 4u

static inline void synth_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void synth_put32(uint8_t *p, uint32_t v)
{
    synth_put16(p, (uint16_t)v);
    synth_put16(p + 2, (uint16_t)(v >> 16));
}

static inline size_t synth_record_size(const struct synth_rec *r)
{
    return (SYNTH_RECORD_HEADER + 2 * (strlen(r->name) + 1) + SYNTH_DATA + 3) & ~(size_t)3;
}

/* How many records of about this name length fit a store of store_size bytes. */
static inline size_t synth_capacity(size_t store_size)
{
    const struct synth_rec r = {.name = "Var000000"};
    return (store_size - 28) / synth_record_size(&r);
}

/* An authenticated store of store_size bytes (a multiple of 8) holding recs in order; *expect gets
 * what nvram_parse must list (every record but those in state HEADER_VALID_ONLY), live flags unset.
 * NULL when the records do not fit. */
static inline uint8_t *synth_store(const struct synth_rec *recs, size_t n, size_t store_size,
                                   size_t *len, struct nvram_var **expect, size_t *n_expect)
{
    size_t fv_len = SYNTH_FV_HEADER + store_size;
    uint8_t *b = malloc(fv_len);
    *expect = calloc(n ? n : 1, sizeof(**expect));
    *n_expect = 0;
    memset(b, 0, SYNTH_FV_HEADER);
    memset(b + SYNTH_FV_HEADER, 0xff, store_size);
    memcpy(b + 16, synth_fv_guid, 16);
    synth_put32(b + 32, (uint32_t)fv_len);
    memcpy(b + 40, "_FVH", 4);
    synth_put16(b + 48, SYNTH_FV_HEADER);
    b[55] = 2;
    synth_put32(b + 56, (uint32_t)(fv_len / 8)); /* block map: fv_len / 8 blocks of 8 bytes */
    synth_put32(b + 60, 8);
    uint16_t sum = 0;
    for (size_t i = 0; i < SYNTH_FV_HEADER; i += 2)
        sum = (uint16_t)(sum + (b[i] | b[i + 1] << 8));
    synth_put16(b + 50, (uint16_t)(0x10000 - sum));
    uint8_t *s = b + SYNTH_FV_HEADER;
    memset(s, 0, 28);
    memcpy(s, synth_auth_guid, 16);
    synth_put32(s + 16, (uint32_t)store_size);
    s[20] = 0x5a;
    s[21] = 0xfe;
    size_t p = SYNTH_FV_HEADER + 28;
    for (size_t i = 0; i < n; i++) {
        size_t size = synth_record_size(&recs[i]), name_len = strlen(recs[i].name);
        if (p + size > fv_len) {
            free(b);
            free(*expect);
            return NULL;
        }
        uint8_t *r = b + p;
        memset(r, 0, size);
        synth_put16(r, 0x55aa);
        r[2] = recs[i].state;
        synth_put32(r + 4, 7);
        synth_put32(r + 36, (uint32_t)(2 * (name_len + 1)));
        synth_put32(r + 40, SYNTH_DATA);
        size_t g = 0;
        while (strcmp(synth_guids[g], recs[i].guid) != 0)
            g++;
        memcpy(r + 44, synth_guid_bytes[g], 16);
        for (size_t k = 0; k < name_len; k++)
            r[SYNTH_RECORD_HEADER + 2 * k] = (uint8_t)recs[i].name[k];
        synth_put32(r + SYNTH_RECORD_HEADER + 2 * (name_len + 1), (uint32_t)i);
        if (recs[i].state != NVRAM_VAR_HEADER_VALID_ONLY) {
            struct nvram_var *v = &(*expect)[(*n_expect)++];
            snprintf(v->name, sizeof(v->name), "%s", recs[i].name);
            snprintf(v->guid, sizeof(v->guid), "%s", recs[i].guid);
            v->state = recs[i].state;
            v->offset = p;
        }
        p += size;
    }
    *len = fv_len;
    return b;
}

/* The liveness pass of boot/nvram.c before it sorted, unchanged: O(n^2). */
static inline int synth_old_liveness(struct nvram_var *vars, size_t n, struct vmha_err *err)
{
    for (size_t i = 0; i < n; i++) {
        struct nvram_var *v = &vars[i];
        if (v->state != NVRAM_VAR_ADDED)
            continue;
        for (size_t j = 0; j < i; j++)
            if (vars[j].live && strcmp(vars[j].name, v->name) == 0 &&
                strcmp(vars[j].guid, v->guid) == 0)
                return vmha_err_set(err, -EINVAL,
                                    "variable %s has two live records (offsets "
                                    "0x%zx and 0x%zx)",
                                    v->name, vars[j].offset, v->offset);
        v->live = true;
    }
    for (size_t i = 0; i < n; i++) {
        struct nvram_var *v = &vars[i];
        if (v->state != (NVRAM_VAR_ADDED & NVRAM_VAR_IN_DELETED_TRANSITION))
            continue;
        bool newer = false;
        for (size_t j = 0; j < n && !newer; j++)
            newer = vars[j].live && strcmp(vars[j].name, v->name) == 0 &&
                    strcmp(vars[j].guid, v->guid) == 0;
        v->live = !newer;
    }
    return 0;
}

/* Every record a distinct variable, all ADDED: the largest store's worst case. */
static inline struct synth_rec *synth_distinct(size_t n)
{
    struct synth_rec *r = calloc(n ? n : 1, sizeof(*r));
    for (size_t i = 0; i < n; i++) {
        snprintf(r[i].name, sizeof(r[i].name), "Var%06zx", i);
        r[i].guid = synth_guids[i % 3];
        r[i].state = NVRAM_VAR_ADDED;
    }
    return r;
}

/* A store's history: variables written many times over, in every state a write sequence
 * leaves, at most one ADDED record per variable (a pseudo-random but fixed sequence). */
static inline struct synth_rec *synth_history(size_t n, size_t variables)
{
    static const uint8_t states[] = {0x3f, 0x3e, 0x3d, 0x3c, 0x7f, 0x7e, 0x7d, 0x7c};
    struct synth_rec *r = calloc(n ? n : 1, sizeof(*r));
    uint8_t *added = calloc(variables * 3, 1);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        size_t var = x % variables, g = (x >> 16) % 3;
        uint8_t st = states[(x >> 8) % 8];
        if (st == NVRAM_VAR_ADDED && added[var * 3 + g])
            st = NVRAM_VAR_DELETED & NVRAM_VAR_ADDED;
        added[var * 3 + g] |= st == NVRAM_VAR_ADDED;
        snprintf(r[i].name, sizeof(r[i].name), "Var%06zx", var);
        r[i].guid = synth_guids[g];
        r[i].state = st;
    }
    free(added);
    return r;
}

/* Benchmark: the NVRAM store's liveness check before and after it sorted. Full stores of
 * distinct variables (the worst case for the old pass) of 64 KiB, 2 MiB and 16 MiB; prints
 * the comparison table. The old pass at 16 MiB takes minutes: estimated unless --all. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nvram_synth.h"
#include "vmha/nvram.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The fastest of a few runs of nvram_parse (one for large stores), in ms. */
static double time_parse(const uint8_t *b, size_t len, struct nvram *nv)
{
    double best = -1;
    for (int run = 0; run < (len < (1u << 20) ? 5 : 1); run++) {
        struct vmha_err e = {0};
        nvram_clear(nv);
        double t = now_ms();
        if (nvram_parse(b, len, nv, &e) < 0) {
            fprintf(stderr, "nvram_bench: %s\n", e.msg);
            exit(1);
        }
        t = now_ms() - t;
        best = best < 0 || t < best ? t : best;
    }
    return best;
}

static double time_old(const struct nvram *nv)
{
    struct nvram_var *v = malloc(nv->n * sizeof(*v));
    memcpy(v, nv->vars, nv->n * sizeof(*v));
    for (size_t i = 0; i < nv->n; i++)
        v[i].live = false;
    struct vmha_err e = {0};
    double t = now_ms();
    synth_old_liveness(v, nv->n, &e);
    t = now_ms() - t;
    free(v);
    return t;
}

static void print_ms(double ms, const char *note)
{
    if (ms < 1000)
        printf("  %10.1f ms%s", ms, note);
    else
        printf("  %10.1f s %s", ms / 1000, note);
}

int main(int argc, char **argv)
{
    bool all = argc > 1 && strcmp(argv[1], "--all") == 0;
    static const size_t sizes[] = {64 << 10, 2 << 20, 16 << 20};
    printf("%-8s %9s  %13s  %13s\n", "STORE", "RECORDS", "NOW (parse)", "BEFORE (pass)");
    double old_ms = 0;
    size_t old_n = 0;
    for (size_t k = 0; k < 3; k++) {
        size_t n = synth_capacity(sizes[k]), len = 0, n_expect = 0;
        struct synth_rec *recs = synth_distinct(n);
        struct nvram_var *expect;
        uint8_t *b = synth_store(recs, n, sizes[k], &len, &expect, &n_expect);
        struct nvram nv = {0};
        double parse_ms = time_parse(b, len, &nv);
        printf("%5zu %s %9zu", sizes[k] >> (sizes[k] < (1u << 20) ? 10 : 20),
               sizes[k] < (1u << 20) ? "KiB" : "MiB", n);
        print_ms(parse_ms, "");
        if (all || sizes[k] <= (2u << 20)) {
            old_ms = time_old(&nv);
            old_n = n;
            print_ms(old_ms, "\n");
        } else {
            double f = (double)n / (double)old_n;
            print_ms(old_ms * f * f, " (estimated from the 2 MiB run: quadratic; --all runs it)\n");
        }
        nvram_clear(&nv);
        free(expect);
        free(recs);
        free(b);
    }
    printf("\nNOW: nvram_parse, the whole file (volume, store, records, liveness by sorting).\n"
           "BEFORE: only the liveness pass nvram_parse had until it sorted, on the same records\n"
           "(every record compared with every earlier one).\n");
    return 0;
}

/* Fuzzes the state store's key=value parser (boot/store.c): store_kv_parse, which store_read
 * runs on every record a node reads from shared storage. What it accepts must survive the
 * round trip store_write makes of it: written out as store_write writes, it parses back to
 * the same keys and values (anything else aborts, as a finding). The same text then goes
 * through the readers of the records kept in the store, from a file as they read it: the
 * install state, the migration floor (and its level, mig_level_parse), and the replicator's
 * status and checkpoint records. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "vmha/boot.h"
#include "vmha/migrate.h"
#include "vmha/remus.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_store: %s\n", what);
    abort();
}

static void records(const uint8_t *data, size_t size, const char *text)
{
    static char state_dir[4200], gdir[4300];
    if (!state_dir[0]) {
        snprintf(state_dir, sizeof(state_dir), "%s/state", fuzz_tmpdir());
        snprintf(gdir, sizeof(gdir), "%s/g", state_dir);
        fuzz_mkdir(state_dir);
        fuzz_mkdir(gdir);
    }
    static const char *const files[] = {"install", "floor", "status", "ckpt.meta"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        fuzz_write(gdir, files[i], data, size);
    struct vmha_err err = {0};
    struct install_record ir;
    install_read(gdir, &ir, &err);
    struct mig_record mr;
    mig_record_read(state_dir, "g", &mr, &err);
    struct mig_level level;
    mig_level_parse(text, NULL, &level, &err);
    mig_level_parse(text, "qemu", &level, &err);
    struct remus_status st;
    remus_status_read(gdir, &st, &err);
    uint64_t session, epoch;
    remus_checkpoint(gdir, &session, &epoch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    store_name_ok(text);
    records(data, size, text);
    struct store_kv kv;
    struct vmha_err err = {0};
    if (store_kv_parse(text, &kv, &err) < 0) {
        free(text);
        return 0;
    }
    free(text);
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (!f)
        abort();
    for (size_t i = 0; i < kv.n; i++) {
        if (store_kv_get(&kv, kv.keys[i]) != kv.values[i])
            fail("a key appears twice");
        fprintf(f, "%s=%s\n", kv.keys[i], kv.values[i]);
    }
    fclose(f);
    struct store_kv back;
    if (store_kv_parse(out, &back, &err) < 0)
        fail("what store_write writes does not parse back");
    if (back.n != kv.n)
        fail("the round trip changes the number of keys");
    for (size_t i = 0; i < kv.n; i++)
        if (strcmp(back.keys[i], kv.keys[i]) != 0 || strcmp(back.values[i], kv.values[i]) != 0)
            fail("the round trip changes a key or a value");
    store_kv_clear(&back);
    store_kv_clear(&kv);
    free(out);
    return 0;
}

/* Fuzzes what boot/nvram_store.c reads back from the state store: a generation's record
 * (gen-NNNNNN.meta), the booted record, and a generation's file, through nvgen_booted,
 * nvgen_list and nvgen_newest_valid on a directory of files. Its record parser (read_meta) is
 * static: the files are the way in, as they are for a node reading shared storage.
 * Input: "booted" text NUL gen-000001.meta NUL gen-000002.meta NUL the bytes of every
 * generation's .fd file. A part the input does not reach is a file that does not exist. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "vmha/nvram.h"

/* The next NUL-terminated part of the input; false when the input ends first. */
static bool next_part(const uint8_t **data, size_t *size, const uint8_t **part, size_t *len)
{
    if (*size == 0)
        return false;
    const uint8_t *nul = memchr(*data, 0, *size);
    *part = *data;
    *len = nul ? (size_t)(nul - *data) : *size;
    *data += *len + (nul ? 1 : 0);
    *size -= *len + (nul ? 1 : 0);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char gdir[4200], nvdir[4300];
    if (!gdir[0]) {
        snprintf(gdir, sizeof(gdir), "%s/guest", fuzz_tmpdir());
        snprintf(nvdir, sizeof(nvdir), "%s/nvram", gdir);
        fuzz_mkdir(gdir);
        fuzz_mkdir(nvdir);
    }
    fuzz_clear_dir(nvdir);
    static const char *const texts[] = {"booted", "gen-000001.meta", "gen-000002.meta"};
    const uint8_t *part;
    size_t len;
    for (size_t i = 0; i < 3 && next_part(&data, &size, &part, &len); i++)
        fuzz_write(nvdir, texts[i], part, len);

    struct vmha_err err = {0};
    unsigned long booted;
    nvgen_booted(gdir, &booted, &err);
    struct nvram_gen *gens = NULL;
    size_t n = 0;
    if (nvgen_list(gdir, &gens, &n, &err) < 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof(name), "gen-%06lu.fd", gens[i].num);
        fuzz_write(nvdir, name, data, size);
    }
    free(gens);
    uint8_t *buf = NULL;
    size_t blen = 0;
    struct nvram_gen g;
    char note[1024];
    if (nvgen_newest_valid(gdir, &buf, &blen, &g, note, sizeof(note), &err) == 0)
        free(buf);
    return 0;
}

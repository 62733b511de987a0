/* Fuzzes the OVMF variable store reader (boot/nvram.c): nvram_parse over a whole file, then
 * what callers read from a parsed store: BootOrder, and every record's data decoded as a load
 * option with its device path. An input that is no store is decoded as one load option
 * itself, so the fuzzer reaches the record decoders without building a store around them. */
#include "fuzz.h"
#include "vmha/nvram.h"

static void load_option(const uint8_t *d, size_t len)
{
    struct nvram_load_option lo;
    struct vmha_err err = {0};
    nvram_load_option_parse(d, len, &lo, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nvram nv;
    struct vmha_err err = {0};
    if (nvram_parse(data, size, &nv, &err) < 0) {
        load_option(data, size);
        return 0;
    }
    uint16_t order[64];
    size_t n;
    nvram_boot_order(&nv, order, sizeof(order) / sizeof(order[0]), &n, &err);
    for (size_t i = 0; i < nv.n; i++) {
        load_option(nv.vars[i].data, nv.vars[i].data_size);
        nvram_get(&nv, nv.vars[i].name, nv.vars[i].guid);
    }
    nvram_clear(&nv);
    return 0;
}

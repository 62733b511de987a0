/* Fuzzes the replication stream's header line and the stale mark (remus/proto.c):
 * remus_header_parse, which a backup runs on the first line any peer sends, and
 * remus_stale_covers, which decides at promotion whether a checkpoint may be used. A header
 * it accepts must format and parse back to the same epoch; a mark formatted from an epoch
 * must cover that epoch and no later one (anything else aborts, as a finding). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "vmha/remus.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_remus_header: %s\n", what);
    abort();
}

static void check_mark(uint64_t session, uint64_t epoch)
{
    char mark[64];
    remus_stale_format(session, epoch, mark, sizeof(mark));
    if (!remus_stale_covers(mark, session, epoch))
        fail("a mark does not cover its own epoch");
    if (epoch < UINT64_MAX && remus_stale_covers(mark, session, epoch + 1))
        fail("a mark covers a later epoch of its session");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_text(data, size);
    static const uint64_t sessions[] = {0, 0xabc, UINT64_MAX};
    for (size_t i = 0; i < 3; i++) {
        remus_stale_covers(text, sessions[i], 1);
        remus_stale_covers(text, sessions[i], UINT64_MAX);
    }
    struct remus_epoch_id id, back;
    struct vmha_err err = {0};
    if (remus_header_parse(text, &id, &err) == 0) {
        char line[REMUS_HEADER_MAX];
        if (remus_header_format(&id, line, sizeof(line)) < 0)
            fail("an accepted header does not format");
        if (remus_header_parse(line, &back, &err) < 0)
            fail("a formatted header does not parse");
        if (strcmp(back.guest, id.guest) != 0 || back.session != id.session ||
            back.epoch != id.epoch)
            fail("a header changes in the round trip");
        check_mark(id.session, id.epoch);
        remus_stale_covers(text, id.session, id.epoch);
    }
    free(text);
    return 0;
}

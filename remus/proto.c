/* The replication stream's framing, the stale mark, and the replicator's status file. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "vmha/cleanup.h"
#include "vmha/remus.h"
#include "vmha/state.h"

static bool guest_name_ok(const char *s)
{
    if (!s[0] || strlen(s) >= sizeof(((struct remus_epoch_id *)0)->guest))
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '.' || *s == '-'))
            return false;
    return true;
}

int remus_header_format(const struct remus_epoch_id *id, char *buf, size_t size)
{
    if (!guest_name_ok(id->guest))
        return -EINVAL;
    int n = snprintf(buf, size, "VMHA-CKPT 2 %s %016" PRIx64 " %" PRIu64 "\n", id->guest,
                     id->session, id->epoch);
    return n > 0 && (size_t)n < size ? n : -ENOSPC;
}

int remus_header_parse(const char *line, struct remus_epoch_id *ret, struct vmha_err *err)
{
    struct remus_epoch_id id = {0};
    char guest[160], session[32], epoch[32];
    int version = 0;
    char tail = 0;
    if (sscanf(line, "VMHA-CKPT %d %159s %31s %31s%c", &version, guest, session, epoch, &tail) !=
            5 ||
        tail != '\n')
        return vmha_err_set(err, -EPROTO, "not a vmha checkpoint stream");
    if (version != 2)
        return vmha_err_set(err, -EPROTO, "checkpoint stream version %d (this vmha speaks 2)",
                            version);
    char *end = NULL;
    errno = 0;
    id.session = strtoull(session, &end, 16);
    if (errno || *end || strlen(session) != 16)
        return vmha_err_set(err, -EPROTO, "bad session '%s' in the checkpoint stream", session);
    if (vmha_parse_uint(epoch, UINT64_MAX, &id.epoch) < 0 || id.epoch == 0)
        return vmha_err_set(err, -EPROTO, "bad epoch '%s' in the checkpoint stream", epoch);
    if (!guest_name_ok(guest))
        return vmha_err_set(err, -EPROTO, "bad guest name in the checkpoint stream");
    snprintf(id.guest, sizeof(id.guest), "%.127s", guest);
    *ret = id;
    return 0;
}

void remus_trailer_make(uint64_t epoch, unsigned char out[REMUS_TRAILER_LEN])
{
    memcpy(out, "VMHA-END", 8);
    for (int i = 0; i < 8; i++)
        out[8 + i] = (unsigned char)(epoch >> (56 - 8 * i));
}

bool remus_trailer_ok(const unsigned char in[REMUS_TRAILER_LEN], uint64_t epoch)
{
    unsigned char want[REMUS_TRAILER_LEN];
    remus_trailer_make(epoch, want);
    return memcmp(in, want, REMUS_TRAILER_LEN) == 0;
}

void remus_stale_format(uint64_t session, uint64_t epoch, char *buf, size_t size)
{
    snprintf(buf, size, "%016" PRIx64 " %" PRIu64, session, epoch);
}

bool remus_stale_covers(const char *mark, uint64_t session, uint64_t epoch)
{
    if (!mark || !mark[0])
        return false;
    char s[32], e[32], extra;
    if (sscanf(mark, "%31s %31s %c", s, e, &extra) != 2 || strlen(s) != 16)
        return true;
    char *end = NULL;
    errno = 0;
    uint64_t ms = strtoull(s, &end, 16);
    uint64_t me = 0;
    if (errno || *end || vmha_parse_uint(e, UINT64_MAX, &me) < 0)
        return true;
    /* A mark from another session: that primary let output out while this checkpoint was
     * the backup's newest, or this checkpoint is older still. Either way it is stale. */
    return ms != session || epoch <= me;
}

uint64_t remus_realtime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void remus_dir(const char *rundir, const char *guest, char *buf, size_t size)
{
    snprintf(buf, size, "%s/remus/%s", rundir, guest);
}

static int set_u64(struct store_kv *kv, const char *key, uint64_t v)
{
    char buf[32];
    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    return store_kv_set(kv, key, buf);
}

int remus_status_write(const char *dir, const struct remus_status *s, struct vmha_err *err)
{
    _cleanup_(store_kv_clear) struct store_kv kv = {0};
    char session[32];
    snprintf(session, sizeof(session), "%016" PRIx64, s->session);
    if (store_kv_set(&kv, "role", s->role) < 0 || store_kv_set(&kv, "state", s->state) < 0 ||
        store_kv_set(&kv, "peer", s->peer) < 0 || store_kv_set(&kv, "session", session) < 0 ||
        set_u64(&kv, "epoch", s->epoch) < 0 || set_u64(&kv, "committed_ms", s->committed_ms) < 0 ||
        set_u64(&kv, "pause_ms", s->pause_ms) < 0 || set_u64(&kv, "ckpt_ms", s->ckpt_ms) < 0 ||
        set_u64(&kv, "bytes", s->bytes) < 0 || set_u64(&kv, "epochs", s->epochs) < 0 ||
        set_u64(&kv, "failures", s->failures) < 0 || set_u64(&kv, "refused", s->refused) < 0 ||
        store_kv_set(&kv, "auth", s->auth) < 0 || store_kv_set(&kv, "error", s->error) < 0)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    return store_write(dir, "status", &kv, false, err);
}

static uint64_t get_u64(const struct store_kv *kv, const char *key)
{
    const char *v = store_kv_get(kv, key);
    return v ? strtoull(v, NULL, 10) : 0;
}

static void get_str(const struct store_kv *kv, const char *key, char *buf, size_t size)
{
    const char *v = store_kv_get(kv, key);
    snprintf(buf, size, "%s", v ? v : "");
}

int remus_status_read(const char *dir, struct remus_status *ret, struct vmha_err *err)
{
    _cleanup_(store_kv_clear) struct store_kv kv = {0};
    int r = store_read(dir, "status", &kv, err);
    if (r < 0)
        return r;
    struct remus_status s = {0};
    get_str(&kv, "role", s.role, sizeof(s.role));
    get_str(&kv, "state", s.state, sizeof(s.state));
    get_str(&kv, "peer", s.peer, sizeof(s.peer));
    get_str(&kv, "error", s.error, sizeof(s.error));
    get_str(&kv, "auth", s.auth, sizeof(s.auth));
    const char *session = store_kv_get(&kv, "session");
    s.session = session ? strtoull(session, NULL, 16) : 0;
    s.epoch = get_u64(&kv, "epoch");
    s.committed_ms = get_u64(&kv, "committed_ms");
    s.pause_ms = get_u64(&kv, "pause_ms");
    s.ckpt_ms = get_u64(&kv, "ckpt_ms");
    s.bytes = get_u64(&kv, "bytes");
    s.epochs = get_u64(&kv, "epochs");
    s.failures = get_u64(&kv, "failures");
    s.refused = get_u64(&kv, "refused");
    *ret = s;
    return 0;
}

bool remus_running(const char *dir, const char *mode, int *pid)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s.pid", dir, mode);
    _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    if (flock(fd, LOCK_SH | LOCK_NB) == 0)
        return false; /* nobody holds it: the replicator is gone */
    char buf[32] = "";
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    if (pid)
        *pid = n > 0 ? atoi(buf) : 0;
    return true;
}

int remus_checkpoint(const char *dir, uint64_t *session, uint64_t *epoch)
{
    _cleanup_(store_kv_clear) struct store_kv kv = {0};
    struct vmha_err e = {0};
    int r = store_read(dir, "ckpt.meta", &kv, &e);
    if (r < 0)
        return r;
    const char *s = store_kv_get(&kv, "session");
    *session = s ? strtoull(s, NULL, 16) : 0;
    *epoch = get_u64(&kv, "epoch");
    /* The committed epoch is the journal until it is applied, then dev.save and ram. */
    char jrnl[4096], dev[4096];
    snprintf(jrnl, sizeof(jrnl), "%s/ckpt.jrnl", dir);
    snprintf(dev, sizeof(dev), "%s/dev.save", dir);
    return access(jrnl, R_OK) == 0 || access(dev, R_OK) == 0 ? 0 : -ENOENT;
}

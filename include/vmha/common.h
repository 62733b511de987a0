/* What every vmha module shares: the error context, deadlines, durations, small string helpers. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An error code (negative errno) plus the sentence a module attaches to it for the operator.
 * Passed down by the caller; modules never print. */
struct vmha_err {
    int code;
    char msg[512];
};

/* Records code and message in err (if not NULL) and returns code, so callers can write
 * `return vmha_err_set(err, -ENOENT, "...")`. */
int vmha_err_set(struct vmha_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The sentence for err, or strerror of its code when no sentence was attached. */
const char *vmha_err_msg(const struct vmha_err *err);

/* A point in CLOCK_MONOTONIC time, in milliseconds. Every blocking call takes one. */
struct vmha_deadline {
    uint64_t at_ms;
};

uint64_t vmha_now_ms(void);
struct vmha_deadline vmha_deadline_in(uint64_t ms);
/* Milliseconds left, 0 once passed. */
uint64_t vmha_deadline_left_ms(const struct vmha_deadline *d);
bool vmha_deadline_passed(const struct vmha_deadline *d);
/* The deadline reserve_ms before d (not earlier than now), to leave time for what follows. */
struct vmha_deadline vmha_deadline_before(const struct vmha_deadline *d, uint64_t reserve_ms);
struct vmha_deadline vmha_deadline_min(struct vmha_deadline a, struct vmha_deadline b);
/* Sleeps for ms, but never past d. Returns false when d has passed. */
bool vmha_deadline_sleep(const struct vmha_deadline *d, uint64_t ms);
/* How long ago this process started (exec, libraries and all), 0 when unknown. */
uint64_t vmha_process_age_ms(void);

/* Parses "90", "90s", "500ms", "2min", "2m", "1h" into milliseconds; a bare number is in
 * default_unit_ms units. Returns 0 or -EINVAL / -ERANGE. */
int vmha_parse_duration_ms(const char *s, uint64_t default_unit_ms, uint64_t *ret);
/* Parses a non-negative decimal integer no larger than max. */
int vmha_parse_uint(const char *s, uint64_t max, uint64_t *ret);
/* "host:port" or "[v6]:port" split in two; -EINVAL without a port or with a bare v6 address,
 * -ENAMETOOLONG when a part does not fit. */
int vmha_split_hostport(const char *address, char *host, size_t hsize, char *port, size_t psize);
/* Parses the boolean spellings Pacemaker accepts (true/false, yes/no, on/off, 1/0). */
int vmha_parse_bool(const char *s, bool *ret);

/* Reads a whole file into a NUL-terminated buffer; refuses files over max_bytes and anything
 * that is not a regular file (-EINVAL, without waiting for a FIFO's writer). */
int vmha_read_file(const char *path, size_t max_bytes, char **ret, struct vmha_err *err);
/* The same for binary files: the bytes (NUL-terminated too) and their number. */
int vmha_read_blob(const char *path, size_t max_bytes, uint8_t **ret, size_t *len,
                   struct vmha_err *err);
/* The same for file in the directory open on dfd, following no symbolic link (-ELOOP); shown
 * is the path its messages name. */
int vmha_read_blob_at(int dfd, const char *file, const char *shown, size_t max_bytes, uint8_t **ret,
                      size_t *len, struct vmha_err *err);

/* Runs argv[0] (searched in PATH) with argv, waits for it until dl and kills it then.
 * Returns 0 when it exited 0; otherwise an error naming the command and the first line it
 * printed on stderr (or how it ended). */
int vmha_run(char *const argv[], const struct vmha_deadline *dl, struct vmha_err *err);

/* The same, and what it printed on stdout in *out (NUL-terminated, the caller frees it) when
 * it exited 0; more than max_bytes is -EFBIG (the program is killed). */
int vmha_run_output(char *const argv[], const struct vmha_deadline *dl, char **out,
                    size_t max_bytes, struct vmha_err *err);

/* Writes all n bytes (retrying short writes and EINTR): 0 or -errno. On a socket, a peer
 * that is gone gives -EPIPE, never SIGPIPE. */
int vmha_write_all(int fd, const void *buf, size_t n);

/* Creates a file to write beside file (a name, no slash) in the directory open on dfd:
 * ".<file>.<host>.<random>.tmp", mode 0600, O_EXCL|O_NOFOLLOW, so the name is unique across
 * the hosts that share the directory and nothing planted under it is followed or truncated.
 * Returns the descriptor and the name in name (size bytes), or a negative errno. */
int vmha_temp_create_at(int dfd, const char *file, char *name, size_t size);

/* Replaces path with n bytes of data whole or not at all (through a temporary file of
 * vmha_temp_create_at beside it, renamed; removed on failure): a reader sees the old file or
 * the new one. With sync, the data and the rename are on disk first. */
int vmha_write_file(const char *path, const void *data, size_t n, bool sync, struct vmha_err *err);
/* The same for file (a name) in the directory open on dfd, which dir names in messages.
 * VMHA_WRITE_SYNC: the data and the rename are on disk first; VMHA_WRITE_EXCLUSIVE: -EEXIST
 * rather than replacing a file that is there. */
#define VMHA_WRITE_SYNC 1u
#define VMHA_WRITE_EXCLUSIVE 2u
int vmha_write_file_at(int dfd, const char *dir, const char *file, const void *data, size_t n,
                       unsigned flags, struct vmha_err *err);

/* Keepalive and TCP_USER_TIMEOUT on a TCP socket: a peer that vanishes without a word (its
 * host lost power) is noticed within about timeout_ms instead of never. */
void vmha_tune_socket(int fd, uint64_t timeout_ms);

/* Where a helper program of vmha is: `beside` (relative to this program's directory, as in
 * a build tree) when it exists there, else its installed path ("" when that does not fit). */
void vmha_program_path(const char *beside, const char *installed, char *out, size_t size);

/* A secret key from path: a regular file (no symbolic link, FIFO or device) owned by root
 * (or this process's user), with no access for group or others, of VMHA_SECRET_MIN to
 * VMHA_SECRET_MAX bytes, opened once and judged by what was opened. The caller frees *ret
 * (clearing it first). -EPERM (-ELOOP for a link, or the open's -errno) with a sentence that
 * starts with what (e.g. "artifact_key") and names the fault. */
#define VMHA_SECRET_MIN 16
#define VMHA_SECRET_MAX (64 << 10)
int vmha_secret_read(const char *what, const char *path, uint8_t **ret, size_t *len,
                     struct vmha_err *err);

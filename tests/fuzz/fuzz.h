/* What the fuzz targets share: libFuzzer's entry point (regress_main.c calls it too, without
 * libFuzzer) and small helpers for targets whose parser reads files. */
#pragma once

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as a C string, as vmha_read_file hands a file to a parser: NUL-terminated, so an
 * embedded NUL ends the text. Free it. */
char *fuzz_text(const uint8_t *data, size_t size);

/* A directory of this process's own under TMPDIR (tools/fuzz.sh points TMPDIR at its work
 * directory, so what a crash leaves behind stays there), removed at exit. */
const char *fuzz_tmpdir(void);
/* Makes the directory path if missing. */
void fuzz_mkdir(const char *path);
/* Replaces dir/name with n bytes. A target that cannot set up its files fuzzes nothing, so
 * these abort on failure. */
void fuzz_write(const char *dir, const char *name, const void *p, size_t n);
/* Removes every entry of dir that is not a directory: the files an iteration made. */
void fuzz_clear_dir(const char *dir);

/* Scope-bound cleanup helpers (systemd style): free on scope exit, hand over with TAKE_PTR. */
#pragma once

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void vmha_freep(void *p)
{
    free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(vmha_freep)

/* Take ownership out of a cleanup-tracked variable so that scope exit leaves it alone. */
#define TAKE_PTR(p)                                                                                \
    ({                                                                                             \
        __typeof__(p) _took = (p);                                                                 \
        (p) = NULL;                                                                                \
        _took;                                                                                     \
    })

/* Defines type##_freep-style helpers for library types: NULL is accepted and ignored. */
#define VMHA_DEFINE_CLEANUP(type, func)                                                            \
    static inline void func##p(type *p)                                                            \
    {                                                                                              \
        if (*p)                                                                                    \
            func(*p);                                                                              \
    }

static inline void closep(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}

static inline void fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}

/* Like TAKE_PTR for file descriptors: -1 is "nothing to close". */
#define TAKE_FD(fd)                                                                                \
    ({                                                                                             \
        int _took = (fd);                                                                          \
        (fd) = -1;                                                                                 \
        _took;                                                                                     \
    })

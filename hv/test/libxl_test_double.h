/* TEST DOUBLE of libxenlight (see libxl_test_double.c): the fake Xen's state, which tests set
 * up and inspect. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "hv_libxl_compat.h"

#define XL_DOUBLE_MAX 8

struct xl_double_dom {
    bool used;
    uint32_t domid;
    char name[64];
    char kernel[256];
    uint64_t memkb;
    libxl_dominfo info;
    bool ignores_shutdown, no_pv_drivers;
    int shutdown_requests, power_buttons;
};

struct xl_double {
    struct xl_double_dom dom[XL_DOUBLE_MAX];
    bool no_xenstore, fail_create, cap_hvm;
    int creates, destroys, resumes;
    xentoollog_logger *logger;
};

extern struct xl_double xl_double;
struct xl_double_dom *xl_double_add(const char *name, bool paused);

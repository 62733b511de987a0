/* The OVMF variable store reader (see include/vmha/nvram.h). Layouts follow the UEFI PI
 * specification (EFI_FIRMWARE_VOLUME_HEADER) and EDK2's VARIABLE_STORE_HEADER,
 * VARIABLE_HEADER and AUTHENTICATED_VARIABLE_HEADER; every field is little-endian. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmha/cleanup.h"
#include "vmha/nvram.h"

#define FV_SIGNATURE 0x4856465fu /* "_FVH" */
#define FV_HEADER_MIN 64u        /* fixed part (56) + one block map entry + terminator */
#define STORE_HEADER_SIZE 28u
#define STORE_FORMATTED 0x5a
#define STORE_HEALTHY 0xfe
#define VAR_START_ID 0x55aa
#define AUTH_VAR_HEADER 60u
#define VAR_HEADER 32u

static const char NV_DATA_FV_GUID[] = "fff12b8d-7696-4c8b-a985-2747075b4f50";
static const char AUTH_VAR_GUID[] = "aaf32c78-947b-439a-a180-2e144ec37792";
static const char VAR_GUID[] = "ddcf3616-3275-4164-98b6-fe85707ffe7d";

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* EFI_GUID: a 32-bit, two 16-bit fields little-endian, then 8 bytes in order. */
static void guid_text(const uint8_t *g, char out[37])
{
    snprintf(out, 37, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x", le32(g), le16(g + 4),
             le16(g + 6), g[8], g[9], g[10], g[11], g[12], g[13], g[14], g[15]);
}

/* UCS-2 to UTF-8; false when there is no terminating NUL within len bytes. */
static bool ucs2_text(const uint8_t *p, size_t len, char *out, size_t size, size_t *consumed)
{
    size_t o = 0;
    for (size_t i = 0; i + 1 < len; i += 2) {
        uint16_t c = le16(p + i);
        if (c == 0) {
            out[o < size ? o : size - 1] = '\0';
            if (consumed)
                *consumed = i + 2;
            return true;
        }
        char enc[3];
        size_t n;
        if (c < 0x80) {
            enc[0] = (char)c;
            n = 1;
        } else if (c < 0x800) {
            enc[0] = (char)(0xc0 | c >> 6);
            enc[1] = (char)(0x80 | (c & 0x3f));
            n = 2;
        } else {
            enc[0] = (char)(0xe0 | c >> 12);
            enc[1] = (char)(0x80 | ((c >> 6) & 0x3f));
            enc[2] = (char)(0x80 | (c & 0x3f));
            n = 3;
        }
        if (o + n < size) {
            memcpy(out + o, enc, n);
            o += n;
        }
    }
    if (size)
        out[0] = '\0';
    return false;
}

void nvram_clear(struct nvram *nv)
{
    free(nv->vars);
    memset(nv, 0, sizeof(*nv));
}

static int check_fv(const uint8_t *b, size_t len, struct nvram *nv, size_t *hlen,
                    struct vmha_err *err)
{
    if (len < FV_HEADER_MIN)
        return vmha_err_set(err, -EINVAL,
                            "truncated: %zu bytes, less than a firmware volume "
                            "header",
                            len);
    if (le32(b + 40) != FV_SIGNATURE)
        return vmha_err_set(err, -EINVAL, "no firmware volume signature (_FVH) at offset 40");
    char g[37];
    guid_text(b + 16, g);
    if (strcmp(g, NV_DATA_FV_GUID) != 0)
        return vmha_err_set(err, -EINVAL,
                            "firmware volume %s is not a variable store "
                            "(expected %s)",
                            g, NV_DATA_FV_GUID);
    nv->fv_length = le64(b + 32);
    *hlen = le16(b + 48);
    if (*hlen < FV_HEADER_MIN || *hlen % 2 || *hlen > len)
        return vmha_err_set(err, -EINVAL, "firmware volume header length %zu is invalid", *hlen);
    uint16_t sum = 0;
    for (size_t i = 0; i < *hlen; i += 2)
        sum = (uint16_t)(sum + le16(b + i));
    if (sum != 0)
        return vmha_err_set(err, -EINVAL,
                            "firmware volume header checksum is wrong (the "
                            "header sums to 0x%04x, not 0)",
                            sum);
    if (nv->fv_length > len)
        return vmha_err_set(err, -EINVAL,
                            "truncated: the firmware volume is %llu bytes, the "
                            "file %zu",
                            (unsigned long long)nv->fv_length, len);
    if (le16(b + 52) != 0)
        return vmha_err_set(err, -EINVAL, "firmware volume extension headers are not supported");
    /* The block map: (count, size) pairs up to a (0, 0) terminator inside the header. */
    uint64_t covered = 0;
    size_t p = 56;
    for (;; p += 8) {
        if (p + 8 > *hlen)
            return vmha_err_set(err, -EINVAL, "firmware volume block map has no terminator");
        uint32_t count = le32(b + p), size = le32(b + p + 4);
        if (count == 0 && size == 0)
            break;
        covered += (uint64_t)count * size;
    }
    if (covered != nv->fv_length)
        return vmha_err_set(err, -EINVAL,
                            "firmware volume block map covers %llu bytes, the "
                            "volume is %llu",
                            (unsigned long long)covered, (unsigned long long)nv->fv_length);
    return 0;
}

static int check_store(const uint8_t *b, size_t hlen, struct nvram *nv, struct vmha_err *err)
{
    const uint8_t *s = b + hlen;
    if (hlen + STORE_HEADER_SIZE > nv->fv_length)
        return vmha_err_set(err, -EINVAL, "truncated: no room for a variable store header");
    char g[37];
    guid_text(s, g);
    if (strcmp(g, AUTH_VAR_GUID) == 0)
        nv->authenticated = true;
    else if (strcmp(g, VAR_GUID) != 0)
        return vmha_err_set(err, -EINVAL,
                            "variable store GUID %s is neither the authenticated "
                            "nor the plain variable GUID",
                            g);
    nv->store_offset = hlen;
    nv->store_size = le32(s + 16);
    if (nv->store_size < STORE_HEADER_SIZE || hlen + nv->store_size > nv->fv_length)
        return vmha_err_set(err, -EINVAL,
                            "variable store size %zu does not fit the %llu-byte "
                            "volume",
                            nv->store_size, (unsigned long long)nv->fv_length);
    if (s[20] != STORE_FORMATTED)
        return vmha_err_set(err, -EINVAL, "variable store is not formatted (format 0x%02x)", s[20]);
    if (s[21] != STORE_HEALTHY)
        return vmha_err_set(err, -EINVAL, "variable store is not healthy (state 0x%02x)", s[21]);
    return 0;
}

static bool state_known(uint8_t st)
{
    /* Bit 7 cleared (header valid), bits 2-5 untouched; bits 6, 1, 0 as the record went. */
    return !(st & 0x80) && (st & 0x3c) == 0x3c;
}

/* The array doubles (16, 32, 64...): a 64 MiB store holds a million records, and growing by
 * one record at a time could copy the array at every step. */
static int add_var(struct nvram *nv, const struct nvram_var *v)
{
    if (nv->n == 0 || (nv->n >= 16 && (nv->n & (nv->n - 1)) == 0)) {
        size_t cap = nv->n ? 2 * nv->n : 16;
        struct nvram_var *m = reallocarray(nv->vars, cap, sizeof(*m));
        if (!m)
            return -ENOMEM;
        nv->vars = m;
    }
    nv->vars[nv->n++] = *v;
    return 0;
}

static bool may_be_live(const struct nvram_var *v)
{
    return v->state == NVRAM_VAR_ADDED ||
           v->state == (NVRAM_VAR_ADDED & NVRAM_VAR_IN_DELETED_TRANSITION);
}

static bool same_variable(const struct nvram_var *x, const struct nvram_var *y)
{
    return strcmp(x->guid, y->guid) == 0 && strcmp(x->name, y->name) == 0;
}

/* By variable (GUID, then name), then in file order (the records are one array). */
static int by_variable(const void *a, const void *b)
{
    const struct nvram_var *x = *(const struct nvram_var *const *)a;
    const struct nvram_var *y = *(const struct nvram_var *const *)b;
    int c = strcmp(x->guid, y->guid);
    if (c == 0)
        c = strcmp(x->name, y->name);
    return c ? c : (x > y) - (x < y);
}

/* What firmware reads: the ADDED record, else the first one cut short IN_DELETED_TRANSITION.
 * Sorting the candidates by variable makes this O(n log n); comparing every record with
 * every other took hours on the largest store a writer to state_dir could plant. Of two
 * ADDED records of one variable, the error names the pair whose second record comes first
 * in the file, as a scan in file order meets it. */
static int mark_live(struct nvram *nv, struct vmha_err *err)
{
    _cleanup_free_ struct nvram_var **c = reallocarray(NULL, nv->n ? nv->n : 1, sizeof(*c));
    if (!c)
        return vmha_err_set(err, -ENOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < nv->n; i++)
        if (may_be_live(&nv->vars[i]))
            c[n++] = &nv->vars[i];
    qsort(c, n, sizeof(*c), by_variable);
    const struct nvram_var *first = NULL, *second = NULL;
    for (size_t i = 0, j; i < n; i = j) {
        struct nvram_var *added = NULL, *cut_short = NULL;
        for (j = i; j < n && same_variable(c[i], c[j]); j++) {
            if (c[j]->state != NVRAM_VAR_ADDED)
                cut_short = cut_short ? cut_short : c[j];
            else if (!added)
                added = c[j];
            else if (!second || c[j] < second)
                first = added, second = c[j];
        }
        (added ? added : cut_short)->live = true;
    }
    if (second)
        return vmha_err_set(err, -EINVAL,
                            "variable %s has two live records (offsets 0x%zx and "
                            "0x%zx)",
                            second->name, first->offset, second->offset);
    return 0;
}

static int parse_records(const uint8_t *b, struct nvram *nv, struct vmha_err *err)
{
    const size_t hdr = nv->authenticated ? AUTH_VAR_HEADER : VAR_HEADER;
    const size_t end = nv->store_offset + nv->store_size;
    size_t p = nv->store_offset + STORE_HEADER_SIZE;
    while (p + hdr <= end) {
        uint16_t id = le16(b + p);
        if (id == 0xffff)
            break; /* erased flash: the end of the records */
        if (id != VAR_START_ID)
            return vmha_err_set(err, -EINVAL, "bad StartId 0x%04x at offset 0x%zx", id, p);
        struct nvram_var v = {.state = b[p + 2], .offset = p, .attributes = le32(b + p + 4)};
        size_t name_at = nv->authenticated ? 36 : 8;
        uint32_t name_size = le32(b + p + name_at), data_size = le32(b + p + name_at + 4);
        guid_text(b + p + hdr - 16, v.guid);
        if ((uint64_t)p + hdr + name_size + data_size > end)
            return vmha_err_set(err, -EINVAL,
                                "variable at offset 0x%zx (name %u bytes, data %u "
                                "bytes) runs past the end of the store",
                                p, name_size, data_size);
        if (!state_known(v.state))
            return vmha_err_set(err, -EINVAL,
                                "variable at offset 0x%zx has unknown state "
                                "0x%02x",
                                p, v.state);
        if (v.state != NVRAM_VAR_HEADER_VALID_ONLY) {
            if (name_size < 4 || name_size % 2 ||
                !ucs2_text(b + p + hdr, name_size, v.name, sizeof(v.name), NULL))
                return vmha_err_set(err, -EINVAL,
                                    "variable at offset 0x%zx has no valid name "
                                    "(%u bytes)",
                                    p, name_size);
            v.data = b + p + hdr + name_size;
            v.data_size = data_size;
            if (add_var(nv, &v) < 0)
                return vmha_err_set(err, -ENOMEM, "out of memory");
        }
        size_t next = (p + hdr + name_size + data_size + 3) & ~(size_t)3;
        if (next <= p)
            return vmha_err_set(err, -EINVAL, "records overlap at offset 0x%zx", p);
        p = next;
    }
    nv->used = p - nv->store_offset;
    return mark_live(nv, err);
}

int nvram_parse(const uint8_t *buf, size_t len, struct nvram *ret, struct vmha_err *err)
{
    struct nvram nv = {0};
    size_t hlen = 0;
    int r = check_fv(buf, len, &nv, &hlen, err);
    if (r == 0)
        r = check_store(buf, hlen, &nv, err);
    if (r == 0)
        r = parse_records(buf, &nv, err);
    if (r < 0) {
        nvram_clear(&nv);
        return r;
    }
    *ret = nv;
    return 0;
}

const struct nvram_var *nvram_get(const struct nvram *nv, const char *name, const char *guid)
{
    for (size_t i = 0; i < nv->n; i++)
        if (nv->vars[i].live && strcmp(nv->vars[i].name, name) == 0 &&
            strcmp(nv->vars[i].guid, guid ? guid : NVRAM_GLOBAL_GUID) == 0)
            return &nv->vars[i];
    return NULL;
}

int nvram_boot_order(const struct nvram *nv, uint16_t *ret, size_t max, size_t *n,
                     struct vmha_err *err)
{
    const struct nvram_var *v = nvram_get(nv, "BootOrder", NULL);
    *n = 0;
    if (!v)
        return vmha_err_set(err, -ENOENT, "no BootOrder variable");
    if (v->data_size % 2)
        return vmha_err_set(err, -EINVAL, "BootOrder has an odd size (%zu bytes)", v->data_size);
    for (size_t i = 0; i + 1 < v->data_size && *n < max; i += 2)
        ret[(*n)++] = le16(v->data + i);
    return 0;
}

/* --- device paths --- */

struct out {
    char *buf;
    size_t size, len;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->size - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len = o->len + (size_t)n < o->size ? o->len + (size_t)n : o->size - 1;
}

static void put_hex(struct out *o, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put(o, "%02X", p[i]);
}

/* GUIDs in device paths are printed as EDK2 prints them: upper case. */
static void guid_upper(const uint8_t *d, char g[37])
{
    guid_text(d, g);
    for (char *c = g; *c; c++)
        if (*c >= 'a' && *c <= 'f')
            *c = (char)(*c - 'a' + 'A');
}

/* One node (type, subtype, body of blen bytes). */
static void node_text(struct out *o, uint8_t type, uint8_t sub, const uint8_t *d, size_t blen)
{
    char g[37], s[512];
    switch (type << 8 | sub) {
    case 0x0101: /* PCI */
        if (blen >= 2) {
            put(o, "Pci(0x%X,0x%X)", d[1], d[0]);
            return;
        }
        break;
    case 0x0201: /* ACPI */
        if (blen >= 8) {
            uint32_t hid = le32(d), uid = le32(d + 4);
            if (hid == 0x0a0341d0)
                put(o, "PciRoot(0x%X)", uid);
            else if (hid == 0x0a0841d0)
                put(o, "PcieRoot(0x%X)", uid);
            else
                put(o, "Acpi(0x%08X,0x%X)", hid, uid);
            return;
        }
        break;
    case 0x0301: /* ATAPI */
        if (blen >= 4) {
            put(o, "Ata(%s,%s,0x%X)", d[0] ? "Secondary" : "Primary", d[1] ? "Slave" : "Master",
                le16(d + 2));
            return;
        }
        break;
    case 0x0302: /* SCSI */
        if (blen >= 4) {
            put(o, "Scsi(0x%X,0x%X)", le16(d), le16(d + 2));
            return;
        }
        break;
    case 0x030b: /* MAC */
        if (blen >= 33) {
            put(o, "MAC(");
            put_hex(o, d, d[32] == 1 ? 6 : 32);
            put(o, ",0x%X)", d[32]);
            return;
        }
        break;
    case 0x030c: /* IPv4 */
        if (blen >= 15) {
            put(o, "IPv4(%u.%u.%u.%u)", d[4], d[5], d[6], d[7]);
            return;
        }
        break;
    case 0x030d:
        put(o, "IPv6()");
        return;
    case 0x0312: /* SATA */
        if (blen >= 6) {
            put(o, "Sata(0x%X,0x%X,0x%X)", le16(d), le16(d + 2), le16(d + 4));
            return;
        }
        break;
    case 0x0317: /* NVMe */
        if (blen >= 12) {
            put(o, "NVMe(0x%X,", le32(d));
            for (int i = 0; i < 8; i++)
                put(o, "%s%02X", i ? "-" : "", d[4 + i]);
            put(o, ")");
            return;
        }
        break;
    case 0x0318: /* URI */
        put(o, "Uri(%.*s)", (int)blen, (const char *)d);
        return;
    case 0x030a: /* vendor messaging */
    case 0x0304: /* vendor media */
    case 0x0104: /* vendor hardware */
        if (blen >= 16) {
            guid_upper(d, g);
            put(o, "Ven%s(%s)", type == 1 ? "Hw" : type == 3 ? "Msg" : "Media", g);
            return;
        }
        break;
    case 0x0401: /* hard drive */
        if (blen >= 38) {
            put(o, "HD(%u,", le32(d));
            if (d[37] == 2) {
                guid_upper(d + 20, g);
                put(o, "GPT,%s,", g);
            } else if (d[37] == 1) {
                put(o, "MBR,0x%08X,", le32(d + 20));
            } else {
                put(o, "%u,0,", d[37]);
            }
            put(o, "0x%llX,0x%llX)", (unsigned long long)le64(d + 4),
                (unsigned long long)le64(d + 12));
            return;
        }
        break;
    case 0x0402: /* CD-ROM */
        if (blen >= 20) {
            put(o, "CDROM(0x%X,0x%llX,0x%llX)", le32(d), (unsigned long long)le64(d + 4),
                (unsigned long long)le64(d + 12));
            return;
        }
        break;
    case 0x0404: /* file path */
        if (ucs2_text(d, blen, s, sizeof(s), NULL)) {
            put(o, "%s", s);
            return;
        }
        break;
    case 0x0406: /* PIWG firmware file */
        if (blen >= 16) {
            guid_upper(d, g);
            put(o, "FvFile(%s)", g);
            return;
        }
        break;
    case 0x0407: /* PIWG firmware volume */
        if (blen >= 16) {
            guid_upper(d, g);
            put(o, "Fv(%s)", g);
            return;
        }
        break;
    case 0x0408: /* relative offset range */
        if (blen >= 20) {
            put(o, "Offset(0x%llX,0x%llX)", (unsigned long long)le64(d + 4),
                (unsigned long long)le64(d + 12));
            return;
        }
        break;
    }
    put(o, "Path(%u,%u,", type, sub);
    put_hex(o, d, blen);
    put(o, ")");
}

int nvram_device_path_text(const uint8_t *d, size_t len, char *buf, size_t size,
                           struct vmha_err *err)
{
    struct out o = {buf, size, 0};
    buf[0] = '\0';
    size_t p = 0;
    bool first = true;
    while (p < len) {
        if (p + 4 > len)
            return vmha_err_set(err, -EINVAL, "device path node at %zu is truncated", p);
        uint8_t type = d[p], sub = d[p + 1];
        uint16_t nlen = le16(d + p + 2);
        if (nlen < 4 || p + nlen > len)
            return vmha_err_set(err, -EINVAL, "device path node at %zu has length %u", p, nlen);
        if (type == 0x7f) {
            if (sub == 0xff)
                return 0; /* end of the entire path */
            put(&o, ","); /* end of one instance */
            first = true;
        } else {
            if (!first)
                put(&o, "/");
            node_text(&o, type, sub, d + p + 4, nlen - 4u);
            first = false;
        }
        p += nlen;
    }
    return vmha_err_set(err, -EINVAL, "device path has no end node");
}

int nvram_load_option_parse(const uint8_t *d, size_t len, struct nvram_load_option *ret,
                            struct vmha_err *err)
{
    memset(ret, 0, sizeof(*ret));
    if (len < 6)
        return vmha_err_set(err, -EINVAL, "load option of %zu bytes is truncated", len);
    ret->attributes = le32(d);
    size_t path_len = le16(d + 4), desc_len = 0;
    if (!ucs2_text(d + 6, len - 6, ret->description, sizeof(ret->description), &desc_len))
        return vmha_err_set(err, -EINVAL, "load option description is not terminated");
    size_t path_at = 6 + desc_len;
    if (path_at + path_len > len)
        return vmha_err_set(err, -EINVAL,
                            "load option device path (%zu bytes) runs past its "
                            "end",
                            path_len);
    struct vmha_err e = {0};
    if (nvram_device_path_text(d + path_at, path_len, ret->path, sizeof(ret->path), &e) < 0)
        return vmha_err_set(err, -EINVAL, "load option %s: %s", ret->description, e.msg);
    ret->optional_size = len - path_at - path_len;
    return 0;
}

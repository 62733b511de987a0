#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpus, tests/fuzz/corpus/<target>/: a few small valid inputs
per target, built here or taken from the project's own test data (tests/unit/data), never from
the build host. The corpus is committed; run this again after changing it:
    tests/fuzz/make-corpus.py
The byte layouts follow the parsers' sources and the builders of tests/unit/*_test.c."""
import hashlib
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
UNIT_DATA = os.path.join(ROOT, "tests", "unit", "data")
CORPUS = os.path.join(HERE, "corpus")


def guid(text):
    """An EFI_GUID's bytes: three fields little-endian, then eight bytes in order."""
    h = text.replace("-", "")
    return (struct.pack("<IHH", int(h[0:8], 16), int(h[8:12], 16), int(h[12:16], 16))
            + bytes.fromhex(h[16:]))


def ucs2(text):
    return text.encode("utf-16-le") + b"\0\0"


# --- UEFI NVRAM (boot/nvram.c) ---

NV_DATA_FV = "fff12b8d-7696-4c8b-a985-2747075b4f50"
AUTH_VAR = "aaf32c78-947b-439a-a180-2e144ec37792"
PLAIN_VAR = "ddcf3616-3275-4164-98b6-fe85707ffe7d"
GLOBAL = "8be4df61-93ca-11d2-aa0d-00e098032b8c"
IMAGE_SECURITY = "d719b2cb-3d3a-4596-a3bc-dad00e67656f"
ADDED, IN_DELETED_TRANSITION, DELETED, HEADER_VALID_ONLY = 0x3f, 0x3e, 0x3c, 0x7f


def dp_node(typ, sub, body):
    return struct.pack("<BBH", typ, sub, 4 + len(body)) + body


DP_END = dp_node(0x7F, 0xFF, b"")


def dp_fv_file():
    return (dp_node(4, 7, guid("7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1"))
            + dp_node(4, 6, guid("462CAA21-7614-4503-836E-8AB6F4662331")) + DP_END)


def dp_sata():
    return (dp_node(2, 1, struct.pack("<II", 0x0A0341D0, 0)) + dp_node(1, 1, bytes([2, 0x1F]))
            + dp_node(3, 0x12, struct.pack("<HHH", 0, 0xFFFF, 0)) + DP_END)


def dp_gpt_file():
    hd = struct.pack("<IQQ", 1, 2048, 204800) + guid("01234567-89ab-cdef-0123-456789abcdef") + b"\x02\x02"
    return (dp_node(2, 1, struct.pack("<II", 0x0A0841D0, 0)) + dp_node(1, 1, bytes([0, 3]))
            + dp_node(3, 0x17, struct.pack("<I", 1) + bytes(range(8)))
            + dp_node(4, 1, hd) + dp_node(4, 4, ucs2("\\EFI\\BOOT\\BOOTX64.EFI")) + DP_END)


def dp_network():
    mac = bytes([0x52, 0x54, 0, 0x12, 0x34, 0x56]) + bytes(26) + b"\x01"
    ipv4 = bytes([0, 0, 0, 0, 10, 0, 0, 1]) + bytes(15)
    return (dp_node(2, 1, struct.pack("<II", 0x0A0341D0, 0)) + dp_node(1, 1, bytes([0, 3]))
            + dp_node(3, 11, mac) + dp_node(3, 12, ipv4) + dp_node(3, 24, b"http://boot/x.efi")
            + dp_node(0x7F, 0x01, b"")  # end of one instance, a second follows
            + dp_node(3, 11, mac) + dp_node(3, 13, bytes(39)) + DP_END)


def dp_misc():
    return (dp_node(1, 4, guid("5cf32e0b-8edf-2e44-9cda-93205e99ec1c") + b"\x01")
            + dp_node(3, 1, bytes([1, 0, 0, 0])) + dp_node(3, 2, struct.pack("<HH", 1, 2))
            + dp_node(3, 10, guid("e0c14753-f9be-11d2-9a0c-0090273fc14d"))
            + dp_node(4, 2, struct.pack("<IQQ", 1, 16, 4096)) + dp_node(4, 8, struct.pack("<IQQ", 0, 0, 4095))
            + dp_node(4, 4, ucs2("\\vmlinuz")) + dp_node(5, 1, b"\x01\x02\x03") + DP_END)


def load_option(attributes, description, path, optional=b""):
    return struct.pack("<IH", attributes, len(path)) + ucs2(description) + path + optional


def fv_header(fv_length, hlen=72):
    block_map = struct.pack("<II", fv_length // 0x1000, 0x1000) + struct.pack("<II", 0, 0)
    h = bytearray(bytes(16) + guid(NV_DATA_FV) + struct.pack("<QIIHHHBB", fv_length, 0x4856465F,
                                                             0x4FEFF, hlen, 0, 0, 0, 2)
                  + block_map)
    assert len(h) == hlen
    s = sum(struct.unpack("<%dH" % (hlen // 2), bytes(h))) & 0xFFFF
    h[50:52] = struct.pack("<H", (0x10000 - s) & 0xFFFF)
    return bytes(h)


def var_record(authenticated, state, name, guid_text, data, attributes=7):
    n = ucs2(name)
    if authenticated:
        head = (struct.pack("<HBBIQ", 0x55AA, state, 0, attributes, 0) + bytes(16)
                + struct.pack("<III", 0, len(n), len(data)) + guid(guid_text))
        assert len(head) == 60
    else:
        head = struct.pack("<HBBIII", 0x55AA, state, 0, attributes, len(n), len(data)) + guid(guid_text)
        assert len(head) == 32
    return head + n + data


def var_store(authenticated, records, fv_length=0x1000):
    """A firmware volume of fv_length bytes holding one variable store with records."""
    hlen = 72
    store_size = fv_length - hlen
    body = bytearray()
    for r in records:
        body += r
        body += b"\xff" * (-(hlen + 28 + len(body)) % 4)  # records start 4-aligned
    store = (guid(AUTH_VAR if authenticated else PLAIN_VAR)
             + struct.pack("<IBBHI", store_size, 0x5A, 0xFE, 0, 0) + bytes(body))
    assert len(store) <= store_size
    store += b"\xff" * (store_size - len(store))
    return fv_header(fv_length, hlen) + store


def nvram_seeds():
    boot = [
        load_option(0x109, "UiApp", dp_fv_file()),
        load_option(1, "UEFI QEMU HARDDISK QM00001 ", dp_sata(), b"N\xac\x08\x81\x11\x9f\x59\x4d\x85\x0e\xe2\x1a\x52\x2c\x59\xb2"),
        load_option(1, "debian", dp_gpt_file()),
        load_option(1, "UEFI PXEv4", dp_network()),
    ]
    order = struct.pack("<4H", 2, 0, 1, 3)
    full = [
        var_record(True, HEADER_VALID_ONLY, "", GLOBAL, b""),
        var_record(True, DELETED, "BootOrder", GLOBAL, struct.pack("<H", 0)),
        var_record(True, IN_DELETED_TRANSITION, "Timeout", GLOBAL, struct.pack("<H", 3)),
        var_record(True, ADDED, "BootOrder", GLOBAL, order),
    ] + [var_record(True, ADDED, "Boot%04X" % i, GLOBAL, b) for i, b in enumerate(boot)] + [
        var_record(True, ADDED, "db", IMAGE_SECURITY, b"\xa1\x59\xc0\xa5" + bytes(24), 0x27),
        var_record(True, ADDED, "SecureBootEnable", "f0a30bc7-af08-4556-99c4-001009c93a44", b"\x01", 3),
    ]
    plain = [
        var_record(False, ADDED, "BootOrder", GLOBAL, struct.pack("<H", 0)),
        var_record(False, ADDED, "Boot0000", GLOBAL, load_option(1, "misc", dp_misc())),
        var_record(False, IN_DELETED_TRANSITION, "Lang", GLOBAL, b"eng\0"),
    ]
    return {
        "empty-auth.fd": var_store(True, []),
        "boot-entries-auth.fd": var_store(True, full, 0x2000),
        "plain.fd": var_store(False, plain),
        # Load options alone: what the target decodes when the input is no store.
        "loadopt-fv.bin": boot[0],
        "loadopt-sata.bin": boot[1],
        "loadopt-gpt.bin": boot[2],
        "loadopt-net.bin": boot[3],
        "loadopt-misc.bin": load_option(1, "misc", dp_misc()),
    }


# --- the state store (boot/store.c and the records kept in it) ---

def store_seeds():
    return {
        "nvram-meta": b"generation=1\ndigest=" + b"ab" * 32 + b"\nsize=540672\nhost=node1\n"
                      b"reason=stop\ntime=1733220000\n",
        "floor": b"level=qemu 7.2.0\nfamily=qemu\nmachine=pc-q35-7.2\nconfig_machine=q35\n"
                 b"window=1\nhost=node2\n",
        "install": b"state=running\nhost=node1\nattempts=2\nchanged=1733220000\n",
        "status": b"role=backup\nstate=listening\npeer=\nsession=0123456789abcdef\nepoch=42\n"
                  b"committed_ms=1733220000123\npause_ms=12\nckpt_ms=80\nbytes=4096\nepochs=42\n"
                  b"failures=0\nerror=\n",
        "ckpt-meta": b"session=0123456789abcdef\nepoch=7\n",
        "artifacts": b"kernel=/srv/vm/vmlinuz\nkernel_sha256=" + b"0" * 64 + b"\ncmdline_sha256="
                     + b"1" * 64 + b"\nhmac_sha256=" + b"2" * 64 + b"\n",
        "level-only": b"xen 4.17",
        "blank-lines": b"\n\na=1\n\nb=x=y\n",
    }


def nvram_store_seeds():
    fd = var_store(True, [var_record(True, ADDED, "BootOrder", GLOBAL, struct.pack("<H", 0))])
    digest = hashlib.sha256(fd).hexdigest().encode()

    def meta(num, dg):
        return (b"generation=%d\ndigest=%s\nsize=%d\nhost=node1\nreason=stop\ntime=1733220000\n"
                % (num, dg, len(fd)))

    booted = b"generation=2\nhost=node1\ntime=1733220000\n"
    return {
        # booted NUL gen-000001.meta NUL gen-000002.meta NUL the generations' file
        "two-generations": booted + b"\0" + meta(1, digest) + b"\0" + meta(2, digest) + b"\0" + fd,
        "newest-damaged": booted + b"\0" + meta(1, digest) + b"\0" + meta(2, b"f" * 64) + b"\0" + fd,
        # Not "booted" alone: with no generation, nvgen_list passes NULL to qsort (see
        # known-open.txt), which every such input would report.
        "not-a-record": b"generation=1\0generation=x\ndigest=short\0",
    }


# --- replication (remus/proto.c, remus/image.c) ---

PG = 4096


def be(v, n):
    return v.to_bytes(n, "big")


def sstr(s):
    return be(len(s), 1) + s


def qemu_stream(ram_pages, with_ignore=True):
    """QEMU 7.2's stream as x-ignore-shared writes it (tests/unit/remus_test.c, qemu_stream)."""
    x = be(0x5145564D, 4) + be(3, 4) + be(0x07, 1) + be(13, 4) + b"pc-i440fx-7.2"
    if with_ignore:
        x += be(0x05, 1) + sstr(b"configuration/capabilities") + be(1, 4) + be(1, 4) + sstr(b"x-ignore-shared")
        x += be(0x05, 1) + sstr(b"configuration/uuid") + be(1, 4) + bytes(range(16))
        x += be(0x05, 1) + sstr(b"configuration/target-page-bits") + be(1, 4) + be(12, 4)
    x += be(0x01, 1) + be(3, 4) + sstr(b"ram") + be(0, 4) + be(4, 4)
    x += be((ram_pages + 1) * PG | 0x04, 8)
    x += sstr(b"pc.ram") + be(ram_pages * PG, 8) + (be(0, 8) if with_ignore else b"")
    x += sstr(b"pc.rom") + be(PG, 8) + (be(0xC0000, 8) if with_ignore else b"")
    x += be(0x10, 8) + b"\x7e\0\0\0\x03 the ROM and the devices"
    return x


def save_image(xml, stream):
    """A libvirt QEMU save image: header (hv_libvirt_save_header), XML area, QEMU's stream."""
    data_len = (len(xml) + 1 + 4095) // 4096 * 4096
    header = b"LibvirtQemudSave" + struct.pack("<5I", 2, data_len, 1, 0, 0) + bytes(56)
    assert len(header) == 92
    return header + xml + bytes(data_len - len(xml)) + stream


def ram_section(full, ram_pages, pages):
    x = b"VMHA-RAM" + be(1 if full else 0, 8) + be(ram_pages * PG, 8) + be(len(pages), 8)
    for p in pages:
        x += be(p, 8) + bytes([p + 1]) * PG
    return x


def dev_section(dev):
    return b"VMHA-DEV" + be(len(dev), 8) + dev


def disk_record(disk, offset, data=None, zero_len=0):
    """One disk record (remus/disk.c): index, flags (1: zeroes), offset, length, data."""
    if data is None:
        return be(disk, 4) + be(1, 4) + be(offset, 8) + be(zero_len, 8)
    return be(disk, 4) + be(0, 4) + be(offset, 8) + be(len(data), 8) + data


def disk_section(records):
    body = b"".join(records)
    return b"VMHA-DSK" + be(len(body), 8) + body


def remus_body_seeds():
    dev = save_image(b"<domain type='qemu'><name>ft1</name></domain>", qemu_stream(3))
    return {
        "disk-writes": ram_section(False, 3, [1]) + disk_section(
            [disk_record(0, 512, b"vmha-rec 1\n".ljust(512, b"\0")), disk_record(1, 0, None, 4096),
             disk_record(0, 65024, b"z" * 512)]) + dev_section(dev),
        "disk-empty": ram_section(True, 3, [0]) + disk_section([]) + dev_section(dev),
        "nvram": ram_section(False, 3, [2]) + disk_section([]) + b"VMHA-NVR" + be(6, 8) + b"vars-1"
        + dev_section(dev),
        "full": ram_section(True, 3, [1, 2]) + dev_section(dev),
        "delta-two-sections": ram_section(False, 3, [0]) + ram_section(False, 3, [0, 2]) + dev_section(dev),
        "full-no-pages": ram_section(True, 3, []) + dev_section(dev),
        "dev-not-a-save-image": ram_section(True, 1, [0]) + dev_section(b"QEVM"),
    }


def stream_merge_seeds():
    # byte 0: pages of memory, byte 1: which are not zero, then the stream
    return {
        "three-pages": bytes([3, 0b110]) + qemu_stream(3),
        "three-pages-zero": bytes([3, 0]) + qemu_stream(3),
        "restore-form": bytes([3, 0b111]) + qemu_stream(3, with_ignore=False),
        "one-page": bytes([1, 1]) + qemu_stream(1),
    }


def remus_header_seeds():
    return {
        "header": b"VMHA-CKPT 2 ft1 0123456789abcdef 42\n",
        "header-long-name": b"VMHA-CKPT 2 " + b"g" * 127 + b" ffffffffffffffff 18446744073709551615\n",
        "header-v1": b"VMHA-CKPT 1 ft1 0123456789abcdef 42\n",
        "stale-mark": b"0000000000000abc 10",
        "stale-mark-extra": b"0000000000000abc 10 x",
    }


def nbd_opt(opt, data):
    return struct.pack(">QII", 0x49484156454F5054, opt, len(data)) + data


def nbd_req(typ, cookie, off, length, payload=b"", flags=0):
    return struct.pack(">IHHQQI", 0x25609513, flags, typ, cookie, off, length) + payload


def remus_nbd_seeds():
    """What QEMU's NBD client sends (remus/nbd.c): fixed newstyle, NBD_OPT_GO (or the old
    NBD_OPT_EXPORT_NAME) for export "vda", then writes, zeroes, a flush and a disconnect."""
    go = nbd_opt(8, b"") + nbd_opt(7, struct.pack(">I", 3) + b"vda" + struct.pack(">HH", 1, 3))
    session = (nbd_req(1, 1, 0, 512, b"\xab" * 512) + nbd_req(6, 2, 8192, 65536)
               + nbd_req(3, 3, 0, 0) + nbd_req(1, 4, 4096, 16, b"x" * 16) + nbd_req(0, 5, 0, 512)
               + nbd_req(2, 6, 0, 0))
    return {
        "go": struct.pack(">I", 3) + go + session,
        "export-name": struct.pack(">I", 1) + nbd_opt(1, b"vda") + session,
        "info-then-go": struct.pack(">I", 3) + nbd_opt(6, struct.pack(">I", 3) + b"vda\0\0")
        + go + session,
        "wrong-name": struct.pack(">I", 3) + nbd_opt(7, struct.pack(">I", 3) + b"vdb\0\0")
        + nbd_opt(2, b""),
        "out-of-range": struct.pack(">I", 3) + go + nbd_req(1, 1, (1 << 20) - 8, 16, b"y" * 16)
        + nbd_req(6, 2, 1 << 63, 4096),
    }


# --- hypervisor configurations (hv/) ---

def libvirt_xml_seeds():
    seeds = {}
    for name in sorted(os.listdir(UNIT_DATA)):
        if name.endswith(".xml"):
            with open(os.path.join(UNIT_DATA, name), "rb") as f:
                seeds[name] = f.read()
    seeds["memfd-disks-nics.xml"] = (
        b"<domain type='kvm'><name>ft1</name><uuid>c7a5fdbd-cdaf-9455-926a-d65c16db1809</uuid>"
        b"<memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>"
        b"<os><type machine='q35'>hvm</type><boot dev='hd'/></os><devices>"
        b"<disk type='file' device='disk'><source file='/a.img'/><boot order='1'/></disk>"
        b"<disk type='file' device='cdrom'><readonly/></disk>"
        b"<interface type='network'><source network='default'/></interface></devices></domain>")
    return seeds


def xl_cfg_seeds():
    return {
        "pvh.cfg": b"# a PVH guest\nname = \"web1\"\nuuid = \"5E0B3A7C-6D4F-4B1E-9A2C-766D6861A001\"\n"
                   b"type = \"pvh\"\nmemory = 256\nmaxmem = 512\nvcpus = 2\n"
                   b"kernel = \"/srv/vm/vmlinuz\"\nramdisk = \"/srv/vm/initrd.img\"\n"
                   b"root = \"/dev/xvda\"\nextra = \"console=hvc0 name=x\"\n"
                   b"disk = [ 'format=raw, vdev=xvda, access=ro, target=/srv/vm/root.img',\n"
                   b"         'format=raw, vdev=xvdb, access=ro, devtype=cdrom, target=/srv/vm/cd.iso' ]\n"
                   b"vif = [ 'mac=00:16:3e:00:00:01,bridge=xenbr0' ]\non_reboot = \"destroy\"\n",
        "hvm.cfg": b"name='h'\nbuilder='hvm'\nvcpus=1\nmaxvcpus=4\ncmdline='x=1'\n"
                   b"vif=['bridge=br0,model=e1000,script=vif-bridge,vifname=v0,ip=10.0.0.2']\n"
                   b"on_crash='preserve'\non_poweroff=\"destroy\"\n",
        "pv-minimal.cfg": b"name = \"p\"\nkernel = \"/k\"\ndisk = ['/dev/vg/p,raw,xvda,rw']\n",
    }


# --- the agent (agent/ocf_params.c, agent/ocf_server.c) ---

def ocf_env(extra=()):
    env = [b"OCF_RESKEY_config=/srv/cluster/web1.xml", b"OCF_RESKEY_name=web1",
           b"OCF_RESKEY_state_dir=/srv/cluster/vmha", b"OCF_RESKEY_CRM_meta_timeout=20000",
           b"OCF_RESKEY_CRM_meta_interval=10000", b"OCF_RESOURCE_INSTANCE=web1:0",
           b"OCF_RESKEY_crm_feature_set=3.17.4", b"OCF_RESKEY_CRM_meta_on_node=node1"]
    return list(env) + list(extra)


def ocf_params_seeds():
    def nul(entries):
        return b"".join(e + b"\0" for e in entries)
    return {
        "monitor": nul(ocf_env()),
        "migrate": nul(ocf_env([b"OCF_RESKEY_migration_transport=tls", b"OCF_RESKEY_migrate_target=qemu+tls://%n-mig/system",
                                b"OCF_RESKEY_migrateuri=tcp://%n-mig:49152", b"OCF_RESKEY_migration_speed=100",
                                b"OCF_RESKEY_shutdown_timeout=2min", b"OCF_RESKEY_force_stop=yes",
                                b"OCF_RESKEY_CRM_meta_migrate_target=node2", b"OCF_RESKEY_CRM_meta_migrate_source=node1"])),
        "libxl": nul(ocf_env([b"OCF_RESKEY_hypervisor=libxl", b"OCF_RESKEY_migration_policy=true",
                              b"OCF_RESKEY_install_kernel=/srv/k", b"OCF_RESKEY_install_media=/srv/i.iso",
                              b"OCF_RESKEY_kernel_sha256=" + b"a" * 64])),
        "replicate": nul(ocf_env([b"OCF_RESKEY_replicate=true", b"OCF_RESKEY_checkpoint_interval=100",
                                  b"OCF_RESKEY_replication_address=%n-repl", b"OCF_RESKEY_replication_port=7791",
                                  b"OCF_RESKEY_replication_tls=on", b"OCF_RESKEY_CRM_meta_notify_type=pre",
                                  b"OCF_RESKEY_CRM_meta_notify_operation=promote",
                                  b"OCF_RESKEY_CRM_meta_notify_promote_uname=node2", b"VMHA_RUNDIR=/run/x"])),
        "unterminated": b"OCF_RESKEY_config=/a\0OCF_RESKEY_hypervisor=xen:///system",
    }


def agent_server_seeds():
    # DEADLINE_MS far ahead of any machine's uptime, the environment, an empty entry.
    head = b"DEADLINE_MS=99999999999999\0"
    return {
        "monitor": head + b"".join(e + b"\0" for e in ocf_env()) + b"\0",
        "no-name": head + b"OCF_RESKEY_config=/srv/a.xml\0\0",
        "bad-params": head + b"OCF_RESKEY_config=relative\0\0",
        "deadline-passed": b"DEADLINE_MS=1\0OCF_RESKEY_config=/a\0\0",
        "unfinished": head + b"OCF_RESKEY_config=/a\0",
    }


TARGETS = {
    "fuzz_nvram": nvram_seeds,
    "fuzz_nvram_store": nvram_store_seeds,
    "fuzz_store": store_seeds,
    "fuzz_remus_header": remus_header_seeds,
    "fuzz_remus_nbd": remus_nbd_seeds,
    "fuzz_remus_body": remus_body_seeds,
    "fuzz_stream_merge": stream_merge_seeds,
    "fuzz_libvirt_xml": libvirt_xml_seeds,
    "fuzz_xl_cfg": xl_cfg_seeds,
    "fuzz_ocf_params": ocf_params_seeds,
    "fuzz_agent_server": agent_server_seeds,
}


def main():
    total = 0
    for target, make in TARGETS.items():
        d = os.path.join(CORPUS, target)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        for name, data in make().items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
            total += len(data)
    print("%s: %d bytes" % (CORPUS, total), file=sys.stderr)


if __name__ == "__main__":
    main()

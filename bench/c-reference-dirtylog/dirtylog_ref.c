// SPDX-License-Identifier: MIT
//
// C reference for the KvmSharp.DirtyLog benchmarks: the dirty-log ioctls a VMM makes to poll a large slot, with
// plain syscalls, for the same work as the SDK's MemorySlot.GetDirtyLog(DirtyPageLog) / ClearDirtyLog(DirtyPageLog).
//   libdirtylogref.so - loaded in-process by KvmSharp.DirtyLog.Benchmarks (P/Invoke), so BenchmarkDotNet times both
//                       sides in one run; the guest code is passed in from C# (assembled by Iced there), so both
//                       sides run the very same guest.
//   dirtylog_ref      - a standalone program (-DDIRTYLOG_REF_MAIN) with the same guest written out as bytes below.
//
// The VM (mirrors DirtyLogVm.cs): one plain memory slot 0 at GPA 0 of MAP_PRIVATE anonymous memory with
// KVM_MEM_LOG_DIRTY_PAGES (KVM_SET_USER_MEMORY_REGION2 when KVM_CAP_USER_MEMORY2 is there, as the SDK does),
// optionally KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 (PROTECT_ENABLE, not INITIALLY_SET) enabled before the slot; one vCPU
// in real mode with CS = DS = SS = ES = 0x1000 (base 0x10000), where the guest code lives inside the logging slot.
// One bitmap of (pages + 63) / 64 words, 64-byte aligned, allocated once; every GET writes it and every CLEAR reads it.
// System headers are Linux 6.1: kvm_userspace_memory_region2 comes from bench/Shared/kvm_uapi_618.h.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../Shared/kvm_uapi_618.h"

#define EXPORT __attribute__((visibility("default")))
#define SLOT 0
#define UNEXPECTED_EXIT (-100000)

static struct {
    int kvm, vm, vcpu;
    struct kvm_run *run;
    size_t run_size;
    uint8_t *memory;
    uint64_t memory_size;
    uint64_t pages;
    uint64_t *bitmap;
    size_t words;
    /* The dirty ring (dl_ref_open_ring): the vCPU's entries, mapped at page 64 of the vCPU fd, and what the last
     * harvest collected (slot, offset), as the SDK's DirtyRing.Harvest copies them into a span. */
    struct kvm_dirty_gfn *ring;
    uint32_t ring_bytes, ring_entries, fetch;
    struct { uint32_t slot; uint64_t offset; } *harvested;
} g = { .kvm = -1, .vm = -1, .vcpu = -1 };

static int64_t fail(void) { return -(int64_t)errno; }

EXPORT void dl_ref_close(void)
{
    if (g.ring) munmap(g.ring, g.ring_bytes);
    free(g.harvested);
    if (g.run) munmap(g.run, g.run_size);
    if (g.vcpu >= 0) close(g.vcpu);
    if (g.vm >= 0) close(g.vm);
    if (g.memory) munmap(g.memory, g.memory_size);
    if (g.kvm >= 0) close(g.kvm);
    free(g.bitmap);
    memset(&g, 0, sizeof g);
    g.kvm = g.vm = g.vcpu = -1;
}

/* KVM_DIRTY_LOG_PAGE_OFFSET of x86's asm/kvm.h (the ring's page offset in the vCPU's mmap area). */
#define DIRTY_RING_PAGE_OFFSET 64

static int64_t open_vm(uint64_t memory_size, int manual_protect, uint32_t ring_bytes, const uint8_t *code,
                       uint64_t code_length, uint64_t code_gpa);

/* Sets up the VM described at the top; 0 or -errno. */
EXPORT int64_t dl_ref_open(uint64_t memory_size, int manual_protect, const uint8_t *code, uint64_t code_length, uint64_t code_gpa)
{
    return open_vm(memory_size, manual_protect, 0, code, code_length, code_gpa);
}

/* The same VM with a dirty ring of ring_bytes per vCPU (KVM_CAP_DIRTY_LOG_RING_ACQ_REL, before the vCPU) instead of
 * a bitmap; the ring is mapped MAP_SHARED read/write. 0 or -errno. */
EXPORT int64_t dl_ref_open_ring(uint64_t memory_size, uint32_t ring_bytes, const uint8_t *code, uint64_t code_length, uint64_t code_gpa)
{
    if (ring_bytes == 0) return -EINVAL;
    return open_vm(memory_size, 0, ring_bytes, code, code_length, code_gpa);
}

static int64_t open_vm(uint64_t memory_size, int manual_protect, uint32_t ring_bytes, const uint8_t *code,
                       uint64_t code_length, uint64_t code_gpa)
{
    dl_ref_close();
    long page = sysconf(_SC_PAGESIZE);
    if (memory_size == 0 || memory_size % (uint64_t)page != 0 || code_gpa + code_length > memory_size || code_gpa % 16 != 0)
        return -EINVAL;
    if ((g.kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC)) < 0) goto err;
    if ((g.vm = ioctl(g.kvm, KVM_CREATE_VM, 0)) < 0) goto err;
    if (manual_protect) {
        struct kvm_enable_cap cap = { .cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, .args = { KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE } };
        if (ioctl(g.vm, KVM_ENABLE_CAP, &cap) < 0) goto err;
    }
    if (ring_bytes) {
        struct kvm_enable_cap cap = { .cap = KVM_CAP_DIRTY_LOG_RING_ACQ_REL, .args = { ring_bytes } };
        if (ioctl(g.vm, KVM_ENABLE_CAP, &cap) < 0) goto err;
        g.ring_bytes = ring_bytes;
        g.ring_entries = ring_bytes / sizeof(struct kvm_dirty_gfn);
        if (!(g.harvested = calloc(g.ring_entries, sizeof *g.harvested))) { errno = ENOMEM; goto err; }
    }
    g.memory_size = memory_size;
    g.memory = mmap(NULL, memory_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g.memory == MAP_FAILED) { g.memory = NULL; goto err; }
    memcpy(g.memory + code_gpa, code, code_length);
    if (ioctl(g.vm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY2_) > 0) {
        struct kvm_userspace_memory_region2_ region = {
            .slot = SLOT, .flags = KVM_MEM_LOG_DIRTY_PAGES, .guest_phys_addr = 0,
            .memory_size = memory_size, .userspace_addr = (uint64_t)(uintptr_t)g.memory,
        };
        if (ioctl(g.vm, KVM_SET_USER_MEMORY_REGION2_, &region) < 0) goto err;
    } else {
        struct kvm_userspace_memory_region region = {
            .slot = SLOT, .flags = KVM_MEM_LOG_DIRTY_PAGES, .guest_phys_addr = 0,
            .memory_size = memory_size, .userspace_addr = (uint64_t)(uintptr_t)g.memory,
        };
        if (ioctl(g.vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) goto err;
    }
    g.pages = memory_size / (uint64_t)page;
    g.words = (g.pages + 63) / 64;
    /* 64-byte aligned, like the SDK's DirtyPageLog: at some page offsets (8-24 bytes after the kernel's page-aligned
     * bitmap) the kernel's copy is ten times slower (4K aliasing; see the project README). */
    size_t bytes = (g.words * sizeof(uint64_t) + 63) & ~(size_t)63;
    if (!(g.bitmap = aligned_alloc(64, bytes))) { errno = ENOMEM; goto err; }
    memset(g.bitmap, 0, bytes);

    if ((g.vcpu = ioctl(g.vm, KVM_CREATE_VCPU, 0)) < 0) goto err;
    int size = ioctl(g.kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (size < 0) goto err;
    g.run_size = (size_t)size;
    g.run = mmap(NULL, g.run_size, PROT_READ | PROT_WRITE, MAP_SHARED, g.vcpu, 0);
    if (g.run == MAP_FAILED) { g.run = NULL; goto err; }
    if (ring_bytes) {
        g.ring = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, g.vcpu, DIRTY_RING_PAGE_OFFSET * page);
        if (g.ring == MAP_FAILED) { g.ring = NULL; goto err; }
    }
    struct kvm_sregs sregs;
    if (ioctl(g.vcpu, KVM_GET_SREGS, &sregs) < 0) goto err;
    struct kvm_segment *segs[] = { &sregs.cs, &sregs.ds, &sregs.es, &sregs.ss };
    for (size_t i = 0; i < sizeof segs / sizeof segs[0]; i++) {
        segs[i]->base = code_gpa;
        segs[i]->selector = (uint16_t)(code_gpa >> 4);
    }
    if (ioctl(g.vcpu, KVM_SET_SREGS, &sregs) < 0) goto err;
    struct kvm_regs regs = { .rip = 0, .rflags = 2 };
    if (ioctl(g.vcpu, KVM_SET_REGS, &regs) < 0) goto err;
    return 0;
err:;
    int64_t rc = fail();
    dl_ref_close();
    return rc;
}

/* KVM_GET_DIRTY_LOG of the whole slot into the bitmap. */
EXPORT int64_t dl_ref_get(void)
{
    struct kvm_dirty_log log = { .slot = SLOT, .dirty_bitmap = g.bitmap };
    return ioctl(g.vm, KVM_GET_DIRTY_LOG, &log) < 0 ? fail() : 0;
}

/* Probe only: KVM_GET_DIRTY_LOG of the C side's slot into a caller's bitmap of at least as many words. */
EXPORT int64_t dl_ref_get_to(uint64_t *bitmap)
{
    struct kvm_dirty_log log = { .slot = SLOT, .dirty_bitmap = bitmap };
    return ioctl(g.vm, KVM_GET_DIRTY_LOG, &log) < 0 ? fail() : 0;
}

/* KVM_CLEAR_DIRTY_LOG of exactly the pages the bitmap holds (the whole slot's range, manual protect). */
EXPORT int64_t dl_ref_clear(void)
{
    struct kvm_clear_dirty_log log = { .slot = SLOT, .first_page = 0, .num_pages = (uint32_t)g.pages, .dirty_bitmap = g.bitmap };
    return ioctl(g.vm, KVM_CLEAR_DIRTY_LOG, &log) < 0 ? fail() : 0;
}

/* GET, then CLEAR of what it reported. */
EXPORT int64_t dl_ref_get_clear(void)
{
    int64_t rc = dl_ref_get();
    return rc < 0 ? rc : dl_ref_clear();
}

/* One KVM_RUN, which must end in the guest's HLT (the next run continues after it). */
EXPORT int64_t dl_ref_run(void)
{
    for (;;) {
        if (ioctl(g.vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR) continue;
            return fail();
        }
        return g.run->exit_reason == KVM_EXIT_HLT ? 0 : UNEXPECTED_EXIT - (int64_t)g.run->exit_reason;
    }
}

/* A polling round after the guest wrote its pages: KVM_RUN, GET, and with clear != 0 CLEAR. */
EXPORT int64_t dl_ref_round(int clear)
{
    int64_t rc = dl_ref_run();
    if (rc < 0) return rc;
    return clear ? dl_ref_get_clear() : dl_ref_get();
}

/* Dirty pages in the bitmap as the last GET left it. */
EXPORT int64_t dl_ref_count(void)
{
    int64_t n = 0;
    for (size_t i = 0; i < g.words; i++) n += __builtin_popcountll(g.bitmap[i]);
    return n;
}

/* Collects every entry KVM published since the last harvest, oldest first, into g.harvested: the flags with acquire
 * (== KVM_DIRTY_GFN_F_DIRTY), then slot and offset, then KVM_DIRTY_GFN_F_RESET with release (the selftest's
 * dirty_ring_collect_one). Returns how many. */
EXPORT int64_t dl_ref_ring_harvest(void)
{
    int64_t n = 0;
    uint32_t mask = g.ring_entries - 1;
    while (n < g.ring_entries) {
        struct kvm_dirty_gfn *e = &g.ring[g.fetch & mask];
        if (__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) != KVM_DIRTY_GFN_F_DIRTY) break;
        g.harvested[n].slot = e->slot;
        g.harvested[n].offset = e->offset;
        __atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
        g.fetch++;
        n++;
    }
    return n;
}

/* Harvest, then KVM_RESET_DIRTY_RINGS; returns the harvested count, or -errno (also when the reset freed another
 * number of entries: -EPROTO). */
EXPORT int64_t dl_ref_ring_poll(void)
{
    int64_t n = dl_ref_ring_harvest();
    int reset = ioctl(g.vm, KVM_RESET_DIRTY_RINGS, 0);
    if (reset < 0) return fail();
    return reset == n ? n : -EPROTO;
}

/* A ring round: KVM_RUN (the guest writes its pages), harvest, reset; the harvested count or < 0. */
EXPORT int64_t dl_ref_ring_round(void)
{
    int64_t rc = dl_ref_run();
    return rc < 0 ? rc : dl_ref_ring_poll();
}

/* The offset of the i-th entry of the last harvest (for the benchmarks' setup checks). */
EXPORT int64_t dl_ref_ring_offset(int64_t i)
{
    return i >= 0 && i < (int64_t)g.ring_entries ? (int64_t)g.harvested[i].offset : -EINVAL;
}

#ifdef DIRTYLOG_REF_MAIN
/* The guest DirtyLogVm.Code(128) assembles with Iced (FirstPage = 32; real mode, at GPA 0x10000), byte for byte:
 *   start: mov ax, 0x2000 ; mov cx, 128
 *   next:  mov ds, ax ; mov byte [0], 1 ; add ax, 0x100 ; loop next
 *          hlt ; jmp start
 */
static const uint8_t guest[] = {
    0xB8, 0x00, 0x20, 0xB9, 0x80, 0x00, 0x8E, 0xD8, 0xC6, 0x06, 0x00, 0x00, 0x01, 0x05, 0x00, 0x01,
    0xE2, 0xF4, 0xF4, 0xEB, 0xEB,
};

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
    int iterations = argc > 1 ? atoi(argv[1]) : 1000;
    for (int manual = 0; manual <= 1; manual++) {
        int64_t rc = dl_ref_open(1ULL << 30, manual, guest, sizeof guest, 0x10000);
        if (rc < 0) { fprintf(stderr, "open: %s\n", strerror((int)-rc)); return 1; }
        double t0 = now_us();
        for (int i = 0; i < iterations; i++)
            if ((rc = manual ? dl_ref_get_clear() : dl_ref_get()) < 0) { fprintf(stderr, "get: %s\n", strerror((int)-rc)); return 1; }
        double empty = (now_us() - t0) / iterations;
        t0 = now_us();
        for (int i = 0; i < iterations; i++)
            if ((rc = dl_ref_round(manual)) < 0) { fprintf(stderr, "round: %lld\n", (long long)rc); return 1; }
        double round = (now_us() - t0) / iterations;
        printf("1 GiB slot, %s: empty %s %.2f us; guest writes %lld pages + %s %.2f us\n",
            manual ? "manual protect" : "get clears", manual ? "GET+CLEAR" : "GET", empty,
            (long long)dl_ref_count(), manual ? "GET+CLEAR" : "GET", round);
        dl_ref_close();
    }
    /* The dirty ring: a 64 KiB ring (4096 entries, soft limit 4032); harvest + reset of an empty ring, then rounds. */
    int64_t rc = dl_ref_open_ring(1ULL << 30, 1 << 16, guest, sizeof guest, 0x10000);
    if (rc < 0) { fprintf(stderr, "open ring: %s\n", strerror((int)-rc)); return 1; }
    double t0 = now_us();
    for (int i = 0; i < iterations; i++)
        if ((rc = dl_ref_ring_poll()) != 0) { fprintf(stderr, "ring poll: %lld\n", (long long)rc); return 1; }
    double empty = (now_us() - t0) / iterations;
    t0 = now_us();
    for (int i = 0; i < iterations; i++)
        if ((rc = dl_ref_ring_round()) < 0) { fprintf(stderr, "ring round: %lld\n", (long long)rc); return 1; }
    double round = (now_us() - t0) / iterations;
    printf("1 GiB slot, 64 KiB dirty ring: empty harvest+reset %.2f us; guest writes %lld pages + harvest+reset %.2f us\n",
        empty, (long long)rc, round);
    dl_ref_close();
    return 0;
}
#endif

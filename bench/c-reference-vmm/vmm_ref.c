// SPDX-License-Identifier: MIT
//
// C reference for the KvmSharp.Vmm benchmarks: the same KVM calls as the micro-VM, with plain syscalls.
//   libvmmref.so - loaded in-process by KvmSharp.Vmm.Benchmarks (P/Invoke), so BenchmarkDotNet times both sides
//                  in one run; the guest code and trampoline bytes are passed in from C# (assembled by Iced there),
//                  so both sides run the very same guest.
//   vmm_ref      - a standalone program (-DVMM_REF_MAIN) with the same guest written out as bytes below.
//
// Memory layout, long-mode state and call ABI mirror src/KvmSharp.Vmm (Arch/X86_64/Layout.cs, GUEST-ABI.md):
// one guest_memfd (MMAP|INIT_SHARED) mapped once and bound at GPA 0 with userspace_addr = that mapping; or, on a
// kernel without guest_memfd (KVM_CAP_GUEST_MEMFD = 0, e.g. built without CONFIG_KVM_GUEST_MEMFD), MAP_PRIVATE
// anonymous memory in a plain slot, as GuestMemoryBacking.HostMemory does. vmm_ref_open picks the mode the way the
// C# side's best backing is picked (KVM_CAP_GUEST_MEMFD, then MMAP|INIT_SHARED in KVM_CAP_GUEST_MEMFD_FLAGS);
// vmm_ref_memory() says which, and VMM_REF_MEMORY=host|guest_memfd in the environment forces one.
// System headers are Linux 6.1, older than guest_memfd: the newer uAPI comes from bench/Shared/kvm_uapi_618.h.
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

/* Layout.cs */
#define GDT 0x1000UL
#define PML4 0x2000UL
#define PDPT 0x3000UL
#define PD 0x4000UL
#define PT 0x5000UL
#define TRAMPOLINE 0x6000UL
#define STACK_GUARD 0x7000UL
#define STACK_TOP 0x28000UL
#define CALL_REGION 0x28000UL
#define CALL_RESULT (CALL_REGION + 0x58)
#define IMAGE_BASE 0x100000UL
#define COM1 0x3f8
#define PORT_EXIT 0x500
#define PORT_RETURN 0x501

#define EXPORT __attribute__((visibility("default")))

static int kvm_fd = -1;
static int run_size;

/* What holds guest memory: the values of vmm_ref_memory(). */
enum { MEMORY_GUEST_MEMFD = 0, MEMORY_HOST = 1 };
static int memory_mode = MEMORY_GUEST_MEMFD;

struct microvm {
    int vm, gmem, vcpu;
    uint8_t *mem;
    uint64_t mem_size;
    struct kvm_run *run;
    uint64_t console; /* bytes seen on COM1 (the C side keeps a count, not the text) */
    int legacy_slot;  /* host memory on a kernel without KVM_CAP_USER_MEMORY2: KVM_SET_USER_MEMORY_REGION */
};

#define MICROVM_NONE { -1, -1, -1, NULL, 0, NULL, 0, 0 }
static struct microvm the_vm = MICROVM_NONE;

/* The best backing of a default VM, as GuestMemory.BestBacking decides it (there on the VM, here on /dev/kvm, which
 * answers the same for the default type): a guest_memfd needs KVM_CAP_GUEST_MEMFD and MMAP|INIT_SHARED. */
static int best_memory(void)
{
    const char *forced = getenv("VMM_REF_MEMORY");
    if (forced && strcmp(forced, "host") == 0) return MEMORY_HOST;
    if (forced && strcmp(forced, "guest_memfd") == 0) return MEMORY_GUEST_MEMFD;
    if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_) <= 0) return MEMORY_HOST;
    long flags = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_FLAGS_);
    uint64_t needed = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;
    return flags > 0 && ((uint64_t)flags & needed) == needed ? MEMORY_GUEST_MEMFD : MEMORY_HOST;
}

/* The vCPU's CPUID table: KVM_GET_SUPPORTED_CPUID once per /dev/kvm (as GuestCpuid.For asks once per Kvm object),
 * normalised as GuestCpuid.Normalize does it (CpuidPolicy.Sandbox, the micro-VM's default); KVM_SET_CPUID2 per vCPU
 * in boot(), where MicroVm.Create sets it. */
static struct kvm_cpuid2 *cpuid_table;

/* KVM_CAP_ENFORCE_PV_FEATURE_CPUID on every vCPU when /dev/kvm offers it, as MicroVm.Create does for the sandbox
 * table (GuestCpuid.EnforcesPvFeatures: its leaf 0x40000001 is all zero); asked once, in load_cpuid. */
#define KVM_CAP_ENFORCE_PV_FEATURE_CPUID_ 190
static int enforce_pv;

static int load_cpuid(void)
{
    for (int n = 64; n <= 256; n *= 2) {
        struct kvm_cpuid2 *t = calloc(1, sizeof *t + (size_t)n * sizeof t->entries[0]);
        if (!t) return -ENOMEM;
        t->nent = (uint32_t)n;
        if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, t) < 0) {
            int e = errno;
            free(t);
            if (e == E2BIG) continue;
            return -e;
        }
        uint32_t out = 0;
        for (uint32_t i = 0; i < t->nent; i++) {
            struct kvm_cpuid_entry2 e = t->entries[i];
            switch (e.function) {
            case 0x1:
                e.ebx = (e.ebx & 0xFFFFu) | (1u << 16);                  /* APIC id 0, one logical processor */
                e.ecx = (e.ecx | (1u << 31)) & ~((1u << 21) | (1u << 24)); /* +HYPERVISOR -X2APIC -TSC_DEADLINE */
                e.edx &= ~(1u << 28);                                      /* -HTT */
                break;
            case 0x7:
                if (e.index == 0) e.edx &= ~((1u << 22) | (1u << 24) | (1u << 25)); /* -AMX */
                break;
            case 0xB:
            case 0x1F:
                e.edx = 0; /* x2APIC id 0 */
                break;
            case 0xD:
                if (e.index == 17 || e.index == 18) continue; /* AMX tile state */
                if (e.index == 0) e.eax &= ~((1u << 17) | (1u << 18));
                break;
            case 0x40000001:
                e.eax = e.ebx = e.ecx = e.edx = 0; /* no paravirtual features */
                break;
            default:
                break;
            }
            t->entries[out++] = e;
        }
        t->nent = out;
        cpuid_table = t;
        enforce_pv = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_ENFORCE_PV_FEATURE_CPUID_) > 0;
        return 0;
    }
    return -E2BIG;
}

EXPORT int vmm_ref_open(void)
{
    if (kvm_fd >= 0) return 0;
    kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm_fd < 0) return -errno;
    memory_mode = best_memory();
    int rc = load_cpuid();
    if (rc < 0) {
        close(kvm_fd);
        kvm_fd = -1;
    }
    return rc;
}

/* 0: guest_memfd, 1: host memory (valid after vmm_ref_open). */
EXPORT int vmm_ref_memory(void) { return memory_mode; }

EXPORT void vmm_ref_close(void)
{
    if (kvm_fd >= 0) close(kvm_fd);
    kvm_fd = -1;
    free(cpuid_table);
    cpuid_table = NULL;
}

static void destroy(struct microvm *m)
{
    if (m->run) munmap(m->run, (size_t)run_size);
    if (m->vcpu >= 0) close(m->vcpu);
    if (m->vm >= 0 && m->mem) {
        /* The SDK deletes the slot explicitly (MemorySlot.Dispose); do the same ioctl. */
        if (m->legacy_slot) {
            struct kvm_userspace_memory_region r = { .slot = 0 };
            ioctl(m->vm, KVM_SET_USER_MEMORY_REGION, &r);
        } else {
            struct kvm_userspace_memory_region2_ r = { .slot = 0, .flags = m->gmem >= 0 ? KVM_MEM_GUEST_MEMFD_ : 0,
                                                       .guest_memfd = m->gmem >= 0 ? (uint32_t)m->gmem : 0 };
            ioctl(m->vm, KVM_SET_USER_MEMORY_REGION2_, &r);
        }
    }
    if (m->mem) munmap(m->mem, m->mem_size);
    if (m->gmem >= 0) close(m->gmem);
    if (m->vm >= 0) close(m->vm);
    *m = (struct microvm)MICROVM_NONE;
}

/* Guest memory and slot 0, as GuestMemory.Create does it for each backing. */
static int add_memory(struct microvm *m, uint64_t mem_size)
{
    if (memory_mode == MEMORY_HOST) {
        /* AnonymousMemory.Allocate + Vm.AddMemorySlot (which asks KVM_CAP_USER_MEMORY2 once per VM). */
        void *mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED) return -1;
        m->mem = mem;
        m->legacy_slot = ioctl(m->vm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY2_) <= 0;
        if (m->legacy_slot) {
            struct kvm_userspace_memory_region r = { .slot = 0, .guest_phys_addr = 0, .memory_size = mem_size,
                                                     .userspace_addr = (uint64_t)(uintptr_t)mem };
            return ioctl(m->vm, KVM_SET_USER_MEMORY_REGION, &r);
        }
        struct kvm_userspace_memory_region2_ r = { .slot = 0, .guest_phys_addr = 0, .memory_size = mem_size,
                                                   .userspace_addr = (uint64_t)(uintptr_t)mem };
        return ioctl(m->vm, KVM_SET_USER_MEMORY_REGION2_, &r);
    }
    struct kvm_create_guest_memfd_ g = { .size = mem_size, .flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED };
    m->gmem = ioctl(m->vm, KVM_CREATE_GUEST_MEMFD_, &g);
    if (m->gmem < 0) return -1;
    void *mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_SHARED, m->gmem, 0);
    if (mem == MAP_FAILED) return -1;
    m->mem = mem;
    struct kvm_userspace_memory_region2_ r = {
        .slot = 0, .flags = KVM_MEM_GUEST_MEMFD_, .guest_phys_addr = 0, .memory_size = mem_size,
        .userspace_addr = (uint64_t)(uintptr_t)mem, .guest_memfd_offset = 0, .guest_memfd = (uint32_t)m->gmem,
    };
    return ioctl(m->vm, KVM_SET_USER_MEMORY_REGION2_, &r);
}

/* KVM_CREATE_VM, guest memory (gmem + mmap, or anonymous memory) + slot, KVM_CREATE_VCPU + kvm_run mmap: the VM
 * skeleton. */
static int create_skeleton(struct microvm *m, uint64_t mem_size)
{
    *m = (struct microvm)MICROVM_NONE;
    m->mem_size = mem_size;
    m->vm = ioctl(kvm_fd, KVM_CREATE_VM, 0UL);
    if (m->vm < 0) goto fail;
    if (add_memory(m, mem_size) < 0) goto fail;
    m->vcpu = ioctl(m->vm, KVM_CREATE_VCPU, 0UL);
    if (m->vcpu < 0) goto fail;
    run_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0UL); /* the SDK asks per vCPU too */
    if (run_size < 0) goto fail;
    void *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, m->vcpu, 0);
    if (run == MAP_FAILED) goto fail;
    m->run = run;
    return 0;
fail:;
    int e = -errno;
    destroy(m);
    return e;
}

/* Benchmark (a): the skeleton up and down. */
EXPORT long vmm_ref_setup_teardown(uint64_t mem_size)
{
    struct microvm m;
    int rc = create_skeleton(&m, mem_size);
    if (rc < 0) return rc;
    destroy(&m);
    return 0;
}

static void put64(struct microvm *m, uint64_t gpa, uint64_t v) { memcpy(m->mem + gpa, &v, 8); }

static void segment(struct kvm_segment *s, uint16_t sel, uint8_t type, uint8_t l, uint8_t db)
{
    *s = (struct kvm_segment){ .base = 0, .limit = 0xffffffff, .selector = sel, .type = type, .present = 1,
                               .dpl = 0, .db = db, .s = 1, .l = l, .g = 1 };
}

/* Boot state + image + CPUID + long mode, exactly as MicroVm.Create does it. */
static int boot(struct microvm *m, const uint8_t *code, uint64_t len, const uint8_t *tramp, uint64_t tlen)
{
    if (IMAGE_BASE + len > m->mem_size || tlen > 0x1000) return -EINVAL;
    put64(m, GDT + 8, 0x00AF9B000000FFFFULL);
    put64(m, GDT + 16, 0x00CF93000000FFFFULL);
    put64(m, PML4, PDPT | 3);
    put64(m, PDPT, PD | 3);
    put64(m, PD, PT | 3);
    for (uint64_t i = 0; i < 512; i++) {
        uint64_t gpa = i * 0x1000;
        int guard = gpa == 0 || gpa == STACK_GUARD || gpa >= m->mem_size || gpa >= 0x200000;
        put64(m, PT + i * 8, guard ? 0 : gpa | 3);
    }
    for (uint64_t i = 1; i < 512; i++) put64(m, PD + i * 8, i * 0x200000 < m->mem_size ? (i * 0x200000) | 0x83 : 0);
    memcpy(m->mem + TRAMPOLINE, tramp, tlen);
    uint32_t magic = 0x534D564B, version = 1;
    memcpy(m->mem + CALL_REGION, &magic, 4);
    memcpy(m->mem + CALL_REGION + 4, &version, 4);
    memcpy(m->mem + IMAGE_BASE, code, len);

    if (ioctl(m->vcpu, KVM_SET_CPUID2, cpuid_table) < 0) return -errno;
    if (enforce_pv) {
        struct kvm_enable_cap cap = { .cap = KVM_CAP_ENFORCE_PV_FEATURE_CPUID_, .args = { 1 } };
        if (ioctl(m->vcpu, KVM_ENABLE_CAP, &cap) < 0) return -errno;
    }
    struct kvm_sregs s;
    if (ioctl(m->vcpu, KVM_GET_SREGS, &s) < 0) return -errno;
    s.cr0 = 0x80050033; /* PE MP ET NE WP PG */
    s.cr3 = PML4;
    s.cr4 = 0x620;      /* PAE OSFXSR OSXMMEXCPT */
    s.efer = 0x500;     /* LME LMA */
    s.gdt.base = GDT;
    s.gdt.limit = 23;
    s.idt.base = 0;
    s.idt.limit = 0;
    segment(&s.cs, 0x08, 0xB, 1, 0);
    segment(&s.ds, 0x10, 0x3, 0, 1);
    s.es = s.fs = s.gs = s.ss = s.ds;
    return ioctl(m->vcpu, KVM_SET_SREGS, &s) < 0 ? -errno : 0;
}

/* One call as MicroVm.Call does it: header, return address, regs, run loop to the return port, result.
 * Returns the result (>= 0), or -errno, or -100000 - exit_reason for any other ending. */
static long call(struct microvm *m, uint64_t entry, uint64_t arg0, uint64_t arg1)
{
    memset(m->mem + CALL_REGION + 8, 0, 0x70 - 8);
    put64(m, CALL_REGION + 0x08, entry);
    put64(m, CALL_REGION + 0x10, 2);
    put64(m, CALL_REGION + 0x18, arg0);
    put64(m, CALL_REGION + 0x20, arg1);
    put64(m, STACK_TOP - 8, TRAMPOLINE);
    struct kvm_regs r = { .rip = entry, .rsp = STACK_TOP - 8, .rflags = 2, .rdi = arg0, .rsi = arg1 };
    if (ioctl(m->vcpu, KVM_SET_REGS, &r) < 0) return -errno;
    m->run->immediate_exit = 0;
    for (;;) {
        if (ioctl(m->vcpu, KVM_RUN, 0UL) < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        struct kvm_run *run = m->run;
        if (run->exit_reason != KVM_EXIT_IO) return -100000 - (long)run->exit_reason;
        uint8_t *data = (uint8_t *)run + run->io.data_offset;
        switch (run->io.port) {
        case COM1:
            if (run->io.direction == KVM_EXIT_IO_OUT) m->console += run->io.count;
            break;
        case PORT_RETURN: {
            struct kvm_regs after; /* the SDK reads RIP for the result */
            if (ioctl(m->vcpu, KVM_GET_REGS, &after) < 0) return -errno;
            uint64_t result;
            memcpy(&result, m->mem + CALL_RESULT, 8);
            return (long)result;
        }
        case PORT_EXIT:
            return -100000 - 1000 - (long)data[0];
        default:
            return -100000 - 2000 - (long)run->io.port;
        }
    }
}

/* Benchmark (b) setup: one micro-VM kept until vmm_ref_vm_destroy. */
EXPORT long vmm_ref_vm_create(const uint8_t *code, uint64_t len, const uint8_t *tramp, uint64_t tlen, uint64_t mem_size)
{
    int rc = create_skeleton(&the_vm, mem_size);
    if (rc < 0) return rc;
    rc = boot(&the_vm, code, len, tramp, tlen);
    if (rc < 0) destroy(&the_vm);
    return rc;
}

EXPORT long vmm_ref_vm_call(uint64_t entry, uint64_t arg0, uint64_t arg1) { return call(&the_vm, entry, arg0, arg1); }

EXPORT void vmm_ref_vm_destroy(void) { destroy(&the_vm); }

/* Probe: n KVM_RUNs with immediate_exit set, each returning EINTR at once: the syscall floor with no guest entry. */
EXPORT long vmm_ref_vm_eintr(uint64_t n)
{
    the_vm.run->immediate_exit = 1;
    long rc = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (ioctl(the_vm.vcpu, KVM_RUN, 0UL) == 0 || errno != EINTR) { rc = -errno; break; }
    }
    the_vm.run->immediate_exit = 0;
    return rc;
}

/* Benchmark (c): create micro-VM + boot + one call + teardown. */
EXPORT long vmm_ref_create_call_destroy(const uint8_t *code, uint64_t len, const uint8_t *tramp, uint64_t tlen,
                                        uint64_t mem_size, uint64_t entry, uint64_t arg0, uint64_t arg1)
{
    struct microvm m;
    int rc = create_skeleton(&m, mem_size);
    if (rc < 0) return rc;
    rc = boot(&m, code, len, tramp, tlen);
    long result = rc < 0 ? rc : call(&m, entry, arg0, arg1);
    destroy(&m);
    return result;
}

/* Density probe: n micro-VMs alive at once, each created, booted and called once (as n MicroVm.Create + Call),
 * kept until vmm_ref_density_destroy, so the caller can read what they cost while they are all alive. Returns 0, or
 * the first failure (-errno or a call's unexpected ending); on failure nothing stays alive. */
static struct microvm *density_vms;
static int density_count;

EXPORT void vmm_ref_density_destroy(void)
{
    for (int i = 0; i < density_count; i++) destroy(&density_vms[i]);
    free(density_vms);
    density_vms = NULL;
    density_count = 0;
}

EXPORT long vmm_ref_density_create(int n, const uint8_t *code, uint64_t len, const uint8_t *tramp, uint64_t tlen,
                                   uint64_t mem_size, uint64_t entry, uint64_t arg0, uint64_t arg1)
{
    vmm_ref_density_destroy();
    density_vms = calloc((size_t)n, sizeof *density_vms);
    if (!density_vms) return -ENOMEM;
    for (int i = 0; i < n; i++) {
        struct microvm *m = &density_vms[i];
        long rc = create_skeleton(m, mem_size);
        if (rc >= 0) {
            density_count = i + 1;
            rc = boot(m, code, len, tramp, tlen);
        }
        if (rc >= 0) rc = call(m, entry, arg0, arg1);
        if (rc < 0) {
            vmm_ref_density_destroy();
            return rc;
        }
    }
    return 0;
}

#ifdef VMM_REF_MAIN
/* The benchmark guest, as bytes (the C# side assembles the same code with Iced):
 *   spin_io(n):  mov ecx, edi ; mov dx, 0x3f8 ; .l: out dx, al ; dec ecx ; jnz .l ; mov eax, 42 ; ret */
static const uint8_t guest[] = { 0x89, 0xF9, 0x66, 0xBA, 0xF8, 0x03, 0xEE, 0xFF, 0xC9, 0x75, 0xFB,
                                 0xB8, 0x2A, 0x00, 0x00, 0x00, 0xC3 };
/* Trampoline: mov rdi, 0x28058 ; mov [rdi], rax ; mov dx, 0x501 ; out dx, al ; hlt */
static const uint8_t tramp[] = { 0x48, 0xBF, 0x58, 0x80, 0x02, 0, 0, 0, 0, 0, 0x48, 0x89, 0x07,
                                 0x66, 0xBA, 0x01, 0x05, 0xEE, 0xF4 };

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(void)
{
    const uint64_t mem = 2 << 20;
    if (vmm_ref_open() < 0) { perror("/dev/kvm"); return 1; }
    printf("guest memory:            %s\n", memory_mode == MEMORY_HOST ? "host memory (MAP_PRIVATE anonymous, plain slot)"
                                                                        : "guest_memfd (MMAP|INIT_SHARED)");
    int n = 200;
    double t0 = now();
    for (int i = 0; i < n; i++)
        if (vmm_ref_setup_teardown(mem) < 0) { fprintf(stderr, "setup failed\n"); return 1; }
    printf("setup+teardown:          %8.1f us\n", (now() - t0) / n * 1e6);

    if (vmm_ref_vm_create(guest, sizeof guest, tramp, sizeof tramp, mem) < 0) { fprintf(stderr, "create failed\n"); return 1; }
    long r = vmm_ref_vm_call(IMAGE_BASE, 1000, 0); /* warm up */
    t0 = now();
    for (int i = 0; i < 20; i++) r = vmm_ref_vm_call(IMAGE_BASE, 1000, 0);
    printf("port-I/O exit round trip: %8.2f us (result %ld)\n", (now() - t0) / 20000 * 1e6, r);
    vmm_ref_vm_destroy();

    t0 = now();
    for (int i = 0; i < n; i++) r = vmm_ref_create_call_destroy(guest, sizeof guest, tramp, sizeof tramp, mem, IMAGE_BASE, 1, 0);
    printf("create+call+destroy:     %8.1f us (result %ld)\n", (now() - t0) / n * 1e6, r);

    /* The same with an idle VM + vCPU held meanwhile (KvmSharp.Vmm.WarmVcpuHold): the host's kvm_has_noapic_vcpu
     * static key then stays on instead of being flipped (text_poke + IPIs) by every create and teardown. */
    int hold_vm = ioctl(kvm_fd, KVM_CREATE_VM, 0UL);
    int hold_vcpu = hold_vm < 0 ? -1 : ioctl(hold_vm, KVM_CREATE_VCPU, 0UL);
    if (hold_vcpu < 0) { perror("hold"); return 1; }
    t0 = now();
    for (int i = 0; i < n; i++) r = vmm_ref_create_call_destroy(guest, sizeof guest, tramp, sizeof tramp, mem, IMAGE_BASE, 1, 0);
    printf("  the same, vCPU held:   %8.1f us (result %ld)\n", (now() - t0) / n * 1e6, r);
    close(hold_vcpu);
    close(hold_vm);
    vmm_ref_close();
    return 0;
}
#endif

// SPDX-License-Identifier: MIT
//
// The program's own CPUID, answered for the emulated host where it differs from this machine. A VMM asks the host
// CPU things the kernel's uAPI does not carry: QEMU's sev.c reads CPUID 0x8000001F for the C-bit position before it
// creates an SEV guest. Under `exec --kernel emulated` the host is the emulated one (it offers SEV through
// KVM_GET_SUPPORTED_CPUID and /dev/sev), so the program must see that host's leaf, not this machine's zeros.
//
// CPUID faulting (arch_prctl ARCH_SET_CPUID 0; Intel's MSR_MISC_FEATURES_ENABLES or AMD's CpuidUserDis, "cpuid_fault"
// in /proc/cpuinfo) makes CPUID at CPL 3 a #GP, which the kernel sends as SIGSEGV (si_code SI_KERNEL). It is switched
// on for the thread that starts the bridge and, inherited at clone, for the threads it creates afterwards; a thread
// created before keeps the machine's answers. Every fault on a CPUID instruction is answered here, on any thread:
// the emulated host's leaves from the table the bridge gave at start, every other leaf by the CPU itself with
// faulting switched off for that one instruction. Without CPUID faulting (or with a host that answers nothing) no
// leaf is answered and the program sees the machine.
#include "preload.h"

#include <asm/prctl.h>
#include <cpuid.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

/* The leaves the emulated host answers: {leaf, subleaf, eax, ebx, ecx, edx}, from bridge.host_cpuid at start. */
#define MAX_HOST_LEAVES 8
static uint32_t host_leaves[MAX_HOST_LEAVES][6];
static int host_leaf_count;

/* Leaves whose answer may differ from the machine's: the memory-encryption leaf (AMD APM Vol. 3, E.4.17). */
static const uint32_t asked_leaves[] = {0x8000001f};

static int cpuid_faulting(int on)
{
    return (int)syscall(SYS_arch_prctl, ARCH_SET_CPUID, on ? 0UL : 1UL);
}

void start_cpuid_answers(void)
{
    for (size_t i = 0; i < sizeof asked_leaves / sizeof asked_leaves[0]; i++) {
        uint32_t regs[4];
        if (bridge.host_cpuid(asked_leaves[i], 0, regs) != 0) continue;
        uint32_t *entry = host_leaves[host_leaf_count++];
        entry[0] = asked_leaves[i];
        entry[1] = 0;
        memcpy(&entry[2], regs, sizeof regs);
    }
    /* ARCH_GET_CPUID: 1 while CPUID runs normally; ARCH_SET_CPUID fails with ENODEV without CPUID faulting. */
    if (host_leaf_count > 0 && cpuid_faulting(1) != 0) host_leaf_count = 0;
}

int answer_cpuid_fault(const siginfo_t *info, void *context)
{
    if (host_leaf_count == 0 || info->si_code != SI_KERNEL) return 0;
    ucontext_t *uc = context;
    greg_t *regs = uc->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)regs[REG_RIP];
    if (ip[0] != 0x0f || ip[1] != 0xa2) return 0;
    /* 0: faulting is on for this thread, so this #GP is CPUID's. */
    if (syscall(SYS_arch_prctl, ARCH_GET_CPUID, 0UL) != 0) return 0;
    uint32_t leaf = (uint32_t)regs[REG_RAX], subleaf = (uint32_t)regs[REG_RCX];
    uint32_t a, b, c, d;
    int found = 0;
    for (int i = 0; i < host_leaf_count && !found; i++) {
        if (host_leaves[i][0] != leaf) continue;
        a = host_leaves[i][2];
        b = host_leaves[i][3];
        c = host_leaves[i][4];
        d = host_leaves[i][5];
        found = 1;
    }
    if (!found) {
        cpuid_faulting(0);
        __cpuid_count(leaf, subleaf, a, b, c, d);
        cpuid_faulting(1);
    }
    /* CPUID writes the whole 64-bit registers (the upper halves cleared) and is two bytes long. */
    regs[REG_RAX] = a;
    regs[REG_RBX] = b;
    regs[REG_RCX] = c;
    regs[REG_RDX] = d;
    regs[REG_RIP] += 2;
    return 1;
}

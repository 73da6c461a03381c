/* SPDX-License-Identifier: MIT */
/*
 * kvmsharp_guest.h — the KvmSharp micro-VM guest ABI (version 5) for C guests, in one freestanding header.
 *
 * Include it and write ordinary functions: the host calls any global function of your ELF by name as a SysV call
 * (kvmsharp run guest.elf --call add:2,3, vm.Call("add", 2, 3)), and vm.Run() enters `_start` (the ELF entry) the
 * same way. Returning from a function ends the call with outcome exit, status 0, result = the return value;
 * kvms_exit(n) ends it with status n. GUEST-ABI.md (shipped beside this header) explains every number below.
 *
 * Build (gcc or clang, C99 or later; no libc, no start-up files — the host sets up stack and long mode before it
 * calls you):
 *   gcc -std=gnu11 -O2 -ffreestanding -nostdlib -static -fno-pie -fno-stack-protector -mno-red-zone \
 *       -mgeneral-regs-only -fcf-protection=none -fno-asynchronous-unwind-tables \
 *       -Wl,-Ttext-segment=0x100000 -Wl,-z,max-page-size=0x1000 -Wl,--build-id=none -o guest.elf guest.c
 * Why these flags: the image must be a static non-PIE ELF loaded at KVMS_IMAGE_BASE; there is no libc and no
 * stack-protector canary; interrupts are off but the VMM's exception handlers run on their own stack (IST1), so
 * -mno-red-zone is belt and braces; -mgeneral-regs-only keeps the compiler from vectorising loops with SSE, which
 * the emulated kernel and kvm_pvm hosts (software nested KVM) emulate only in part (GUEST-ABI.md, "The machine").
 * Do not strip the ELF: the host finds your functions in .symtab.
 *
 * arm64 micro-VMs (GUEST-ABI.md, "arm64 micro-VMs"): the same API, over the MMIO port window; the host calls your
 * functions as AAPCS64 calls (x0..x5, result x0) at EL1 with the MMU on (RAM is Normal memory; the null page and
 * a stack guard page are not mapped):
 *   aarch64-linux-gnu-gcc -std=gnu11 -O2 -ffreestanding -nostdlib -static -fno-pie -fno-stack-protector \
 *       -mgeneral-regs-only -mbranch-protection=none -fno-asynchronous-unwind-tables \
 *       -Wl,-Ttext-segment=0x100000 -Wl,-z,max-page-size=0x1000 -Wl,--build-id=none -o guest.elf guest.c
 * (-mgeneral-regs-only is optional there: the VMM enables FP/SIMD, CPACR_EL1.FPEN, when it initialises the vCPU.)
 *
 * Every name starts with kvms_ / KVMS_. Every constant is a twin of one in KvmSharp.Vmm's C# source (Layout.cs,
 * Ports.cs, CallRegion.cs, HostCallBlock.cs, ExceptionBlock.cs, HostCallStatus.cs …), named mechanically:
 * KVMS_ + a prefix per C# class + the member's name in UPPER_SNAKE_CASE (CallRegion.InputPtr → KVMS_CALL_INPUT_PTR).
 * A test of KvmSharp compiles this header and compares every KVMS_ constant with its twin, both ways.
 *
 * Define KVMSHARP_GUEST_MEMFUNCS before including it in exactly one file to get memcpy, memmove, memset and memcmp:
 * gcc and clang may call them for struct copies, array initialisers and loops even with -ffreestanding. Define
 * KVMSHARP_GUEST_MALLOC in one file to get malloc, free, calloc and realloc over the memory above your image.
 */
#ifndef KVMSHARP_GUEST_H
#define KVMSHARP_GUEST_H

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "kvmsharp_guest.h: KvmSharp micro-VM guests are x86-64 or arm64 programs (compile with an x86-64 or aarch64 gcc or clang)"
#endif

/* Fixed-width types from the compiler's own macros: no <stdint.h>, so the header needs no C library at all. */
typedef __UINT8_TYPE__ kvms_u8;
typedef __UINT16_TYPE__ kvms_u16;
typedef __UINT32_TYPE__ kvms_u32;
typedef __UINT64_TYPE__ kvms_u64;
typedef __INT64_TYPE__ kvms_i64;

/* ---- The ABI version (CallRegion.VersionValue) and the call region's magic ("KVMS" little-endian) ---- */
#define KVMS_ABI_VERSION 5u
#define KVMS_CALL_VERSION_VALUE 5u
#define KVMS_CALL_MAGIC_VALUE 0x534D564Bu

/* ---- Memory map (Arch/X86_64/Layout.cs; guest-physical = guest-virtual, identity-mapped) ---- */
#define KVMS_PAGE_SIZE 0x1000ull             /* 4 KiB pages map the first 2 MiB */
#define KVMS_LARGE_PAGE_SIZE 0x200000ull     /* 2 MiB pages map the rest */
#define KVMS_NULL_GUARD 0x0ull               /* page 0 is not mapped: a null dereference is a #PF */
#define KVMS_GDT 0x1000ull
#define KVMS_PML4 0x2000ull                  /* CR3; the page tables are yours to break, at your own risk */
#define KVMS_PDPT 0x3000ull
#define KVMS_PD 0x4000ull
#define KVMS_PT 0x5000ull
#define KVMS_TRAMPOLINE 0x6000ull            /* the return address of every call (host code) */
#define KVMS_SNP_MAP_GPA_RANGE 0x6200ull     /* SNP micro-VM: call here to convert pages (host code; kvms_make_shared) */
#define KVMS_STACK_GUARD 0x7000ull           /* not mapped: a stack overflow faults */
#define KVMS_GHCB 0x7000ull                  /* SNP micro-VM: the shared GHCB of its #VC handler (host code uses it) */
#define KVMS_SNP_STACK_GUARD 0x8000ull       /* SNP micro-VM: its stack guard, one page up */
#define KVMS_SNP_STACK_BOTTOM 0x9000ull      /* SNP micro-VM: its stack is 124 KiB */
#define KVMS_STACK_BOTTOM 0x8000ull
#define KVMS_STACK_TOP 0x28000ull            /* initial RSP = KVMS_STACK_TOP - 8 */
#define KVMS_CALL_REGION 0x28000ull          /* struct kvms_call_region */
#define KVMS_CALL_DATA 0x29000ull            /* input bytes arrive here; output bytes must lie in [CALL_DATA, CALL_DATA_END) */
#define KVMS_CALL_DATA_END 0xFC000ull
#define KVMS_EXCEPTION_HANDLERS 0xFC000ull   /* host code */
#define KVMS_IDT 0xFD000ull
#define KVMS_TSS 0xFD200ull
#define KVMS_EXCEPTION_BLOCK 0xFE000ull      /* struct kvms_exception_block */
#define KVMS_EXCEPTION_STACK 0xFF000ull
#define KVMS_EXCEPTION_STACK_TOP 0x100000ull
#define KVMS_IMAGE_BASE 0x100000ull          /* link your image here (-Wl,-Ttext-segment=0x100000) */
#define KVMS_MIN_MEMORY_SIZE 0x200000ull     /* guest memory: a multiple of 2 MiB in [MIN, MAX] */
#define KVMS_MAX_MEMORY_SIZE 0x40000000ull
#define KVMS_MEMORY_BASE 0x0ull

/* ---- Descriptor tables the VMM installs (Gdt.cs, Idt.cs, Tss.cs) ---- */
#define KVMS_GDT_CODE_SELECTOR 0x08u         /* CS: 64-bit code */
#define KVMS_GDT_DATA_SELECTOR 0x10u         /* DS ES FS GS SS */
#define KVMS_GDT_TSS_SELECTOR 0x18u          /* TR */
#define KVMS_IDT_VECTORS 32u                 /* gates for vectors 0-31 (CPU exceptions) */
#define KVMS_IDT_LIMIT 0x1FFu
#define KVMS_IDT_IST 1u                      /* every gate uses IST1 = KVMS_EXCEPTION_STACK_TOP */
#define KVMS_TSS_LIMIT 0x67u
#define KVMS_TSS_IST1 0x24ull                /* offset of IST1 in the TSS */
#define KVMS_TSS_IO_MAP_BASE 0x66ull

/* ---- I/O ports (GuestAbi/Ports.cs). Any other port ends the guest as unknown_port ---- */
#define KVMS_PORT_COM1 0x3F8u                /* OUT: THR, prints a byte; IN COM1+5 (LSR) reads 0x60, always ready */
#define KVMS_PORT_COM1_LENGTH 8u
#define KVMS_PORT_EXIT 0x500u                /* OUT 8/16/32-bit: exit with status = the value */
#define KVMS_PORT_RETURN 0x501u              /* the trampoline's: the call returns, result from the call region */
#define KVMS_PORT_HOST_CALL 0x502u           /* OUT anything: call the host function named in the host-call block */
#define KVMS_PORT_EXCEPTION 0x503u           /* the VMM's exception handler reports the exception block */
#define KVMS_PORT_CONSOLE_WRITE 0x504u       /* OUT anything: print console_ptr/console_len in one exit (version 5) */
#define KVMS_PORT_HYPERCALL_BASE 0x500u
#define KVMS_PORT_HYPERCALL_LENGTH 2u

/* ---- Call region (GuestAbi/CallRegion.cs): field offsets from KVMS_CALL_REGION, then the struct ---- */
#define KVMS_CALL_MAGIC 0x00ull              /* u32 */
#define KVMS_CALL_VERSION 0x04ull            /* u32 */
#define KVMS_CALL_ENTRY 0x08ull              /* u64: the called function; everything from here on is cleared per call */
#define KVMS_CALL_ARG_COUNT 0x10ull
#define KVMS_CALL_ARGS 0x18ull               /* u64[6], the same values as RDI RSI RDX RCX R8 R9 */
#define KVMS_CALL_INPUT_PTR 0x48ull          /* KVMS_CALL_DATA, or 0 without input */
#define KVMS_CALL_INPUT_LEN 0x50ull
#define KVMS_CALL_RESULT 0x58ull             /* RAX at return (the trampoline writes it) */
#define KVMS_CALL_OUTPUT_PTR 0x60ull         /* set by the guest: bytes to hand back */
#define KVMS_CALL_OUTPUT_LEN 0x68ull
#define KVMS_CALL_FEATURES 0x70ull           /* version 3 */
#define KVMS_CALL_CONSOLE_PTR 0x78ull        /* version 5: set by the guest: bytes to print */
#define KVMS_CALL_CONSOLE_LEN 0x80ull        /* version 5: in: bytes to print; out: bytes printed (all, or 0) */
#define KVMS_CALL_MEMORY_SIZE 0x88ull        /* version 5: guest memory's size in bytes */
#define KVMS_CALL_HEADER_SIZE 0x90u
#define KVMS_CALL_MAX_ARGS 6u
#define KVMS_CALL_FEATURE_PRIVATE_MEMORY 0x1ull /* features bit 0: KVMS_HC_MAP_GPA_RANGE is served */
#define KVMS_CALL_FEATURE_SNP 0x2ull         /* features bit 1: SEV-SNP micro-VM: convert with a call to KVMS_SNP_MAP_GPA_RANGE */
#define KVMS_CALL_FEATURE_CONSOLE_WRITE 0x4ull /* features bit 2: KVMS_PORT_CONSOLE_WRITE prints a buffer per exit */
#define KVMS_CALL_FEATURE_CONSOLE_BUFFER 0x8ull /* features bit 3: a TD: print from KVMS_CALL_CONSOLE_BUFFER (shared) */
#define KVMS_CALL_CONSOLE_BUFFER 0x28800ull  /* the shared console buffer: a TD copies what it prints here first */
#define KVMS_CALL_CONSOLE_BUFFER_SIZE 0x800ull /* at most this many bytes per console write from the buffer */

struct kvms_call_region {
    kvms_u32 magic;
    kvms_u32 version;
    kvms_u64 entry;
    kvms_u64 arg_count;
    kvms_u64 args[KVMS_CALL_MAX_ARGS];
    kvms_u64 input_ptr;
    kvms_u64 input_len;
    kvms_u64 result;
    kvms_u64 output_ptr;
    kvms_u64 output_len;
    kvms_u64 features;
    kvms_u64 console_ptr;
    kvms_u64 console_len;
    kvms_u64 memory_size;
};

/* ---- Host-call block (GuestAbi/HostCallBlock.cs, HostCalls/HostFunctions.cs) ---- */
#define KVMS_HOSTCALL_OFFSET 0x100ull        /* from KVMS_CALL_REGION */
#define KVMS_HOSTCALL_BASE 0x28100ull
#define KVMS_HOSTCALL_FUNCTION 0x00ull       /* u64 id; KVMS_HOSTCALL_RESOLVE_ID = resolve(name_ptr, name_len) */
#define KVMS_HOSTCALL_ARGS 0x08ull           /* u64[6] */
#define KVMS_HOSTCALL_RESULT 0x38ull
#define KVMS_HOSTCALL_STATUS 0x40ull         /* a KVMS_STATUS_ value */
#define KVMS_HOSTCALL_SIZE 0x48u
#define KVMS_HOSTCALL_MAX_ARGS 6u
#define KVMS_HOSTCALL_RESOLVE_ID 0u
#define KVMS_HOSTCALL_MAX_NAME_LENGTH 64u    /* resolve takes 1-64 bytes of UTF-8 */

struct kvms_hostcall_block {
    kvms_u64 function;
    kvms_u64 args[KVMS_HOSTCALL_MAX_ARGS];
    kvms_u64 result;
    kvms_u64 status;
};

/* Host-call statuses (HostCalls/HostCallStatus.cs). From KVMS_STATUS_FIRST_APPLICATION_STATUS on, the function's own. */
#define KVMS_STATUS_OK 0ull
#define KVMS_STATUS_UNKNOWN_FUNCTION 1ull    /* no function has this id (resolve: this name); nothing ran, like ENOSYS */
#define KVMS_STATUS_BAD_POINTER 2ull         /* a pointer you passed is not guest memory, on an unmapped or private page */
#define KVMS_STATUS_BAD_ARGUMENT 3ull
#define KVMS_STATUS_FAILED 4ull              /* the function refused the request */
#define KVMS_STATUS_FIRST_APPLICATION_STATUS 0x100ull

/* ---- Exception block (GuestAbi/ExceptionBlock.cs, version 4): what the VMM's handler reports ---- */
#define KVMS_EXCEPTION_BASE 0xFE000ull
#define KVMS_EXCEPTION_VECTOR 0x00ull
#define KVMS_EXCEPTION_ERROR_CODE 0x08ull
#define KVMS_EXCEPTION_RIP 0x10ull
#define KVMS_EXCEPTION_CS 0x18ull
#define KVMS_EXCEPTION_RFLAGS 0x20ull
#define KVMS_EXCEPTION_RSP 0x28ull
#define KVMS_EXCEPTION_SS 0x30ull
#define KVMS_EXCEPTION_CR2 0x38ull
#define KVMS_EXCEPTION_SIZE 0x40u

struct kvms_exception_block {
    kvms_u64 vector;
    kvms_u64 error_code;
    kvms_u64 rip;
    kvms_u64 cs;
    kvms_u64 rflags;
    kvms_u64 rsp;
    kvms_u64 ss;
    kvms_u64 cr2;
};

/* ---- CPUID as the sandbox shapes it (Arch/X86_64/GuestCpuid.cs) ---- */
#define KVMS_CPUID_KVM_SIGNATURE_LEAF 0x40000000u /* EAX = highest hypervisor leaf, EBX ECX EDX = "KVMKVMKVM\0\0\0" */
#define KVMS_CPUID_KVM_FEATURES_LEAF 0x40000001u  /* all zero: no paravirtual features */
#define KVMS_CPUID_TIMING_LEAF 0x40000010u        /* EAX = TSC kHz */
#define KVMS_CPUID_SVM_FEATURES_LEAF 0x8000000Au  /* reads zero: no nested virtualization */
#define KVMS_CPUID_SEV_LEAF 0x8000001Fu           /* memory encryption: zero unless an SEV/SNP guest (EBX[5:0] = C-bit) */
#define KVMS_CPUID_LEAF1_ECX_VMX (1u << 5)        /* clear */
#define KVMS_CPUID_EXT_LEAF1_ECX_SVM (1u << 2)    /* leaf 0x80000001 ECX: clear */
#define KVMS_CPUID_LEAF1_ECX_X2APIC (1u << 21)    /* clear: no interrupt controller */
#define KVMS_CPUID_LEAF1_ECX_TSC_DEADLINE (1u << 24) /* clear */
#define KVMS_CPUID_LEAF1_ECX_HYPERVISOR (1u << 31) /* set */
#define KVMS_CPUID_LEAF1_EDX_HTT (1u << 28)       /* clear (set on kvm_pvm hosts) */
#define KVMS_CPUID_LEAF7_EDX_AMX ((1u << 22) | (1u << 24) | (1u << 25)) /* clear: no AMX */
#define KVMS_CPUID_XCR_AMX ((1u << 17) | (1u << 18))                   /* XCR0 bits the sandbox never offers */

/* ---- Private memory (version 3): KVM_HC_MAP_GPA_RANGE (KvmSharp.Abi.KvmPara, the kernel's names) ---- */
#define KVMS_HC_MAP_GPA_RANGE 12ull               /* VMCALL number in RAX */
#define KVMS_MAP_GPA_RANGE_ENCRYPTED (1ull << 4)  /* attributes bit 4: make private */
#define KVMS_MAP_GPA_RANGE_DECRYPTED 0ull         /* make shared */
#define KVMS_MAP_GPA_RANGE_PAGE_SZ_MASK 0xFull    /* bits 3:0: a page-size hint, ignored */
#define KVMS_MAP_GPA_RANGE_PAGE_SZ_4K 0ull
#define KVMS_MAP_GPA_RANGE_PAGE_SZ_2M (1ull << 0)
#define KVMS_MAP_GPA_RANGE_PAGE_SZ_1G (1ull << 1)
/* The hypercall returns 0 or the negative of one of these (RAX = -KVMS_EINVAL …). */
#define KVMS_EPERM 1ll                            /* the range touches [0, KVMS_IMAGE_BASE): host pages stay shared */
#define KVMS_EFAULT 14ll                          /* the range is not guest memory */
#define KVMS_EINVAL 22ll                          /* unaligned, zero pages, reserved bits, or the kernel refused */
#define KVMS_ENOSYS 1000ll                        /* no such hypercall (upstream, without private memory) */

#if defined(__aarch64__)
/* ---- arm64 micro-VMs (Arch/Arm64/Layout.cs; GUEST-ABI.md, "arm64 micro-VMs") ----
 * EL1h with the MMU on over the VMM's identity translation tables: a virtual address is its guest-physical address,
 * RAM is Normal Write-Back memory (unaligned accesses work), the port window Device-nGnRE (keep port accesses
 * naturally aligned), and the null page and the stack guard page are not mapped: a null dereference or a stack
 * overflow is a data abort (translation fault) that ends the call as an exception. The call region, call data,
 * host-call block and exception block are where the x86-64 constants above put them; the translation tables take the
 * x86 GDT and page-table pages. "Port" p is the MMIO address KVMS_ARM64_PORT_WINDOW + p. */
#define KVMS_ARM64_TRAMPOLINE 0x6000ull        /* PC at every call: loads x0..x5, BLR entry, reports the return */
#define KVMS_ARM64_STACK_TOP 0x28000ull        /* SP_EL1 at every call */
#define KVMS_ARM64_STACK_BOTTOM 0x8000ull
#define KVMS_ARM64_STACK_GUARD 0x7000ull       /* not mapped: a stack overflow is a data abort */
#define KVMS_ARM64_NULL_GUARD 0x0ull           /* not mapped: a null dereference is a data abort */
#define KVMS_ARM64_TRANSLATION_TABLES 0x1000ull /* TTBR0_EL1: the identity tables (5 pages, read-only) */
#define KVMS_ARM64_VECTORS 0xFC000ull          /* VBAR_EL1: the VMM's vector table (do not move VBAR_EL1) */
#define KVMS_ARM64_VECTOR_ENTRY_SIZE 0x80ull
#define KVMS_ARM64_COMMON_HANDLER 0xFC800ull
#define KVMS_ARM64_PORT_WINDOW 0x80000000ull   /* port p = a load or store at KVMS_ARM64_PORT_WINDOW + p */
#define KVMS_ARM64_PORT_WINDOW_LENGTH 0x10000ull
#define KVMS_ARM64_ENTRY_PSTATE 0x3C5ull       /* EL1h, D A I F masked */
#define KVMS_ARM64_ENTRY_CPACR 0x300000ull     /* CPACR_EL1.FPEN = 0b11: FP/SIMD usable */
#define KVMS_ARM64_ENTRY_MAIR 0x4FFull         /* MAIR_EL1: Attr0 0xFF Normal WB (RAM), Attr1 0x04 Device-nGnRE */
#define KVMS_ARM64_ENTRY_TCR 0x80A03520ull     /* TCR_EL1: T0SZ 32, 4 KiB granule, WB inner-shareable walks, EPD1 */
#define KVMS_ARM64_ENTRY_SCTLR_BITS 0x1005ull  /* set in SCTLR_EL1 (KVM's reset value): M, C, I */
#endif

/* The layout's own arithmetic, checked where the header is compiled: a typo in one number fails the build. (A
 * negative array size rather than _Static_assert, which C99 lacks.) */
typedef char kvms_check_hostcall_base[(KVMS_HOSTCALL_BASE == KVMS_CALL_REGION + KVMS_HOSTCALL_OFFSET) ? 1 : -1];
typedef char kvms_check_exception_base[(KVMS_EXCEPTION_BASE == KVMS_EXCEPTION_BLOCK) ? 1 : -1];
typedef char kvms_check_abi_version[(KVMS_ABI_VERSION == KVMS_CALL_VERSION_VALUE) ? 1 : -1];
typedef char kvms_check_call_region_size[(sizeof(struct kvms_call_region) == KVMS_CALL_HEADER_SIZE) ? 1 : -1];
typedef char kvms_check_call_input_ptr[(__builtin_offsetof(struct kvms_call_region, input_ptr) == KVMS_CALL_INPUT_PTR) ? 1 : -1];
typedef char kvms_check_call_features[(__builtin_offsetof(struct kvms_call_region, features) == KVMS_CALL_FEATURES) ? 1 : -1];
typedef char kvms_check_call_console_len[(__builtin_offsetof(struct kvms_call_region, console_len) == KVMS_CALL_CONSOLE_LEN) ? 1 : -1];
typedef char kvms_check_hostcall_size[(sizeof(struct kvms_hostcall_block) == KVMS_HOSTCALL_SIZE) ? 1 : -1];
typedef char kvms_check_hostcall_status[(__builtin_offsetof(struct kvms_hostcall_block, status) == KVMS_HOSTCALL_STATUS) ? 1 : -1];
typedef char kvms_check_exception_size[(sizeof(struct kvms_exception_block) == KVMS_EXCEPTION_SIZE) ? 1 : -1];

/* ==== Functions ==== */

/* The host writes these structures between the guest's instructions (a call's arguments, a host call's answer), so
 * every access goes through a volatile pointer: the compiler must not cache a field across an OUT. */
static inline volatile struct kvms_call_region *kvms_call_region(void)
{
    return (volatile struct kvms_call_region *)KVMS_CALL_REGION;
}

static inline volatile struct kvms_hostcall_block *kvms_hostcall_block(void)
{
    return (volatile struct kvms_hostcall_block *)KVMS_HOSTCALL_BASE;
}

/* The exception block is written by the VMM's handler, which then ends the guest: a guest reads it only if it
 * installed its own IDT and wants to report through the VMM's format (GUEST-ABI.md, "Exceptions"). */
static inline volatile struct kvms_exception_block *kvms_exception_block(void)
{
    return (volatile struct kvms_exception_block *)KVMS_EXCEPTION_BLOCK;
}

/* ---- Port I/O: one VM exit per access ---- */
#if defined(__x86_64__)
static inline void kvms_outb(kvms_u16 port, kvms_u8 value)
{
    __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port) : "memory");
}

static inline void kvms_outl(kvms_u16 port, kvms_u32 value)
{
    __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port) : "memory");
}

static inline kvms_u8 kvms_inb(kvms_u16 port)
{
    kvms_u8 value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port) : "memory");
    return value;
}
#else
/* arm64: "port" p is the MMIO address KVMS_ARM64_PORT_WINDOW + p. One STRB/STR/LDRB without writeback, written in
 * assembly (as Linux's __raw_writeb is) so the compiler can pick no other form: KVM decodes an MMIO access from the
 * syndrome, which a pair or writeback access does not have. kvms_outl needs a 4-byte-aligned port (Device memory). */
static inline void kvms_outb(kvms_u16 port, kvms_u8 value)
{
    __asm__ volatile("strb %w0, [%1]" : : "r"(value), "r"(KVMS_ARM64_PORT_WINDOW + port) : "memory");
}

static inline void kvms_outl(kvms_u16 port, kvms_u32 value)
{
    __asm__ volatile("str %w0, [%1]" : : "r"(value), "r"(KVMS_ARM64_PORT_WINDOW + port) : "memory");
}

static inline kvms_u8 kvms_inb(kvms_u16 port)
{
    kvms_u32 value;
    __asm__ volatile("ldrb %w0, [%1]" : "=r"(value) : "r"(KVMS_ARM64_PORT_WINDOW + port) : "memory");
    return (kvms_u8)value;
}
#endif

/* ---- Ending the guest ---- */

/* Ends the guest (not just this call) with outcome exit and this status; the micro-VM takes the next call as it is. */
__attribute__((noreturn)) static inline void kvms_exit(kvms_u32 status)
{
    kvms_outl(KVMS_PORT_EXIT, status);
    /* The host never resumes after the exit port; the loop only tells the compiler so. */
#if defined(__x86_64__)
    for (;;) __asm__ volatile("hlt");
#else
    for (;;) __asm__ volatile("wfi");
#endif
}

/* ---- Console: COM1's transmit register, and the console-write port ----
 * No wait on the line status register: the VMM's LSR always reads "transmitter empty" (0x60), and each IN would cost
 * one more VM exit per byte. kvms_putc is one OUT: one VM exit. kvms_write (and kvms_print and the number printers,
 * which make one kvms_write each) picks what costs fewest exits where it runs:
 *  - Where the host offers it (features bit 2: plain micro-VMs, x86 and arm64, version 5) one OUT to
 *    KVMS_PORT_CONSOLE_WRITE with the buffer in the call region: one exit for the whole buffer. The host prints it
 *    all or, when it may not read it (a page the guest made private), none and says so in console_len; the rest
 *    then goes byte by byte below, since the guest itself can read its private pages.
 *  - In a TD micro-VM (bits 2 and 3), whose memory the host cannot read, the same port after copying the bytes into
 *    the shared console buffer (KVMS_CALL_CONSOLE_BUFFER): one exit per 2 KiB (KVMS_CALL_CONSOLE_BUFFER_SIZE).
 *  - In an SEV-SNP micro-VM one `rep outsb`: the #VC handler moves the bytes through the GHCB's shared buffer, 2032 a
 *    VMGEXIT, and KVM hands them to the VMM as one KVM_EXIT_IO with count = the bytes (sev.c sev_es_string_io): a
 *    100-byte write is one exit instead of 100.
 *  - Elsewhere one OUT per byte. Both kernels do take string I/O (the emulated kernel's interpreter too), but KVM's
 *    instruction emulator sends OUTS to userspace one element per exit (emulate.c em_out: count 1; measured on
 *    kvm_pvm: a 100-byte `rep outsb` is 100 exits, like 100 OUTs, each through the slower emulator path), and a TD
 *    (on a VMM without bit 3) has no string I/O at all (its #VE handler unrolls it into one TDG.VP.VMCALL per byte). */
static inline void kvms_putc(char c)
{
    kvms_outb(KVMS_PORT_COM1, (kvms_u8)c);
}

/* Copies n bytes: `rep movsb` on x86-64, a byte loop through volatile pointers on arm64 — neither one the compiler
 * could turn into a call to memcpy, which a freestanding guest need not have. */
static inline void kvms_copy_bytes(void *dst, const void *src, kvms_u64 n)
{
#if defined(__x86_64__)
    __asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
#else
    const volatile kvms_u8 *from = (const volatile kvms_u8 *)src;
    volatile kvms_u8 *to = (volatile kvms_u8 *)dst;
    for (kvms_u64 i = 0; i < n; i++) to[i] = from[i];
#endif
}

static inline void kvms_write(const char *s, kvms_u64 n)
{
    /* The features word of the call region (kvms_features, below). */
    kvms_u64 features = *(volatile kvms_u64 *)(KVMS_CALL_REGION + KVMS_CALL_FEATURES);
    if (n > 0 && (features & KVMS_CALL_FEATURE_CONSOLE_WRITE))
    {
        volatile kvms_u64 *console = (volatile kvms_u64 *)(KVMS_CALL_REGION + KVMS_CALL_CONSOLE_PTR);
        if (features & KVMS_CALL_FEATURE_CONSOLE_BUFFER)
        {
            /* Bit 3 (a TD): the host reads shared pages only, so each chunk goes through the console buffer. */
            while (n > 0)
            {
                kvms_u64 chunk = n < KVMS_CALL_CONSOLE_BUFFER_SIZE ? n : KVMS_CALL_CONSOLE_BUFFER_SIZE;
                kvms_copy_bytes((void *)KVMS_CALL_CONSOLE_BUFFER, s, chunk);
                console[0] = KVMS_CALL_CONSOLE_BUFFER;
                console[1] = chunk;
                kvms_outb(KVMS_PORT_CONSOLE_WRITE, 0);
                if (console[1] != chunk) break; /* refused (your page tables unshared it): byte by byte below */
                s += chunk;
                n -= chunk;
            }
            if (n == 0) return;
        }
        else
        {
            console[0] = (kvms_u64)s;
            console[1] = n;
            /* The OUT's "memory" clobber: the bytes and both fields are in memory before the host reads them. */
            kvms_outb(KVMS_PORT_CONSOLE_WRITE, 0);
            if (console[1] == n) return;
        }
    }
#if defined(__x86_64__)
    /* Bit 1: an SEV-SNP micro-VM. */
    if (features & KVMS_CALL_FEATURE_SNP)
    {
        /* DF is clear (SysV ABI): RSI goes up. "memory": the bytes must be in memory before the instruction reads them. */
        __asm__ volatile("rep outsb" : "+S"(s), "+c"(n) : "d"((kvms_u16)KVMS_PORT_COM1) : "memory");
        return;
    }
#endif
    for (kvms_u64 i = 0; i < n; i++) kvms_putc(s[i]);
}

static inline kvms_u64 kvms_strlen(const char *s)
{
    kvms_u64 n = 0;
    while (s[n]) n++;
    return n;
}

static inline void kvms_print(const char *s)
{
    kvms_write(s, kvms_strlen(s));
}

/* Signed decimal ("-22", "0", "18446744073709551615" for an unsigned value): one write. */
static inline void kvms_print_decimal(kvms_u64 magnitude, int negative)
{
    char digits[21];
    int n = 21;
    do { digits[--n] = (char)('0' + magnitude % 10); magnitude /= 10; } while (magnitude);
    if (negative) digits[--n] = '-';
    kvms_write(digits + n, (kvms_u64)(21 - n));
}

/* Unsigned decimal, no padding ("0", "18446744073709551615"). */
static inline void kvms_print_u64(kvms_u64 v)
{
    kvms_print_decimal(v, 0);
}

/* Signed decimal ("-22"). */
static inline void kvms_print_i64(kvms_i64 v)
{
    if (v < 0) kvms_print_decimal((kvms_u64)0 - (kvms_u64)v, 1);
    else kvms_print_decimal((kvms_u64)v, 0);
}

/* Hexadecimal with 0x and uppercase digits, no padding ("0x0", "0x534D564B"), as GUEST-ABI.md writes numbers. */
static inline void kvms_print_hex(kvms_u64 v)
{
    char digits[18];
    int n = 18;
    do { digits[--n] = "0123456789ABCDEF"[v & 0xF]; v >>= 4; } while (v);
    digits[--n] = 'x';
    digits[--n] = '0';
    kvms_write(digits + n, (kvms_u64)(18 - n));
}

/* ---- Formatted output: kvms_printf, kvms_snprintf, kvms_vsnprintf ----
 * C's printf for integers, characters, strings and pointers: conversions d i u o x X c s p and %%, the flags - 0 + space
 * and #, a width and a precision (either may be *), and the length modifiers hh h l ll z j t. No floating point, no %n:
 * an unknown conversion is printed as written. %p prints 0x and lowercase hex digits (0x0 for NULL). kvms_printf formats
 * into a 256-byte buffer on the stack and hands it to kvms_write each time it fills and at the end, so a printf is one
 * console write (one VM exit where the console-write port is offered) per 256 bytes. Each returns the number of
 * characters the whole output has, as C's do (snprintf: also when it did not fit). */
struct kvms_format_sink {
    char *buf;
    kvms_u64 cap;   /* characters buf holds (snprintf: its size less the terminating NUL) */
    kvms_u64 len;   /* characters in buf now */
    kvms_u64 total; /* characters of the whole output */
    int flush;      /* 1: kvms_write a full buffer and go on (printf); 0: drop what does not fit (snprintf) */
};

static inline void kvms_format_put(struct kvms_format_sink *s, char c)
{
    if (s->flush && s->len == s->cap)
    {
        kvms_write(s->buf, s->len);
        s->len = 0;
    }
    if (s->len < s->cap) s->buf[s->len++] = c;
    s->total++;
}

static inline void kvms_format_pad(struct kvms_format_sink *s, char c, int n)
{
    for (; n > 0; n--) kvms_format_put(s, c);
}

/* One integer conversion: value v (its magnitude), sign character or 0, prefix ("0x", "0X", "0" or ""). */
static inline void kvms_format_integer(struct kvms_format_sink *s, kvms_u64 v, unsigned base, int upper, char sign,
                                       const char *prefix, int width, int precision, int left, int zero)
{
    const char *digit = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char digits[24];
    int n = 0;
    if (!(v == 0 && precision == 0))
        do { digits[n++] = digit[v % base]; v /= base; } while (v);
    int zeros = precision > n ? precision - n : 0;
    if (prefix[0] == '0' && prefix[1] == 0 && (zeros > 0 || (n > 0 && digits[n - 1] == '0'))) prefix = ""; /* %#o */
    int prefixLength = (int)kvms_strlen(prefix);
    int length = n + zeros + (sign ? 1 : 0) + prefixLength;
    if (precision >= 0) zero = 0; /* C: with a precision the 0 flag is ignored */
    if (!left && !zero) kvms_format_pad(s, ' ', width - length);
    if (sign) kvms_format_put(s, sign);
    for (int i = 0; i < prefixLength; i++) kvms_format_put(s, prefix[i]);
    if (!left && zero) kvms_format_pad(s, '0', width - length);
    kvms_format_pad(s, '0', zeros);
    while (n > 0) kvms_format_put(s, digits[--n]);
    if (left) kvms_format_pad(s, ' ', width - length);
}

static inline void kvms_vformat(struct kvms_format_sink *s, const char *fmt, __builtin_va_list ap)
{
    for (; *fmt; fmt++)
    {
        if (*fmt != '%')
        {
            kvms_format_put(s, *fmt);
            continue;
        }
        const char *start = fmt++;
        int left = 0, zero = 0, plus = 0, space = 0, alt = 0;
        for (;; fmt++)
        {
            if (*fmt == '-') left = 1;
            else if (*fmt == '0') zero = 1;
            else if (*fmt == '+') plus = 1;
            else if (*fmt == ' ') space = 1;
            else if (*fmt == '#') alt = 1;
            else break;
        }
        int width = 0, precision = -1;
        if (*fmt == '*')
        {
            width = __builtin_va_arg(ap, int);
            if (width < 0) { left = 1; width = -width; }
            fmt++;
        }
        else
            while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
        if (*fmt == '.')
        {
            fmt++;
            precision = 0;
            if (*fmt == '*')
            {
                precision = __builtin_va_arg(ap, int);
                if (precision < 0) precision = -1;
                fmt++;
            }
            else
                while (*fmt >= '0' && *fmt <= '9') precision = precision * 10 + (*fmt++ - '0');
        }
        int bits = 32; /* the argument's width: 8 (hh), 16 (h), 32, or 64 (l ll z j t) */
        if (*fmt == 'h') { bits = 16; if (*++fmt == 'h') { bits = 8; fmt++; } }
        else if (*fmt == 'l') { bits = 64; if (*++fmt == 'l') fmt++; }
        else if (*fmt == 'z' || *fmt == 'j' || *fmt == 't') { bits = 64; fmt++; }
        char conversion = *fmt;
        switch (conversion)
        {
        case 'd':
        case 'i': {
            kvms_i64 x = bits == 64 ? __builtin_va_arg(ap, long long) : __builtin_va_arg(ap, int);
            if (bits == 16) x = (short)x;
            if (bits == 8) x = (signed char)x;
            char sign = x < 0 ? '-' : plus ? '+' : space ? ' ' : 0;
            kvms_format_integer(s, x < 0 ? (kvms_u64)0 - (kvms_u64)x : (kvms_u64)x, 10, 0, sign, "", width, precision, left, zero);
            break;
        }
        case 'u':
        case 'o':
        case 'x':
        case 'X': {
            kvms_u64 v = bits == 64 ? __builtin_va_arg(ap, unsigned long long) : __builtin_va_arg(ap, unsigned int);
            if (bits == 16) v = (unsigned short)v;
            if (bits == 8) v = (unsigned char)v;
            unsigned base = conversion == 'u' ? 10 : conversion == 'o' ? 8 : 16;
            const char *prefix = !alt || (base == 16 && v == 0) ? "" : base == 8 ? "0" : conversion == 'X' ? "0X" : base == 16 ? "0x" : "";
            kvms_format_integer(s, v, base, conversion == 'X', 0, prefix, width, precision, left, zero);
            break;
        }
        case 'p':
            kvms_format_integer(s, (kvms_u64)__builtin_va_arg(ap, void *), 16, 0, 0, "0x", width, precision, left, zero);
            break;
        case 'c':
            if (!left) kvms_format_pad(s, ' ', width - 1);
            kvms_format_put(s, (char)__builtin_va_arg(ap, int));
            if (left) kvms_format_pad(s, ' ', width - 1);
            break;
        case 's': {
            const char *str = __builtin_va_arg(ap, const char *);
            if (!str) str = "(null)";
            int length = 0;
            while (str[length] && (precision < 0 || length < precision)) length++;
            if (!left) kvms_format_pad(s, ' ', width - length);
            for (int i = 0; i < length; i++) kvms_format_put(s, str[i]);
            if (left) kvms_format_pad(s, ' ', width - length);
            break;
        }
        case '%':
            kvms_format_put(s, '%');
            break;
        default: /* not supported (floating point, %n …) or the string ended: printed as written */
            for (const char *p = start; p <= fmt && *p; p++) kvms_format_put(s, *p);
            if (!*fmt) return;
            break;
        }
    }
}

/* Up to size - 1 characters and a NUL into buf (nothing with size 0); the whole output's length. */
static inline int kvms_vsnprintf(char *buf, kvms_u64 size, const char *fmt, __builtin_va_list ap)
{
    struct kvms_format_sink s = { buf, size > 0 ? size - 1 : 0, 0, 0, 0 };
    kvms_vformat(&s, fmt, ap);
    if (size > 0) buf[s.len] = 0;
    return (int)s.total;
}

__attribute__((format(printf, 3, 4))) static inline int kvms_snprintf(char *buf, kvms_u64 size, const char *fmt, ...)
{
    __builtin_va_list ap;
    __builtin_va_start(ap, fmt);
    int n = kvms_vsnprintf(buf, size, fmt, ap);
    __builtin_va_end(ap);
    return n;
}

/* To the console, 256 bytes per kvms_write. */
__attribute__((format(printf, 1, 2))) static inline int kvms_printf(const char *fmt, ...)
{
    char buf[256];
    struct kvms_format_sink s = { buf, sizeof buf, 0, 0, 1 };
    __builtin_va_list ap;
    __builtin_va_start(ap, fmt);
    kvms_vformat(&s, fmt, ap);
    __builtin_va_end(ap);
    if (s.len > 0) kvms_write(buf, s.len);
    return (int)s.total;
}

/* ---- The current call (GUEST-ABI.md, "Calls") ---- */

/* The ABI version the host speaks (KVMS_ABI_VERSION or later: versions only add), or 0 if the call region does not
 * hold the magic — i.e. this is not a KvmSharp micro-VM. */
static inline kvms_u32 kvms_abi_version(void)
{
    volatile struct kvms_call_region *c = kvms_call_region();
    return c->magic == KVMS_CALL_MAGIC_VALUE ? c->version : 0;
}

/* How many integer arguments the host passed (0-6), and the i-th (0 beyond them). Your function also receives them
 * as ordinary SysV parameters; these help a function that takes a variable number of them. */
static inline kvms_u64 kvms_arg_count(void)
{
    return kvms_call_region()->arg_count;
}

static inline kvms_u64 kvms_arg(unsigned i)
{
    volatile struct kvms_call_region *c = kvms_call_region();
    return i < c->arg_count && i < KVMS_CALL_MAX_ARGS ? c->args[i] : 0;
}

/* The call's input bytes (vm.Call(name, bytes)): at KVMS_CALL_DATA, or a null pointer and length 0 without input.
 * Such a call also passes (ptr, len) as the first two arguments. */
static inline const kvms_u8 *kvms_input(void)
{
    return (const kvms_u8 *)(kvms_u64)kvms_call_region()->input_ptr;
}

static inline kvms_u64 kvms_input_len(void)
{
    return kvms_call_region()->input_len;
}

/* Hands [data, data + len) back as the call's output (CallResult.Output), copied by the host when the call returns
 * or exits. The bytes must lie in [KVMS_CALL_DATA, KVMS_CALL_DATA_END) — the host ignores any other range — so this
 * returns -1 and sets nothing for a range outside it, 0 when set. */
static inline int kvms_set_output(const void *data, kvms_u64 len)
{
    kvms_u64 p = (kvms_u64)data;
    if (p < KVMS_CALL_DATA || p > KVMS_CALL_DATA_END || len > KVMS_CALL_DATA_END - p) return -1;
    volatile struct kvms_call_region *c = kvms_call_region();
    c->output_ptr = p;
    c->output_len = len;
    return 0;
}

/* Where output can be built without overwriting the input: the call data area after the input, 8-byte aligned.
 * *capacity (if not null) receives how many bytes fit. */
static inline kvms_u8 *kvms_output_buffer(kvms_u64 *capacity)
{
    kvms_u64 p = KVMS_CALL_DATA + ((kvms_input_len() + 7) & ~7ull);
    if (p > KVMS_CALL_DATA_END) p = KVMS_CALL_DATA_END;
    if (capacity) *capacity = KVMS_CALL_DATA_END - p;
    return (kvms_u8 *)p;
}

/* Copies len bytes into kvms_output_buffer and hands them back: 0, or -1 (nothing set) when they do not fit.
 * kvms_copy_bytes rather than a loop, which the compiler could turn into a call to memcpy. */
static inline int kvms_output(const void *data, kvms_u64 len)
{
    kvms_u64 capacity;
    kvms_u8 *out = kvms_output_buffer(&capacity);
    if (len > capacity) return -1;
    kvms_copy_bytes(out, data, len);
    return kvms_set_output(out, len);
}

/* The host's feature word (version 3), written before every call. */
static inline kvms_u64 kvms_features(void)
{
    return kvms_call_region()->features;
}

/* ---- Host calls (GUEST-ABI.md, "Host calls") ----
 * Write id and arguments into the block, OUT to KVMS_PORT_HOST_CALL, read result and status: one VM exit, the vCPU
 * waits while the host function runs. Unused argument slots are written 0, so the host never sees a stale value.
 * status (if not null) receives a KVMS_STATUS_ value or the function's own (>= KVMS_STATUS_FIRST_APPLICATION_STATUS);
 * the return value is the function's result (meaningful when the status is KVMS_STATUS_OK). More than six arguments
 * call nothing and answer KVMS_STATUS_BAD_ARGUMENT. */
static inline kvms_u64 kvms_hostcall(kvms_u64 id, const kvms_u64 *args, unsigned count, kvms_u64 *status)
{
    if (count > KVMS_HOSTCALL_MAX_ARGS) {
        if (status) *status = KVMS_STATUS_BAD_ARGUMENT;
        return 0;
    }
    volatile struct kvms_hostcall_block *b = kvms_hostcall_block();
    b->function = id;
    for (unsigned i = 0; i < KVMS_HOSTCALL_MAX_ARGS; i++) b->args[i] = i < count ? args[i] : 0;
    /* The "memory" clobber orders the OUT after the block's writes and before its reads. */
#if defined(__x86_64__)
    __asm__ volatile("outb %%al, %%dx" : : "a"(0), "d"((kvms_u16)KVMS_PORT_HOST_CALL) : "memory");
#else
    kvms_outb(KVMS_PORT_HOST_CALL, 0); /* a byte store: 0x502 is not 4-byte aligned */
#endif
    if (status) *status = b->status;
    return b->result;
}

static inline kvms_u64 kvms_hostcall0(kvms_u64 id, kvms_u64 *status)
{
    return kvms_hostcall(id, 0, 0, status);
}

static inline kvms_u64 kvms_hostcall1(kvms_u64 id, kvms_u64 a0, kvms_u64 *status)
{
    kvms_u64 args[1] = { a0 };
    return kvms_hostcall(id, args, 1, status);
}

static inline kvms_u64 kvms_hostcall2(kvms_u64 id, kvms_u64 a0, kvms_u64 a1, kvms_u64 *status)
{
    kvms_u64 args[2] = { a0, a1 };
    return kvms_hostcall(id, args, 2, status);
}

static inline kvms_u64 kvms_hostcall3(kvms_u64 id, kvms_u64 a0, kvms_u64 a1, kvms_u64 a2, kvms_u64 *status)
{
    kvms_u64 args[3] = { a0, a1, a2 };
    return kvms_hostcall(id, args, 3, status);
}

static inline kvms_u64 kvms_hostcall6(kvms_u64 id, kvms_u64 a0, kvms_u64 a1, kvms_u64 a2, kvms_u64 a3, kvms_u64 a4,
                                      kvms_u64 a5, kvms_u64 *status)
{
    kvms_u64 args[6] = { a0, a1, a2, a3, a4, a5 };
    return kvms_hostcall(id, args, 6, status);
}

/* The id of the host function named by len bytes at name (1-64), through the built-in resolve (id 0); on failure
 * *status is KVMS_STATUS_UNKNOWN_FUNCTION (no such name) or KVMS_STATUS_BAD_ARGUMENT (empty or too long). Cache the
 * id: resolve is one exit like any other host call. */
static inline kvms_u64 kvms_resolve_n(const char *name, kvms_u64 len, kvms_u64 *status)
{
    return kvms_hostcall2(KVMS_HOSTCALL_RESOLVE_ID, (kvms_u64)name, len, status);
}

static inline kvms_u64 kvms_resolve(const char *name, kvms_u64 *status)
{
    return kvms_resolve_n(name, kvms_strlen(name), status);
}

/* ---- Time: the TSC is the only time source (no kvmclock: GUEST-ABI.md, "CPUID") ---- */
#if defined(__x86_64__)
static inline kvms_u64 kvms_rdtsc(void)
{
    kvms_u32 lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((kvms_u64)hi << 32) | lo;
}

static inline void kvms_cpuid(kvms_u32 leaf, kvms_u32 subleaf, kvms_u32 *eax, kvms_u32 *ebx, kvms_u32 *ecx,
                              kvms_u32 *edx)
{
    kvms_u32 a, b, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(leaf), "c"(subleaf));
    if (eax) *eax = a;
    if (ebx) *ebx = b;
    if (ecx) *ecx = c;
    if (edx) *edx = d;
}

/* The TSC rate in kHz from CPUID leaf 0x40000010, or 0 where the host does not report it: a kernel without the TSC
 * rate (the signature leaf then says 0x40000001 is the highest) or a micro-VM without a CPUID table
 * (CpuidPolicy.None: every leaf reads zero). Ticks × 1000 / kHz = microseconds (kvms_tsc_to_us). */
static inline kvms_u32 kvms_tsc_khz(void)
{
    kvms_u32 max, b, c, d, khz;
    kvms_cpuid(KVMS_CPUID_KVM_SIGNATURE_LEAF, 0, &max, &b, &c, &d);
    /* "KVMKVMKVM\0\0\0" little-endian: a non-KVM CPU answers leaf 0x40000000 with unrelated numbers. */
    if (b != 0x4B4D564Bu || c != 0x564B4D56u || d != 0x4Du || max < KVMS_CPUID_TIMING_LEAF) return 0;
    kvms_cpuid(KVMS_CPUID_TIMING_LEAF, 0, &khz, 0, 0, 0);
    return khz;
}
#else
/* arm64: the generic timer's virtual counter (CNTVCT_EL0) stands in for the TSC, CNTFRQ_EL0 for its rate. */
static inline kvms_u64 kvms_rdtsc(void)
{
    kvms_u64 ticks;
    __asm__ volatile("isb\n\tmrs %0, cntvct_el0" : "=r"(ticks) : : "memory");
    return ticks;
}

/* arm64 has no CPUID: every leaf reads zero (as in an x86-64 micro-VM without a CPUID table). */
static inline void kvms_cpuid(kvms_u32 leaf, kvms_u32 subleaf, kvms_u32 *eax, kvms_u32 *ebx, kvms_u32 *ecx,
                              kvms_u32 *edx)
{
    (void)leaf;
    (void)subleaf;
    if (eax) *eax = 0;
    if (ebx) *ebx = 0;
    if (ecx) *ecx = 0;
    if (edx) *edx = 0;
}

/* The counter's rate in kHz (CNTFRQ_EL0 / 1000), or 0 where the firmware left CNTFRQ_EL0 zero. */
static inline kvms_u32 kvms_tsc_khz(void)
{
    kvms_u64 hz;
    __asm__ volatile("mrs %0, cntfrq_el0" : "=r"(hz));
    return (kvms_u32)(hz / 1000);
}
#endif

/* ticks of a TSC running at khz, in microseconds, without overflowing for any 64-bit tick count; 0 when khz is 0. */
static inline kvms_u64 kvms_tsc_to_us(kvms_u64 ticks, kvms_u32 khz)
{
    if (khz == 0) return 0;
    return ticks / khz * 1000 + ticks % khz * 1000 / khz;
}

/* ---- Private memory (version 3; GUEST-ABI.md, "Private memory") ---- */

/* True when the VM has private memory and serves KVM_HC_MAP_GPA_RANGE (features bit 0). */
static inline int kvms_has_private_memory(void)
{
    return (kvms_features() & KVMS_CALL_FEATURE_PRIVATE_MEMORY) != 0;
}

/* The raw hypercall: RAX = 12, RBX = gpa (4 KiB aligned), RCX = 4 KiB pages (> 0), RDX = attributes; returns 0 or
 * -KVMS_EINVAL / -KVMS_EFAULT / -KVMS_EPERM. Only when kvms_has_private_memory(): without it a VMCALL may never
 * return (kvm_pvm) or answers -KVMS_ENOSYS (upstream). kvms_make_private / kvms_make_shared check first. */
static inline kvms_i64 kvms_map_gpa_range(kvms_u64 gpa, kvms_u64 pages, kvms_u64 attributes)
{
#if defined(__aarch64__)
    /* arm64 micro-VMs have no private memory and no such hypercall. */
    (void)gpa;
    (void)pages;
    (void)attributes;
    return -KVMS_ENOSYS;
#else
    kvms_i64 ret;
    __asm__ volatile("vmcall"
                     : "=a"(ret)
                     : "a"(KVMS_HC_MAP_GPA_RANGE), "b"(gpa), "c"(pages), "d"(attributes)
                     : "memory");
    return ret;
#endif
}

/* True in an SEV-SNP micro-VM (features bit 1): VMCALL is #UD there; pages convert through the runtime's GHCB
 * page-state change instead (GUEST-ABI.md, "SEV-SNP micro-VMs"). */
static inline int kvms_is_snp(void)
{
    return (kvms_features() & KVMS_CALL_FEATURE_SNP) != 0;
}

/* SNP micro-VM only: the runtime's page-state change at KVMS_SNP_MAP_GPA_RANGE, an ordinary SysV function with the
 * hypercall's arguments and answers. It asks the hypervisor (GHCB PSC request, VMGEXIT) and flips the C-bit of the
 * pages' entries in the page tables, so the range must lie in [KVMS_IMAGE_BASE, KVMS_LARGE_PAGE_SIZE) (4 KiB entries)
 * or wholly above it in whole 2 MiB pages (KVMS_LARGE_PAGE_SIZE-aligned address and end); else -KVMS_EINVAL. */
static inline kvms_i64 kvms_snp_map_gpa_range(kvms_u64 gpa, kvms_u64 pages, kvms_u64 attributes)
{
#if defined(__aarch64__)
    (void)gpa;
    (void)pages;
    (void)attributes;
    return -KVMS_ENOSYS; /* no SNP on arm64 */
#else
    kvms_i64 (*convert)(kvms_u64, kvms_u64, kvms_u64) = (kvms_i64 (*)(kvms_u64, kvms_u64, kvms_u64))KVMS_SNP_MAP_GPA_RANGE;
    return convert(gpa, pages, attributes);
#endif
}

/* Makes pages private (the host can no longer read or write them; you still can, the bytes stay): 0, a negative
 * KVMS_E* answer, or -KVMS_ENOSYS without the hypercall being issued when the VM has no private memory. In an SNP
 * micro-VM through kvms_snp_map_gpa_range. */
static inline kvms_i64 kvms_make_private(const void *page, kvms_u64 pages)
{
    if (!kvms_has_private_memory()) return -KVMS_ENOSYS;
    if (kvms_is_snp()) return kvms_snp_map_gpa_range((kvms_u64)page, pages, KVMS_MAP_GPA_RANGE_ENCRYPTED);
    return kvms_map_gpa_range((kvms_u64)page, pages, KVMS_MAP_GPA_RANGE_ENCRYPTED);
}

/* Makes pages shared (the host can read and write them, e.g. through a host function's pointer). */
static inline kvms_i64 kvms_make_shared(const void *page, kvms_u64 pages)
{
    if (!kvms_has_private_memory()) return -KVMS_ENOSYS;
    if (kvms_is_snp()) return kvms_snp_map_gpa_range((kvms_u64)page, pages, KVMS_MAP_GPA_RANGE_DECRYPTED);
    return kvms_map_gpa_range((kvms_u64)page, pages, KVMS_MAP_GPA_RANGE_DECRYPTED);
}

/* ---- memcpy, memmove, memset, memcmp for the compiler (opt-in, one file) ----
 * String instructions instead of loops: a loop here could itself be compiled into a call to the function it is in. */
#ifdef KVMSHARP_GUEST_MEMFUNCS
void *memcpy(void *dst, const void *src, __SIZE_TYPE__ n);
void *memmove(void *dst, const void *src, __SIZE_TYPE__ n);
void *memset(void *dst, int c, __SIZE_TYPE__ n);
int memcmp(const void *a, const void *b, __SIZE_TYPE__ n);

#if defined(__x86_64__)
/* Eight bytes per element (REP MOVSQ/STOSQ), then the rest byte by byte: kvm_pvm (software nested KVM) takes a REP
 * string instruction about one element per microsecond, so REP MOVSQ copies in 0.13 of REP MOVSB's time there (an
 * 8-byte MOV loop in 0.59), while hardware with fast string operations, and the emulated kernel, which copies page
 * runs, move either at full speed. */
void *memcpy(void *dst, const void *src, __SIZE_TYPE__ n)
{
    void *d = dst;
    __SIZE_TYPE__ qwords = n / 8, bytes = n % 8;
    __asm__ volatile("rep movsq\n\tmov %3, %%rcx\n\trep movsb" : "+D"(d), "+S"(src), "+c"(qwords) : "r"(bytes) : "memory");
    return dst;
}

void *memmove(void *dst, const void *src, __SIZE_TYPE__ n)
{
    if ((kvms_u64)dst <= (kvms_u64)src || (kvms_u64)dst >= (kvms_u64)src + n) return memcpy(dst, src, n);
    /* Overlapping with dst above src: backwards (DF set, then cleared as the ABI wants) — the last n % 8 bytes one by
     * one from the last byte, then the qwords from the last one (RSI/RDI then point at the byte below the qwords). */
    void *d = (kvms_u8 *)dst + n - 1;
    const void *s = (const kvms_u8 *)src + n - 1;
    __SIZE_TYPE__ bytes = n % 8, qwords = n / 8;
    __asm__ volatile("std\n\trep movsb\n\tsub $7, %%rsi\n\tsub $7, %%rdi\n\tmov %3, %%rcx\n\trep movsq\n\tcld"
                     : "+D"(d), "+S"(s), "+c"(bytes) : "r"(qwords) : "memory");
    return dst;
}

void *memset(void *dst, int c, __SIZE_TYPE__ n)
{
    void *d = dst;
    __SIZE_TYPE__ qwords = n / 8, bytes = n % 8;
    kvms_u64 pattern = (kvms_u8)c * 0x0101010101010101ull;
    __asm__ volatile("rep stosq\n\tmov %3, %%rcx\n\trep stosb" : "+D"(d), "+c"(qwords) : "a"(pattern), "r"(bytes) : "memory");
    return dst;
}

#else
/* arm64: byte loops through volatile pointers, which the compiler cannot turn back into calls to these functions. */
void *memcpy(void *dst, const void *src, __SIZE_TYPE__ n)
{
    volatile kvms_u8 *d = (volatile kvms_u8 *)dst;
    const volatile kvms_u8 *s = (const volatile kvms_u8 *)src;
    for (__SIZE_TYPE__ i = 0; i < n; i++) d[i] = s[i];
    return dst;
}

void *memmove(void *dst, const void *src, __SIZE_TYPE__ n)
{
    if ((kvms_u64)dst <= (kvms_u64)src || (kvms_u64)dst >= (kvms_u64)src + n) return memcpy(dst, src, n);
    volatile kvms_u8 *d = (volatile kvms_u8 *)dst;
    const volatile kvms_u8 *s = (const volatile kvms_u8 *)src;
    for (__SIZE_TYPE__ i = n; i > 0; i--) d[i - 1] = s[i - 1];
    return dst;
}

void *memset(void *dst, int c, __SIZE_TYPE__ n)
{
    volatile kvms_u8 *d = (volatile kvms_u8 *)dst;
    for (__SIZE_TYPE__ i = 0; i < n; i++) d[i] = (kvms_u8)c;
    return dst;
}
#endif

int memcmp(const void *a, const void *b, __SIZE_TYPE__ n)
{
    const volatile kvms_u8 *x = (const volatile kvms_u8 *)a, *y = (const volatile kvms_u8 *)b;
    for (__SIZE_TYPE__ i = 0; i < n; i++)
        if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
    return 0;
}
#endif /* KVMSHARP_GUEST_MEMFUNCS */

/* ---- malloc, free, calloc, realloc: a heap for the guest (opt-in, one file; version 5) ----
 * Define KVMSHARP_GUEST_MALLOC before including this header in exactly one file, and KVMSHARP_GUEST_MEMFUNCS in one
 * file too (calloc and realloc call memset and memcpy). The heap runs from the end of your image (the linker's _end,
 * .bss included, rounded up to 16) to the end of guest memory (the call region's memory_size: a host older than
 * version 5 writes none, and malloc returns NULL), so it grows with MicroVmOptions.MemorySize. Every block has a
 * 16-byte header and 16-byte-aligned bytes; malloc takes the first free block that fits (splitting it), merging the
 * free blocks after each free block it passes, else grows the heap at its top; free gives a block at the top back to
 * it. O(blocks) per call and no host work at all. The heap is guest memory like any other: it persists across calls,
 * and a pool's reset or a snapshot's restore puts it back with everything else. One vCPU: not thread-safe.
 * realloc(p, 0) frees p and returns NULL. */
#ifdef KVMSHARP_GUEST_MALLOC
void *malloc(__SIZE_TYPE__ n);
void free(void *p);
void *calloc(__SIZE_TYPE__ count, __SIZE_TYPE__ size);
void *realloc(void *p, __SIZE_TYPE__ n);
void *memcpy(void *dst, const void *src, __SIZE_TYPE__ n);
void *memset(void *dst, int c, __SIZE_TYPE__ n);

extern char _end[]; /* defined by the linker (GNU ld and lld): the first byte after the image */

struct kvms_heap_block {
    kvms_u64 size; /* bytes after this header: a multiple of 16 */
    kvms_u64 used;
};

/* The blocks fill [kvms_heap_first, kvms_heap_top), in address order; both are set at the first malloc. */
static struct kvms_heap_block *kvms_heap_first, *kvms_heap_top;

static kvms_u64 kvms_heap_round(kvms_u64 n) { return n == 0 ? 16 : (n + 15) & ~15ull; }

static struct kvms_heap_block *kvms_heap_next(struct kvms_heap_block *b)
{
    return (struct kvms_heap_block *)((kvms_u8 *)(b + 1) + b->size);
}

/* Merges the free blocks after the free block b into it; if b then ends at the top, gives it back (returns 1). */
static int kvms_heap_merge(struct kvms_heap_block *b)
{
    struct kvms_heap_block *next = kvms_heap_next(b);
    while (next < kvms_heap_top && !next->used)
    {
        b->size += sizeof *next + next->size;
        next = kvms_heap_next(b);
    }
    if (next != kvms_heap_top) return 0;
    kvms_heap_top = b;
    return 1;
}

/* The end of guest memory (memory_size), and whether n bytes of block b, ending past it, would still fit. */
static kvms_u64 kvms_heap_limit(void) { return *(volatile kvms_u64 *)(KVMS_CALL_REGION + KVMS_CALL_MEMORY_SIZE); }

static int kvms_heap_fits(struct kvms_heap_block *b, kvms_u64 n, kvms_u64 limit)
{
    return (kvms_u64)(b + 1) <= limit && n <= limit - (kvms_u64)(b + 1);
}

void *malloc(__SIZE_TYPE__ n)
{
    if (!kvms_heap_first)
        kvms_heap_first = kvms_heap_top = (struct kvms_heap_block *)(((kvms_u64)_end + 15) & ~15ull);
    kvms_u64 limit = kvms_heap_limit();
    if (n > limit) return 0; /* also keeps the rounding from overflowing */
    kvms_u64 want = kvms_heap_round(n);
    for (struct kvms_heap_block *b = kvms_heap_first; b < kvms_heap_top; b = kvms_heap_next(b))
    {
        if (b->used) continue;
        if (kvms_heap_merge(b)) break; /* it went back to the top: grow from there */
        if (b->size < want) continue;
        if (b->size >= want + sizeof *b + 16)
        {
            struct kvms_heap_block *rest = (struct kvms_heap_block *)((kvms_u8 *)(b + 1) + want);
            rest->size = b->size - want - sizeof *rest;
            rest->used = 0;
            b->size = want;
        }
        b->used = 1;
        return b + 1;
    }
    struct kvms_heap_block *top = kvms_heap_top;
    if (!kvms_heap_fits(top, want, limit)) return 0;
    top->size = want;
    top->used = 1;
    kvms_heap_top = kvms_heap_next(top);
    return top + 1;
}

void free(void *p)
{
    if (!p) return;
    struct kvms_heap_block *b = (struct kvms_heap_block *)p - 1;
    b->used = 0;
    kvms_heap_merge(b);
}

void *calloc(__SIZE_TYPE__ count, __SIZE_TYPE__ size)
{
    if (size != 0 && count > (__SIZE_TYPE__)-1 / size) return 0;
    void *p = malloc(count * size);
    if (p) memset(p, 0, count * size); /* a freed block keeps its old bytes */
    return p;
}

void *realloc(void *p, __SIZE_TYPE__ n)
{
    if (!p) return malloc(n);
    if (n == 0)
    {
        free(p);
        return 0;
    }
    struct kvms_heap_block *b = (struct kvms_heap_block *)p - 1;
    if (b->size >= n) return p;
    kvms_u64 limit = kvms_heap_limit();
    if (kvms_heap_next(b) == kvms_heap_top && n <= limit && kvms_heap_fits(b, kvms_heap_round(n), limit))
    {
        b->size = kvms_heap_round(n); /* the top block grows in place */
        kvms_heap_top = kvms_heap_next(b);
        return p;
    }
    void *q = malloc(n);
    if (q)
    {
        memcpy(q, p, b->size);
        free(p);
    }
    return q;
}
#endif /* KVMSHARP_GUEST_MALLOC */

#endif /* KVMSHARP_GUEST_H */

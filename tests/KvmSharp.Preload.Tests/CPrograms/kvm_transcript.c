// SPDX-License-Identifier: MIT
/*
 * kvm_transcript: a fixed sequence of KVM uAPI calls, valid and invalid, one output line per step, so the
 * transcript of one kernel can be compared byte for byte with another's. Run plainly it records the real kernel;
 * run under `kvmsharp exec --kernel emulated` (the LD_PRELOAD bridge) it records KvmSharp's emulated kernel, whose
 * "like this host" preset must answer exactly as this machine's kernel does.
 *
 * A line is "step: result [state]": result is the return value, "fd" for a new descriptor, "addr" for a mapping,
 * or "-1 ENAME" on failure; state is what the step reads back (struct fields the kernel wrote, fstat fields, bytes
 * of guest memory, vCPU exits). Nothing printed may vary between two runs on one kernel: no descriptor numbers,
 * addresses, pids, times, inode numbers or TSC values.
 *
 * A failing step is data, not an error: the program exits 0 when it ran to the end, 1 only when it cannot go on
 * (no /dev/kvm, no VM of type 0, no vCPU, no memory), with the reason on stderr.
 *
 * Build (the host's 6.1 <linux/kvm.h> lacks the guest_memfd numbers; the vendored 6.18+ uAPI headers go first):
 *   gcc -O2 -Wall -Werror -I tests/KvmSharp.Tests/AbiOracle/include -I tests/KvmSharp.Tests/AbiOracle/shim \
 *       -o /tmp/kvm_transcript tests/KvmSharp.Preload.Tests/CPrograms/kvm_transcript.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/falloc.h>
#include <linux/kvm.h>

#ifndef KVM_CAP_GUEST_MEMFD_FLAGS
#error "linux/kvm.h is not the vendored upstream header (no KVM_CAP_GUEST_MEMFD_FLAGS)"
#endif
#if !defined(__x86_64__)
#error "kvm_transcript drives x86 KVM (regs, sregs, CPUID, MSRs, a real-mode guest)"
#endif

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define PAGE 4096UL

/* An ioctl number KVM does not define (KVMIO, nr 0xff) and one of a different subsystem (TCGETS). */
#define KVM_BOGUS_IOCTL _IO(KVMIO, 0xff)

/* ---- output --------------------------------------------------------------------------------------------------- */

static long rc;
static int err;

/* Runs a call with errno cleared and keeps its result and errno for the next report. */
#define DO(expr) (errno = 0, rc = (long)(expr), err = errno)

enum kind { INT, FD, ADDR };

static const char *ename(int e)
{
	const char *name = strerrorname_np(e);

	return name ? name : "E?";
}

/* One line: the step, the last DO's result in the normalised form of kind, then the state (printf format). */
static void report(enum kind kind, const char *step, const char *fmt, ...)
{
	va_list ap;

	printf("%s: ", step);
	if (rc < 0 && (kind != ADDR || (void *)rc == MAP_FAILED))
		printf("-1 %s", ename(err));
	else if (kind == FD)
		printf("fd");
	else if (kind == ADDR)
		printf("addr");
	else
		printf("%ld", rc);
	if (fmt && *fmt) {
		putchar(' ');
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
	}
	putchar('\n');
	/* A crash in a later step must not swallow the lines before it. */
	fflush(stdout);
}

static void fatal(const char *why)
{
	fflush(stdout);
	fprintf(stderr, "kvm_transcript: cannot continue: %s (%s)\n", why, ename(err));
	exit(1);
}

/* ---- descriptor-level steps shared by every fd kind ------------------------------------------------------------ */

/* fstat without st_dev/st_ino (boot-dependent) and times. */
static void step_fstat(const char *kind, int fd)
{
	struct stat st;
	char step[64];

	memset(&st, 0, sizeof(st));
	snprintf(step, sizeof(step), "fstat(%s)", kind);
	DO(fstat(fd, &st));
	if (rc < 0)
		report(INT, step, NULL);
	else
		report(INT, step, "mode=0%o nlink=%lu uid=%u gid=%u rdev=%u:%u size=%lld blksize=%ld blocks=%lld",
		       st.st_mode, (unsigned long)st.st_nlink, st.st_uid, st.st_gid, major(st.st_rdev),
		       minor(st.st_rdev), (long long)st.st_size, (long)st.st_blksize, (long long)st.st_blocks);
}

static void step_fcntl(const char *kind, int fd)
{
	char step[64];

	snprintf(step, sizeof(step), "fcntl(%s, F_GETFD)", kind);
	DO(fcntl(fd, F_GETFD));
	report(INT, step, NULL);
	/*
	 * Access mode and status flags as the kernel keeps them (glibc's O_LARGEFILE is 0 on x86_64, the kernel's is
	 * 0100000): open(2) forces O_LARGEFILE on, anon_inode_getfd (VM and vCPU descriptors) does not.
	 */
	snprintf(step, sizeof(step), "fcntl(%s, F_GETFL)", kind);
	DO(fcntl(fd, F_GETFL));
	report(INT, step, "flags=0%lo", rc >= 0 ? rc : 0);
}

/* What /proc/self/fd shows: "/dev/kvm", or the anon inode's name ("anon_inode:kvm-vm", "anon_inode:kvm-vcpu:0"). */
static void step_proc_fd(const char *kind, int fd)
{
	char path[64], target[256] = "", step[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	snprintf(step, sizeof(step), "readlink(/proc/self/fd/<%s>)", kind);
	DO(readlink(path, target, sizeof(target) - 1));
	report(INT, step, "%s", target);
}

/* The file operations a KVM descriptor has no use for: each fails, and how is part of the uAPI. */
static void step_file_ops(const char *kind, int fd)
{
	char buf[16] = { 0 }, step[64];
	struct pollfd pfd = { .fd = fd, .events = POLLIN | POLLOUT };

#define FILE_OP(name, expr)                                                 \
	do {                                                                \
		snprintf(step, sizeof(step), "%s(%s)", name, kind);         \
		DO(expr);                                                   \
		report(INT, step, NULL);                                    \
	} while (0)
	FILE_OP("read", read(fd, buf, sizeof(buf)));
	FILE_OP("write", write(fd, buf, sizeof(buf)));
	FILE_OP("pread", pread(fd, buf, sizeof(buf), 0));
	FILE_OP("pwrite", pwrite(fd, buf, sizeof(buf), 0));
	FILE_OP("lseek(0, SEEK_SET)", lseek(fd, 0, SEEK_SET));
	FILE_OP("lseek(4096, SEEK_CUR)", lseek(fd, 4096, SEEK_CUR));
	FILE_OP("lseek(0, SEEK_END)", lseek(fd, 0, SEEK_END));
	FILE_OP("ftruncate", ftruncate(fd, PAGE));
	FILE_OP("fallocate", fallocate(fd, 0, 0, PAGE));
	FILE_OP("fallocate(PUNCH_HOLE)", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, PAGE));
	snprintf(step, sizeof(step), "poll(%s)", kind);
	DO(poll(&pfd, 1, 0));
	report(INT, step, "revents=0x%x", pfd.revents);
#undef FILE_OP
}

/* ioctls every fd kind answers the same way or not at all: unknown numbers, and the VFS's generic ones. */
static void step_generic_ioctls(const char *kind, int fd)
{
	char step[64];
	int value;

	snprintf(step, sizeof(step), "ioctl(%s, _IO(KVMIO, 0xff))", kind);
	DO(ioctl(fd, KVM_BOGUS_IOCTL, 0));
	report(INT, step, NULL);
	snprintf(step, sizeof(step), "ioctl(%s, TCGETS)", kind);
	{
		char termios[64];
		DO(ioctl(fd, TCGETS, termios));
	}
	report(INT, step, NULL);
	/* fs/ioctl.c do_vfs_ioctl answers these before the file's own unlocked_ioctl is asked. */
	snprintf(step, sizeof(step), "ioctl(%s, FIONCLEX)", kind);
	DO(ioctl(fd, FIONCLEX));
	report(INT, step, NULL);
	snprintf(step, sizeof(step), "fcntl(%s, F_GETFD) after FIONCLEX", kind);
	DO(fcntl(fd, F_GETFD));
	report(INT, step, NULL);
	snprintf(step, sizeof(step), "ioctl(%s, FIOCLEX)", kind);
	DO(ioctl(fd, FIOCLEX));
	report(INT, step, NULL);
	snprintf(step, sizeof(step), "fcntl(%s, F_GETFD) after FIOCLEX", kind);
	DO(fcntl(fd, F_GETFD));
	report(INT, step, NULL);
	value = -1;
	snprintf(step, sizeof(step), "ioctl(%s, FIONREAD)", kind);
	DO(ioctl(fd, FIONREAD, &value));
	report(INT, step, "value=%d", value);
}

/* ---- capabilities ------------------------------------------------------------------------------------------------ */

static const struct {
	long cap;
	const char *name;
} caps[] = {
	{ KVM_CAP_IRQCHIP, "IRQCHIP" },
	{ KVM_CAP_HLT, "HLT" },
	{ KVM_CAP_USER_MEMORY, "USER_MEMORY" },
	{ KVM_CAP_SET_TSS_ADDR, "SET_TSS_ADDR" },
	{ KVM_CAP_EXT_CPUID, "EXT_CPUID" },
	{ KVM_CAP_NR_VCPUS, "NR_VCPUS" },
	{ KVM_CAP_NR_MEMSLOTS, "NR_MEMSLOTS" },
	{ KVM_CAP_SYNC_MMU, "SYNC_MMU" },
	{ KVM_CAP_IOEVENTFD, "IOEVENTFD" },
	{ KVM_CAP_READONLY_MEM, "READONLY_MEM" },
	{ KVM_CAP_MAX_VCPUS, "MAX_VCPUS" },
	{ KVM_CAP_MAX_VCPU_ID, "MAX_VCPU_ID" },
	{ KVM_CAP_IMMEDIATE_EXIT, "IMMEDIATE_EXIT" },
	{ KVM_CAP_MULTI_ADDRESS_SPACE, "MULTI_ADDRESS_SPACE" },
	{ KVM_CAP_COALESCED_MMIO, "COALESCED_MMIO" },
	{ KVM_CAP_USER_MEMORY2, "USER_MEMORY2" },
	{ KVM_CAP_MEMORY_ATTRIBUTES, "MEMORY_ATTRIBUTES" },
	{ KVM_CAP_GUEST_MEMFD, "GUEST_MEMFD" },
	{ KVM_CAP_VM_TYPES, "VM_TYPES" },
	{ KVM_CAP_PRE_FAULT_MEMORY, "PRE_FAULT_MEMORY" },
	{ KVM_CAP_GUEST_MEMFD_FLAGS, "GUEST_MEMFD_FLAGS" },
	{ 9999, "9999 (undefined)" },
	{ -1, "-1" },
};

static void step_caps(const char *kind, int fd)
{
	char step[96];

	for (size_t i = 0; i < ARRAY_SIZE(caps); i++) {
		snprintf(step, sizeof(step), "KVM_CHECK_EXTENSION(%s, %s)", kind, caps[i].name);
		DO(ioctl(fd, KVM_CHECK_EXTENSION, caps[i].cap));
		report(INT, step, NULL);
	}
}

/* ---- /dev/kvm ---------------------------------------------------------------------------------------------------- */

/*
 * One CPUID entry. KVM_GET_SUPPORTED_CPUID passes through the APIC ID of the CPU the ioctl happened to run on
 * (cpuid.c do_host_cpuid: leaf 1 EBX[31:24], leaves 0xB and 0x1F EDX, leaf 0x8000001E EAX), which differs from run to
 * run on a machine with more than one CPU: those bits print as "xx".
 */
static void print_cpuid_entry(const char *prefix, const struct kvm_cpuid_entry2 *e)
{
	char eax[16], ebx[16], edx[16];

	snprintf(eax, sizeof(eax), "%08x", e->eax);
	snprintf(ebx, sizeof(ebx), "%08x", e->ebx);
	snprintf(edx, sizeof(edx), "%08x", e->edx);
	if (e->function == 1)
		snprintf(ebx, sizeof(ebx), "xx%06x", e->ebx & 0xffffff);
	if (e->function == 0xb || e->function == 0x1f)
		snprintf(edx, sizeof(edx), "xxxxxxxx");
	if (e->function == 0x8000001e)
		snprintf(eax, sizeof(eax), "xxxxxxxx");
	printf("  %scpuid %08x.%u flags=%u eax=%s ebx=%s ecx=%08x edx=%s\n", prefix, e->function, e->index, e->flags,
	       eax, ebx, e->ecx, edx);
}

static void step_cpuid(int kvm, struct kvm_cpuid2 **supported)
{
	const unsigned int max = 256;
	struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + max * sizeof(cpuid->entries[0]));

	if (!cpuid)
		fatal("calloc for KVM_GET_SUPPORTED_CPUID");
	/* arch/x86/kvm/x86.c kvm_arch_dev_ioctl: nent is written back only on success, so nent stays 1 on E2BIG. */
	cpuid->nent = 1;
	DO(ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid));
	report(INT, "KVM_GET_SUPPORTED_CPUID(nent=1)", "nent=%u", cpuid->nent);
	cpuid->nent = 0;
	DO(ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid));
	report(INT, "KVM_GET_SUPPORTED_CPUID(nent=0)", "nent=%u", cpuid->nent);
	cpuid->nent = 1000000;
	DO(ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid));
	report(INT, "KVM_GET_SUPPORTED_CPUID(nent=1000000)", "nent=%u", cpuid->nent);
	DO(ioctl(kvm, KVM_GET_SUPPORTED_CPUID, NULL));
	report(INT, "KVM_GET_SUPPORTED_CPUID(NULL)", NULL);
	cpuid->nent = max;
	DO(ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid));
	report(INT, "KVM_GET_SUPPORTED_CPUID(nent=256)", "nent=%u", cpuid->nent);
	if (rc == 0) {
		/* Every entry: the emulated preset models this host's CPU, so each leaf must match the real one. */
		for (unsigned int i = 0; i < cpuid->nent; i++)
			print_cpuid_entry("", &cpuid->entries[i]);
		*supported = cpuid;
	} else {
		free(cpuid);
	}
	{
		struct kvm_cpuid2 *emulated = calloc(1, sizeof(*emulated) + max * sizeof(emulated->entries[0]));
		if (!emulated)
			fatal("calloc for KVM_GET_EMULATED_CPUID");
		emulated->nent = max;
		DO(ioctl(kvm, KVM_GET_EMULATED_CPUID, emulated));
		report(INT, "KVM_GET_EMULATED_CPUID(nent=256)", "nent=%u", emulated->nent);
		for (unsigned int i = 0; rc == 0 && i < emulated->nent; i++)
			print_cpuid_entry("", &emulated->entries[i]);
		free(emulated);
	}
}

/* MSR indices, eight a line, in the kernel's order (msrs_to_save, then emulated_msrs). */
static void print_list(const uint32_t *values, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		printf("%s%08x%s", i % 8 == 0 ? "  " : "", values[i], i % 8 == 7 || i == n - 1 ? "\n" : " ");
}

static void step_msr_lists(int kvm)
{
	const unsigned int max = 1024;
	struct kvm_msr_list *list = calloc(1, sizeof(*list) + max * sizeof(uint32_t));
	unsigned long requests[] = { KVM_GET_MSR_INDEX_LIST, KVM_GET_MSR_FEATURE_INDEX_LIST };
	const char *names[] = { "KVM_GET_MSR_INDEX_LIST", "KVM_GET_MSR_FEATURE_INDEX_LIST" };
	char step[96];

	if (!list)
		fatal("calloc for KVM_GET_MSR_INDEX_LIST");
	for (size_t r = 0; r < ARRAY_SIZE(requests); r++) {
		/* x86.c: the needed count is written back before the E2BIG check. */
		list->nmsrs = 0;
		DO(ioctl(kvm, requests[r], list));
		snprintf(step, sizeof(step), "%s(nmsrs=0)", names[r]);
		report(INT, step, "nmsrs=%u", list->nmsrs);
		list->nmsrs = max;
		DO(ioctl(kvm, requests[r], list));
		snprintf(step, sizeof(step), "%s(nmsrs=1024)", names[r]);
		report(INT, step, "nmsrs=%u", list->nmsrs);
		if (rc == 0)
			print_list(list->indices, list->nmsrs);
		DO(ioctl(kvm, requests[r], (void *)1));
		snprintf(step, sizeof(step), "%s(1)", names[r]);
		report(INT, step, NULL);
	}
	free(list);
}

/* ---- memory slots ------------------------------------------------------------------------------------------------ */

static long set_region(int vm, uint32_t slot, uint32_t flags, uint64_t gpa, uint64_t size, void *host)
{
	struct kvm_userspace_memory_region region = {
		.slot = slot, .flags = flags, .guest_phys_addr = gpa, .memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)host,
	};

	return ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region);
}

static long set_region2(int vm, uint32_t slot, uint32_t flags, uint64_t gpa, uint64_t size, void *host,
			int gmem_fd)
{
	struct kvm_userspace_memory_region2 region = {
		.slot = slot, .flags = flags, .guest_phys_addr = gpa, .memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)host, .guest_memfd = (uint32_t)gmem_fd,
	};

	return ioctl(vm, KVM_SET_USER_MEMORY_REGION2, &region);
}

static void *anon(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		fatal("mmap of anonymous memory");
	return p;
}

static void step_memory_regions(int vm, uint8_t *low, uint8_t *spare)
{
	DO(set_region(vm, 0, 0, 0, 0x10000, low));
	report(INT, "SET_USER_MEMORY_REGION(slot 0, gpa 0, 64K)", NULL);
	DO(set_region(vm, 4, 0, 0x40001000, 0x1000, spare + 1));
	report(INT, "SET_USER_MEMORY_REGION(misaligned userspace_addr)", NULL);
	DO(set_region(vm, 4, 0, 0x40000800, 0x1000, spare));
	report(INT, "SET_USER_MEMORY_REGION(misaligned gpa)", NULL);
	DO(set_region(vm, 4, 0, 0x40000000, 0x800, spare));
	report(INT, "SET_USER_MEMORY_REGION(misaligned size)", NULL);
	DO(set_region(vm, 4, 0, 0x8000, 0x10000, spare));
	report(INT, "SET_USER_MEMORY_REGION(overlaps slot 0)", NULL);
	DO(set_region(vm, 4, 1u << 7, 0x40000000, 0x1000, spare));
	report(INT, "SET_USER_MEMORY_REGION(unknown flag bit 7)", NULL);
	DO(set_region(vm, 4, KVM_MEM_GUEST_MEMFD, 0x40000000, 0x1000, spare));
	report(INT, "SET_USER_MEMORY_REGION(KVM_MEM_GUEST_MEMFD)", NULL);
	DO(set_region(vm, 32767, 0, 0x40000000, 0x1000, spare));
	report(INT, "SET_USER_MEMORY_REGION(slot 32767)", NULL);
	DO(set_region(vm, (1u << 16) | 4, 0, 0x40000000, 0x1000, spare));
	report(INT, "SET_USER_MEMORY_REGION(address space 1)", NULL);
	DO(set_region(vm, 4, 0, 0x40000000, 0x1000, (void *)0xffff800000000000UL));
	report(INT, "SET_USER_MEMORY_REGION(kernel userspace_addr)", NULL);
	DO(set_region(vm, 4, 0, 0x40000000, 0, spare));
	report(INT, "SET_USER_MEMORY_REGION(delete empty slot 4)", NULL);
	DO(set_region(vm, 4, 0, 0x40000000, 0x1000, spare));
	report(INT, "SET_USER_MEMORY_REGION(slot 4, gpa 0x40000000)", NULL);
	DO(set_region(vm, 4, 0, 0x50000000, 0x1000, spare));
	report(INT, "SET_USER_MEMORY_REGION(move slot 4)", NULL);
	DO(set_region(vm, 4, 0, 0x50000000, 0x2000, spare));
	report(INT, "SET_USER_MEMORY_REGION(resize slot 4)", NULL);
	DO(set_region(vm, 4, KVM_MEM_READONLY, 0x50000000, 0x1000, spare));
	report(INT, "SET_USER_MEMORY_REGION(slot 4 flags to READONLY)", NULL);
	DO(set_region(vm, 4, 0, 0x50000000, 0, spare));
	report(INT, "SET_USER_MEMORY_REGION(delete slot 4)", NULL);
	DO(ioctl(vm, KVM_SET_USER_MEMORY_REGION, NULL));
	report(INT, "SET_USER_MEMORY_REGION(NULL)", NULL);

	DO(set_region2(vm, 5, 0, 0x60000000, 0x1000, spare, -1));
	report(INT, "SET_USER_MEMORY_REGION2(slot 5, gpa 0x60000000)", NULL);
	DO(set_region2(vm, 6, 0, 0x60000000, 0x1000, spare, -1));
	report(INT, "SET_USER_MEMORY_REGION2(overlaps slot 5)", NULL);
	DO(set_region2(vm, 6, KVM_MEM_GUEST_MEMFD, 0x61000000, 0x1000, spare, 0));
	report(INT, "SET_USER_MEMORY_REGION2(KVM_MEM_GUEST_MEMFD, fd 0)", NULL);
	DO(set_region2(vm, 6, 0, 0x61000000, 0x1001, spare, -1));
	report(INT, "SET_USER_MEMORY_REGION2(misaligned size)", NULL);
	DO(set_region2(vm, 5, 0, 0x60000000, 0, spare, -1));
	report(INT, "SET_USER_MEMORY_REGION2(delete slot 5)", NULL);
	DO(ioctl(vm, KVM_SET_USER_MEMORY_REGION2, (void *)1));
	report(INT, "SET_USER_MEMORY_REGION2(1)", NULL);
}

/* ---- guest_memfd and memory attributes: absent on this host, so each step records how it fails ------------------- */

static void step_guest_memfd(int vm)
{
	struct kvm_create_guest_memfd gmem = { .size = 0x10000, .flags = 0 };
	struct kvm_memory_attributes attrs = { .address = 0, .size = 0x1000, .attributes = KVM_MEMORY_ATTRIBUTE_PRIVATE };

	DO(ioctl(vm, KVM_CREATE_GUEST_MEMFD, &gmem));
	report(FD, "KVM_CREATE_GUEST_MEMFD(64K)", NULL);
	if (rc >= 0)
		close((int)rc);
	gmem.size = 0x800;
	DO(ioctl(vm, KVM_CREATE_GUEST_MEMFD, &gmem));
	report(FD, "KVM_CREATE_GUEST_MEMFD(misaligned size)", NULL);
	if (rc >= 0)
		close((int)rc);
	DO(ioctl(vm, KVM_SET_MEMORY_ATTRIBUTES, &attrs));
	report(INT, "KVM_SET_MEMORY_ATTRIBUTES(PRIVATE)", NULL);
}

/* ---- vCPU -------------------------------------------------------------------------------------------------------- */

static void print_regs(const char *step, const struct kvm_regs *r)
{
	report(INT, step,
	       "rax=%llx rbx=%llx rcx=%llx rdx=%llx rsi=%llx rdi=%llx rsp=%llx rbp=%llx r8=%llx r15=%llx rip=%llx rflags=%llx",
	       r->rax, r->rbx, r->rcx, r->rdx, r->rsi, r->rdi, r->rsp, r->rbp, r->r8, r->r15, r->rip, r->rflags);
}

static void print_seg(const char *name, const struct kvm_segment *s)
{
	printf(" %s=%llx/%x/%x/t%u/s%u/dpl%u/p%u/db%u/l%u/g%u/u%u", name, s->base, s->limit, s->selector, s->type,
	       s->s, s->dpl, s->present, s->db, s->l, s->g, s->unusable);
}

static void print_sregs(const char *step, const struct kvm_sregs *s)
{
	report(INT, step, "cr0=%llx cr2=%llx cr3=%llx cr4=%llx cr8=%llx efer=%llx apic_base=%llx", s->cr0, s->cr2,
	       s->cr3, s->cr4, s->cr8, s->efer, s->apic_base);
	if (rc < 0)
		return;
	printf(" ");
	print_seg("cs", &s->cs);
	print_seg("ds", &s->ds);
	print_seg("ss", &s->ss);
	print_seg("tr", &s->tr);
	print_seg("ldt", &s->ldt);
	printf(" gdt=%llx/%x idt=%llx/%x\n", s->gdt.base, s->gdt.limit, s->idt.base, s->idt.limit);
}

/*
 * A kvm_regs whose first 16 bytes (rax, rbx) are the last of a readable page and whose rest lies in a PROT_NONE
 * page: KVM_GET_REGS fails EFAULT after copy_to_user stored what fits (the bytes before the hole), KVM_SET_REGS
 * fails EFAULT with nothing set (copy_from_user of the whole struct comes first).
 */
static void step_straddling_regs(int vcpu)
{
	uint8_t *pages = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct kvm_regs *regs, now;

	if (pages == MAP_FAILED)
		fatal("mmap of two pages");
	if (mprotect(pages + PAGE, PAGE, PROT_NONE) != 0)
		fatal("mprotect");
	regs = (struct kvm_regs *)(pages + PAGE - 16);
	memset(pages + PAGE - 16, 0xee, 16);
	DO(ioctl(vcpu, KVM_GET_REGS, regs));
	report(INT, "KVM_GET_REGS(struct across a PROT_NONE page)", "rax=%llx rbx=%llx", regs->rax, regs->rbx);
	memset(pages + PAGE - 16, 0x11, 16);
	DO(ioctl(vcpu, KVM_SET_REGS, regs));
	report(INT, "KVM_SET_REGS(struct across a PROT_NONE page)", NULL);
	memset(&now, 0, sizeof(now));
	DO(ioctl(vcpu, KVM_GET_REGS, &now));
	report(INT, "KVM_GET_REGS(after the failed set)", "rax=%llx rbx=%llx", now.rax, now.rbx);
	/* A struct the program can read but not write: copy_to_user faults at its first byte. */
	memset(pages, 0xee, PAGE);
	if (mprotect(pages, PAGE, PROT_READ) != 0)
		fatal("mprotect");
	regs = (struct kvm_regs *)pages;
	DO(ioctl(vcpu, KVM_GET_REGS, regs));
	report(INT, "KVM_GET_REGS(struct in a PROT_READ page)", "rax=%llx", regs->rax);
	munmap(pages, 2 * PAGE);
}

static void step_regs(int vcpu)
{
	struct kvm_regs regs, back;
	struct kvm_sregs sregs, sback;
	struct kvm_fpu fpu;
	struct kvm_mp_state mp;
	struct kvm_vcpu_events events;

	memset(&regs, 0, sizeof(regs));
	DO(ioctl(vcpu, KVM_GET_REGS, &regs));
	print_regs("KVM_GET_REGS(reset)", &regs);
	regs.rax = 0x1122334455667788ULL;
	regs.r15 = 0xfedcba9876543210ULL;
	regs.rip = 0x1234;
	regs.rflags = 0x202;
	DO(ioctl(vcpu, KVM_SET_REGS, &regs));
	report(INT, "KVM_SET_REGS(rax, r15, rip, rflags)", NULL);
	memset(&back, 0, sizeof(back));
	DO(ioctl(vcpu, KVM_GET_REGS, &back));
	print_regs("KVM_GET_REGS(after set)", &back);
	regs.rflags = 0;
	DO(ioctl(vcpu, KVM_SET_REGS, &regs));
	report(INT, "KVM_SET_REGS(rflags 0)", NULL);
	DO(ioctl(vcpu, KVM_GET_REGS, &back));
	print_regs("KVM_GET_REGS(after rflags 0)", &back);
	DO(ioctl(vcpu, KVM_GET_REGS, NULL));
	report(INT, "KVM_GET_REGS(NULL)", NULL);
	DO(ioctl(vcpu, KVM_SET_REGS, (void *)1));
	report(INT, "KVM_SET_REGS(1)", NULL);

	step_straddling_regs(vcpu);

	memset(&sregs, 0, sizeof(sregs));
	DO(ioctl(vcpu, KVM_GET_SREGS, &sregs));
	print_sregs("KVM_GET_SREGS(reset)", &sregs);
	sregs.cs.base = 0x10000;
	sregs.cs.selector = 0x1000;
	sregs.ds.base = 0x20000;
	sregs.ds.selector = 0x2000;
	DO(ioctl(vcpu, KVM_SET_SREGS, &sregs));
	report(INT, "KVM_SET_SREGS(cs 0x1000, ds 0x2000)", NULL);
	memset(&sback, 0, sizeof(sback));
	DO(ioctl(vcpu, KVM_GET_SREGS, &sback));
	print_sregs("KVM_GET_SREGS(after set)", &sback);
	sback.efer = 1ULL << 63;
	DO(ioctl(vcpu, KVM_SET_SREGS, &sback));
	report(INT, "KVM_SET_SREGS(reserved EFER bit 63)", NULL);
	sback.efer = sregs.efer;
	sback.cr0 = 0x80000000; /* PG without PE */
	DO(ioctl(vcpu, KVM_SET_SREGS, &sback));
	report(INT, "KVM_SET_SREGS(CR0.PG without PE)", NULL);
	DO(ioctl(vcpu, KVM_GET_SREGS, NULL));
	report(INT, "KVM_GET_SREGS(NULL)", NULL);

	memset(&fpu, 0, sizeof(fpu));
	DO(ioctl(vcpu, KVM_GET_FPU, &fpu));
	report(INT, "KVM_GET_FPU", "fcw=%x fsw=%x ftwx=%x last_opcode=%x mxcsr=%x", fpu.fcw, fpu.fsw, fpu.ftwx,
	       fpu.last_opcode, fpu.mxcsr);
	memset(&mp, 0xff, sizeof(mp));
	DO(ioctl(vcpu, KVM_GET_MP_STATE, &mp));
	report(INT, "KVM_GET_MP_STATE", "mp_state=%u", mp.mp_state);
	memset(&events, 0, sizeof(events));
	DO(ioctl(vcpu, KVM_GET_VCPU_EVENTS, &events));
	report(INT, "KVM_GET_VCPU_EVENTS", "exception=%u/%u interrupt=%u nmi=%u/%u sipi=%u flags=%x", events.exception.injected,
	       events.exception.nr, events.interrupt.injected, events.nmi.injected, events.nmi.masked,
	       events.sipi_vector, events.flags);
	{
		struct kvm_lapic_state lapic;
		DO(ioctl(vcpu, KVM_GET_LAPIC, &lapic));
		report(INT, "KVM_GET_LAPIC(no irqchip)", NULL);
	}
}

/* MSRs whose values do not depend on time (no TSC) and one that no CPU has (0xdeadbeef) in the middle. */
static const uint32_t msr_indices[] = {
	0x1b,       /* IA32_APIC_BASE */
	0x174,      /* IA32_SYSENTER_CS */
	0x1a0,      /* IA32_MISC_ENABLE */
	0x277,      /* IA32_PAT */
	0x2ff,      /* IA32_MTRR_DEF_TYPE */
	0xc0000080, /* EFER */
	0xc0000081, /* STAR */
	0xc0000082, /* LSTAR */
	0xc0000102, /* KERNEL_GS_BASE */
	0xdeadbeef, /* none: KVM_GET_MSRS stops here */
	0xc0000084, /* SFMASK */
};

struct msrs {
	struct kvm_msrs header;
	struct kvm_msr_entry entries[ARRAY_SIZE(msr_indices)];
};

static void step_msrs(int vcpu)
{
	struct msrs m;
	size_t n = ARRAY_SIZE(msr_indices);

	memset(&m, 0, sizeof(m));
	m.header.nmsrs = n;
	for (size_t i = 0; i < n; i++) {
		m.entries[i].index = msr_indices[i];
		m.entries[i].data = 0x5555555555555555ULL;
	}
	/* x86.c msr_io: the number of MSRs done, stopping at the first the vCPU refuses. */
	DO(ioctl(vcpu, KVM_GET_MSRS, &m));
	report(INT, "KVM_GET_MSRS(11, 10th unknown)", NULL);
	for (size_t i = 0; i < n; i++)
		printf("  msr %08x = %llx\n", m.entries[i].index, m.entries[i].data);

	memset(&m, 0, sizeof(m));
	m.header.nmsrs = 3;
	m.entries[0].index = 0xc0000081; /* STAR */
	m.entries[0].data = 0x0023001000000000ULL;
	m.entries[1].index = 0xc0000082; /* LSTAR: canonical */
	m.entries[1].data = 0xffffffff81000000ULL;
	m.entries[2].index = 0xc0000082; /* LSTAR: not canonical, refused */
	m.entries[2].data = 0x0000800000000000ULL;
	DO(ioctl(vcpu, KVM_SET_MSRS, &m));
	report(INT, "KVM_SET_MSRS(STAR, LSTAR, non-canonical LSTAR)", NULL);
	m.header.nmsrs = 2;
	m.entries[0].data = m.entries[1].data = 0;
	DO(ioctl(vcpu, KVM_GET_MSRS, &m));
	report(INT, "KVM_GET_MSRS(STAR, LSTAR)", "star=%llx lstar=%llx", m.entries[0].data, m.entries[1].data);
	m.header.nmsrs = 1;
	m.entries[0].index = 0xdeadbeef;
	DO(ioctl(vcpu, KVM_SET_MSRS, &m));
	report(INT, "KVM_SET_MSRS(unknown)", NULL);
	m.header.nmsrs = 1000000;
	DO(ioctl(vcpu, KVM_GET_MSRS, &m));
	report(INT, "KVM_GET_MSRS(nmsrs=1000000)", NULL);
	DO(ioctl(vcpu, KVM_GET_MSRS, NULL));
	report(INT, "KVM_GET_MSRS(NULL)", NULL);
}

static void step_cpuid2(int vcpu, struct kvm_cpuid2 *supported)
{
	struct kvm_cpuid2 *cpuid;
	unsigned int n = supported ? supported->nent : 0;

	if (!supported) {
		printf("KVM_SET_CPUID2: not run (no KVM_GET_SUPPORTED_CPUID)\n");
		return;
	}
	cpuid = calloc(1, sizeof(*cpuid) + (n + 8) * sizeof(cpuid->entries[0]));
	if (!cpuid)
		fatal("calloc for KVM_GET_CPUID2");
	cpuid->nent = 1;
	DO(ioctl(vcpu, KVM_GET_CPUID2, cpuid));
	report(INT, "KVM_GET_CPUID2(before SET_CPUID2, nent=1)", "nent=%u", cpuid->nent);
	DO(ioctl(vcpu, KVM_SET_CPUID2, supported));
	report(INT, "KVM_SET_CPUID2(supported)", NULL);
	cpuid->nent = 1;
	DO(ioctl(vcpu, KVM_GET_CPUID2, cpuid));
	report(INT, "KVM_GET_CPUID2(nent=1)", "nent=%u", cpuid->nent);
	cpuid->nent = n + 8;
	DO(ioctl(vcpu, KVM_GET_CPUID2, cpuid));
	report(INT, "KVM_GET_CPUID2(nent=supported+8)", "nent=%u", cpuid->nent);
	/* KVM adjusts some entries it was given (cpuid.c kvm_update_cpuid_runtime): the ones it changed. */
	for (unsigned int i = 0; rc == 0 && i < cpuid->nent && i < n; i++) {
		if (memcmp(&cpuid->entries[i], &supported->entries[i], sizeof(cpuid->entries[0])) == 0)
			continue;
		print_cpuid_entry("set ", &supported->entries[i]);
		print_cpuid_entry("got ", &cpuid->entries[i]);
	}
	free(cpuid);
}

static void step_vcpu_mmap(int vcpu, long mmap_size)
{
	void *p;

	DO(p = mmap(NULL, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0));
	report(ADDR, "mmap(vcpu, mmap_size, MAP_SHARED, 0)", NULL);
	if (p != MAP_FAILED) {
		DO(munmap(p, mmap_size));
		report(INT, "munmap(vcpu mapping)", NULL);
	}
	DO(p = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, vcpu, 0));
	report(ADDR, "mmap(vcpu, 4K, MAP_PRIVATE, 0)", NULL);
	if (p != MAP_FAILED)
		munmap(p, PAGE);
	/* kvm_vcpu_mmap refuses only dirty-ring pages; a page past the end is refused at fault time (SIGBUS). */
	DO(p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, vcpu, 64 * PAGE));
	report(ADDR, "mmap(vcpu, 4K, MAP_SHARED, 64 pages)", NULL);
	if (p != MAP_FAILED)
		munmap(p, PAGE);
	DO(p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, vcpu, 1));
	report(ADDR, "mmap(vcpu, 4K, MAP_SHARED, offset 1)", NULL);
	if (p != MAP_FAILED)
		munmap(p, PAGE);
	DO(p = mmap(NULL, PAGE, PROT_READ | PROT_EXEC, MAP_SHARED, vcpu, 0));
	report(ADDR, "mmap(vcpu, 4K, PROT_EXEC, 0)", NULL);
	if (p != MAP_FAILED)
		munmap(p, PAGE);
}

/*
 * The real-mode guest, at gpa 0 (cs = ds = 0). Slot 0 is gpa 0..64K, nothing is at 0x20000 (MMIO), slot 1 at
 * 0x30000 is read-only (reads see its memory, writes exit as MMIO).
 *   00: a0 00 10           mov al, [0x1000]          ; host wrote 0xa5 there
 *   03: e6 10              out 0x10, al
 *   05: c6 06 00 10 5a     mov byte [0x1000], 0x5a   ; the host reads it back after the run
 *   0a: e4 11              in al, 0x11               ; the host answers 0x77
 *   0c: e6 12              out 0x12, al
 *   0e: b8 ef be           mov ax, 0xbeef
 *   11: e7 13              out 0x13, ax
 *   13: b8 00 20           mov ax, 0x2000
 *   16: 8e c0              mov es, ax
 *   18: 26 c6 06 00 00 42  mov byte [es:0], 0x42     ; MMIO write at 0x20000
 *   1e: 26 a0 01 00        mov al, [es:1]            ; MMIO read at 0x20001, the host answers 0x99
 *   22: e6 14              out 0x14, al
 *   24: b8 00 30           mov ax, 0x3000
 *   27: 8e c0              mov es, ax
 *   29: 26 a0 00 00        mov al, [es:0]            ; read-only slot: plain read of 0x3c
 *   2d: e6 15              out 0x15, al
 *   2f: 26 c6 06 00 00 11  mov byte [es:0], 0x11     ; read-only slot: the write exits as MMIO
 *   35: f4                 hlt
 */
static const uint8_t guest_code[] = {
	0xa0, 0x00, 0x10, 0xe6, 0x10, 0xc6, 0x06, 0x00, 0x10, 0x5a, 0xe4, 0x11, 0xe6, 0x12, 0xb8, 0xef,
	0xbe, 0xe7, 0x13, 0xb8, 0x00, 0x20, 0x8e, 0xc0, 0x26, 0xc6, 0x06, 0x00, 0x00, 0x42, 0x26, 0xa0,
	0x01, 0x00, 0xe6, 0x14, 0xb8, 0x00, 0x30, 0x8e, 0xc0, 0x26, 0xa0, 0x00, 0x00, 0xe6, 0x15, 0x26,
	0xc6, 0x06, 0x00, 0x00, 0x11, 0xf4,
};

static const char *exit_name(uint32_t reason)
{
	switch (reason) {
	case KVM_EXIT_UNKNOWN: return "UNKNOWN";
	case KVM_EXIT_IO: return "IO";
	case KVM_EXIT_HLT: return "HLT";
	case KVM_EXIT_MMIO: return "MMIO";
	case KVM_EXIT_INTR: return "INTR";
	case KVM_EXIT_SHUTDOWN: return "SHUTDOWN";
	case KVM_EXIT_FAIL_ENTRY: return "FAIL_ENTRY";
	case KVM_EXIT_INTERNAL_ERROR: return "INTERNAL_ERROR";
	default: return "other";
	}
}

static void print_exit(const char *step, struct kvm_run *run)
{
	const uint8_t *data;

	switch (rc < 0 ? ~0u : run->exit_reason) {
	case KVM_EXIT_IO:
		data = (const uint8_t *)run + run->io.data_offset;
		/* An IN's data is what the host is to fill in: KVM leaves the buffer as it was, so it is not printed. */
		if (run->io.direction == KVM_EXIT_IO_IN)
			report(INT, step, "exit=IO dir=in size=%u port=0x%x count=%u", run->io.size, run->io.port,
			       run->io.count);
		else if (run->io.size == 2)
			report(INT, step, "exit=IO dir=out size=2 port=0x%x count=%u data=%04x", run->io.port,
			       run->io.count, data[0] | data[1] << 8);
		else
			report(INT, step, "exit=IO dir=out size=%u port=0x%x count=%u data=%02x", run->io.size,
			       run->io.port, run->io.count, data[0]);
		break;
	case KVM_EXIT_MMIO:
		report(INT, step, "exit=MMIO addr=0x%llx len=%u write=%u data=%02x", run->mmio.phys_addr, run->mmio.len,
		       run->mmio.is_write, run->mmio.is_write ? run->mmio.data[0] : 0);
		break;
	case KVM_EXIT_FAIL_ENTRY:
		report(INT, step, "exit=FAIL_ENTRY reason=0x%llx", run->fail_entry.hardware_entry_failure_reason);
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		report(INT, step, "exit=INTERNAL_ERROR suberror=%u", run->internal.suberror);
		break;
	default:
		report(INT, step, "exit=%s(%u)", exit_name(run->exit_reason), run->exit_reason);
	}
}

static void step_run(int vm, int vcpu, long mmap_size, uint8_t *low, uint8_t *rom)
{
	struct kvm_run *run;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_dirty_log log;
	uint64_t bitmap[4];
	char step[64];

	memset(low, 0, 0x10000);
	memcpy(low, guest_code, sizeof(guest_code));
	low[0x1000] = 0xa5;
	rom[0] = 0x3c;
	DO(set_region(vm, 1, KVM_MEM_READONLY, 0x30000, 0x1000, rom));
	report(INT, "SET_USER_MEMORY_REGION(slot 1, gpa 0x30000, READONLY)", NULL);

	memset(&log, 0, sizeof(log));
	memset(bitmap, 0, sizeof(bitmap));
	log.slot = 0;
	log.dirty_bitmap = bitmap;
	DO(ioctl(vm, KVM_GET_DIRTY_LOG, &log));
	report(INT, "KVM_GET_DIRTY_LOG(slot 0, not logging)", NULL);
	DO(set_region(vm, 0, KVM_MEM_LOG_DIRTY_PAGES, 0, 0x10000, low));
	report(INT, "SET_USER_MEMORY_REGION(slot 0 flags to LOG_DIRTY_PAGES)", NULL);
	DO(ioctl(vm, KVM_GET_DIRTY_LOG, &log));
	report(INT, "KVM_GET_DIRTY_LOG(slot 0, before run)", "bitmap=%llx", (unsigned long long)bitmap[0]);
	log.slot = 9;
	DO(ioctl(vm, KVM_GET_DIRTY_LOG, &log));
	report(INT, "KVM_GET_DIRTY_LOG(slot 9, none)", NULL);
	log.slot = 0;

	DO(run = mmap(NULL, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0));
	report(ADDR, "mmap(vcpu) for KVM_RUN", NULL);
	if (run == MAP_FAILED)
		fatal("mmap of the vCPU's kvm_run");
	printf("kvm_run before any run: exit_reason=%u immediate_exit=%u flags=%x\n", run->exit_reason,
	       run->immediate_exit, run->flags);

	memset(&sregs, 0, sizeof(sregs));
	DO(ioctl(vcpu, KVM_GET_SREGS, &sregs));
	if (rc < 0)
		fatal("KVM_GET_SREGS before the guest run");
	sregs.cs.base = sregs.ds.base = sregs.es.base = sregs.ss.base = 0;
	sregs.cs.selector = sregs.ds.selector = sregs.es.selector = sregs.ss.selector = 0;
	DO(ioctl(vcpu, KVM_SET_SREGS, &sregs));
	report(INT, "KVM_SET_SREGS(real mode, segments at 0)", NULL);
	memset(&regs, 0, sizeof(regs));
	regs.rflags = 2;
	regs.rip = 0;
	DO(ioctl(vcpu, KVM_SET_REGS, &regs));
	report(INT, "KVM_SET_REGS(rip 0)", NULL);

	run->immediate_exit = 1;
	DO(ioctl(vcpu, KVM_RUN, 0));
	print_exit("KVM_RUN(immediate_exit)", run);
	run->immediate_exit = 0;

	for (int i = 0; i < 16; i++) {
		snprintf(step, sizeof(step), "KVM_RUN #%d", i + 1);
		DO(ioctl(vcpu, KVM_RUN, 0));
		print_exit(step, run);
		if (rc < 0)
			break;
		if (run->exit_reason == KVM_EXIT_IO && run->io.direction == KVM_EXIT_IO_IN)
			((uint8_t *)run + run->io.data_offset)[0] = 0x77;
		else if (run->exit_reason == KVM_EXIT_MMIO && !run->mmio.is_write)
			memset(run->mmio.data, 0x99, sizeof(run->mmio.data));
		else if (run->exit_reason != KVM_EXIT_IO && run->exit_reason != KVM_EXIT_MMIO)
			break;
	}
	if (run->exit_reason == KVM_EXIT_HLT)
		printf("kvm_run at HLT: if_flag=%u ready_for_interrupt_injection=%u cr8=%llu apic_base=%llx\n",
		       run->if_flag, run->ready_for_interrupt_injection, run->cr8, run->apic_base);
	memset(&regs, 0, sizeof(regs));
	DO(ioctl(vcpu, KVM_GET_REGS, &regs));
	report(INT, "KVM_GET_REGS(after run)", "rax=%llx rip=%llx rflags=%llx", regs.rax, regs.rip, regs.rflags);
	DO(ioctl(vcpu, KVM_GET_SREGS, &sregs));
	report(INT, "KVM_GET_SREGS(after run)", "es=%x/%llx", sregs.es.selector, sregs.es.base);
	printf("guest memory: [0x1000]=%02x rom[0]=%02x\n", low[0x1000], rom[0]);
	memset(bitmap, 0, sizeof(bitmap));
	DO(ioctl(vm, KVM_GET_DIRTY_LOG, &log));
	report(INT, "KVM_GET_DIRTY_LOG(slot 0, after run)", "bitmap=%llx", (unsigned long long)bitmap[0]);
	memset(bitmap, 0, sizeof(bitmap));
	DO(ioctl(vm, KVM_GET_DIRTY_LOG, &log));
	report(INT, "KVM_GET_DIRTY_LOG(slot 0, again)", "bitmap=%llx", (unsigned long long)bitmap[0]);
	/* kvm_run is the vCPU's own page (kvm_vcpu_fault): dropping the mapping's PTEs keeps its contents. */
	DO(madvise(run, mmap_size, MADV_DONTNEED));
	report(INT, "madvise(vcpu kvm_run, MADV_DONTNEED)", "exit_reason=%u", run->exit_reason);
	DO(munmap(run, mmap_size));
	report(INT, "munmap(vcpu kvm_run)", NULL);
}

/* ---- main -------------------------------------------------------------------------------------------------------- */

int main(void)
{
	int kvm, vm, vcpu;
	long mmap_size;
	struct kvm_cpuid2 *supported = NULL;
	uint8_t *low, *spare, *rom;

	setvbuf(stdout, NULL, _IOLBF, 0);

	DO(kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC));
	report(FD, "open(/dev/kvm, O_RDWR|O_CLOEXEC)", NULL);
	if (kvm < 0)
		fatal("open /dev/kvm");
	DO(openat(AT_FDCWD, "/dev/kvm", O_RDONLY | O_CLOEXEC));
	report(FD, "openat(AT_FDCWD, /dev/kvm, O_RDONLY)", NULL);
	if (rc >= 0) {
		int ro = (int)rc;
		DO(ioctl(ro, KVM_GET_API_VERSION, 0));
		report(INT, "KVM_GET_API_VERSION(O_RDONLY /dev/kvm)", NULL);
		DO(close(ro));
		report(INT, "close(O_RDONLY /dev/kvm)", NULL);
	}
	step_fstat("/dev/kvm", kvm);
	step_fcntl("/dev/kvm", kvm);
	step_proc_fd("/dev/kvm", kvm);
	step_file_ops("/dev/kvm", kvm);

	DO(ioctl(kvm, KVM_GET_API_VERSION, 0));
	report(INT, "KVM_GET_API_VERSION", NULL);
	DO(ioctl(kvm, KVM_GET_API_VERSION, 1));
	report(INT, "KVM_GET_API_VERSION(arg 1)", NULL);
	step_caps("/dev/kvm", kvm);
	DO(mmap_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0));
	report(INT, "KVM_GET_VCPU_MMAP_SIZE", NULL);
	if (mmap_size <= 0)
		fatal("KVM_GET_VCPU_MMAP_SIZE");
	DO(ioctl(kvm, KVM_CREATE_VCPU, 0));
	report(INT, "KVM_CREATE_VCPU(/dev/kvm)", NULL);
	DO(ioctl(kvm, KVM_RUN, 0));
	report(INT, "KVM_RUN(/dev/kvm)", NULL);
	step_generic_ioctls("/dev/kvm", kvm);
	step_cpuid(kvm, &supported);
	step_msr_lists(kvm);
	{
		void *p;
		DO(p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, kvm, 0));
		report(ADDR, "mmap(/dev/kvm)", NULL);
		if (p != MAP_FAILED)
			munmap(p, PAGE);
	}

	for (unsigned long type = 0; type <= 6; type++) {
		char step[64];
		snprintf(step, sizeof(step), "KVM_CREATE_VM(type %lu)", type);
		DO(ioctl(kvm, KVM_CREATE_VM, type));
		report(FD, step, NULL);
		if (rc >= 0)
			close((int)rc);
	}
	DO(ioctl(kvm, KVM_CREATE_VM, 1UL << 40));
	report(FD, "KVM_CREATE_VM(type 1<<40)", NULL);
	if (rc >= 0)
		close((int)rc);

	/* A VM that is closed right away: calls on its number must fail EBADF, as on any closed descriptor. */
	{
		int dead;
		DO(dead = ioctl(kvm, KVM_CREATE_VM, 0));
		report(FD, "KVM_CREATE_VM(type 0, to close)", NULL);
		if (dead >= 0) {
			DO(close(dead));
			report(INT, "close(vm)", NULL);
			DO(ioctl(dead, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY));
			report(INT, "KVM_CHECK_EXTENSION(closed vm)", NULL);
			DO(fcntl(dead, F_GETFD));
			report(INT, "fcntl(closed vm, F_GETFD)", NULL);
			DO(close(dead));
			report(INT, "close(closed vm)", NULL);
		}
	}

	DO(vm = ioctl(kvm, KVM_CREATE_VM, 0));
	report(FD, "KVM_CREATE_VM(type 0)", NULL);
	if (vm < 0)
		fatal("KVM_CREATE_VM type 0");
	step_fstat("vm", vm);
	step_fcntl("vm", vm);
	step_proc_fd("vm", vm);
	step_caps("vm", vm);
	step_file_ops("vm", vm);
	step_generic_ioctls("vm", vm);
	DO(ioctl(vm, KVM_GET_VCPU_MMAP_SIZE, 0));
	report(INT, "KVM_GET_VCPU_MMAP_SIZE(vm)", NULL);
	DO(ioctl(vm, KVM_GET_API_VERSION, 0));
	report(INT, "KVM_GET_API_VERSION(vm)", NULL);
	DO(ioctl(vm, KVM_CREATE_VM, 0));
	report(FD, "KVM_CREATE_VM(vm)", NULL);
	DO(ioctl(vm, KVM_RUN, 0));
	report(INT, "KVM_RUN(vm)", NULL);
	{
		void *p;
		DO(p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, vm, 0));
		report(ADDR, "mmap(vm)", NULL);
		if (p != MAP_FAILED)
			munmap(p, PAGE);
	}
	DO(ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000UL));
	report(INT, "KVM_SET_TSS_ADDR(0xfffbd000)", NULL);
	{
		uint64_t identity = 0xfffbc000;
		DO(ioctl(vm, KVM_SET_IDENTITY_MAP_ADDR, &identity));
		report(INT, "KVM_SET_IDENTITY_MAP_ADDR(0xfffbc000)", NULL);
	}

	low = anon(0x10000);
	spare = anon(0x10000);
	rom = anon(PAGE);
	step_memory_regions(vm, low, spare);
	step_guest_memfd(vm);

	/* A duplicate of the VM's descriptor names the same VM. */
	{
		int dup_vm;
		DO(dup_vm = dup(vm));
		report(FD, "dup(vm)", NULL);
		if (dup_vm >= 0) {
			DO(ioctl(dup_vm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY));
			report(INT, "KVM_CHECK_EXTENSION(dup of vm, USER_MEMORY)", NULL);
			DO(close(dup_vm));
			report(INT, "close(dup of vm)", NULL);
			DO(ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY));
			report(INT, "KVM_CHECK_EXTENSION(vm after closing its dup)", NULL);
		}
	}

	/* A device's descriptor comes back in its struct (kvm-vfio: virt/kvm/vfio.c, one per VM). */
	{
		struct kvm_create_device device = {.type = KVM_DEV_TYPE_VFIO};
		struct kvm_device_attr file_add = {.group = KVM_DEV_VFIO_FILE, .attr = KVM_DEV_VFIO_FILE_ADD};
		DO(ioctl(vm, KVM_CREATE_DEVICE, &device));
		report(INT, "KVM_CREATE_DEVICE(vfio)", NULL);
		if (rc == 0) {
			DO(ioctl((int)device.fd, KVM_HAS_DEVICE_ATTR, &file_add));
			report(INT, "KVM_HAS_DEVICE_ATTR(vfio device, FILE_ADD)", NULL);
			DO(close((int)device.fd));
			report(INT, "close(vfio device)", NULL);
		}
	}

	DO(vcpu = ioctl(vm, KVM_CREATE_VCPU, 0));
	report(FD, "KVM_CREATE_VCPU(0)", NULL);
	if (vcpu < 0)
		fatal("KVM_CREATE_VCPU 0");
	DO(ioctl(vm, KVM_CREATE_VCPU, 0));
	report(FD, "KVM_CREATE_VCPU(0 again)", NULL);
	DO(ioctl(vm, KVM_CREATE_VCPU, 1000000));
	report(FD, "KVM_CREATE_VCPU(1000000)", NULL);
	step_fstat("vcpu", vcpu);
	step_fcntl("vcpu", vcpu);
	step_proc_fd("vcpu", vcpu);
	step_file_ops("vcpu", vcpu);
	step_generic_ioctls("vcpu", vcpu);
	DO(ioctl(vcpu, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY));
	report(INT, "KVM_CHECK_EXTENSION(vcpu)", NULL);
	DO(ioctl(vcpu, KVM_CREATE_VCPU, 1));
	report(INT, "KVM_CREATE_VCPU(vcpu)", NULL);
	DO(ioctl(vcpu, KVM_SET_USER_MEMORY_REGION, NULL));
	report(INT, "SET_USER_MEMORY_REGION(vcpu)", NULL);

	step_regs(vcpu);
	step_msrs(vcpu);
	step_cpuid2(vcpu, supported);
	step_vcpu_mmap(vcpu, mmap_size);

	/* The VM outlives the /dev/kvm descriptor it came from. */
	DO(close(kvm));
	report(INT, "close(/dev/kvm)", NULL);
	DO(ioctl(kvm, KVM_GET_API_VERSION, 0));
	report(INT, "KVM_GET_API_VERSION(closed /dev/kvm)", NULL);

	step_run(vm, vcpu, mmap_size, low, rom);

	/* A vCPU holds its VM (kvm_vm_ioctl_create_vcpu: kvm_get_kvm): closing the VM's descriptor first is fine. */
	DO(close(vm));
	report(INT, "close(vm)", NULL);
	{
		struct kvm_regs regs;
		memset(&regs, 0, sizeof(regs));
		DO(ioctl(vcpu, KVM_GET_REGS, &regs));
		report(INT, "KVM_GET_REGS(vcpu of a closed vm)", "rip=%llx", regs.rip);
	}
	DO(close(vcpu));
	report(INT, "close(vcpu)", NULL);
	DO(ioctl(vcpu, KVM_RUN, 0));
	report(INT, "KVM_RUN(closed vcpu)", NULL);
	DO(fcntl(vm, F_GETFD));
	report(INT, "fcntl(closed vm, F_GETFD)", NULL);
	free(supported);
	printf("end\n");
	return 0;
}

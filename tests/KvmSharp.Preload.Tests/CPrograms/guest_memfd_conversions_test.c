// SPDX-License-Identifier: GPL-2.0
/*
 * A standalone port of tools/testing/selftests/kvm/x86/guest_memfd_conversions_test.c of "[PATCH v8] KVM:
 * guest_memfd: in-place conversion" (Ackerley Tng et al., unmerged). The patch mail is not at hand here; the cases,
 * their order, values and expectations follow the project's C# port of the same selftest
 * (src/KvmSharp.Conformance/Cases/GuestMemfdConversionsTest.cs + Guests/ConversionGuest.cs), which keeps upstream's
 * names and helper structure (test_shared / test_private / test_convert_to_shared / test_convert_to_private /
 * host_do_rmw / run_guest_do_rmw).
 *
 * Why a port: the selftest links kvm_util (page tables, a long-mode guest, ucalls). This file talks to the kernel only
 * through libc's wrappers (open, ioctl, mmap, fallocate, close), so an LD_PRELOAD bridge can route every call to
 * KvmSharp's emulated kernel and the same binary also runs on a real kernel.
 *
 * Differences from upstream, each for a reason given where it happens:
 *  - a failed check fails only its case (TAP "not ok") and the case releases what it opened; upstream aborts;
 *  - the guest is hand-assembled real-mode code reaching the data slot through a segment (upstream: a 64-bit guest
 *    at GPA 4 GiB through GVA 0x90000000), with the same loop: read, compare, write, sync;
 *  - forked_accesses checks a second mapping of the file instead of a forked child (see there);
 *  - elevated_refcount skips: it needs a long-term pin (see there).
 *
 * Build (the host's 6.1 <linux/kvm.h> is too old, so the vendored 6.18+ uAPI headers must come first):
 *   gcc -O2 -Wall -Werror -I tests/KvmSharp.Tests/AbiOracle/include -I tests/KvmSharp.Tests/AbiOracle/shim \
 *       -o /tmp/gmct tests/KvmSharp.Preload.Tests/CPrograms/guest_memfd_conversions_test.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/falloc.h>
#include <linux/kvm.h>

#include "tap.h"

/* Guards against -I order mistakes: the host's 6.1 linux/kvm.h has no guest_memfd and must not be the one read. */
#ifndef KVM_CAP_GUEST_MEMFD_FLAGS
#error "linux/kvm.h is not the vendored upstream header (no KVM_CAP_GUEST_MEMFD_FLAGS)"
#endif

/*
 * uAPI proposed by "[PATCH v8] KVM: guest_memfd: in-place conversion" (unmerged, so not in the vendored 6.18 header;
 * the numbers are the project's src/KvmSharp.Interop/Abi/UapiProposals.cs / KvmIoctls.cs / KvmCaps.cs):
 *  - [PATCH v8 17/46]: KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES 250, the attributes a guest_memfd can convert
 *    (KVM_MEMORY_ATTRIBUTE_PRIVATE when in-place conversion is there);
 *  - [PATCH v8 14/46]: KVM_SET_MEMORY_ATTRIBUTES2, an ioctl on the guest_memfd fd, _IOWR(KVMIO, 0xd2, 128 bytes);
 *    error_offset (carved out of reserved[0]) is written back on failure with the offset of the page that stopped it.
 */
#ifndef KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES
#define KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES 250
#endif

struct kvm_memory_attributes2_v8 {
	union {
		__u64 address; /* on a VM fd */
		__u64 offset;  /* on a guest_memfd fd: an offset into the file */
	};
	__u64 size;
	__u64 attributes;
	__u64 flags;
	__u64 error_offset;
	__u64 reserved[11];
};
_Static_assert(sizeof(struct kvm_memory_attributes2_v8) == 128, "[PATCH v8 14/46]: struct kvm_memory_attributes2 is 128 bytes");

#ifndef KVM_SET_MEMORY_ATTRIBUTES2
#define KVM_SET_MEMORY_ATTRIBUTES2 _IOWR(KVMIO, 0xd2, struct kvm_memory_attributes2_v8)
#endif

#define BIT(n) (1ULL << (n))
#define READ_ONCE(x) (*(volatile typeof(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile typeof(x) *)&(x) = (v))

static size_t page_size;
static int kvm_fd = -1;

/* ---- TAP reporting: one line per case; a failed check ends only its case. ---- */

static const char *case_name;
static const char *all_skip;    /* set when the kernel lacks what main() requires: every case skips with it */

/* Every helper returns false once its case failed; CHECK records why, TRY passes a helper's failure up. */
#define CHECK(cond, ...)                                          \
	do {                                                      \
		if (!(cond)) {                                    \
			case_fail(__LINE__, __VA_ARGS__);         \
			return false;                             \
		}                                                 \
	} while (0)
#define TRY(call)                      \
	do {                               \
		if (!(call))               \
			return false;      \
	} while (0)

static void case_end(void)
{
	case_report(case_name);
}

/* ---- Host accesses that may fault: upstream's TEST_EXPECT_SIGBUS scheme, also used for accesses that must not. ---- */

/*
 * The access runs with SIGBUS (and SIGSEGV, to tell a wrong signal from a crash) caught by a handler that records
 * the siginfo and siglongjmps back. A SIGSEGV handler someone else installed (the LD_PRELOAD bridge turns a fault on
 * a private page into SIGBUS with one) is left alone.
 */
struct fault {
	int signo; /* 0: the access completed */
	int code;
	void *addr;
};

static sigjmp_buf fault_jmpbuf;
static struct fault fault_seen;

static void fault_handler(int signo, siginfo_t *info, void *context)
{
	(void)context;
	fault_seen = (struct fault){ .signo = signo, .code = info->si_code, .addr = info->si_addr };
	siglongjmp(fault_jmpbuf, 1);
}

/* One byte read (write == false: *val receives it) or written (*val is written) at p. */
static struct fault guarded_access(uint8_t *p, bool write, uint8_t *val)
{
	struct sigaction catch = { .sa_sigaction = fault_handler, .sa_flags = SA_SIGINFO }, old_bus, old_segv;
	bool own_segv;

	sigaction(SIGSEGV, NULL, &old_segv);
	own_segv = !(old_segv.sa_flags & SA_SIGINFO) && old_segv.sa_handler == SIG_DFL;
	sigaction(SIGBUS, &catch, &old_bus);
	if (own_segv)
		sigaction(SIGSEGV, &catch, NULL);

	fault_seen = (struct fault){ 0 };
	if (!sigsetjmp(fault_jmpbuf, 1)) {
		if (write)
			WRITE_ONCE(*p, *val);
		else
			*val = READ_ONCE(*p);
	}

	sigaction(SIGBUS, &old_bus, NULL);
	if (own_segv)
		sigaction(SIGSEGV, &old_segv, NULL);
	return fault_seen;
}

static const char *fault_name(const struct fault *f)
{
	static char buf[96];

	if (!f->signo)
		return "no signal";
	snprintf(buf, sizeof(buf), "%s (si_code %d, si_addr %p)", sigabbrev_np(f->signo), f->code, f->addr);
	return buf;
}

/* ---- The fixture: gmem_conversions_do_setup + guest_do_rmw. ---- */

/*
 * guest_do_rmw's loop as real-mode code (CS base CODE_GPA), assembled with "as --32" (.code16). The mailbox in the
 * code page holds the byte offset into the data slot (u16), expected_val and write_val (u8); DS switches between
 * the code segment and the data slot. GUEST_ASSERT_EQ is an out to FAIL_PORT with the byte seen, GUEST_SYNC an out
 * to DONE_PORT; after either the guest starts over and reads the mailbox again.
 *
 *   00  b8 00 10      top:  mov  ax, 0x1000          ; CODE_GPA >> 4
 *   03  8e d8               mov  ds, ax
 *   05  8b 1e 00 08         mov  bx, [0x800]         ; MAILBOX: offset
 *   09  8a 0e 02 08         mov  cl, [0x802]         ; expected_val
 *   0d  8a 16 03 08         mov  dl, [0x803]         ; write_val
 *   11  b8 00 20            mov  ax, 0x2000          ; DATA_GPA >> 4
 *   14  8e d8               mov  ds, ax
 *   16  8a 07               mov  al, [bx]
 *   18  38 c8               cmp  al, cl
 *   1a  75 06               jne  fail
 *   1c  88 17               mov  [bx], dl
 *   1e  e6 10               out  0x10, al            ; GUEST_SYNC
 *   20  eb de               jmp  top
 *   22  e6 11         fail: out  0x11, al            ; GUEST_ASSERT_EQ, data = the byte seen
 *   24  eb da               jmp  top
 */
static const uint8_t guest_code[] = {
	0xb8, 0x00, 0x10, 0x8e, 0xd8, 0x8b, 0x1e, 0x00, 0x08, 0x8a, 0x0e, 0x02, 0x08, 0x8a, 0x16, 0x03,
	0x08, 0xb8, 0x00, 0x20, 0x8e, 0xd8, 0x8a, 0x07, 0x38, 0xc8, 0x75, 0x06, 0x88, 0x17, 0xe6, 0x10,
	0xeb, 0xde, 0xe6, 0x11, 0xeb, 0xda,
};
#define CODE_GPA 0x10000ULL
#define DATA_GPA 0x20000ULL
#define MAILBOX 0x800
#define DONE_PORT 0x10
#define FAIL_PORT 0x11
/* A real-mode segment reaches 64 KiB of the data slot. */
#define MAX_DATA_SIZE 0x10000UL
#define CODE_SLOT 0
#define DATA_SLOT 1

/* Upstream's struct of the fixture; gmem_fd and mem are t->gmem_fd and t->mem. */
struct conv {
	int vm_fd, vcpu_fd, code_fd, gmem_fd;
	uint8_t *code, *mem;
	struct kvm_run *run;
	size_t run_size, nr_pages;
};

static int set_region2(int vm_fd, uint32_t slot, uint64_t gpa, uint64_t size, void *hva, int gmem_fd)
{
	struct kvm_userspace_memory_region2 region = {
		.slot = slot,
		.flags = KVM_MEM_GUEST_MEMFD,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)hva,
		.guest_memfd = gmem_fd,
		.guest_memfd_offset = 0,
	};

	return ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION2, &region);
}

static bool create_gmem(struct conv *t, int *fd, uint8_t **map, size_t size, uint64_t flags)
{
	struct kvm_create_guest_memfd args = { .size = size, .flags = flags };

	*fd = ioctl(t->vm_fd, KVM_CREATE_GUEST_MEMFD, &args);
	CHECK(*fd >= 0, "KVM_CREATE_GUEST_MEMFD(size 0x%zx, flags 0x%llx) = %d (%s)", size, (unsigned long long)flags,
	      *fd, err_of(*fd));
	*map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	CHECK(*map != MAP_FAILED, "mmap(guest_memfd, 0x%zx) = MAP_FAILED (%s)", size, ename(errno));
	return true;
}

/*
 * gmem_conversions_do_setup(t, nr_pages, flags | GUEST_MEMFD_FLAG_MMAP): a KVM_X86_SW_PROTECTED_VM, the guest's code
 * in a shared guest_memfd (slot 0), the guest_memfd under test bound as slot 1 with its own mapping as the slot's
 * userspace_addr (upstream: t->mem = addr_gpa2hva(vm, gpa)), one vCPU in real mode at CODE_GPA.
 */
static bool conv_setup(struct conv *t, size_t nr_pages, uint64_t flags)
{
	struct kvm_regs regs = { .rip = 0, .rflags = 0x2 };
	struct kvm_sregs sregs;
	size_t size = nr_pages * page_size;
	long mmap_size;
	int ret;

	t->nr_pages = nr_pages;
	CHECK(size <= MAX_DATA_SIZE, "%zu pages are beyond the real-mode guest's 64 KiB segment", nr_pages);
	t->vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM);
	CHECK(t->vm_fd >= 0, "KVM_CREATE_VM(KVM_X86_SW_PROTECTED_VM) = %d (%s)", t->vm_fd, err_of(t->vm_fd));

	TRY(create_gmem(t, &t->code_fd, &t->code, page_size, GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED));
	memcpy(t->code, guest_code, sizeof(guest_code));
	ret = set_region2(t->vm_fd, CODE_SLOT, CODE_GPA, page_size, t->code, t->code_fd);
	CHECK(!ret, "KVM_SET_USER_MEMORY_REGION2(slot %d, code) = %d (%s)", CODE_SLOT, ret, err_of(ret));

	TRY(create_gmem(t, &t->gmem_fd, &t->mem, size, flags | GUEST_MEMFD_FLAG_MMAP));
	ret = set_region2(t->vm_fd, DATA_SLOT, DATA_GPA, size, t->mem, t->gmem_fd);
	CHECK(!ret, "KVM_SET_USER_MEMORY_REGION2(slot %d, guest_memfd under test) = %d (%s)", DATA_SLOT, ret,
	      err_of(ret));

	t->vcpu_fd = ioctl(t->vm_fd, KVM_CREATE_VCPU, 0);
	CHECK(t->vcpu_fd >= 0, "KVM_CREATE_VCPU = %d (%s)", t->vcpu_fd, err_of(t->vcpu_fd));
	mmap_size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	CHECK(mmap_size > 0, "KVM_GET_VCPU_MMAP_SIZE = %ld (%s)", mmap_size, err_of(mmap_size));
	t->run = mmap(NULL, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, t->vcpu_fd, 0);
	CHECK(t->run != MAP_FAILED, "mmap(kvm_run, %ld) = MAP_FAILED (%s)", mmap_size, ename(errno));
	t->run_size = mmap_size;

	ret = ioctl(t->vcpu_fd, KVM_GET_SREGS, &sregs);
	CHECK(!ret, "KVM_GET_SREGS = %d (%s)", ret, err_of(ret));
	sregs.cs.base = CODE_GPA;
	sregs.cs.selector = CODE_GPA >> 4;
	ret = ioctl(t->vcpu_fd, KVM_SET_SREGS, &sregs);
	CHECK(!ret, "KVM_SET_SREGS = %d (%s)", ret, err_of(ret));
	ret = ioctl(t->vcpu_fd, KVM_SET_REGS, &regs);
	CHECK(!ret, "KVM_SET_REGS = %d (%s)", ret, err_of(ret));
	return true;
}

/* Closes in reverse order; a close that fails means the descriptor was not the fixture's (a bug here). */
static void conv_teardown(struct conv *t)
{
	int *fds[] = { &t->vcpu_fd, &t->gmem_fd, &t->code_fd, &t->vm_fd };
	size_t i;

	if (t->run != MAP_FAILED)
		munmap(t->run, t->run_size);
	if (t->mem != MAP_FAILED)
		munmap(t->mem, t->nr_pages * page_size);
	if (t->code != MAP_FAILED)
		munmap(t->code, page_size);
	for (i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0 && close(*fds[i]))
			case_fail(__LINE__, "close(%d) = -1 (%s)", *fds[i], ename(errno));
		*fds[i] = -1;
	}
}

#define CONV_INIT { .vm_fd = -1, .vcpu_fd = -1, .code_fd = -1, .gmem_fd = -1, \
		    .code = MAP_FAILED, .mem = MAP_FAILED, .run = MAP_FAILED }

/* ---- Helpers, as in the selftest. ---- */

static bool gmem_set_attributes(struct conv *t, uint64_t offset, uint64_t size, uint64_t attributes)
{
	struct kvm_memory_attributes2_v8 attrs = { .offset = offset, .size = size, .attributes = attributes };
	int ret = ioctl(t->gmem_fd, KVM_SET_MEMORY_ATTRIBUTES2, &attrs);

	CHECK(!ret, "KVM_SET_MEMORY_ATTRIBUTES2(offset 0x%llx, size 0x%llx, attributes 0x%llx) = %d (%s), error_offset 0x%llx",
	      (unsigned long long)offset, (unsigned long long)size, (unsigned long long)attributes, ret, err_of(ret),
	      (unsigned long long)attrs.error_offset);
	return true;
}

static bool gmem_set_private(struct conv *t, uint64_t offset, uint64_t size)
{
	return gmem_set_attributes(t, offset, size, KVM_MEMORY_ATTRIBUTE_PRIVATE);
}

static bool gmem_set_shared(struct conv *t, uint64_t offset, uint64_t size)
{
	return gmem_set_attributes(t, offset, size, 0);
}

/* host_do_rmw(mem, pgoff, expected_val, write_val); a SIGBUS here means the page is not shared. */
static bool host_do_rmw(uint8_t *mem, size_t pgoff, uint8_t expected, uint8_t write)
{
	uint8_t *p = mem + pgoff * page_size;
	struct fault f;
	uint8_t seen;

	f = guarded_access(p, false, &seen);
	CHECK(!f.signo, "host read of shared page %zu raised %s", pgoff, fault_name(&f));
	CHECK(seen == expected, "host read 0x%02x at page %zu, expected 0x%02x", seen, pgoff, expected);
	f = guarded_access(p, true, &write);
	CHECK(!f.signo, "host write of shared page %zu raised %s", pgoff, fault_name(&f));
	return true;
}

/*
 * TEST_EXPECT_SIGBUS(READ_ONCE(mem[...])) / TEST_EXPECT_SIGBUS(WRITE_ONCE(mem[...], v)). Beyond upstream's check of
 * the signal: kvm_gmem_fault_user_mapping's VM_FAULT_SIGBUS reaches the program as SIGBUS with BUS_ADRERR at the
 * touched address (arch/x86/mm/fault.c do_sigbus), so the code and address are checked too.
 */
static bool expect_sigbus(uint8_t *mem, size_t pgoff, bool write, uint8_t val)
{
	uint8_t *p = mem + pgoff * page_size;
	struct fault f = guarded_access(p, write, &val);

	CHECK(f.signo == SIGBUS && f.code == BUS_ADRERR && f.addr == p,
	      "host %s of private page %zu: wanted SIGBUS (BUS_ADRERR at %p), got %s", write ? "write" : "read", pgoff,
	      (void *)p, fault_name(&f));
	return true;
}

/* The exit the guest's out should have made, or what came instead. */
static const char *describe_exit(const struct kvm_run *run)
{
	static char buf[160];

	if (run->exit_reason == KVM_EXIT_MEMORY_FAULT)
		snprintf(buf, sizeof(buf), "KVM_EXIT_MEMORY_FAULT (gpa 0x%llx, size 0x%llx, flags 0x%llx)",
			 (unsigned long long)run->memory_fault.gpa, (unsigned long long)run->memory_fault.size,
			 (unsigned long long)run->memory_fault.flags);
	else if (run->exit_reason == KVM_EXIT_IO)
		snprintf(buf, sizeof(buf), "KVM_EXIT_IO (port 0x%x, size %u, direction %u)", run->io.port, run->io.size,
			 run->io.direction);
	else
		snprintf(buf, sizeof(buf), "exit_reason %u", run->exit_reason);
	return buf;
}

/*
 * run_guest_do_rmw(vcpu, pgoff, expected_val, write_val): the guest reads the first byte of page pgoff, asserts it
 * is expected_val and writes write_val. On a SW_PROTECTED VM the access is private or shared as the page's
 * guest_memfd attribute says; no exit but the sync is expected either way.
 */
static bool run_guest_do_rmw(struct conv *t, size_t pgoff, uint8_t expected, uint8_t write)
{
	uint16_t offset = pgoff * page_size;
	struct kvm_run *run = t->run;
	uint8_t data;
	int ret;

	memcpy(t->code + MAILBOX, &offset, sizeof(offset));
	t->code[MAILBOX + 2] = expected;
	t->code[MAILBOX + 3] = write;

	do
		ret = ioctl(t->vcpu_fd, KVM_RUN, 0);
	while (ret < 0 && errno == EINTR);
	CHECK(!ret, "guest rmw of page %zu: KVM_RUN = %d (%s)", pgoff, ret, err_of(ret));
	CHECK(run->exit_reason == KVM_EXIT_IO && run->io.direction == KVM_EXIT_IO_OUT && run->io.size == 1,
	      "guest rmw of page %zu: expected the guest's sync port, got %s", pgoff, describe_exit(run));
	data = *((uint8_t *)run + run->io.data_offset);
	CHECK(run->io.port != FAIL_PORT, "guest rmw of page %zu: guest read 0x%02x, expected 0x%02x", pgoff, data,
	      expected);
	CHECK(run->io.port == DONE_PORT, "guest rmw of page %zu: out to port 0x%x, expected 0x%x", pgoff, run->io.port,
	      DONE_PORT);
	return true;
}

/* test_private: host write SIGBUS, guest rmw, host read SIGBUS. */
static bool test_private(struct conv *t, size_t pgoff, uint8_t starting_val, uint8_t write_val)
{
	TRY(expect_sigbus(t->mem, pgoff, true, write_val));
	TRY(run_guest_do_rmw(t, pgoff, starting_val, write_val));
	TRY(expect_sigbus(t->mem, pgoff, false, 0));
	return true;
}

static bool test_convert_to_private(struct conv *t, size_t pgoff, uint8_t starting_val, uint8_t write_val)
{
	TRY(gmem_set_private(t, pgoff * page_size, page_size));
	return test_private(t, pgoff, starting_val, write_val);
}

/* test_shared: host rmw, guest rmw, host sees the guest's write. */
static bool test_shared(struct conv *t, size_t pgoff, uint8_t starting_val, uint8_t host_write_val, uint8_t write_val)
{
	struct fault f;
	uint8_t seen;

	TRY(host_do_rmw(t->mem, pgoff, starting_val, host_write_val));
	TRY(run_guest_do_rmw(t, pgoff, host_write_val, write_val));
	f = guarded_access(t->mem + pgoff * page_size, false, &seen);
	CHECK(!f.signo, "host read of shared page %zu after the guest's write raised %s", pgoff, fault_name(&f));
	CHECK(seen == write_val, "host read 0x%02x at page %zu after the guest wrote 0x%02x", seen, pgoff, write_val);
	return true;
}

/* Conversions are in place: the content survives them both ways (init_private reads the guest's 'A' as shared). */
static bool test_convert_to_shared(struct conv *t, size_t pgoff, uint8_t starting_val, uint8_t host_write_val,
				   uint8_t write_val)
{
	TRY(gmem_set_shared(t, pgoff * page_size, page_size));
	return test_shared(t, pgoff, starting_val, host_write_val, write_val);
}

static bool punch_hole(struct conv *t, off_t offset, off_t len)
{
	int ret = fallocate(t->gmem_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, len);

	CHECK(!ret, "fallocate(PUNCH_HOLE, 0x%llx, 0x%llx) = %d (%s)", (long long)offset, (long long)len, ret,
	      err_of(ret));
	return true;
}

/* ---- The tests, in the selftest's order. ---- */

static bool init_private(struct conv *t)
{
	TRY(test_private(t, 0, 0, 'A'));
	TRY(test_convert_to_shared(t, 0, 'A', 'B', 'C'));
	TRY(test_convert_to_private(t, 0, 'C', 'E'));
	return true;
}

static bool init_shared(struct conv *t)
{
	TRY(test_shared(t, 0, 0, 'A', 'B'));
	TRY(test_convert_to_private(t, 0, 'B', 'C'));
	TRY(test_convert_to_shared(t, 0, 'C', 'D', 'E'));
	return true;
}

/* Indexing of pages within guest_memfd, using data that varies with the page index; only the converted page changes. */
#define combine(x, n) ((uint8_t)(((x) << 4) + (n)))
static bool indexing(struct conv *t, size_t test_page)
{
	size_t nr_pages = t->nr_pages;
	int i;

	/* Start with the highest index, to catch the first page being returned for the last index. */
	for (i = nr_pages - 1; i >= 0; --i)
		TRY(test_shared(t, i, 0, combine(i, 0), combine(i, 2)));

	TRY(test_convert_to_private(t, test_page, combine(test_page, 2), combine(test_page, 3)));

	for (i = 0; i < (int)nr_pages; ++i) {
		if ((size_t)i == test_page)
			TRY(test_private(t, test_page, combine(test_page, 3), combine(test_page, 4)));
		else
			TRY(test_shared(t, i, combine(i, 2), combine(i, 3), combine(i, 4)));
	}

	TRY(test_convert_to_shared(t, test_page, combine(test_page, 4), combine(test_page, 5), combine(test_page, 6)));

	for (i = 0; i < (int)nr_pages; ++i) {
		uint8_t expected = (size_t)i == test_page ? combine(test_page, 6) : combine(i, 4);

		TRY(test_shared(t, i, expected, combine(i, 7), combine(i, 8)));
	}
	return true;
}

/* Even if there are no folios yet, conversion requests are recorded in guest_memfd. */
static bool before_allocation_shared(struct conv *t)
{
	return test_convert_to_private(t, 0, 0, 'A');
}

static bool before_allocation_private(struct conv *t)
{
	return test_convert_to_shared(t, 0, 0, 'A', 'B');
}

/* Some folios of the conversion range allocated, others not, in every layout test_page gives. */
static bool unallocated_folios(struct conv *t, size_t test_page)
{
	const size_t second_page_to_fault = 4;
	size_t nr_pages = t->nr_pages, i;

	/* Fault 2 of the pages to test filemap range operations except when test_page == second_page_to_fault. */
	TRY(host_do_rmw(t->mem, test_page, 0, 'A'));
	if (test_page != second_page_to_fault)
		TRY(host_do_rmw(t->mem, second_page_to_fault, 0, 'A'));

	TRY(gmem_set_private(t, 0, nr_pages * page_size));
	for (i = 0; i < nr_pages; ++i) {
		uint8_t expected = i == test_page || i == second_page_to_fault ? 'A' : 0;

		TRY(test_private(t, i, expected, 'B'));
	}

	for (i = 0; i < nr_pages; ++i)
		TRY(test_convert_to_shared(t, i, 'B', 'C', 'D'));
	return true;
}

/* Truncation (PUNCH_HOLE) does not affect shared/private status; the content resets to 0. */
static bool truncate_(struct conv *t)
{
	TRY(host_do_rmw(t->mem, 0, 0, 'A'));
	TRY(punch_hole(t, 0, page_size));
	TRY(host_do_rmw(t->mem, 0, 0, 'A'));

	TRY(test_convert_to_private(t, 0, 'A', 'B'));

	TRY(punch_hole(t, 0, page_size));
	TRY(test_private(t, 0, 0, 'A'));
	return true;
}

/*
 * Shared/private protections are seen from any process. Upstream forks a child that maps the page (by touching it)
 * and, after the parent converts the page to private, expects SIGBUS on read and write in the child:
 * unmap_mapping_pages() must revoke the page in every mapping of the file. Here the child is a second, independent
 * mapping of the file (its own VMA, as the child's would be), faulted in while shared and checked after the
 * conversion, because the LD_PRELOAD bridge's emulated kernel lives in this process: a child forked after
 * open("/dev/kvm") has no runtime (docs/exec.md, Limits), and the emulator could not reprotect the child's copy.
 */
static bool forked_accesses(struct conv *t)
{
	const uint8_t inconsequential = 0xdd;
	uint8_t *child;
	bool ok = false;

	child = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_SHARED, t->gmem_fd, 0);
	CHECK(child != MAP_FAILED, "mmap(guest_memfd) for the second mapping = MAP_FAILED (%s)", ename(errno));

	if (!test_shared(t, 0, 0, 0xA, 0xB))
		goto out;
	/* STATE_CHECK_SHARED: this maps the page into the "child" as well. */
	if (!host_do_rmw(child, 0, 0xB, 0xC))
		goto out;

	if (!test_convert_to_private(t, 0, 0xC, 0xD))
		goto out;

	/* STATE_CHECK_PRIVATE: the child's mapping was revoked too. */
	ok = expect_sigbus(child, 0, false, 0) && expect_sigbus(child, 0, true, inconsequential);
out:
	munmap(child, page_size);
	return ok;
}

/*
 * A page with an elevated refcount (a long-term GUP pin) cannot become private: EAGAIN with error_offset = the pinned
 * page, in bulk and page-wise; the other pages convert; after unpinning the whole range converts. Upstream pins
 * through CONFIG_GUP_TEST (/sys/kernel/debug/gup_test). A C program cannot pin an emulated guest_memfd page: the
 * bridge's emulated kernel pins only through a test-only hook (EmulatedKernel.PinGuestMemfdPage), and gup_test would
 * ask the host kernel, which would pin the memory behind the emulator's mapping instead. So this case skips.
 */
static const char elevated_refcount_skip[] =
	"needs a long-term pin of a guest_memfd page (upstream: CONFIG_GUP_TEST's gup_test); the emulated kernel "
	"pins only through a test-only hook (EmulatedKernel.PinGuestMemfdPage) a C program cannot reach";

/* ---- Running the cases: GMEM_CONVERSION_TEST and GMEM_CONVERSION_MULTIPAGE_TEST_INIT_SHARED. ---- */

/* GMEM_CONVERSION_TEST(test, nr_pages, flags): one fresh fixture. */
static void conversion_test(const char *name, size_t nr_pages, uint64_t flags, bool (*test)(struct conv *t))
{
	struct conv t = CONV_INIT;

	case_name = name;
	case_failure[0] = 0;
	case_skip = all_skip;
	if (!case_skip && conv_setup(&t, nr_pages, flags))
		test(&t);
	conv_teardown(&t);
	case_end();
}

/* GMEM_CONVERSION_MULTIPAGE_TEST_INIT_SHARED(test, nr_pages): a fresh fixture for every test_page. */
static void multipage_test_init_shared(const char *name, size_t nr_pages, bool (*test)(struct conv *t, size_t page))
{
	size_t test_page;

	case_name = name;
	case_failure[0] = 0;
	case_skip = all_skip;
	for (test_page = 0; !case_skip && test_page < nr_pages; test_page++) {
		struct conv t = CONV_INIT;
		bool ok = conv_setup(&t, nr_pages, GUEST_MEMFD_FLAG_INIT_SHARED) && test(&t, test_page);

		conv_teardown(&t);
		if (!ok) {
			size_t n = strlen(case_failure);

			snprintf(case_failure + n, sizeof(case_failure) - n, " (test_page %zu)", test_page);
			break;
		}
	}
	case_end();
}

static void skipped_test(const char *name, const char *why)
{
	case_name = name;
	case_failure[0] = 0;
	case_skip = all_skip ? all_skip : why;
	case_end();
}

/*
 * main()'s requirements: KVM_X86_SW_PROTECTED_VM in KVM_CAP_VM_TYPES and KVM_MEMORY_ATTRIBUTE_PRIVATE in
 * KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES, on /dev/kvm and on such a VM. Without them every case skips with the reason
 * (upstream: TEST_REQUIRE skips the whole program). Returns the reason, or NULL.
 */
static const char *requirements(void)
{
#ifndef __x86_64__
	return "the selftest and its hand-assembled guest are x86 only";
#else
	static char why[192];
	long attrs, types;
	int vm_fd;

	if (page_size != 4096)
		return "the real-mode guest reaches the data slot in 4 KiB pages";
	attrs = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES);
	if (attrs < 0 || !(attrs & KVM_MEMORY_ATTRIBUTE_PRIVATE)) {
		snprintf(why, sizeof(why),
			 "KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES (%d) is 0x%lx: no in-place conversion ([PATCH v8] series)",
			 KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES, attrs < 0 ? 0 : attrs);
		return why;
	}
	/* An x86 binary does not prove an x86 KVM (an emulated arm64 kernel can answer it); KVM_CAP_SET_TSS_ADDR is
	 * x86-only (arch/x86/kvm/x86.c kvm_vm_ioctl_check_extension). */
	if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_TSS_ADDR) <= 0)
		return "not an x86 KVM (no KVM_CAP_SET_TSS_ADDR); the guest is x86 real-mode code";
	types = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_VM_TYPES);
	if (types < 0 || !(types & BIT(KVM_X86_SW_PROTECTED_VM))) {
		snprintf(why, sizeof(why), "KVM_CAP_VM_TYPES (0x%lx) lacks KVM_X86_SW_PROTECTED_VM", types < 0 ? 0 : types);
		return why;
	}
	vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM);
	if (vm_fd < 0) {
		snprintf(why, sizeof(why), "KVM_CREATE_VM(KVM_X86_SW_PROTECTED_VM) = -1 (%s)", ename(errno));
		return why;
	}
	attrs = ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES);
	close(vm_fd);
	if (attrs < 0 || !(attrs & KVM_MEMORY_ATTRIBUTE_PRIVATE)) {
		snprintf(why, sizeof(why),
			 "KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES (%d) on a SW_PROTECTED VM is 0x%lx: lacks KVM_MEMORY_ATTRIBUTE_PRIVATE",
			 KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES, attrs < 0 ? 0 : attrs);
		return why;
	}
	return NULL;
#endif
}

int main(void)
{
	printf("TAP version 13\n");
	page_size = getpagesize();

	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0)
		all_skip = errno == ENOENT ? "no /dev/kvm" : "cannot open /dev/kvm";
	else
		all_skip = requirements();

	conversion_test("init_private", 1, 0, init_private);
	conversion_test("init_shared", 1, GUEST_MEMFD_FLAG_INIT_SHARED, init_shared);
	multipage_test_init_shared("indexing", 4, indexing);
	conversion_test("before_allocation_shared", 1, GUEST_MEMFD_FLAG_INIT_SHARED, before_allocation_shared);
	conversion_test("before_allocation_private", 1, 0, before_allocation_private);
	multipage_test_init_shared("unallocated_folios", 8, unallocated_folios);
	conversion_test("truncate", 1, GUEST_MEMFD_FLAG_INIT_SHARED, truncate_);
	conversion_test("forked_accesses", 1, GUEST_MEMFD_FLAG_INIT_SHARED, forked_accesses);
	skipped_test("elevated_refcount", elevated_refcount_skip);

	if (kvm_fd >= 0)
		close(kvm_fd);
	print_totals();
	return n_fail ? 1 : 0;
}

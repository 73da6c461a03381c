// SPDX-License-Identifier: GPL-2.0
/*
 * A standalone port of the Linux KVM selftest tools/testing/selftests/kvm/guest_memfd_test.c
 * (torvalds/linux at 01f492e1817e858d1712f2489d0afbaa552f417b, the commit the vendored uAPI headers come from;
 * upstream: Copyright Intel Corporation, 2023, author Chao Peng).
 *
 * Why a port: the selftest links kvm_util, which builds page tables and a long-mode guest. This file keeps
 * upstream's test functions, cases and loop structure one for one, but talks to the kernel only through libc's
 * syscall wrappers (open, ioctl, mmap, fallocate, ...), so an LD_PRELOAD bridge can route every call to
 * KvmSharp's emulated kernel and the same binary also runs on a real kernel.
 *
 * Differences from upstream, each for a reason given where it happens:
 *  - a failed check fails only its case (TAP "not ok") and the case releases what it opened; upstream aborts;
 *  - cases upstream silently turns into no-ops (single NUMA node, no KVM_CAP_GUEST_MEMFD_FLAGS) report SKIP;
 *  - test_guest_memfd_guest runs a hand-assembled real-mode guest instead of kvm_util's compiled guest_code.
 *
 * Build (the host's 6.1 <linux/kvm.h> is too old, so the vendored 6.18+ uAPI headers must come first):
 *   gcc -O2 -Wall -Werror -I tests/KvmSharp.Tests/AbiOracle/include -I tests/KvmSharp.Tests/AbiOracle/shim \
 *       -o /tmp/gmt tests/KvmSharp.Preload.Tests/CPrograms/guest_memfd_test.c
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/falloc.h>
#include <linux/kvm.h>

#include "tap.h"
#include <linux/mempolicy.h>

/* Guards against -I order mistakes: the host's 6.1 linux/kvm.h has no guest_memfd and must not be the one read. */
#ifndef KVM_CAP_GUEST_MEMFD_FLAGS
#error "linux/kvm.h is not the vendored upstream header (no KVM_CAP_GUEST_MEMFD_FLAGS)"
#endif

/* include/uapi/asm-generic/mman-common.h; glibc 2.36's <sys/mman.h> does not define it yet. */
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

#define BIT(n) (1ULL << (n))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define READ_ONCE(x) (*(volatile typeof(x) *)&(x))
/* kvm_util.h VM_TYPE_DEFAULT: type 0 is the default VM type on every architecture. */
#define VM_TYPE_DEFAULT 0UL
/* Label column for cases that do not run under one guest_memfd flag combination. */
#define NO_FLAGS (-1LL)

struct vm {
	unsigned long type;
	int fd;
};

static size_t page_size;
static int kvm_fd;

/* ---- TAP reporting: one line per case; a failed check ends only its case. ---- */

static char case_label[128];
static const char *gmem_skip;   /* set when KVM_CAP_GUEST_MEMFD is 0: every gmem case skips with it */

static bool case_failed(void)
{
	return case_failure[0] != 0;
}

/* CHECK leaves a case that holds nothing; CHECK_OUT jumps to the case's "out:" cleanup. */
#define CHECK(cond, ...)                                          \
	do {                                                      \
		if (!(cond)) {                                    \
			case_fail(__LINE__, __VA_ARGS__);         \
			return;                                   \
		}                                                 \
	} while (0)
#define CHECK_OUT(cond, ...)                                      \
	do {                                                      \
		if (!(cond)) {                                    \
			case_fail(__LINE__, __VA_ARGS__);         \
			goto out;                                 \
		}                                                 \
	} while (0)

static void case_start(unsigned long vm_type, long long flags, const char *name)
{
	if (flags == NO_FLAGS)
		snprintf(case_label, sizeof(case_label), "%lu/-/%s", vm_type, name);
	else
		snprintf(case_label, sizeof(case_label), "%lu/0x%llx/%s", vm_type, flags, name);
	case_failure[0] = 0;
	case_skip = NULL;
}

static void case_end(void)
{
	case_report(case_label);
}

#define RUN_CASE(vm_type, flags, name, call)          \
	do {                                          \
		case_start(vm_type, flags, name);     \
		if (gmem_skip)                        \
			case_skip = gmem_skip;        \
		else                                  \
			call;                         \
		case_end();                           \
	} while (0)

/* ---- Helpers standing in for kvm_util / test_util / numaif.h. ---- */

/* kvm_util.c kvm_check_cap / vm_check_cap: KVM_CHECK_EXTENSION on /dev/kvm or on a VM fd. */
static long check_cap(int fd, long cap)
{
	return ioctl(fd, KVM_CHECK_EXTENSION, cap);
}

/* kvm_util.h __vm_create_guest_memfd. */
static int __vm_create_guest_memfd(struct vm *vm, uint64_t size, uint64_t flags)
{
	struct kvm_create_guest_memfd args = { .size = size, .flags = flags };

	return ioctl(vm->fd, KVM_CREATE_GUEST_MEMFD, &args);
}

/* test_util.c get_trans_hugepagesz; 0 when THP is not configured (upstream asserts instead). */
static size_t get_trans_hugepagesz(void)
{
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "r");
	size_t size = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%zu", &size) != 1)
		size = 0;
	fclose(f);
	return size;
}

/* numaif.h get_max_numa_node: the highest N of /sys/devices/system/node/nodeN. */
static int get_max_numa_node(void)
{
	DIR *d = opendir("/sys/devices/system/node");
	struct dirent *de;
	int max_node = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char *end;
		long id;

		if (strncmp(de->d_name, "node", 4))
			continue;
		id = strtol(de->d_name + 4, &end, 10);
		if (*end == 0 && id > max_node)
			max_node = id;
	}
	closedir(d);
	return max_node;
}

/* numaif.h is_multi_numa_node_system: get_mempolicy() fails with ENOSYS/EPERM without NUMA support. */
static bool is_multi_numa_node_system(void)
{
	bool numa = !syscall(__NR_get_mempolicy, NULL, NULL, 0, NULL, 0) || (errno != ENOSYS && errno != EPERM);

	return numa && get_max_numa_node() >= 1;
}

static long sys_mbind(void *addr, unsigned long len, int mode, const unsigned long *nodemask,
		      unsigned long maxnode, unsigned int flags)
{
	return syscall(__NR_mbind, addr, len, mode, nodemask, maxnode, flags);
}

static long sys_get_mempolicy(int *policy, unsigned long *nodemask, unsigned long maxnode, void *addr,
			      unsigned long flags)
{
	return syscall(__NR_get_mempolicy, policy, nodemask, maxnode, addr, flags);
}

/* Index of the first byte of mem[from, to) that is not val; to when all are. */
static size_t find_mismatch(const char *mem, size_t from, size_t to, char val)
{
	for (; from < to; from++)
		if (READ_ONCE(mem[from]) != val)
			return from;
	return to;
}

/*
 * test_util.h TEST_EXPECT_SIGBUS: run action with SIGBUS (and SIGSEGV, to tell a wrong signal from a crash)
 * caught by a handler that siglongjmps back; return the signal raised, 0 if none.
 * A SIGSEGV handler someone else installed (an LD_PRELOAD bridge may emulate faults with one) is left alone.
 */
static sigjmp_buf expect_sigbus_jmpbuf;

static void fault_sigbus_handler(int signo)
{
	siglongjmp(expect_sigbus_jmpbuf, signo);
}

static int expect_fault(void (*action)(char *mem, size_t arg), char *mem, size_t arg)
{
	struct sigaction catch = { .sa_handler = fault_sigbus_handler }, old_bus, old_segv;
	bool own_segv;
	int signo;

	sigaction(SIGSEGV, NULL, &old_segv);
	own_segv = !(old_segv.sa_flags & SA_SIGINFO) && old_segv.sa_handler == SIG_DFL;
	sigaction(SIGBUS, &catch, &old_bus);
	if (own_segv)
		sigaction(SIGSEGV, &catch, NULL);

	signo = sigsetjmp(expect_sigbus_jmpbuf, 1);
	if (!signo)
		action(mem, arg);

	sigaction(SIGBUS, &old_bus, NULL);
	if (own_segv)
		sigaction(SIGSEGV, &old_segv, NULL);
	return signo;
}

static void memset_aa(char *mem, size_t len)
{
	memset(mem, 0xaa, len);
}

static void read_byte(char *mem, size_t offset)
{
	(void)READ_ONCE(mem[offset]);
}

/* ---- The test functions, in upstream's order. ---- */

static void test_file_read_write(int fd, size_t total_size)
{
	char buf[64];
	ssize_t ret;

	ret = read(fd, buf, sizeof(buf));
	CHECK(ret < 0, "read on a guest_mem fd should fail, got %zd", ret);
	ret = write(fd, buf, sizeof(buf));
	CHECK(ret < 0, "write on a guest_mem fd should fail, got %zd", ret);
	ret = pread(fd, buf, sizeof(buf), 0);
	CHECK(ret < 0, "pread on a guest_mem fd should fail, got %zd", ret);
	ret = pwrite(fd, buf, sizeof(buf), 0);
	CHECK(ret < 0, "pwrite on a guest_mem fd should fail, got %zd", ret);
}

static void test_mmap_cow(int fd, size_t size)
{
	void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);

	if (mem != MAP_FAILED)
		munmap(mem, size);
	CHECK(mem == MAP_FAILED, "mmap(MAP_PRIVATE) succeeded: copy-on-write not allowed by guest_memfd");
}

static void test_mmap_supported(int fd, size_t total_size)
{
	const char val = 0xaa;
	size_t bad;
	char *mem;
	int ret;

	mem = mmap(NULL, total_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(mem != MAP_FAILED, "mmap(MAP_SHARED, %zu) = MAP_FAILED (%s), expected a mapping", total_size,
	      ename(errno));

	memset(mem, val, total_size);
	bad = find_mismatch(mem, 0, total_size, val);
	CHECK_OUT(bad == total_size, "after memset: mem[%zu] = 0x%02x, expected 0xaa", bad, (uint8_t)mem[bad]);

	ret = fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, 0, page_size);
	CHECK_OUT(!ret, "fallocate(PUNCH_HOLE) of the first page = %d (%s), expected 0", ret, err_of(ret));

	bad = find_mismatch(mem, 0, page_size, 0);
	CHECK_OUT(bad == page_size, "punched page: mem[%zu] = 0x%02x, expected 0x00", bad, (uint8_t)mem[bad]);
	bad = find_mismatch(mem, page_size, total_size, val);
	CHECK_OUT(bad == total_size, "after punch: mem[%zu] = 0x%02x, expected 0xaa", bad, (uint8_t)mem[bad]);

	memset(mem, val, page_size);
	bad = find_mismatch(mem, 0, total_size, val);
	CHECK_OUT(bad == total_size, "after refill: mem[%zu] = 0x%02x, expected 0xaa", bad, (uint8_t)mem[bad]);
out:
	munmap(mem, total_size);
}

static void test_mbind(int fd, size_t total_size)
{
	const unsigned long nodemask_0 = 1; /* nid: 0 */
	unsigned long nodemask = 0;
	unsigned long maxnode = 8 * sizeof(nodemask);
	int policy;
	char *mem;
	long ret;

	if (!is_multi_numa_node_system()) {
		case_skip = "not a multi-NUMA-node system (upstream returns early)";
		return;
	}

	mem = mmap(NULL, total_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(mem != MAP_FAILED, "mmap(MAP_SHARED, %zu) = MAP_FAILED (%s)", total_size, ename(errno));

	/* Test MPOL_INTERLEAVE policy */
	ret = sys_mbind(mem, page_size * 2, MPOL_INTERLEAVE, &nodemask_0, maxnode, 0);
	CHECK_OUT(!ret, "mbind(MPOL_INTERLEAVE) = %ld (%s), expected 0", ret, err_of(ret));
	ret = sys_get_mempolicy(&policy, &nodemask, maxnode, mem, MPOL_F_ADDR);
	CHECK_OUT(!ret, "get_mempolicy = %ld (%s), expected 0", ret, err_of(ret));
	CHECK_OUT(policy == MPOL_INTERLEAVE && nodemask == nodemask_0,
		  "wanted MPOL_INTERLEAVE (%u) and nodemask 0x%lx, got %u and 0x%lx", MPOL_INTERLEAVE, nodemask_0,
		  policy, nodemask);

	/* Test basic MPOL_BIND policy */
	ret = sys_mbind(mem + page_size * 2, page_size * 2, MPOL_BIND, &nodemask_0, maxnode, 0);
	CHECK_OUT(!ret, "mbind(MPOL_BIND) = %ld (%s), expected 0", ret, err_of(ret));
	ret = sys_get_mempolicy(&policy, &nodemask, maxnode, mem + page_size * 2, MPOL_F_ADDR);
	CHECK_OUT(!ret, "get_mempolicy = %ld (%s), expected 0", ret, err_of(ret));
	CHECK_OUT(policy == MPOL_BIND && nodemask == nodemask_0,
		  "wanted MPOL_BIND (%u) and nodemask 0x%lx, got %u and 0x%lx", MPOL_BIND, nodemask_0, policy,
		  nodemask);

	/* Test MPOL_DEFAULT policy */
	ret = sys_mbind(mem, total_size, MPOL_DEFAULT, NULL, 0, 0);
	CHECK_OUT(!ret, "mbind(MPOL_DEFAULT) = %ld (%s), expected 0", ret, err_of(ret));
	ret = sys_get_mempolicy(&policy, &nodemask, maxnode, mem, MPOL_F_ADDR);
	CHECK_OUT(!ret, "get_mempolicy = %ld (%s), expected 0", ret, err_of(ret));
	CHECK_OUT(policy == MPOL_DEFAULT && !nodemask, "wanted MPOL_DEFAULT (%u) and nodemask 0x0, got %u and 0x%lx",
		  MPOL_DEFAULT, policy, nodemask);

	/* Test with invalid policy */
	ret = sys_mbind(mem, page_size, 999, &nodemask_0, maxnode, 0);
	CHECK_OUT(ret == -1 && errno == EINVAL, "mbind(policy 999) = %ld (%s), expected -1 (EINVAL)", ret,
		  err_of(ret));
out:
	munmap(mem, total_size);
}

/* test_numa_allocation's move_pages(): which node each of the four pages is on. */
static long pages_nodes(void **pages, int status[4])
{
	return syscall(__NR_move_pages, 0, 4, pages, NULL, status, 0);
}

static void test_numa_allocation(int fd, size_t total_size)
{
	const unsigned long node0_mask = 1, node1_mask = 2, maxnode = 8;
	void *pages[4];
	int status[4];
	char *mem;
	long ret;
	int i;

	if (!is_multi_numa_node_system()) {
		case_skip = "not a multi-NUMA-node system (upstream returns early)";
		return;
	}

	mem = mmap(NULL, total_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(mem != MAP_FAILED, "mmap(MAP_SHARED, %zu) = MAP_FAILED (%s)", total_size, ename(errno));
	for (i = 0; i < 4; i++)
		pages[i] = mem + page_size * i;

	/* Set NUMA policy after allocation */
	memset(mem, 0xaa, page_size);
	ret = sys_mbind(pages[0], page_size, MPOL_BIND, &node0_mask, maxnode, 0);
	CHECK_OUT(!ret, "mbind(page 0, node 0) = %ld (%s)", ret, err_of(ret));
	ret = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, page_size);
	CHECK_OUT(!ret, "fallocate(PUNCH_HOLE, page 0) = %ld (%s)", ret, err_of(ret));

	/* Set NUMA policy before allocation */
	ret = sys_mbind(pages[0], page_size * 2, MPOL_BIND, &node1_mask, maxnode, 0);
	CHECK_OUT(!ret, "mbind(pages 0-1, node 1) = %ld (%s)", ret, err_of(ret));
	ret = sys_mbind(pages[2], page_size * 2, MPOL_BIND, &node0_mask, maxnode, 0);
	CHECK_OUT(!ret, "mbind(pages 2-3, node 0) = %ld (%s)", ret, err_of(ret));
	memset(mem, 0xaa, total_size);

	/* Validate if pages are allocated on specified NUMA nodes */
	ret = pages_nodes(pages, status);
	CHECK_OUT(!ret, "move_pages(query) = %ld (%s)", ret, err_of(ret));
	CHECK_OUT(status[0] == 1 && status[1] == 1 && status[2] == 0 && status[3] == 0,
		  "expected pages on nodes 1,1,0,0, got %d,%d,%d,%d", status[0], status[1], status[2], status[3]);

	/* Punch hole for all pages */
	ret = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, total_size);
	CHECK_OUT(!ret, "fallocate(PUNCH_HOLE, all) = %ld (%s)", ret, err_of(ret));

	/* Change NUMA policy nodes and reallocate */
	ret = sys_mbind(pages[0], page_size * 2, MPOL_BIND, &node0_mask, maxnode, 0);
	CHECK_OUT(!ret, "mbind(pages 0-1, node 0) = %ld (%s)", ret, err_of(ret));
	ret = sys_mbind(pages[2], page_size * 2, MPOL_BIND, &node1_mask, maxnode, 0);
	CHECK_OUT(!ret, "mbind(pages 2-3, node 1) = %ld (%s)", ret, err_of(ret));
	memset(mem, 0xaa, total_size);

	ret = pages_nodes(pages, status);
	CHECK_OUT(!ret, "move_pages(query) = %ld (%s)", ret, err_of(ret));
	CHECK_OUT(status[0] == 0 && status[1] == 0 && status[2] == 1 && status[3] == 1,
		  "expected pages on nodes 0,0,1,1, got %d,%d,%d,%d", status[0], status[1], status[2], status[3]);
out:
	munmap(mem, total_size);
}

/* Upstream calls the second parameter "flags" but is handed the guest_memfd size, pmd_size. */
static void test_collapse(int fd, size_t pmd_size)
{
	char *reserved_addr, *aligned_addr, *mem;
	size_t i;
	int ret;

	/*
	 * To even reach the point where the guest_memfd folios will get collapsed, both the userspace address
	 * and the offset within the guest_memfd have to be aligned to pmd_size: reserve address space with
	 * regular mmap, then MAP_FIXED the guest_memfd from offset 0 at a pmd_size-aligned address in it.
	 */
	reserved_addr = mmap(NULL, pmd_size * 2, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(reserved_addr != MAP_FAILED, "mmap(reserve %zu) = MAP_FAILED (%s)", pmd_size * 2, ename(errno));
	aligned_addr = (char *)(((uintptr_t)reserved_addr + pmd_size - 1) & ~(uintptr_t)(pmd_size - 1));

	mem = mmap(aligned_addr, pmd_size, PROT_READ | PROT_WRITE, MAP_FIXED | MAP_SHARED, fd, 0);
	CHECK_OUT(mem != MAP_FAILED, "mmap(MAP_FIXED|MAP_SHARED, %zu) = MAP_FAILED (%s)", pmd_size, ename(errno));
	CHECK_OUT(!((uintptr_t)mem & (pmd_size - 1)), "userspace address %p must be aligned to PMD size", mem);

	/* Use reads to populate page table to avoid setting dirty flag on page. */
	for (i = 0; i < pmd_size; i += getpagesize())
		(void)READ_ONCE(mem[i]);

	/* Advising the use of huge pages in guest_memfd should be fine... */
	ret = madvise(mem, pmd_size, MADV_HUGEPAGE);
	CHECK_OUT(!ret, "madvise(MADV_HUGEPAGE) = %d (%s), expected 0", ret, err_of(ret));

	/* ... but collapsing folios must not be supported, to avoid mapping beyond shared ranges into host
	 * userspace page tables. */
	ret = madvise(mem, pmd_size, MADV_COLLAPSE);
	CHECK_OUT(ret == -1 && errno == EINVAL, "madvise(MADV_COLLAPSE) = %d (%s), expected -1 (EINVAL)", ret,
		  err_of(ret));

	/* Removing from host page tables and re-faulting should be fine; should not fault in a huge folio. */
	ret = madvise(mem, pmd_size, MADV_DONTNEED);
	CHECK_OUT(!ret, "madvise(MADV_DONTNEED) = %d (%s), expected 0", ret, err_of(ret));
	(void)READ_ONCE(mem[0]);
out:
	munmap(reserved_addr, pmd_size * 2);
}

static void test_fault_sigbus(int fd, size_t accessible_size, size_t map_size)
{
	const char val = 0xaa;
	size_t bad;
	char *mem;
	int sig;

	mem = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(mem != MAP_FAILED, "mmap(MAP_SHARED, %zu) = MAP_FAILED (%s), expected a mapping", map_size,
	      ename(errno));

	sig = expect_fault(memset_aa, mem, map_size);
	CHECK_OUT(sig == SIGBUS, "'memset(mem, 0xaa, %zu)' should have triggered SIGBUS, got %s", map_size,
		  sig ? sigabbrev_np(sig) : "no signal");
	sig = expect_fault(read_byte, mem, accessible_size);
	CHECK_OUT(sig == SIGBUS, "'READ_ONCE(mem[%zu])' should have triggered SIGBUS, got %s", accessible_size,
		  sig ? sigabbrev_np(sig) : "no signal");

	bad = find_mismatch(mem, 0, accessible_size, val);
	CHECK_OUT(bad == accessible_size, "mem[%zu] = 0x%02x, expected 0xaa", bad, (uint8_t)mem[bad]);
out:
	munmap(mem, map_size);
}

static void test_fault_overflow(int fd, size_t total_size)
{
	test_fault_sigbus(fd, total_size, total_size * 4);
}

static void test_fault_private(int fd, size_t total_size)
{
	test_fault_sigbus(fd, 0, total_size);
}

static void test_mmap_not_supported(int fd, size_t total_size)
{
	const size_t sizes[] = { page_size, total_size };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		void *mem = mmap(NULL, sizes[i], PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

		if (mem != MAP_FAILED)
			munmap(mem, sizes[i]);
		CHECK(mem == MAP_FAILED, "mmap(MAP_SHARED, %zu) without GUEST_MEMFD_FLAG_MMAP succeeded", sizes[i]);
	}
}

static void test_file_size(int fd, size_t total_size)
{
	struct stat sb;
	int ret;

	ret = fstat(fd, &sb);
	CHECK(!ret, "fstat = %d (%s), expected 0", ret, err_of(ret));
	CHECK((size_t)sb.st_size == total_size, "st_size = %lld, expected %zu", (long long)sb.st_size, total_size);
	CHECK((size_t)sb.st_blksize == page_size, "st_blksize = %ld, expected %zu", (long)sb.st_blksize, page_size);
}

static void test_fallocate(int fd, size_t total_size)
{
	const int keep = FALLOC_FL_KEEP_SIZE, punch = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE;
	int ret;

	ret = fallocate(fd, keep, 0, total_size);
	CHECK(!ret, "fallocate with aligned offset and size should succeed, got %d (%s)", ret, err_of(ret));

	ret = fallocate(fd, punch, page_size - 1, page_size);
	CHECK(ret, "fallocate with unaligned offset should fail, got 0");

	ret = fallocate(fd, keep, total_size, page_size);
	CHECK(ret, "fallocate beginning at total_size should fail, got 0");

	ret = fallocate(fd, keep, total_size + page_size, page_size);
	CHECK(ret, "fallocate beginning after total_size should fail, got 0");

	ret = fallocate(fd, punch, total_size, page_size);
	CHECK(!ret, "fallocate(PUNCH_HOLE) at total_size should succeed, got %d (%s)", ret, err_of(ret));

	ret = fallocate(fd, punch, total_size + page_size, page_size);
	CHECK(!ret, "fallocate(PUNCH_HOLE) after total_size should succeed, got %d (%s)", ret, err_of(ret));

	ret = fallocate(fd, punch, page_size, page_size - 1);
	CHECK(ret, "fallocate with unaligned size should fail, got 0");

	ret = fallocate(fd, punch, page_size, page_size);
	CHECK(!ret, "fallocate(PUNCH_HOLE) with aligned offset and size should succeed, got %d (%s)", ret,
	      err_of(ret));

	ret = fallocate(fd, keep, page_size, page_size);
	CHECK(!ret, "fallocate to restore punched hole should succeed, got %d (%s)", ret, err_of(ret));
}

static void test_invalid_punch_hole(int fd, size_t total_size)
{
	const struct {
		off_t offset;
		off_t len;
	} testcases[] = {
		{ 0, 1 },
		{ 0, page_size - 1 },
		{ 0, page_size + 1 },

		{ 1, 1 },
		{ 1, page_size - 1 },
		{ 1, page_size },
		{ 1, page_size + 1 },

		{ page_size, 1 },
		{ page_size, page_size - 1 },
		{ page_size, page_size + 1 },
	};
	size_t i;
	int ret;

	for (i = 0; i < ARRAY_SIZE(testcases); i++) {
		ret = fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, testcases[i].offset, testcases[i].len);
		CHECK(ret == -1 && errno == EINVAL,
		      "PUNCH_HOLE with !PAGE_SIZE offset (%lx) and/or length (%lx) should fail with EINVAL, got %d (%s)",
		      (long)testcases[i].offset, (long)testcases[i].len, ret, err_of(ret));
	}
}

static void test_create_guest_memfd_invalid_sizes(struct vm *vm, uint64_t guest_memfd_flags)
{
	size_t size;
	int fd;

	for (size = 1; size < page_size; size++) {
		fd = __vm_create_guest_memfd(vm, size, guest_memfd_flags);
		if (fd >= 0)
			close(fd);
		CHECK(fd < 0 && errno == EINVAL,
		      "guest_memfd() with non-page-aligned page size '0x%zx' should fail with EINVAL, got %d (%s)", size,
		      fd, err_of(fd));
	}
}

static void test_create_guest_memfd_multiple(struct vm *vm)
{
	struct stat st1, st2;
	int fd1, fd2 = -1, ret;

	fd1 = __vm_create_guest_memfd(vm, page_size, 0);
	CHECK(fd1 != -1, "memfd creation should succeed, got %d (%s)", fd1, err_of(fd1));

	ret = fstat(fd1, &st1);
	CHECK_OUT(ret != -1, "memfd fstat should succeed, got %s", ename(errno));
	CHECK_OUT((size_t)st1.st_size == page_size, "memfd st_size should match requested size: %lld != %zu",
		  (long long)st1.st_size, page_size);

	fd2 = __vm_create_guest_memfd(vm, page_size * 2, 0);
	CHECK_OUT(fd2 != -1, "memfd creation should succeed, got %d (%s)", fd2, err_of(fd2));

	ret = fstat(fd2, &st2);
	CHECK_OUT(ret != -1, "memfd fstat should succeed, got %s", ename(errno));
	CHECK_OUT((size_t)st2.st_size == page_size * 2, "second memfd st_size should match requested size: %lld != %zu",
		  (long long)st2.st_size, page_size * 2);

	ret = fstat(fd1, &st1);
	CHECK_OUT(ret != -1, "memfd fstat should succeed, got %s", ename(errno));
	CHECK_OUT((size_t)st1.st_size == page_size,
		  "first memfd st_size should still match requested size: %lld != %zu", (long long)st1.st_size,
		  page_size);
	CHECK_OUT(st1.st_ino != st2.st_ino, "different memfd should have different inode numbers (both %llu)",
		  (unsigned long long)st1.st_ino);
out:
	if (fd2 >= 0)
		close(fd2);
	close(fd1);
}

static void test_guest_memfd_flags(struct vm *vm)
{
	long valid_flags = check_cap(vm->fd, KVM_CAP_GUEST_MEMFD_FLAGS);
	uint64_t flag;
	int fd;

	CHECK(valid_flags >= 0, "KVM_CHECK_EXTENSION(KVM_CAP_GUEST_MEMFD_FLAGS) = %ld (%s)", valid_flags,
	      ename(errno));

	for (flag = BIT(0); flag; flag <<= 1) {
		fd = __vm_create_guest_memfd(vm, page_size, flag);
		if (fd >= 0)
			close(fd);
		if (flag & valid_flags)
			CHECK(fd >= 0, "guest_memfd() with flag '0x%llx' should succeed, got %s",
			      (unsigned long long)flag, ename(errno));
		else
			CHECK(fd < 0 && errno == EINVAL,
			      "guest_memfd() with flag '0x%llx' should fail with EINVAL, got %d (%s)",
			      (unsigned long long)flag, fd, err_of(fd));
	}
}

/* Upstream's __gmem_test: a fresh guest_memfd of __gmem_size per case, closed after it (vm_create_guest_memfd
 * asserts the creation succeeds, so a failure to create fails the case). */
static void gmem_case(struct vm *vm, uint64_t flags, size_t size, void (*test)(int fd, size_t size))
{
	int fd = __vm_create_guest_memfd(vm, size, flags);

	CHECK(fd >= 0, "KVM_CREATE_GUEST_MEMFD(size 0x%zx, flags 0x%llx) = %d (%s), expected an fd", size,
	      (unsigned long long)flags, fd, err_of(fd));
	test(fd, size);
	close(fd);
}

#define __gmem_test(__test, __vm, __flags, __gmem_size) \
	RUN_CASE((__vm)->type, __flags, "test_" #__test, gmem_case(__vm, __flags, __gmem_size, test_##__test))

#define gmem_test(__test, __vm, __flags) __gmem_test(__test, __vm, __flags, page_size * 4)

static void __test_guest_memfd(struct vm *vm, uint64_t flags)
{
	RUN_CASE(vm->type, flags, "test_create_guest_memfd_multiple", test_create_guest_memfd_multiple(vm));
	RUN_CASE(vm->type, flags, "test_create_guest_memfd_invalid_sizes",
		 test_create_guest_memfd_invalid_sizes(vm, flags));

	gmem_test(file_read_write, vm, flags);

	if (flags & GUEST_MEMFD_FLAG_MMAP) {
		if (flags & GUEST_MEMFD_FLAG_INIT_SHARED) {
			size_t pmd_size = get_trans_hugepagesz();

			gmem_test(mmap_supported, vm, flags);
			gmem_test(fault_overflow, vm, flags);
			gmem_test(numa_allocation, vm, flags);
			if (pmd_size)
				__gmem_test(collapse, vm, flags, pmd_size);
			else
				RUN_CASE(vm->type, flags, "test_collapse",
					 case_skip = "THP not configured (no transparent_hugepage/hpage_pmd_size)");
		} else {
			gmem_test(fault_private, vm, flags);
		}

		gmem_test(mmap_cow, vm, flags);
		gmem_test(mbind, vm, flags);
	} else {
		gmem_test(mmap_not_supported, vm, flags);
	}

	gmem_test(file_size, vm, flags);
	gmem_test(fallocate, vm, flags);
	gmem_test(invalid_punch_hole, vm, flags);
}

/* A VM that cannot be created or queried fails one case named after the call, instead of its test set. */
static void vm_setup_failed(unsigned long vm_type, const char *call, int err)
{
	case_start(vm_type, NO_FLAGS, call);
	case_fail(__LINE__, "%s = -1 (%s)", call, ename(err));
	case_end();
}

static void test_guest_memfd(unsigned long vm_type)
{
	struct vm vm = { .type = vm_type, .fd = ioctl(kvm_fd, KVM_CREATE_VM, vm_type) };
	long flags;

	if (vm.fd < 0) {
		vm_setup_failed(vm_type, "KVM_CREATE_VM", errno);
		return;
	}

	RUN_CASE(vm.type, NO_FLAGS, "test_guest_memfd_flags", test_guest_memfd_flags(&vm));

	__test_guest_memfd(&vm, 0);

	flags = check_cap(vm.fd, KVM_CAP_GUEST_MEMFD_FLAGS);
	if (flags < 0) {
		vm_setup_failed(vm_type, "KVM_CHECK_EXTENSION(KVM_CAP_GUEST_MEMFD_FLAGS)", errno);
		flags = 0;
	}
	if (flags & GUEST_MEMFD_FLAG_MMAP)
		__test_guest_memfd(&vm, GUEST_MEMFD_FLAG_MMAP);

	/* MMAP should always be supported if INIT_SHARED is supported. */
	if (flags & GUEST_MEMFD_FLAG_INIT_SHARED)
		__test_guest_memfd(&vm, GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED);

	close(vm.fd);
}

/* ---- test_guest_memfd_guest: a guest reads and writes a guest_memfd page. ---- */

#ifdef __x86_64__
/*
 * Upstream's guest_code(mem, size) checks every byte is 0xaa, memsets 0xff, then GUEST_DONE(); on a mismatch
 * __GUEST_ASSERT reports the offset. kvm_util builds a long-mode guest for it; this is the same loop as
 * real-mode code (CR0.PE=0, CS=DS=0), so no page tables are needed. Assembled with "as --32" (.code16):
 *
 *   00  31 db            xor  bx, bx
 *   02  80 bf 00 10 aa   check: cmp byte [bx+0x1000], 0xaa   ; GUEST_GPA
 *   07  75 18            jne  fail
 *   09  43               inc  bx
 *   0a  81 fb 00 10      cmp  bx, 0x1000                     ; GUEST_SIZE
 *   0e  75 f2            jne  check
 *   10  31 db            xor  bx, bx
 *   12  c6 87 00 10 ff   fill: mov byte [bx+0x1000], 0xff
 *   17  43               inc  bx
 *   18  81 fb 00 10      cmp  bx, 0x1000
 *   1c  75 f4            jne  fill
 *   1e  e6 10            out  0x10, al                       ; GUEST_DONE
 *   20  f4               hlt
 *   21  89 d8            fail: mov ax, bx
 *   23  e7 11            out  0x11, ax                       ; GUEST_ASSERT, data = offset
 *   25  f4               hlt
 */
static const uint8_t guest_code[] = {
	0x31, 0xdb, 0x80, 0xbf, 0x00, 0x10, 0xaa, 0x75, 0x18, 0x43, 0x81, 0xfb, 0x00, 0x10, 0x75, 0xf2,
	0x31, 0xdb, 0xc6, 0x87, 0x00, 0x10, 0xff, 0x43, 0x81, 0xfb, 0x00, 0x10, 0x75, 0xf4, 0xe6, 0x10,
	0xf4, 0x89, 0xd8, 0xe7, 0x11, 0xf4,
};
#define GUEST_CODE_GPA 0x0ULL
/* Upstream uses gpa 4G (slot 1) to stay clear of slot 0 and MMIO; a real-mode guest reaches only 1 MiB. */
#define GUEST_GPA 0x1000ULL
#define GUEST_SIZE 0x1000UL
#define GUEST_DONE_PORT 0x10
#define GUEST_ASSERT_PORT 0x11

struct guest {
	int vm_fd, vcpu_fd, gmem_fd;
	uint8_t *code, *gmem;
	struct kvm_run *run;
	size_t run_size;
};

static int set_region2(int vm_fd, uint32_t slot, uint32_t flags, uint64_t gpa, uint64_t size, void *hva,
		       int gmem_fd)
{
	struct kvm_userspace_memory_region2 region = {
		.slot = slot,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)hva,
		.guest_memfd = flags & KVM_MEM_GUEST_MEMFD ? gmem_fd : 0,
	};

	return ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION2, &region);
}

/* Upstream: vm_create_guest_memfd + vm_set_user_memory_region2(slot 1, KVM_MEM_GUEST_MEMFD) + memset 0xaa. */
static void guest_memory_setup(struct guest *g)
{
	int ret;

	g->code = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(g->code != MAP_FAILED, "mmap(code page) = MAP_FAILED (%s)", ename(errno));
	memcpy(g->code, guest_code, sizeof(guest_code));
	ret = set_region2(g->vm_fd, 0, 0, GUEST_CODE_GPA, page_size, g->code, 0);
	CHECK(!ret, "KVM_SET_USER_MEMORY_REGION2(slot 0, code) = %d (%s)", ret, err_of(ret));

	g->gmem_fd = ioctl(g->vm_fd, KVM_CREATE_GUEST_MEMFD,
			   &(struct kvm_create_guest_memfd){ .size = GUEST_SIZE,
							     .flags = GUEST_MEMFD_FLAG_MMAP |
								      GUEST_MEMFD_FLAG_INIT_SHARED });
	CHECK(g->gmem_fd >= 0, "KVM_CREATE_GUEST_MEMFD(MMAP|INIT_SHARED) = %d (%s)", g->gmem_fd, err_of(g->gmem_fd));

	g->gmem = mmap(NULL, GUEST_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, g->gmem_fd, 0);
	CHECK(g->gmem != MAP_FAILED, "mmap(guest_memfd) = MAP_FAILED (%s)", ename(errno));
	memset(g->gmem, 0xaa, GUEST_SIZE);

	/* Upstream passes userspace_addr NULL; the slot points at the guest_memfd mapping instead, because
	 * kvm_pvm (this project's reference host) needs one. Upstream unmaps it here; it stays mapped while bound. */
	ret = set_region2(g->vm_fd, 1, KVM_MEM_GUEST_MEMFD, GUEST_GPA, GUEST_SIZE, g->gmem, g->gmem_fd);
	CHECK(!ret, "KVM_SET_USER_MEMORY_REGION2(slot 1, KVM_MEM_GUEST_MEMFD) = %d (%s)", ret, err_of(ret));
}

/* Upstream: __vm_create_shape_with_one_vcpu + vcpu_args_set; here one vCPU in real mode at GUEST_CODE_GPA. */
static void guest_vcpu_setup(struct guest *g)
{
	struct kvm_regs regs = { .rip = GUEST_CODE_GPA, .rflags = 0x2 };
	struct kvm_sregs sregs;
	long size;
	int ret;

	g->vcpu_fd = ioctl(g->vm_fd, KVM_CREATE_VCPU, 0);
	CHECK(g->vcpu_fd >= 0, "KVM_CREATE_VCPU = %d (%s)", g->vcpu_fd, err_of(g->vcpu_fd));

	size = ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	CHECK(size > 0, "KVM_GET_VCPU_MMAP_SIZE = %ld (%s)", size, err_of(size));
	g->run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, g->vcpu_fd, 0);
	CHECK(g->run != MAP_FAILED, "mmap(kvm_run, %ld) = MAP_FAILED (%s)", size, ename(errno));
	g->run_size = size;

	/* The reset CS is f000:fff0 with base ffff0000; flatten CS and DS to base 0 so the code above runs. */
	ret = ioctl(g->vcpu_fd, KVM_GET_SREGS, &sregs);
	CHECK(!ret, "KVM_GET_SREGS = %d (%s)", ret, err_of(ret));
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	sregs.ds.base = 0;
	sregs.ds.selector = 0;
	ret = ioctl(g->vcpu_fd, KVM_SET_SREGS, &sregs);
	CHECK(!ret, "KVM_SET_SREGS = %d (%s)", ret, err_of(ret));
	ret = ioctl(g->vcpu_fd, KVM_SET_REGS, &regs);
	CHECK(!ret, "KVM_SET_REGS = %d (%s)", ret, err_of(ret));
}

/* Upstream: vcpu_run + TEST_ASSERT_EQ(get_ucall(vcpu, NULL), UCALL_DONE). */
static void guest_run(struct guest *g)
{
	struct kvm_run *run = g->run;
	uint16_t data;
	int ret;

	do
		ret = ioctl(g->vcpu_fd, KVM_RUN, 0);
	while (ret < 0 && errno == EINTR);
	CHECK(!ret, "KVM_RUN = %d (%s)", ret, err_of(ret));
	CHECK(run->exit_reason == KVM_EXIT_IO, "exit_reason = %u, expected KVM_EXIT_IO (%u)", run->exit_reason,
	      KVM_EXIT_IO);
	CHECK(run->io.direction == KVM_EXIT_IO_OUT, "io.direction = %u, expected KVM_EXIT_IO_OUT",
	      run->io.direction);

	memcpy(&data, (uint8_t *)run + run->io.data_offset, sizeof(data));
	CHECK(run->io.port != GUEST_ASSERT_PORT, "guest expected 0xaa at offset %u, got 0x%x", data,
	      data < GUEST_SIZE ? g->gmem[data] : 0);
	CHECK(run->io.port == GUEST_DONE_PORT && run->io.size == 1,
	      "io.port = 0x%x size %u, expected GUEST_DONE (port 0x%x size 1)", run->io.port, run->io.size,
	      GUEST_DONE_PORT);
}

/* Upstream re-maps the guest_memfd after the run: a fresh mapping reads the file's pages, not a stale view. */
static void guest_check_memory(struct guest *g)
{
	uint8_t *mem = mmap(NULL, GUEST_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, g->gmem_fd, 0);
	size_t bad;

	CHECK(mem != MAP_FAILED, "mmap(guest_memfd) after the run = MAP_FAILED (%s)", ename(errno));
	bad = find_mismatch((char *)mem, 0, GUEST_SIZE, (char)0xff);
	if (bad != GUEST_SIZE)
		case_fail(__LINE__, "mem[%zu] = 0x%02x after the guest ran, expected 0xff", bad, mem[bad]);
	munmap(mem, GUEST_SIZE);
}

static void guest_teardown(struct guest *g)
{
	if (g->run != MAP_FAILED)
		munmap(g->run, g->run_size);
	if (g->vcpu_fd >= 0)
		close(g->vcpu_fd);
	if (g->gmem != MAP_FAILED)
		munmap(g->gmem, GUEST_SIZE);
	if (g->gmem_fd >= 0)
		close(g->gmem_fd);
	if (g->code != MAP_FAILED)
		munmap(g->code, page_size);
	close(g->vm_fd);
}

static void test_guest_memfd_guest(void)
{
	struct guest g = { .vcpu_fd = -1, .gmem_fd = -1, .code = MAP_FAILED, .gmem = MAP_FAILED, .run = MAP_FAILED };
	long flags;

	if (check_cap(kvm_fd, KVM_CAP_GUEST_MEMFD_FLAGS) <= 0) {
		case_skip = "KVM_CAP_GUEST_MEMFD_FLAGS is 0 (upstream returns early)";
		return;
	}
	/* An x86 binary does not prove an x86 KVM (an emulated arm64 kernel can answer it); KVM_CAP_SET_TSS_ADDR is
	 * x86-only (arch/x86/kvm/x86.c kvm_vm_ioctl_check_extension). */
	if (check_cap(kvm_fd, KVM_CAP_SET_TSS_ADDR) <= 0) {
		case_skip = "not an x86 KVM (no KVM_CAP_SET_TSS_ADDR); the guest is x86 real-mode code";
		return;
	}
	if (page_size != GUEST_SIZE) {
		case_skip = "the real-mode guest walks one 4 KiB page";
		return;
	}

	g.vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, VM_TYPE_DEFAULT);
	CHECK(g.vm_fd >= 0, "KVM_CREATE_VM(0) = %d (%s)", g.vm_fd, err_of(g.vm_fd));

	flags = check_cap(g.vm_fd, KVM_CAP_GUEST_MEMFD_FLAGS);
	CHECK_OUT(flags >= 0 && (flags & GUEST_MEMFD_FLAG_MMAP),
		  "Default VM type should support MMAP, supported flags = 0x%lx", flags);
	CHECK_OUT(flags & GUEST_MEMFD_FLAG_INIT_SHARED,
		  "Default VM type should support INIT_SHARED, supported flags = 0x%lx", flags);

	guest_memory_setup(&g);
	if (!case_failed())
		guest_vcpu_setup(&g);
	if (!case_failed())
		guest_run(&g);
	if (!case_failed())
		guest_check_memory(&g);
out:
	guest_teardown(&g);
}
#else
static void test_guest_memfd_guest(void)
{
	case_skip = "the hand-assembled guest is x86 real-mode code (x86 only)";
}
#endif

int main(void)
{
	unsigned long vm_types, vm_type;

	printf("TAP version 13\n");
	page_size = getpagesize();

	kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm_fd < 0) {
		/* Upstream's open_kvm_dev_path_or_exit skips the whole test. */
		case_start(VM_TYPE_DEFAULT, NO_FLAGS, "test_guest_memfd");
		case_skip = errno == ENOENT ? "no /dev/kvm" : "cannot open /dev/kvm";
		case_end();
		print_totals();
		return 0;
	}

	/* Upstream's TEST_REQUIRE(kvm_has_cap(KVM_CAP_GUEST_MEMFD)) skips everything: each case says so here. */
	if (check_cap(kvm_fd, KVM_CAP_GUEST_MEMFD) <= 0)
		gmem_skip = "KVM_CAP_GUEST_MEMFD is 0: this kernel has no guest_memfd";

	/*
	 * Not all architectures support KVM_CAP_VM_TYPES. However, those that support guest_memfd have that
	 * support for the default VM type.
	 */
	vm_types = check_cap(kvm_fd, KVM_CAP_VM_TYPES);
	if ((long)vm_types <= 0)
		vm_types = BIT(VM_TYPE_DEFAULT);

	for (vm_type = 0; vm_type < 8 * sizeof(vm_types); vm_type++)
		if (vm_types & (1UL << vm_type))
			test_guest_memfd(vm_type);

	RUN_CASE(VM_TYPE_DEFAULT, GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED, "test_guest_memfd_guest",
		 test_guest_memfd_guest());

	close(kvm_fd);
	print_totals();
	return n_fail ? 1 : 0;
}

// SPDX-License-Identifier: MIT
//
// C reference for the KvmSharp guest_memfd benchmarks: the same work as the SDK benchmarks, done with plain
// syscalls on /dev/kvm. Built twice from this file:
//   libgmemref.so  - loaded in-process by KvmSharp.Benchmarks (P/Invoke), so BenchmarkDotNet times both sides
//                    in one run under the same conditions;
//   gmem_ref       - a standalone program (-DGMEM_REF_MAIN) for running the C side alone.
//
// The system headers here are Linux 6.1, older than guest_memfd, so the uAPI numbers are defined below
// (include/uapi/linux/kvm.h of Linux >= 6.18).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../Shared/kvm_uapi_618.h"
#define KVM_CREATE_VM 0xAE01UL

#define PAGE 4096UL
#define EXPORT __attribute__((visibility("default")))

/* Every function returns >= 0 on success and -errno on failure. */

static int kvm_fd = -1;
static int vm_fd = -1;

static int create_gmem(size_t bytes)
{
    struct kvm_create_guest_memfd_ args = {
        .size = bytes,
        .flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED,
    };
    int fd = ioctl(vm_fd, KVM_CREATE_GUEST_MEMFD_, &args);
    return fd < 0 ? -errno : fd;
}

/* Opens /dev/kvm and creates one VM, reused by every call until gmem_ref_close (the SDK side does the same). */
EXPORT int gmem_ref_open(void)
{
    if (vm_fd >= 0) return 0;
    kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm_fd < 0) return -errno;
    vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0UL);
    if (vm_fd < 0) {
        int e = errno;
        close(kvm_fd);
        kvm_fd = -1;
        return -e;
    }
    return 0;
}

EXPORT void gmem_ref_close(void)
{
    if (vm_fd >= 0) close(vm_fd);
    if (kvm_fd >= 0) close(kvm_fd);
    vm_fd = kvm_fd = -1;
}

/*
 * (a) First-touch fault-in: create a guest_memfd of `bytes` with MMAP|INIT_SHARED, mmap it MAP_SHARED RW, write
 * one byte per 4 KiB page, munmap, close. Returns the sum of the bytes written (so the work is observable).
 */
EXPORT long gmem_ref_first_touch(size_t bytes)
{
    int fd = create_gmem(bytes);
    if (fd < 0) return fd;
    volatile uint8_t *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        close(fd);
        return -e;
    }
    long sum = 0;
    for (size_t off = 0; off < bytes; off += PAGE) {
        uint8_t v = (uint8_t)(off >> 12) | 1;
        p[off] = v;
        sum += v;
    }
    munmap((void *)p, bytes);
    close(fd);
    return sum;
}

/* (b) Warm copy: a guest_memfd mapping faulted in once, then memcpy of an N-byte buffer into it per call. */
static int warm_fd = -1;
static uint8_t *warm_map;
static size_t warm_len;
static uint8_t *warm_src;

EXPORT int gmem_ref_warm_setup(size_t bytes)
{
    int fd = create_gmem(bytes);
    if (fd < 0) return fd;
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        close(fd);
        return -e;
    }
    uint8_t *src = malloc(bytes);
    if (!src) {
        munmap(p, bytes);
        close(fd);
        return -ENOMEM;
    }
    for (size_t i = 0; i < bytes; i++) src[i] = (uint8_t)(i * 31 + 7);
    memset(p, 0, bytes); /* fault every page in: the copy below measures warm memory only */
    warm_fd = fd;
    warm_map = p;
    warm_len = bytes;
    warm_src = src;
    return 0;
}

/* Copies the source buffer into the faulted mapping; returns one byte read back so the copy is observable. */
EXPORT long gmem_ref_warm_copy(void)
{
    memcpy(warm_map, warm_src, warm_len);
    return ((volatile uint8_t *)warm_map)[warm_len - 1];
}

/*
 * (c) Warm touch: one byte per 4 KiB page into the faulted mapping, i.e. the first-touch loop without the faults.
 * It isolates the per-access cost (the SDK's checks) from the kernel's fault path, which dominates (a).
 */
EXPORT long gmem_ref_warm_touch(void)
{
    volatile uint8_t *p = warm_map;
    long sum = 0;
    for (size_t off = 0; off < warm_len; off += PAGE) {
        uint8_t v = (uint8_t)(off >> 12) | 1;
        p[off] = v;
        sum += v;
    }
    return sum;
}

EXPORT void gmem_ref_warm_teardown(void)
{
    if (warm_map) munmap(warm_map, warm_len);
    if (warm_fd >= 0) close(warm_fd);
    free(warm_src);
    warm_map = NULL;
    warm_src = NULL;
    warm_fd = -1;
    warm_len = 0;
}

#ifdef GMEM_REF_MAIN
static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [first-touch|warm-copy|warm-touch] [MiB] [iterations]\n", argv0);
    return 2;
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "first-touch";
    size_t mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 16;
    int iters = argc > 3 ? atoi(argv[3]) : 20;
    if (mib == 0 || iters <= 0) return usage(argv[0]);
    size_t bytes = mib << 20;

    int rc = gmem_ref_open();
    if (rc < 0) {
        fprintf(stderr, "open /dev/kvm / KVM_CREATE_VM: %s\n", strerror(-rc));
        return 1;
    }
    double best = 1e300, total = 0;
    if (strcmp(what, "first-touch") == 0) {
        for (int i = 0; i < iters; i++) {
            double t0 = now_ns();
            long r = gmem_ref_first_touch(bytes);
            double dt = now_ns() - t0;
            if (r < 0) {
                fprintf(stderr, "first touch: %s\n", strerror((int)-r));
                return 1;
            }
            total += dt;
            if (dt < best) best = dt;
        }
    } else if (strcmp(what, "warm-copy") == 0 || strcmp(what, "warm-touch") == 0) {
        int copy = strcmp(what, "warm-copy") == 0;
        rc = gmem_ref_warm_setup(bytes);
        if (rc < 0) {
            fprintf(stderr, "warm setup: %s\n", strerror(-rc));
            return 1;
        }
        for (int i = 0; i < iters; i++) {
            double t0 = now_ns();
            if (copy)
                gmem_ref_warm_copy();
            else
                gmem_ref_warm_touch();
            double dt = now_ns() - t0;
            total += dt;
            if (dt < best) best = dt;
        }
        gmem_ref_warm_teardown();
    } else {
        return usage(argv[0]);
    }
    gmem_ref_close();
    printf("%s %zu MiB: mean %.1f us, best %.1f us over %d iterations (best: %.2f GB/s, %.1f ns per 4 KiB page)\n",
           what, mib, total / iters / 1e3, best / 1e3, iters, bytes / best, best / (bytes / PAGE));
    return 0;
}
#endif

// SPDX-License-Identifier: MIT
//
// What the two halves of libkvmsharp-preload.so share: kvmsharp_preload.c (the interposed file and memory calls,
// starting .NET) and signals.c (the program's signal handlers and KVM_RUN). Everything here is hidden
// (-fvisibility=hidden): only EXPORT symbols are seen by the program.
#ifndef KVMSHARP_PRELOAD_H
#define KVMSHARP_PRELOAD_H

#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define EXPORT __attribute__((visibility("default")))

/* _IO(KVMIO, 0x80): include/uapi/linux/kvm.h KVM_RUN (the system headers here are older than this project's uAPI). */
#define KVM_RUN_REQUEST 0xAE80UL

/* libc's own functions (dlsym RTLD_NEXT), for calls that must not come back to this library. */
struct libc_functions {
    int (*open)(const char *, int, ...);
    int (*openat)(int, const char *, int, ...);
    int (*close)(int);
    int (*dup)(int);
    int (*dup2)(int, int);
    int (*dup3)(int, int, int);
    int (*fcntl)(int, int, ...);
    int (*ioctl)(int, unsigned long, ...);
    int (*sigaction)(int, const struct sigaction *, struct sigaction *);
    int (*pthread_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    void *(*mmap)(void *, size_t, int, int, int, off_t);
    int (*munmap)(void *, size_t);
    int (*mprotect)(void *, size_t, int);
    void *(*mremap)(void *, size_t, size_t, int, ...);
    int (*madvise)(void *, size_t, int);
    int (*fallocate)(int, int, off_t, off_t);
    ssize_t (*read)(int, void *, size_t);
    ssize_t (*write)(int, const void *, size_t);
    ssize_t (*pread)(int, void *, size_t, off_t);
    ssize_t (*pwrite)(int, const void *, size_t, off_t);
    off_t (*lseek)(int, off_t, int);
    int (*fstat)(int, struct stat *);
    int (*ftruncate)(int, off_t);
    int (*eventfd)(unsigned int, int);
};
extern struct libc_functions libc;

/* The managed entry points (PreloadBridge.cs): each returns what the syscall would, >= 0 or -errno. */
struct bridge_functions {
    long (*start)(void);
    long (*open)(const char *path, int flags);
    long (*close)(int fd);
    long (*ioctl)(int fd, unsigned long request, unsigned long arg);
    long (*mmap)(unsigned long address, unsigned long length, int prot, int flags, int fd, long offset);
    long (*munmap)(unsigned long address, unsigned long length);
    long (*madvise)(unsigned long address, unsigned long length, int advice);
    long (*fallocate)(int fd, int mode, long offset, long length);
    long (*read)(int fd, unsigned long buffer, unsigned long count);
    long (*write)(int fd, unsigned long buffer, unsigned long count);
    long (*pread)(int fd, unsigned long buffer, unsigned long count, long offset);
    long (*pwrite)(int fd, unsigned long buffer, unsigned long count, long offset);
    long (*lseek)(int fd, long offset, int whence);
    long (*fstat)(int fd, unsigned long stat_buffer);
    long (*ftruncate)(int fd, long length);
    long (*host_fault)(unsigned long address);
    long (*dup)(int old_fd, int new_fd);
    long (*forget)(unsigned long address, unsigned long length);
    long (*kick)(int tid);
    long (*eventfd)(unsigned int initial_value, int flags);
    long (*prepare_run)(int fd, uint64_t *mask);
    long (*host_cpuid)(uint32_t leaf, uint32_t subleaf, uint32_t *regs);
};
extern struct bridge_functions bridge;

/* > 0 while this thread runs the bridge (its calls go straight to libc). */
extern __thread int in_bridge __attribute__((tls_model("initial-exec")));
/* Set once every entry point is there; bridge_emulated: the kernel is the emulated one (not the real one, traced). */
extern _Atomic int bridge_ready;
extern int bridge_emulated;

void complain(const char *what, const char *detail);

/* A bridge result as libc returns it: the value, or -1 with errno. */
long answer(long rc);

/* signals.c: the program's signals that came in while this thread ran .NET code, delivered now (as the kernel
 * delivers a signal when a syscall returns). */
void deliver_kept_signals(void);

/* A call into the bridge: the program's signal handlers do not run inside it but once it returned. */
#define CALL_BRIDGE(call)                                                                                              \
    ({                                                                                                                 \
        in_bridge++;                                                                                                   \
        long rc_ = bridge.call;                                                                                        \
        if (--in_bridge == 0) deliver_kept_signals();                                                                  \
        answer(rc_);                                                                                                   \
    })

/* signals.c: KVM_RUN on an emulated vCPU, with the program's signals doing what they do to the kernel's. */
int run_vcpu(int fd, unsigned long arg);
/* signals.c: the program's own action for a signal (its handler, or the default action). */
void dispatch(int signal, siginfo_t *info, void *context);
/* signals.c: this thread runs .NET code (the bridge, or a thread the runtime created). */
int is_runtime_thread(void);
/* signals.c: once the bridge runs (emulated kernel): the thread that passes kicks on. */
void start_kick_forwarding(void);
/* cpuid.c: once the bridge runs (emulated kernel): the emulated host's CPUID leaves, CPUID faulting on this thread. */
void start_cpuid_answers(void);
/* cpuid.c: 1 when the SIGSEGV was a faulting CPUID, now answered (RIP past it); 0 when it is someone else's fault. */
int answer_cpuid_fault(const siginfo_t *info, void *context);

#endif

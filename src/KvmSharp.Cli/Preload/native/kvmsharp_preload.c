// SPDX-License-Identifier: MIT
//
// libkvmsharp-preload.so: the native half of `kvmsharp exec`. Preloaded (LD_PRELOAD) into an ordinary program - a
// VMM written in C, Rust, Go ... - it answers that program's /dev/kvm with KvmSharp's emulated kernel, in process:
//
//   * open("/dev/kvm") starts .NET in this process (hostfxr, the runtime `kvmsharp exec` runs on) and loads the
//     managed half, KvmSharp.Cli.Preload.PreloadBridge, whose entry points answer like the kernel (>= 0 or -errno);
//   * every descriptor the emulated kernel hands out is a real descriptor reserved here (open of /dev/null), so no
//     real file can take its number and the program may keep it, poll it or pass it in a struct like any other;
//   * the program's calls on those descriptors (ioctl, mmap, close, read, fallocate ...) and on the memory mapped
//     from them (munmap, madvise) go to the bridge; everything else goes to libc untouched.
//
// The program's signal handlers and KVM_RUN live in signals.c.
//
// Calls made while the bridge runs on this thread (the runtime's and the emulated kernel's own mmap, close ...)
// always go to libc: the thread-local `in_bridge` says so. Set by `kvmsharp exec` (Commands/ExecCommand.cs):
//   KVMSHARP_PRELOAD_HOSTFXR        path of libhostfxr.so
//   KVMSHARP_PRELOAD_RUNTIMECONFIG  KvmSharp.Cli.runtimeconfig.json
//   KVMSHARP_PRELOAD_ASSEMBLY       KvmSharp.Cli.dll
//   KVMSHARP_PRELOAD_KERNEL         the kernel options, one per line (read by the managed half)
#include "preload.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

/* hostfxr.h and coreclr_delegates.h (dotnet/runtime, src/native/corehost): the declarations used here. */
typedef void *hostfxr_handle;
typedef int32_t (*hostfxr_initialize_for_runtime_config_fn)(const char *runtime_config_path, const void *parameters,
                                                            hostfxr_handle *host_context_handle);
typedef int32_t (*hostfxr_get_runtime_delegate_fn)(const hostfxr_handle host_context_handle, int type, void **delegate);
typedef int32_t (*hostfxr_close_fn)(const hostfxr_handle host_context_handle);
enum { hdt_load_assembly_and_get_function_pointer = 5 };
typedef int (*load_assembly_and_get_function_pointer_fn)(const char *assembly_path, const char *type_name,
                                                         const char *method_name, const char *delegate_type_name,
                                                         void *reserved, void **delegate);
#define UNMANAGEDCALLERSONLY_METHOD ((const char *)-1)

/* ---- libc's own functions ---------------------------------------------------------------------------------- */

struct libc_functions libc;

__attribute__((constructor)) static void find_libc(void)
{
    libc.open = dlsym(RTLD_NEXT, "open");
    libc.openat = dlsym(RTLD_NEXT, "openat");
    libc.close = dlsym(RTLD_NEXT, "close");
    libc.dup = dlsym(RTLD_NEXT, "dup");
    libc.dup2 = dlsym(RTLD_NEXT, "dup2");
    libc.dup3 = dlsym(RTLD_NEXT, "dup3");
    libc.fcntl = dlsym(RTLD_NEXT, "fcntl");
    libc.sigaction = dlsym(RTLD_NEXT, "sigaction");
    libc.pthread_create = dlsym(RTLD_NEXT, "pthread_create");
    libc.ioctl = dlsym(RTLD_NEXT, "ioctl");
    libc.mmap = dlsym(RTLD_NEXT, "mmap");
    libc.munmap = dlsym(RTLD_NEXT, "munmap");
    libc.mprotect = dlsym(RTLD_NEXT, "mprotect");
    libc.mremap = dlsym(RTLD_NEXT, "mremap");
    libc.madvise = dlsym(RTLD_NEXT, "madvise");
    libc.fallocate = dlsym(RTLD_NEXT, "fallocate");
    libc.read = dlsym(RTLD_NEXT, "read");
    libc.write = dlsym(RTLD_NEXT, "write");
    libc.pread = dlsym(RTLD_NEXT, "pread");
    libc.pwrite = dlsym(RTLD_NEXT, "pwrite");
    libc.lseek = dlsym(RTLD_NEXT, "lseek");
    libc.fstat = dlsym(RTLD_NEXT, "fstat");
    libc.ftruncate = dlsym(RTLD_NEXT, "ftruncate");
    libc.eventfd = dlsym(RTLD_NEXT, "eventfd");
}

/* ---- the managed entry points (PreloadBridge.cs) ----------------------------------------------------------- */

struct bridge_functions bridge;

__thread int in_bridge __attribute__((tls_model("initial-exec")));
static pthread_once_t bridge_once = PTHREAD_ONCE_INIT;
static int bridge_errno;          /* why the bridge could not start (0: it did) */
_Atomic int bridge_ready; /* set once every entry point is there */
/* 1: the emulated kernel (descriptors it lends, eventfds, kicks, private-page faults); 0: the real kernel, routed
 * here only to be traced (--kernel linux --trace): its descriptors are the program's own, marked as they appear. */
int bridge_emulated;

void complain(const char *what, const char *detail)
{
    fprintf(stderr, "kvmsharp-preload: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
}

static int overlaps_range(uintptr_t start, size_t length);

/* ---- SIGBUS for private guest_memfd pages ------------------------------------------------------------------- */

/* The emulated kernel makes private guest_memfd pages PROT_NONE in this process (EmulatedKernel.ProtectsPrivatePages),
 * so touching one faults with SIGSEGV; the kernel's answer (kvm_gmem_fault_user_mapping: VM_FAULT_SIGBUS) is SIGBUS
 * with BUS_ADRERR at that address, which is what the program gets instead. Every other SIGSEGV goes to the program's
 * own action (signals.c) or, on a thread running .NET code, to the runtime's handler that was there before. */
static struct sigaction previous_segv;

static void pass_on_segv(int signal, siginfo_t *info, void *context)
{
    if (previous_segv.sa_flags & SA_SIGINFO) {
        previous_segv.sa_sigaction(signal, info, context);
    } else if (previous_segv.sa_handler == SIG_DFL) {
        /* Returning re-runs the access, which then takes the default action (a core dump), as without us. */
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        libc.sigaction(SIGSEGV, &dfl, NULL);
    } else if (previous_segv.sa_handler != SIG_IGN) {
        previous_segv.sa_handler(signal);
    }
}

static void on_segv(int signal, siginfo_t *info, void *context)
{
    if (answer_cpuid_fault(info, context)) return; /* cpuid.c */
    uintptr_t address = (uintptr_t)info->si_addr;
    if (info->si_code == SEGV_ACCERR && overlaps_range(address, 1) && bridge.host_fault(address) > 0) {
        /* rt_tgsigqueueinfo to this very thread may carry a kernel si_code (kernel/signal.c do_rt_tgsigqueueinfo
         * refuses it only for another process). SIGBUS is not blocked here, so it is delivered on return from
         * the syscall: a handler that siglongjmps leaves from there, one that returns re-runs the access, as with
         * the kernel's SIGBUS. */
        siginfo_t bus = {.si_signo = SIGBUS, .si_code = BUS_ADRERR};
        bus.si_addr = (void *)address;
        syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), SIGBUS, &bus);
        return;
    }
    /* A fault in .NET code is the runtime's (a NullReferenceException ...); one in the program's own code is the
     * program's. Not through the runtime's handler: called here, off the alternate stack it was installed for, it
     * aborts ("stack smashing detected") instead of passing the fault on. */
    if (is_runtime_thread())
        pass_on_segv(signal, info, context);
    else
        dispatch(signal, info, context);
}

static void catch_private_page_faults(void)
{
    /* SA_NODEFER: a handler that siglongjmps without restoring the mask must not leave SIGSEGV blocked. No
     * SA_ONSTACK: the handler calls into .NET, which needs more stack than the runtime's alternate signal stack. */
    struct sigaction action = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO | SA_NODEFER};
    sigemptyset(&action.sa_mask);
    libc.sigaction(SIGSEGV, &action, &previous_segv);
}

static int find_entry(load_assembly_and_get_function_pointer_fn load, const char *assembly, const char *method,
                      void **entry)
{
    int rc = load(assembly, "KvmSharp.Cli.Preload.PreloadBridge, KvmSharp.Cli", method, UNMANAGEDCALLERSONLY_METHOD,
                  NULL, entry);
    if (rc != 0) {
        char code[32];
        snprintf(code, sizeof code, "0x%x", (unsigned)rc);
        complain("cannot load PreloadBridge entry point", code);
    }
    return rc;
}

static void start_bridge(void)
{
    const char *fxr_path = getenv("KVMSHARP_PRELOAD_HOSTFXR");
    const char *config = getenv("KVMSHARP_PRELOAD_RUNTIMECONFIG");
    const char *assembly = getenv("KVMSHARP_PRELOAD_ASSEMBLY");
    bridge_errno = ENODEV;
    if (!fxr_path || !config || !assembly) {
        complain("KVMSHARP_PRELOAD_* is not set: run the program with `kvmsharp exec -- PROGRAM`", NULL);
        return;
    }
    void *fxr = dlopen(fxr_path, RTLD_NOW | RTLD_LOCAL);
    if (!fxr) {
        complain("cannot load hostfxr", dlerror());
        return;
    }
    hostfxr_initialize_for_runtime_config_fn init = dlsym(fxr, "hostfxr_initialize_for_runtime_config");
    hostfxr_get_runtime_delegate_fn get_delegate = dlsym(fxr, "hostfxr_get_runtime_delegate");
    hostfxr_close_fn close_host = dlsym(fxr, "hostfxr_close");
    hostfxr_handle host = NULL;
    /* 0 = Success, 1 = Success_HostAlreadyInitialized, 2 = Success_DifferentRuntimeProperties; errors are < 0. */
    if (!init || !get_delegate || !close_host || init(config, NULL, &host) < 0 || !host) {
        complain("cannot start the .NET runtime with", config);
        return;
    }
    load_assembly_and_get_function_pointer_fn load = NULL;
    int rc = get_delegate(host, hdt_load_assembly_and_get_function_pointer, (void **)&load);
    close_host(host);
    if (rc != 0 || !load) {
        complain("the .NET runtime gave no load_assembly_and_get_function_pointer", NULL);
        return;
    }
    static const struct {
        const char *method;
        size_t offset;
    } entries[] = {
        {"Start", offsetof(__typeof__(bridge), start)},       {"Open", offsetof(__typeof__(bridge), open)},
        {"Close", offsetof(__typeof__(bridge), close)},       {"Ioctl", offsetof(__typeof__(bridge), ioctl)},
        {"Mmap", offsetof(__typeof__(bridge), mmap)},         {"Munmap", offsetof(__typeof__(bridge), munmap)},
        {"Madvise", offsetof(__typeof__(bridge), madvise)},   {"Fallocate", offsetof(__typeof__(bridge), fallocate)},
        {"Read", offsetof(__typeof__(bridge), read)},         {"Write", offsetof(__typeof__(bridge), write)},
        {"Pread", offsetof(__typeof__(bridge), pread)},       {"Pwrite", offsetof(__typeof__(bridge), pwrite)},
        {"Lseek", offsetof(__typeof__(bridge), lseek)},       {"Fstat", offsetof(__typeof__(bridge), fstat)},
        {"Ftruncate", offsetof(__typeof__(bridge), ftruncate)}, {"HostFault", offsetof(__typeof__(bridge), host_fault)},
        {"Dup", offsetof(__typeof__(bridge), dup)},           {"Forget", offsetof(__typeof__(bridge), forget)},
        {"Kick", offsetof(__typeof__(bridge), kick)},         {"EventFd", offsetof(__typeof__(bridge), eventfd)},
        {"PrepareRun", offsetof(__typeof__(bridge), prepare_run)}, {"HostCpuid", offsetof(__typeof__(bridge), host_cpuid)},
    };
    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++)
        if (find_entry(load, assembly, entries[i].method, (void **)((char *)&bridge + entries[i].offset)) != 0)
            return;
    long started = bridge.start();
    if (started < 0) {
        bridge_errno = (int)-started;
        return;
    }
    bridge_emulated = started == 0;
    if (bridge_emulated) {
        catch_private_page_faults();
        start_cpuid_answers(); /* after the SIGSEGV handler, which answers the faults */
        start_kick_forwarding();
    }
    bridge_errno = 0;
    bridge_ready = 1;
}

/* The bridge, started on first use; 0, or the errno open(/dev/kvm) fails with. */
static int ensure_bridge(void)
{
    in_bridge++;
    pthread_once(&bridge_once, start_bridge);
    if (--in_bridge == 0) deliver_kept_signals();
    return bridge_errno;
}

/* A bridge result as libc returns it: the value, or -1 with errno. */
long answer(long rc)
{
    if (rc < 0 && rc >= -4095) {
        errno = (int)-rc;
        return -1;
    }
    return rc;
}


/* ---- which descriptors and which memory are the emulated kernel's ------------------------------------------ */

#define MAX_FDS (1 << 20) /* fs.nr_open's default */
static _Atomic unsigned char emulated_fd[MAX_FDS];

static int is_emulated(int fd)
{
    return !in_bridge && fd >= 0 && fd < MAX_FDS && emulated_fd[fd];
}

/* Called by the emulated kernel (PreloadFdNumbers.cs) for each descriptor it creates: a number no real file has,
 * opened so that fcntl(F_GETFL/F_GETFD) and poll(2) answer as for the kernel's file - /dev/null for a character
 * device (/dev/kvm: O_RDWR | O_LARGEFILE), an eventfd for an anonymous inode (O_RDWR, as anon_inode_getfd's files),
 * with a count of 1 so that poll says POLLIN | POLLOUT, the DEFAULT_POLLMASK of KVM's files, which have no f_op->poll.
 * What /proc/self/fd names them (/dev/null, anon_inode:[eventfd]) stays different. */
EXPORT int kvmsharp_preload_reserve_fd(int character_device, int writable, int close_on_exec)
{
    int fd = character_device ? libc.open("/dev/null", (writable ? O_RDWR : O_RDONLY) | (close_on_exec ? O_CLOEXEC : 0))
                              : libc.eventfd(1, close_on_exec ? EFD_CLOEXEC : 0);
    if (fd < 0) return -errno;
    if (fd >= MAX_FDS) {
        libc.close(fd);
        return -EMFILE;
    }
    emulated_fd[fd] = 1;
    return fd;
}

/* Called by the emulated kernel when the eventfd behind fd became readable or not: its real eventfd follows (a count
 * of 1 or 0), so poll, select and epoll on fd answer as on the emulated one. Only on changes, so it never blocks. */
EXPORT void kvmsharp_preload_mirror_readable(int fd, int readable)
{
    uint64_t count = 1;
    struct pollfd ready = {.fd = fd, .events = POLLIN};
    int is_readable = poll(&ready, 1, 0) == 1 && (ready.revents & POLLIN);
    if (readable && !is_readable) {
        ssize_t n = libc.write(fd, &count, sizeof count);
        (void)n;
    } else if (!readable && is_readable) {
        ssize_t n = libc.read(fd, &count, sizeof count);
        (void)n;
    }
}

/* Called when the emulated kernel closes a descriptor: the number goes back to the process. */
EXPORT void kvmsharp_preload_release_fd(int fd)
{
    if (fd < 0 || fd >= MAX_FDS) return;
    emulated_fd[fd] = 0;
    libc.close(fd);
}

/* The ranges mapped from emulated descriptors, so munmap and madvise on them reach the emulated kernel. */
static struct range {
    uintptr_t start, end;
} *ranges;
static size_t range_count, range_capacity;
static pthread_mutex_t ranges_lock = PTHREAD_MUTEX_INITIALIZER;

static void add_range(uintptr_t start, size_t length)
{
    pthread_mutex_lock(&ranges_lock);
    if (range_count == range_capacity) {
        size_t capacity = range_capacity ? range_capacity * 2 : 16;
        struct range *grown = realloc(ranges, capacity * sizeof *ranges);
        if (!grown) {
            pthread_mutex_unlock(&ranges_lock);
            complain("out of memory recording a mapping", NULL);
            abort();
        }
        ranges = grown;
        range_capacity = capacity;
    }
    ranges[range_count++] = (struct range){start, start + length};
    pthread_mutex_unlock(&ranges_lock);
}

static int overlaps_range(uintptr_t start, size_t length)
{
    if (in_bridge || length == 0) return 0;
    int found = 0;
    pthread_mutex_lock(&ranges_lock);
    for (size_t i = 0; i < range_count && !found; i++)
        found = start < ranges[i].end && start + length > ranges[i].start;
    pthread_mutex_unlock(&ranges_lock);
    return found;
}

/* Called by the bridge (ProcessMemory.cs) for the program's own memory a memslot uses, which vCPUs then touch
 * directly: its munmap, mremap and mprotect must reach the emulated kernel first. */
EXPORT void kvmsharp_preload_watch_range(unsigned long address, unsigned long length)
{
    add_range(address, length);
}

/* Takes [start, +length) out of the recorded ranges (munmap may cut a range in two). */
static void remove_range(uintptr_t start, size_t length)
{
    uintptr_t end = start + length;
    pthread_mutex_lock(&ranges_lock);
    for (size_t i = 0; i < range_count;) {
        struct range r = ranges[i];
        if (end <= r.start || start >= r.end) {
            i++;
            continue;
        }
        ranges[i] = ranges[--range_count];
        pthread_mutex_unlock(&ranges_lock);
        if (r.start < start) add_range(r.start, start - r.start);
        if (end < r.end) add_range(end, r.end - end);
        pthread_mutex_lock(&ranges_lock);
        i = 0;
    }
    pthread_mutex_unlock(&ranges_lock);
}

/* ---- the interposed calls ---------------------------------------------------------------------------------- */

/* The *64 names are the same calls on a 64-bit libc; each is an alias under its own symbol name (an asm label, as
 * libc's headers declare them with other types). The aliases lack the targets' nonnull/nothrow attributes: harmless. */
#pragma GCC diagnostic ignored "-Wmissing-attributes"

static int is_kvm_device(const char *path)
{
    return path && (strcmp(path, "/dev/kvm") == 0 || strcmp(path, "/dev/sev") == 0);
}

/* A descriptor the real kernel gave the traced program: its calls come here from now on. */
static int traced_descriptor(int fd)
{
    if (fd >= 0 && fd < MAX_FDS && !bridge_emulated) emulated_fd[fd] = 1;
    return fd;
}

static int open_device(const char *path, int flags)
{
    int err = ensure_bridge();
    if (err) {
        errno = err;
        return -1;
    }
    return traced_descriptor((int)CALL_BRIDGE(open(path, flags)));
}

static mode_t mode_argument(int flags, va_list args)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(args, mode_t) : 0;
}

EXPORT int open(const char *path, int flags, ...)
{
    va_list args;
    va_start(args, flags);
    mode_t mode = mode_argument(flags, args);
    va_end(args);
    if (!in_bridge && is_kvm_device(path)) return open_device(path, flags);
    return libc.open(path, flags, mode);
}

EXPORT int open64_alias(const char *path, int flags, ...) __asm__("open64") __attribute__((alias("open")));

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
    va_list args;
    va_start(args, flags);
    mode_t mode = mode_argument(flags, args);
    va_end(args);
    if (!in_bridge && is_kvm_device(path)) return open_device(path, flags);
    return libc.openat(dirfd, path, flags, mode);
}

EXPORT int openat64_alias(int dirfd, const char *path, int flags, ...) __asm__("openat64") __attribute__((alias("openat")));

/* _FORTIFY_SOURCE's checked variants, which take no mode. */
EXPORT int __open_2(const char *path, int flags)
{
    return open(path, flags);
}

EXPORT int __open64_2_alias(const char *path, int flags) __asm__("__open64_2") __attribute__((alias("__open_2")));

/* Once the bridge runs, eventfds are the emulated kernel's, so that KVM_IRQFD and KVM_IOEVENTFD can take them. */
EXPORT int eventfd(unsigned int initial_value, int flags)
{
    if (in_bridge || !bridge_ready || !bridge_emulated) return libc.eventfd(initial_value, flags);
    return (int)CALL_BRIDGE(eventfd(initial_value, flags));
}

EXPORT int close(int fd)
{
    if (!is_emulated(fd)) return libc.close(fd);
    int rc = (int)CALL_BRIDGE(close(fd));
    if (!bridge_emulated) emulated_fd[fd] = 0;
    return rc;
}

/* The real copy is made first (dup2/dup3 also close what held new_fd); then the emulated kernel learns that new_fd
 * stands for old_fd's file too, or that an emulated new_fd was replaced by a real file. */
static int duplicated(int old_fd, int new_fd)
{
    if (new_fd < 0) return new_fd;
    if (new_fd >= MAX_FDS) {
        libc.close(new_fd);
        errno = EMFILE;
        return -1;
    }
    if (!bridge_emulated) {
        /* Traced real descriptors: the kernel made the copy, which is traced from now on; a replaced one is forgotten. */
        if (is_emulated(old_fd)) {
            emulated_fd[new_fd] = 1;
            CALL_BRIDGE(dup(old_fd, new_fd));
        } else if (is_emulated(new_fd)) {
            emulated_fd[new_fd] = 0;
            CALL_BRIDGE(dup(-1, new_fd));
        }
        return new_fd;
    }
    if (is_emulated(old_fd)) {
        if (CALL_BRIDGE(dup(old_fd, new_fd)) < 0) {
            libc.close(new_fd);
            return -1;
        }
        emulated_fd[new_fd] = 1;
    } else if (is_emulated(new_fd)) {
        emulated_fd[new_fd] = 0;
        CALL_BRIDGE(dup(-1, new_fd));
    }
    return new_fd;
}

EXPORT int dup(int fd)
{
    return duplicated(fd, libc.dup(fd));
}

EXPORT int dup2(int old_fd, int new_fd)
{
    if (old_fd == new_fd) return libc.dup2(old_fd, new_fd);
    return duplicated(old_fd, libc.dup2(old_fd, new_fd));
}

EXPORT int dup3(int old_fd, int new_fd, int flags)
{
    return duplicated(old_fd, libc.dup3(old_fd, new_fd, flags));
}

EXPORT int fcntl(int fd, int command, ...)
{
    va_list args;
    va_start(args, command);
    /* Every fcntl argument is an int or a pointer: passed on as one word, as glibc's own wrapper does. */
    unsigned long arg = va_arg(args, unsigned long);
    va_end(args);
    int rc = libc.fcntl(fd, command, arg);
    if (command == F_DUPFD || command == F_DUPFD_CLOEXEC) return duplicated(fd, rc);
    return rc;
}

EXPORT int fcntl64_alias(int fd, int command, ...) __asm__("fcntl64") __attribute__((alias("fcntl")));

EXPORT int ioctl(int fd, unsigned long request, ...)
{
    va_list args;
    va_start(args, request);
    unsigned long arg = va_arg(args, unsigned long);
    va_end(args);
    if (!is_emulated(fd)) return libc.ioctl(fd, request, arg);
    if (request == KVM_RUN_REQUEST && bridge_emulated) return run_vcpu(fd, arg);
    int rc = (int)CALL_BRIDGE(ioctl(fd, request, arg));
    /* Traced: the descriptors KVM_CREATE_VM, KVM_CREATE_VCPU, KVM_CREATE_GUEST_MEMFD and KVM_GET_STATS_FD return, and
     * the one KVM_CREATE_DEVICE writes into its struct kvm_create_device {u32 type, fd, flags} (none with _TEST). */
    if (rc >= 0 && !bridge_emulated &&
        (request == 0xAE01UL || request == 0xAE41UL || request == 0xC040AED4UL || request == 0xAECEUL))
        traced_descriptor(rc);
    if (rc >= 0 && !bridge_emulated && request == 0xC00CAEE0UL && !(((const uint32_t *)arg)[2] & 1))
        traced_descriptor((int)((const uint32_t *)arg)[1]);
    /* fs/ioctl.c do_vfs_ioctl: FIOCLEX/FIONCLEX set the descriptor's close-on-exec flag, which is the real one's. */
    if (rc == 0 && (request == FIOCLEX || request == FIONCLEX)) libc.ioctl(fd, request, arg);
    return rc;
}

EXPORT void *mmap(void *address, size_t length, int prot, int flags, int fd, off_t offset)
{
    if ((flags & MAP_ANONYMOUS) || !is_emulated(fd)) return libc.mmap(address, length, prot, flags, fd, offset);
    long rc = CALL_BRIDGE(mmap((unsigned long)address, length, prot, flags, fd, offset));
    if (rc == -1) return MAP_FAILED;
    add_range((uintptr_t)rc, (length + 4095) & ~(size_t)4095);
    return (void *)rc;
}

EXPORT void *mmap64_alias(void *address, size_t length, int prot, int flags, int fd, off_t offset) __asm__("mmap64") __attribute__((alias("mmap")));

EXPORT int munmap(void *address, size_t length)
{
    if (!overlaps_range((uintptr_t)address, length)) return libc.munmap(address, length);
    int rc = (int)CALL_BRIDGE(munmap((unsigned long)address, length));
    if (rc == 0) remove_range((uintptr_t)address, (length + 4095) & ~(size_t)4095);
    return rc;
}

EXPORT int mprotect(void *address, size_t length, int prot)
{
    if (overlaps_range((uintptr_t)address, length)) CALL_BRIDGE(forget((unsigned long)address, length));
    return libc.mprotect(address, length, prot);
}

EXPORT void *mremap(void *address, size_t old_length, size_t new_length, int flags, ...)
{
    va_list args;
    va_start(args, flags);
    void *new_address = (flags & MREMAP_FIXED) ? va_arg(args, void *) : NULL;
    va_end(args);
    if (overlaps_range((uintptr_t)address, old_length)) {
        CALL_BRIDGE(forget((unsigned long)address, old_length));
        remove_range((uintptr_t)address, (old_length + 4095) & ~(size_t)4095);
    }
    return libc.mremap(address, old_length, new_length, flags, new_address);
}

EXPORT int madvise(void *address, size_t length, int advice)
{
    if (!overlaps_range((uintptr_t)address, length)) return libc.madvise(address, length, advice);
    return (int)CALL_BRIDGE(madvise((unsigned long)address, length, advice));
}

EXPORT int fallocate(int fd, int mode, off_t offset, off_t length)
{
    if (is_emulated(fd)) return (int)CALL_BRIDGE(fallocate(fd, mode, offset, length));
    return libc.fallocate(fd, mode, offset, length);
}

EXPORT int fallocate64_alias(int fd, int mode, off_t offset, off_t length) __asm__("fallocate64") __attribute__((alias("fallocate")));

EXPORT ssize_t read(int fd, void *buffer, size_t count)
{
    if (is_emulated(fd)) return CALL_BRIDGE(read(fd, (unsigned long)buffer, count));
    return libc.read(fd, buffer, count);
}

EXPORT ssize_t write(int fd, const void *buffer, size_t count)
{
    if (is_emulated(fd)) return CALL_BRIDGE(write(fd, (unsigned long)buffer, count));
    return libc.write(fd, buffer, count);
}

EXPORT ssize_t pread(int fd, void *buffer, size_t count, off_t offset)
{
    if (is_emulated(fd)) return CALL_BRIDGE(pread(fd, (unsigned long)buffer, count, offset));
    return libc.pread(fd, buffer, count, offset);
}

EXPORT ssize_t pread64_alias(int fd, void *buffer, size_t count, off_t offset) __asm__("pread64") __attribute__((alias("pread")));

EXPORT ssize_t pwrite(int fd, const void *buffer, size_t count, off_t offset)
{
    if (is_emulated(fd)) return CALL_BRIDGE(pwrite(fd, (unsigned long)buffer, count, offset));
    return libc.pwrite(fd, buffer, count, offset);
}

EXPORT ssize_t pwrite64_alias(int fd, const void *buffer, size_t count, off_t offset) __asm__("pwrite64") __attribute__((alias("pwrite")));

EXPORT off_t lseek(int fd, off_t offset, int whence)
{
    if (is_emulated(fd)) return CALL_BRIDGE(lseek(fd, offset, whence));
    return libc.lseek(fd, offset, whence);
}

EXPORT off_t lseek64_alias(int fd, off_t offset, int whence) __asm__("lseek64") __attribute__((alias("lseek")));

EXPORT int fstat(int fd, struct stat *st)
{
    if (is_emulated(fd)) return (int)CALL_BRIDGE(fstat(fd, (unsigned long)st));
    return libc.fstat(fd, st);
}

EXPORT int fstat64_alias(int fd, struct stat *st) __asm__("fstat64") __attribute__((alias("fstat")));

EXPORT int ftruncate(int fd, off_t length)
{
    if (is_emulated(fd)) return (int)CALL_BRIDGE(ftruncate(fd, length));
    return libc.ftruncate(fd, length);
}

EXPORT int ftruncate64_alias(int fd, off_t length) __asm__("ftruncate64") __attribute__((alias("ftruncate")));

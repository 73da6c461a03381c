// SPDX-License-Identifier: MIT
//
// Signals and KVM_RUN: the half of libkvmsharp-preload.so that makes a program's signals do to an emulated KVM_RUN
// what they do to the kernel's (virt/kvm/kvm_main.c kvm_vcpu_ioctl, kvm_sigset_activate / kvm_sigset_deactivate;
// arch/x86/kvm/x86.c vcpu_run and arch/arm64/kvm/arm.c kvm_arch_vcpu_ioctl_run: a pending signal ends the run with
// -EINTR and KVM_EXIT_INTR, and its handler runs when the ioctl returns to user space).
//
// An emulated call is .NET code on the program's thread: a handler that ran in the middle of it would run before the
// call returned instead of after (and could re-enter the bridge or longjmp out of .NET frames), and no signal
// interrupts an emulated KVM_RUN. So every handler the program installs (sigaction, signal) is installed behind one
// trampoline. A signal that reaches a program thread outside the bridge goes straight to the program's handler. One
// that reaches it inside a bridge call is kept — inside KVM_RUN the emulated run is also kicked (through a pipe to a
// thread of this library: a handler must not call into .NET) — and once the call returned (EINTR for the run) the
// kept signals are queued to the thread again with their siginfo: they are delivered where the kernel delivers them,
// or stay pending if the thread's own mask blocks them (QEMU's SIG_IPI, which it then takes with sigtimedwait).
// KVM_SET_SIGNAL_MASK's mask is the thread's mask for the run, as in the kernel.
//
// The .NET runtime installs handlers of its own (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP for managed exceptions,
// SIGRTMIN to suspend threads); those stay installed. A handler the program installs for one of them afterwards is
// reached through the runtime's chain: the runtime was told the previous action was the trampoline.
#include "preload.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- the program's actions ------------------------------------------------------------------------------ */

static struct sigaction program_action[NSIG];
static _Atomic unsigned char program_action_known[NSIG];
static _Atomic unsigned char runtime_handles[NSIG];
static pthread_mutex_t actions_lock = PTHREAD_MUTEX_INITIALIZER;

static void trampoline(int signal, siginfo_t *info, void *context);

static int is_handler(const struct sigaction *action)
{
    return action->sa_handler != SIG_DFL && action->sa_handler != SIG_IGN;
}

/* The signals a synchronous fault raises (si_code > 0 from the CPU): never kept for later, the access would re-run. */
static int is_fault_signal(int signal)
{
    return signal == SIGSEGV || signal == SIGBUS || signal == SIGFPE || signal == SIGILL || signal == SIGTRAP;
}

/* The signals whose handler the runtime needs for itself once it runs. */
static int runtime_needs(int signal)
{
    return is_fault_signal(signal) || signal == SIGRTMIN;
}

/* Whether the sigaction/signal call at `caller` comes from the .NET runtime (its native libraries). */
static int called_by_runtime(void *caller)
{
    if (in_bridge) return 1;
    Dl_info where;
    if (!dladdr(caller, &where) || !where.dli_fname) return 0;
    static const char *const runtime_libraries[] = {"libcoreclr.so", "libSystem.Native.so", "libclrjit.so",
                                                    "libhostpolicy.so", "libhostfxr.so"};
    for (size_t i = 0; i < sizeof runtime_libraries / sizeof runtime_libraries[0]; i++)
        if (strstr(where.dli_fname, runtime_libraries[i])) return 1;
    return 0;
}

/* The runtime's own call: made as asked. Where it takes over a fault signal from the default action, it is told the
 * previous action was the trampoline, so that a handler the program installs later is still reached. */
static int runtime_sigaction(int signal, const struct sigaction *action, struct sigaction *old)
{
    if (signal <= 0 || signal >= NSIG) return libc.sigaction(signal, action, old);
    /* What the program had stays what it reads back (its own view, not the runtime's handler). */
    if (action && !program_action_known[signal] && libc.sigaction(signal, NULL, &program_action[signal]) == 0)
        program_action_known[signal] = 1;
    int rc = libc.sigaction(signal, action, old);
    if (rc != 0 || !runtime_needs(signal)) return rc;
    if (action && is_handler(action) && action->sa_sigaction != trampoline) runtime_handles[signal] = 1;
    if (old && old->sa_handler == SIG_DFL) {
        old->sa_sigaction = trampoline;
        old->sa_flags = SA_SIGINFO;
        sigemptyset(&old->sa_mask);
    }
    return rc;
}

/* The program's call. The kernel keeps the program's action behind the trampoline (SA_RESETHAND is the trampoline's
 * to do: the kernel would reset the disposition before a kept signal is delivered again). */
static int program_sigaction(int signal, const struct sigaction *action, struct sigaction *old)
{
    if (signal <= 0 || signal >= NSIG || signal == SIGKILL || signal == SIGSTOP)
        return libc.sigaction(signal, action, old);
    /* A handler may call sigaction too: no signal may come in while the lock is held. */
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    pthread_mutex_lock(&actions_lock);
    struct sigaction previous;
    int rc = 0;
    if (program_action_known[signal])
        previous = program_action[signal];
    else
        rc = libc.sigaction(signal, NULL, &previous);
    if (rc == 0 && action) {
        if (!runtime_handles[signal]) {
            struct sigaction installed = *action;
            if (is_handler(action)) {
                installed.sa_sigaction = trampoline;
                installed.sa_flags = (action->sa_flags | SA_SIGINFO) & ~SA_RESETHAND;
            }
            rc = libc.sigaction(signal, &installed, NULL);
        }
        if (rc == 0) {
            program_action[signal] = *action;
            program_action_known[signal] = 1;
        }
    }
    pthread_mutex_unlock(&actions_lock);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    if (rc == 0 && old) *old = previous;
    return rc;
}

EXPORT int sigaction(int signal, const struct sigaction *action, struct sigaction *old)
{
    if (called_by_runtime(__builtin_return_address(0))) return runtime_sigaction(signal, action, old);
    return program_sigaction(signal, action, old);
}

/* glibc's signal(): BSD semantics (the handler stays, SA_RESTART unless siginterrupt said otherwise). */
EXPORT sighandler_t signal(int signal, sighandler_t handler)
{
    if (handler == SIG_ERR || signal <= 0 || signal >= NSIG) {
        errno = EINVAL;
        return SIG_ERR;
    }
    struct sigaction action = {.sa_handler = handler, .sa_flags = SA_RESTART}, old;
    sigemptyset(&action.sa_mask);
    sigaddset(&action.sa_mask, signal);
    int rc = called_by_runtime(__builtin_return_address(0)) ? runtime_sigaction(signal, &action, &old)
                                                            : program_sigaction(signal, &action, &old);
    return rc == 0 ? old.sa_handler : SIG_ERR;
}

/* An alias lacks the target's leaf/nothrow attributes from libc's header: harmless. */
#pragma GCC diagnostic ignored "-Wmissing-attributes"
EXPORT sighandler_t bsd_signal_alias(int signal, sighandler_t handler) __asm__("bsd_signal") __attribute__((alias("signal")));

/* ---- the runtime's threads ------------------------------------------------------------------------------ */

/* Set on the threads the .NET runtime creates (its GC, finalizer, thread pool ...). */
static __thread int runtime_thread __attribute__((tls_model("initial-exec")));

int is_runtime_thread(void)
{
    return in_bridge || runtime_thread;
}

struct thread_start {
    void *(*routine)(void *);
    void *arg;
};

/* A runtime thread takes only the signals the runtime needs: one sent to the process must go to a thread of the
 * program, as in the process without .NET (kernel/signal.c complete_signal picks a thread that does not block it). */
static void *start_runtime_thread(void *start)
{
    struct thread_start s = *(struct thread_start *)start;
    free(start);
    runtime_thread = 1;
    sigset_t program_signals;
    sigfillset(&program_signals);
    for (int signal = 1; signal < NSIG; signal++)
        if (runtime_needs(signal)) sigdelset(&program_signals, signal);
    pthread_sigmask(SIG_BLOCK, &program_signals, NULL);
    return s.routine(s.arg);
}

EXPORT int pthread_create(pthread_t *thread, const pthread_attr_t *attributes, void *(*routine)(void *), void *arg)
{
    if (!is_runtime_thread() && !called_by_runtime(__builtin_return_address(0)))
        return libc.pthread_create(thread, attributes, routine, arg);
    struct thread_start *start = malloc(sizeof *start);
    if (!start) return EAGAIN;
    *start = (struct thread_start){routine, arg};
    int rc = libc.pthread_create(thread, attributes, start_runtime_thread, start);
    if (rc != 0) free(start);
    return rc;
}

/* The program's action for a signal, as the kernel would take it (the default action included). */
void dispatch(int signal, siginfo_t *info, void *context)
{
    struct sigaction action = program_action[signal];
    if (!program_action_known[signal]) action.sa_handler = SIG_DFL;
    if (is_handler(&action)) {
        if (action.sa_flags & SA_RESETHAND) {
            struct sigaction dfl = {.sa_handler = SIG_DFL};
            program_action[signal] = dfl;
            if (!runtime_handles[signal]) libc.sigaction(signal, &dfl, NULL);
        }
        if (action.sa_flags & SA_SIGINFO)
            action.sa_sigaction(signal, info, context);
        else
            action.sa_handler(signal);
        return;
    }
    /* An ignored fault cannot be ignored (kernel/signal.c force_sig_info_to_task): the default action then. */
    if (action.sa_handler == SIG_IGN && !(is_fault_signal(signal) && info->si_code > 0)) return;
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    libc.sigaction(signal, &dfl, NULL);
    /* A fault re-runs its access on return and takes the default action then; any other signal is sent again, to be
     * delivered (by default) once this handler returns. */
    if (!(is_fault_signal(signal) && info->si_code > 0)) syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), signal, info);
}

/* ---- threads in KVM_RUN -------------------------------------------------------------------------------------- */

#define MAX_RUN_THREADS 1024
#define MAX_KEPT 32

static struct run_thread {
    pid_t tid;
    _Atomic int running;
    _Atomic unsigned generation; /* one per KVM_RUN: a late kick must not stop the next run */
} run_threads[MAX_RUN_THREADS];

/* The signals kept while this thread was in the bridge. */
static __thread struct {
    _Atomic int count;
    struct kept_signal {
        int signal;
        siginfo_t info;
    } signals[MAX_KEPT];
} kept __attribute__((tls_model("initial-exec")));
static _Atomic int run_thread_count;
static pthread_mutex_t run_threads_lock = PTHREAD_MUTEX_INITIALIZER;
static __thread struct run_thread *this_run_thread __attribute__((tls_model("initial-exec")));

static struct run_thread *run_thread_of_caller(void)
{
    if (this_run_thread) return this_run_thread;
    pthread_mutex_lock(&run_threads_lock);
    int i = run_thread_count;
    if (i < MAX_RUN_THREADS) {
        run_threads[i].tid = gettid();
        run_thread_count = i + 1;
        this_run_thread = &run_threads[i];
    }
    pthread_mutex_unlock(&run_threads_lock);
    return this_run_thread;
}

/* A kick for the forwarding thread: which thread, in which of its runs. */
struct kick {
    pid_t tid;
    unsigned generation;
};

static int kick_pipe[2] = {-1, -1};

static void trampoline(int signal, siginfo_t *info, void *context)
{
    struct run_thread *self = this_run_thread;
    int in_run = self && self->running;
    if ((!in_bridge && !in_run) || runtime_thread || (is_fault_signal(signal) && info->si_code > 0)) {
        dispatch(signal, info, context);
        return;
    }
    int saved_errno = errno;
    int slot = kept.count++;
    if (slot < MAX_KEPT) {
        kept.signals[slot].signal = signal;
        kept.signals[slot].info = *info;
    }
    if (in_run) {
        struct kick kick = {self->tid, self->generation};
        ssize_t written = libc.write(kick_pipe[1], &kick, sizeof kick);
        (void)written;
    }
    errno = saved_errno;
}

void deliver_kept_signals(void)
{
    if (kept.count == 0 || (this_run_thread && this_run_thread->running)) return;
    int saved_errno = errno;
    int count = kept.count < MAX_KEPT ? kept.count : MAX_KEPT;
    struct kept_signal signals[MAX_KEPT];
    memcpy(signals, kept.signals, (size_t)count * sizeof signals[0]);
    kept.count = 0;
    for (int i = 0; i < count; i++) syscall(SYS_rt_tgsigqueueinfo, getpid(), gettid(), signals[i].signal, &signals[i].info);
    errno = saved_errno;
}

/* The thread that passes kicks from handlers on to the emulated kernel (a handler cannot call .NET). */
static void *forward_kicks(void *unused)
{
    (void)unused;
    struct kick kick;
    while (libc.read(kick_pipe[0], &kick, sizeof kick) == (ssize_t)sizeof kick) {
        int count = run_thread_count;
        for (int i = 0; i < count; i++) {
            struct run_thread *r = &run_threads[i];
            if (r->tid == kick.tid && r->running && r->generation == kick.generation) CALL_BRIDGE(kick(kick.tid));
        }
    }
    return NULL;
}

void start_kick_forwarding(void)
{
    if (pipe2(kick_pipe, O_CLOEXEC) != 0) {
        complain("cannot create the kick pipe: signals will not stop an emulated KVM_RUN", strerror(errno));
        return;
    }
    /* It takes no signal of the program's: a process-wide one must go to a thread of the program. */
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    pthread_t thread;
    if (pthread_create(&thread, NULL, forward_kicks, NULL) == 0)
        pthread_detach(thread);
    else
        complain("cannot start the kick thread: signals will not stop an emulated KVM_RUN", NULL);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
}

/* The vCPU's KVM_SET_SIGNAL_MASK as a sigset_t (bit n-1: signal n). The runtime's fault and suspend signals stay
 * deliverable: blocking them would turn a fault in .NET code into a kill. */
static void run_mask(uint64_t bits, sigset_t *mask)
{
    sigemptyset(mask);
    for (int signal = 1; signal <= 64; signal++)
        if (bits & (1ULL << (signal - 1)) && !runtime_needs(signal)) sigaddset(mask, signal);
}

int run_vcpu(int fd, unsigned long arg)
{
    struct run_thread *self = run_thread_of_caller();
    uint64_t bits = 0;
    /* A signal that comes in here comes before KVM_RUN: its handler runs before the run, which it does not stop. */
    in_bridge++;
    long masked = bridge.prepare_run(fd, &bits);
    if (--in_bridge == 0) deliver_kept_signals();
    sigset_t inside, outside;
    if (self) {
        self->generation++;
        self->running = 1;
    }
    /* kvm_sigset_activate: a signal the vCPU's mask unblocks and that was pending comes in here, and is kept. */
    if (masked == 1) {
        run_mask(bits, &inside);
        pthread_sigmask(SIG_SETMASK, &inside, &outside);
    }
    /* A signal that came in already is pending at entry: said here, not left to the forwarding thread, which could
     * be late for a guest that exits at once. */
    if (self && kept.count > 0) CALL_BRIDGE(kick(self->tid));
    long rc = CALL_BRIDGE(ioctl(fd, KVM_RUN_REQUEST, arg));
    int saved_errno = errno;
    if (masked == 1) pthread_sigmask(SIG_SETMASK, &outside, NULL);
    if (self) self->running = 0;
    deliver_kept_signals();
    errno = saved_errno;
    return (int)rc;
}

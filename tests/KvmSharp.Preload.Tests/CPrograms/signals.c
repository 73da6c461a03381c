// SPDX-License-Identifier: MIT
//
// What a program's signals do to KVM_RUN, case by case, in TAP: KVM_SET_SIGNAL_MASK's checks
// (virt/kvm/kvm_main.c kvm_vcpu_ioctl), the mask inside the run (kvm_sigset_activate / kvm_sigset_deactivate: a
// signal it unblocks stops the run and stays pending once the thread's own mask is back — QEMU's SIG_IPI —, one it
// blocks does not), a process-wide timer signal stopping a spinning guest with its handler running after KVM_RUN
// returned (arch/x86/kvm/x86.c vcpu_run: KVM_EXIT_INTR, -EINTR), and the program's own handlers: what sigaction
// reports back, and a SIGSEGV handler installed after /dev/kvm was opened. The output is the same on every kernel.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "tap.h"

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            case_fail(__LINE__, __VA_ARGS__);                                                                          \
            return;                                                                                                    \
        }                                                                                                              \
    } while (0)

/* Real mode at 0: out 0x10, al ; jmp $   (E6 10 EB FE): one exit, then a spin that never exits. */
static const uint8_t guest[] = {0xe6, 0x10, 0xeb, 0xfe};

static int kvm, vm, vcpu;
static struct kvm_run *run;

static volatile sig_atomic_t handled, exit_reason_in_handler;

static void count_signal(int signal)
{
    (void)signal;
    handled++;
    exit_reason_in_handler = run ? (int)run->exit_reason : -1;
}

static long set_mask(uint32_t len, uint64_t bits)
{
    /* struct kvm_signal_mask: len, then the sigset right after it, at offset 4 (a u64 member would sit at 8). */
    uint8_t arg[sizeof(struct kvm_signal_mask) + sizeof bits];
    memcpy(arg, &len, sizeof len);
    memcpy(arg + sizeof(struct kvm_signal_mask), &bits, sizeof bits);
    return ioctl(vcpu, KVM_SET_SIGNAL_MASK, arg);
}

/* The thread's mask as the kernel's 64 bits, without `without`. */
static uint64_t thread_mask_without(int without)
{
    sigset_t set;
    pthread_sigmask(SIG_BLOCK, NULL, &set);
    uint64_t bits = 0;
    for (int s = 1; s <= 64; s++)
        if (s != without && sigismember(&set, s) == 1) bits |= 1ULL << (s - 1);
    return bits;
}

static void block(int signal, int how)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signal);
    pthread_sigmask(how, &set, NULL);
}

static int is_pending(int signal)
{
    sigset_t set;
    sigpending(&set);
    return sigismember(&set, signal) == 1;
}

static int take_pending(int signal)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signal);
    struct timespec none = {0};
    return sigtimedwait(&set, NULL, &none);
}

/* The guest from its first byte: the next KVM_RUN exits on its OUT. */
static void restart_guest(void)
{
    struct kvm_regs regs = {.rip = 0, .rflags = 2};
    ioctl(vcpu, KVM_SET_REGS, &regs);
}

/* KVM_RUN once: "rc errno reason", e.g. "0 success 2" (an IO exit) or "-1 EINTR 10". */
static const char *run_once(char *out, size_t size)
{
    int rc = ioctl(vcpu, KVM_RUN, 0);
    snprintf(out, size, "%d %s %u", rc, err_of(rc), run->exit_reason);
    return out;
}

static void set_signal_mask_checks_its_argument(void)
{
    CHECK(set_mask(4, 0) == -1 && errno == EINVAL, "len 4: %s", err_of(-1));
    CHECK(set_mask(16, 0) == -1 && errno == EINVAL, "len 16: %s", err_of(-1));
    CHECK(set_mask(8, ~0ULL) == 0, "len 8: %s", err_of(-1));
    CHECK(ioctl(vcpu, KVM_SET_SIGNAL_MASK, NULL) == 0, "NULL: %s", err_of(-1));
    CHECK(ioctl(vcpu, KVM_SET_SIGNAL_MASK, (void *)8) == -1 && errno == EFAULT, "unmapped: %s", err_of(-1));
}

/* QEMU's vCPU threads: SIG_IPI blocked, KVM_SET_SIGNAL_MASK unblocking it; a kick sent before KVM_RUN stops it. */
static void pending_signal_the_run_mask_unblocks_stops_the_run(void)
{
    char result[64];
    handled = 0;
    block(SIGUSR1, SIG_BLOCK);
    CHECK(set_mask(8, thread_mask_without(SIGUSR1)) == 0, "set mask: %s", err_of(-1));
    syscall(SYS_tgkill, getpid(), gettid(), SIGUSR1);
    restart_guest();
    run_once(result, sizeof result);
    CHECK(strcmp(result, "-1 EINTR 10") == 0, "KVM_RUN with the kick pending: %s", result);
    CHECK(handled == 0, "the handler ran %d times: the thread's own mask blocks the signal again", (int)handled);
    CHECK(is_pending(SIGUSR1), "SIGUSR1 is no longer pending after the run");
    CHECK(take_pending(SIGUSR1) == SIGUSR1, "sigtimedwait: %s", err_of(-1));
    run_once(result, sizeof result);
    CHECK(strcmp(result, "0 success 2") == 0, "KVM_RUN once the kick was taken: %s", result);
}

static void pending_signal_the_run_mask_blocks_does_not_stop_it(void)
{
    char result[64];
    handled = 0;
    block(SIGUSR1, SIG_BLOCK);
    CHECK(set_mask(8, thread_mask_without(0)) == 0, "set mask: %s", err_of(-1));
    syscall(SYS_tgkill, getpid(), gettid(), SIGUSR1);
    restart_guest();
    run_once(result, sizeof result);
    CHECK(strcmp(result, "0 success 2") == 0, "KVM_RUN: %s", result);
    CHECK(handled == 0 && is_pending(SIGUSR1), "handled %d, pending %d", (int)handled, is_pending(SIGUSR1));
    CHECK(take_pending(SIGUSR1) == SIGUSR1, "sigtimedwait: %s", err_of(-1));
}

static void a_null_mask_gives_the_thread_its_own_mask_back(void)
{
    char result[64];
    block(SIGUSR1, SIG_BLOCK);
    CHECK(set_mask(8, thread_mask_without(SIGUSR1)) == 0, "set mask: %s", err_of(-1));
    CHECK(ioctl(vcpu, KVM_SET_SIGNAL_MASK, NULL) == 0, "NULL: %s", err_of(-1));
    syscall(SYS_tgkill, getpid(), gettid(), SIGUSR1);
    restart_guest();
    run_once(result, sizeof result);
    CHECK(strcmp(result, "0 success 2") == 0, "KVM_RUN: %s", result);
    CHECK(take_pending(SIGUSR1) == SIGUSR1, "sigtimedwait: %s", err_of(-1));
    block(SIGUSR1, SIG_UNBLOCK);
}

/* A runaway guest bounded with a process-wide timer (setitimer): its SIGALRM ends the run, and the handler runs once
 * KVM_RUN returned — it already sees KVM_EXIT_INTR. */
static void a_timer_signal_stops_a_spinning_guest(void)
{
    char result[64];
    handled = 0;
    exit_reason_in_handler = -1;
    restart_guest();
    run_once(result, sizeof result);
    CHECK(strcmp(result, "0 success 2") == 0, "first KVM_RUN: %s", result);
    struct itimerval in_100ms = {.it_value.tv_usec = 100 * 1000};
    setitimer(ITIMER_REAL, &in_100ms, NULL);
    run_once(result, sizeof result);
    CHECK(strcmp(result, "-1 EINTR 10") == 0, "KVM_RUN of the spin: %s", result);
    CHECK(handled == 1, "the handler ran %d times", (int)handled);
    CHECK(exit_reason_in_handler == KVM_EXIT_INTR, "the handler saw exit_reason %d, before the run had returned",
          (int)exit_reason_in_handler);
}

static void *send_to_process(void *delay_ms)
{
    struct timespec pause = {.tv_nsec = (long)(intptr_t)delay_ms * 1000 * 1000};
    nanosleep(&pause, NULL);
    kill(getpid(), SIGUSR2);
    return NULL;
}

/* kill(2) of the whole process from another thread, which blocks the signal: the vCPU thread takes it. */
static void a_signal_to_the_process_stops_the_run_of_the_thread_that_takes_it(void)
{
    char result[64];
    handled = 0;
    restart_guest();
    run_once(result, sizeof result);
    block(SIGUSR2, SIG_BLOCK);
    pthread_t sender;
    pthread_create(&sender, NULL, send_to_process, (void *)(intptr_t)100);
    block(SIGUSR2, SIG_UNBLOCK);
    run_once(result, sizeof result);
    pthread_join(sender, NULL);
    CHECK(strcmp(result, "-1 EINTR 10") == 0, "KVM_RUN of the spin: %s", result);
    CHECK(handled == 1 && exit_reason_in_handler == KVM_EXIT_INTR, "handled %d, exit_reason in the handler %d",
          (int)handled, (int)exit_reason_in_handler);
}

static char thread_result[64];

static void *run_on_a_thread(void *unused)
{
    (void)unused;
    run_once(thread_result, sizeof thread_result);
    return NULL;
}

/* kill(2) of the process while every thread but a vCPU thread blocks the signal: the kernel must give it to that
 * thread (kernel/signal.c complete_signal), so its KVM_RUN ends — whatever other threads the process has. */
static void a_signal_to_the_process_reaches_the_only_thread_that_takes_it(void)
{
    handled = 0;
    restart_guest();
    char first[64];
    run_once(first, sizeof first);
    block(SIGUSR2, SIG_BLOCK);
    block(SIGUSR1, SIG_BLOCK);
    pthread_t vcpu_thread;
    /* The vCPU thread alone takes SIGUSR2 (and SIGUSR1, to end it if the kill never does). */
    thread_result[0] = 0;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    sigset_t thread_mask;
    pthread_sigmask(SIG_BLOCK, NULL, &thread_mask);
    sigdelset(&thread_mask, SIGUSR2);
    sigdelset(&thread_mask, SIGUSR1);
    pthread_attr_setsigmask_np(&attributes, &thread_mask);
    pthread_create(&vcpu_thread, &attributes, run_on_a_thread, NULL);
    pthread_attr_destroy(&attributes);
    struct timespec pause = {.tv_nsec = 100 * 1000 * 1000};
    nanosleep(&pause, NULL);
    kill(getpid(), SIGUSR2);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    int joined = pthread_timedjoin_np(vcpu_thread, NULL, &deadline) == 0;
    if (!joined) {
        /* End the run anyway (a signal to the thread itself), so the next cases can run. */
        pthread_kill(vcpu_thread, SIGUSR1);
        pthread_join(vcpu_thread, NULL);
    }
    block(SIGUSR2, SIG_UNBLOCK);
    block(SIGUSR1, SIG_UNBLOCK);
    CHECK(joined, "the vCPU thread's KVM_RUN did not end within 10 s of kill(getpid(), SIGUSR2)");
    CHECK(strcmp(thread_result, "-1 EINTR 10") == 0, "KVM_RUN of the spin: %s", thread_result);
    CHECK(handled == 1, "handled %d", (int)handled);
}

static volatile sig_atomic_t handler_calls, handler_failures;
static volatile int stop_sending;

static void use_kvm_in_handler(int signal)
{
    (void)signal;
    handler_calls++;
    int saved = errno;
    if (ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY) != 1) handler_failures++;
    errno = saved;
}

static void *keep_signalling(void *target)
{
    struct timespec pause = {.tv_nsec = 50 * 1000};
    while (!stop_sending) {
        pthread_kill(*(pthread_t *)target, SIGUSR2);
        nanosleep(&pause, NULL);
    }
    return NULL;
}

/* Signals arriving while the thread is inside ioctl(2) run their handler when it returns, never inside it: a handler
 * that uses KVM itself then works (an emulated call is .NET code; a handler run in its middle would re-enter it). */
static void a_handler_runs_after_the_call_it_interrupted_and_may_use_kvm(void)
{
    struct sigaction use = {.sa_handler = use_kvm_in_handler}, old;
    sigaction(SIGUSR2, &use, &old);
    handler_calls = handler_failures = 0;
    stop_sending = 0;
    pthread_t self = pthread_self(), sender;
    pthread_create(&sender, NULL, keep_signalling, &self);
    struct kvm_regs regs;
    int failed_calls = 0;
    for (int i = 0; i < 20000 && handler_calls < 200; i++)
        if (ioctl(vcpu, KVM_GET_REGS, &regs) != 0) failed_calls++;
    stop_sending = 1;
    pthread_join(sender, NULL);
    sigaction(SIGUSR2, &old, NULL);
    CHECK(failed_calls == 0, "%d KVM_GET_REGS calls failed", failed_calls);
    CHECK(handler_calls > 0, "no signal arrived");
    CHECK(handler_failures == 0, "%d of %d handlers could not use KVM", (int)handler_failures, (int)handler_calls);
}

static void sigaction_reports_the_programs_own_handler(void)
{
    struct sigaction old;
    CHECK(sigaction(SIGUSR1, NULL, &old) == 0, "sigaction: %s", err_of(-1));
    CHECK(old.sa_handler == count_signal, "SIGUSR1's handler reads back as %p", (void *)old.sa_handler);
    CHECK(!(old.sa_flags & SA_SIGINFO), "flags 0x%x", old.sa_flags);
    CHECK(signal(SIGUSR2, SIG_IGN) == count_signal, "signal(SIGUSR2) did not return the handler before");
    CHECK(signal(SIGUSR2, count_signal) == SIG_IGN, "signal(SIGUSR2) did not return SIG_IGN");
}

static sigjmp_buf segv_return;
static volatile sig_atomic_t segv_seen;

static void on_segv(int signal, siginfo_t *info, void *context)
{
    (void)signal, (void)context;
    segv_seen = info->si_code;
    siglongjmp(segv_return, 1);
}

/* A handler the program installs once /dev/kvm is open still gets the program's own faults. */
static void a_sigsegv_handler_installed_after_open_gets_the_programs_faults(void)
{
    struct sigaction action = {.sa_sigaction = on_segv, .sa_flags = SA_SIGINFO | SA_NODEFER}, old;
    sigemptyset(&action.sa_mask);
    CHECK(sigaction(SIGSEGV, &action, &old) == 0, "sigaction: %s", err_of(-1));
    CHECK(old.sa_handler == SIG_DFL, "SIGSEGV's action before reads back as %p", (void *)old.sa_handler);
    volatile char *unmapped = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    segv_seen = 0;
    if (sigsetjmp(segv_return, 1) == 0) (void)*unmapped;
    munmap((void *)unmapped, 4096);
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigaction(SIGSEGV, &dfl, NULL);
    CHECK(segv_seen == SEGV_ACCERR, "the handler saw si_code %d", (int)segv_seen);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction count = {.sa_handler = count_signal};
    sigaction(SIGUSR1, &count, NULL);
    sigaction(SIGUSR2, &count, NULL);
    sigaction(SIGALRM, &count, NULL);
    kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    vm = kvm < 0 ? -1 : ioctl(kvm, KVM_CREATE_VM, 0);
    int run_size = kvm < 0 ? -1 : ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    uint8_t *memory = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    vcpu = vm < 0 ? -1 : ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0 || run_size <= 0 || memory == MAP_FAILED) {
        perror("setting up a VM");
        return 1;
    }
    run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    memcpy(memory, guest, sizeof guest);
    struct kvm_userspace_memory_region slot = {.memory_size = 0x1000, .userspace_addr = (uintptr_t)memory};
    ioctl(vm, KVM_SET_USER_MEMORY_REGION, &slot);
    struct kvm_sregs sregs;
    ioctl(vcpu, KVM_GET_SREGS, &sregs);
    sregs.cs.base = 0, sregs.cs.selector = 0;
    ioctl(vcpu, KVM_SET_SREGS, &sregs);

#define RUN_CASE(name)                                                                                                 \
    do {                                                                                                               \
        case_failure[0] = 0, case_skip = NULL;                                                                         \
        name();                                                                                                        \
        case_report(#name);                                                                                            \
    } while (0)
    RUN_CASE(set_signal_mask_checks_its_argument);
    RUN_CASE(pending_signal_the_run_mask_unblocks_stops_the_run);
    RUN_CASE(pending_signal_the_run_mask_blocks_does_not_stop_it);
    RUN_CASE(a_null_mask_gives_the_thread_its_own_mask_back);
    RUN_CASE(a_timer_signal_stops_a_spinning_guest);
    RUN_CASE(a_signal_to_the_process_stops_the_run_of_the_thread_that_takes_it);
    RUN_CASE(a_signal_to_the_process_reaches_the_only_thread_that_takes_it);
    RUN_CASE(a_handler_runs_after_the_call_it_interrupted_and_may_use_kvm);
    RUN_CASE(sigaction_reports_the_programs_own_handler);
    RUN_CASE(a_sigsegv_handler_installed_after_open_gets_the_programs_faults);
    print_totals();
    return n_fail ? 1 : 0;
}

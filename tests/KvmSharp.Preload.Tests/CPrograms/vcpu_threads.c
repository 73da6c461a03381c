// SPDX-License-Identifier: MIT
//
// Two vCPU threads, stopped the way VMMs stop them: each guest spins without ever exiting, so only a signal ends
// its KVM_RUN (signal_pending → -EINTR, KVM_EXIT_INTR); the signal handler also sets immediate_exit, so a KVM_RUN
// entered after the signal returns EINTR at once. Prints what each thread saw; the same on every kernel.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm.h>

/* Real mode at 0: out 0x10, al ; jmp $   (E6 10 EB FE): one exit, then a spin that never exits. */
static const uint8_t guest[] = {0xe6, 0x10, 0xeb, 0xfe};

static int kvm, vm;
static size_t run_size;
static __thread struct kvm_run *this_run;

struct vcpu {
    int id, fd;
    pthread_t thread;
    struct kvm_run *run;
    int io_exits, last_rc, last_errno, last_reason;
};

static void on_kick(int signal)
{
    (void)signal;
    if (this_run) this_run->immediate_exit = 1;
}

static void *vcpu_thread(void *arg)
{
    struct vcpu *v = arg;
    this_run = v->run;
    for (;;) {
        int rc = ioctl(v->fd, KVM_RUN, 0);
        if (rc == 0 && v->run->exit_reason == KVM_EXIT_IO) {
            v->io_exits++;
            continue;
        }
        v->last_rc = rc, v->last_errno = rc < 0 ? errno : 0, v->last_reason = v->run->exit_reason;
        return NULL;
    }
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction kick = {.sa_handler = on_kick};
    sigaction(SIGUSR1, &kick, NULL);
    kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    vm = kvm < 0 ? -1 : ioctl(kvm, KVM_CREATE_VM, 0);
    run_size = (size_t)ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    uint8_t *memory = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (vm < 0 || memory == MAP_FAILED) {
        perror("setting up a VM");
        return 1;
    }
    memcpy(memory, guest, sizeof guest);
    struct kvm_userspace_memory_region slot = {.memory_size = 0x1000, .userspace_addr = (uintptr_t)memory};
    ioctl(vm, KVM_SET_USER_MEMORY_REGION, &slot);
    struct vcpu vcpus[2];
    for (int i = 0; i < 2; i++) {
        struct vcpu *v = &vcpus[i];
        memset(v, 0, sizeof *v);
        v->id = i;
        v->fd = ioctl(vm, KVM_CREATE_VCPU, i);
        v->run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
        struct kvm_sregs sregs;
        ioctl(v->fd, KVM_GET_SREGS, &sregs);
        sregs.cs.base = 0, sregs.cs.selector = 0;
        ioctl(v->fd, KVM_SET_SREGS, &sregs);
        struct kvm_regs regs = {.rip = 0, .rflags = 2};
        ioctl(v->fd, KVM_SET_REGS, &regs);
        pthread_create(&v->thread, NULL, vcpu_thread, v);
    }
    /* Let both reach the spin, then stop them. */
    struct timespec pause = {.tv_nsec = 200 * 1000 * 1000};
    nanosleep(&pause, NULL);
    for (int i = 0; i < 2; i++) {
        /* A KVM_RUN that had not started yet returns at once through immediate_exit; keep kicking until it ended. */
        for (int tries = 0; tries < 100; tries++) {
            pthread_kill(vcpus[i].thread, SIGUSR1);
            struct timespec wait;
            clock_gettime(CLOCK_REALTIME, &wait);
            wait.tv_nsec += 50 * 1000 * 1000;
            if (wait.tv_nsec >= 1000000000) wait.tv_sec++, wait.tv_nsec -= 1000000000;
            if (pthread_timedjoin_np(vcpus[i].thread, NULL, &wait) == 0) break;
        }
    }
    for (int i = 0; i < 2; i++) {
        struct vcpu *v = &vcpus[i];
        printf("vcpu %d: io exits %d, stopped by run %d %s exit_reason=%d\n", v->id, v->io_exits, v->last_rc,
               v->last_errno ? strerrorname_np(v->last_errno) : "", v->last_reason);
    }
    return 0;
}

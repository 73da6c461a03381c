// SPDX-License-Identifier: MIT
//
// eventfds the way a virtio VMM uses them: an ioeventfd the guest's port write signals instead of exiting, watched
// with epoll; an irqfd the VMM writes to raise an interrupt, which KVM consumes at once. Prints one line per step; the
// same transcript is expected from the real kernel and from `kvmsharp exec --kernel emulated`, where the eventfds are
// the emulated kernel's and their real descriptors poll as they do.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

/* Real mode at 0: out 0x10, al ; out 0x10, al ; out 0x11, al   (E6 10 E6 10 E6 11): the last one exits (with an
 * in-kernel irqchip a HLT would wait in the kernel for an interrupt). */
static const uint8_t guest[] = {0xe6, 0x10, 0xe6, 0x10, 0xe6, 0x11};

static const char *errname(int rc)
{
    return rc < 0 ? strerrorname_np(errno) : "";
}

static int readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    int vm = kvm < 0 ? -1 : ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) {
        perror("KVM_CREATE_VM");
        return 1;
    }
    int rc = ioctl(vm, KVM_CREATE_IRQCHIP, 0);
    printf("KVM_CREATE_IRQCHIP: %d %s\n", rc, errname(rc));
    uint8_t *memory = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    memcpy(memory, guest, sizeof guest);
    struct kvm_userspace_memory_region slot = {.memory_size = 0x1000, .userspace_addr = (uintptr_t)memory};
    rc = ioctl(vm, KVM_SET_USER_MEMORY_REGION, &slot);
    printf("slot: %d %s\n", rc, errname(rc));

    /* The ioeventfd: port 0x10, one byte, any value. */
    int io = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct kvm_ioeventfd ioeventfd = {.addr = 0x10, .len = 1, .fd = io, .flags = KVM_IOEVENTFD_FLAG_PIO};
    rc = ioctl(vm, KVM_IOEVENTFD, &ioeventfd);
    printf("KVM_IOEVENTFD(port 0x10): %d %s\n", rc, errname(rc));
    int epoll = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event watch = {.events = EPOLLIN, .data.u32 = 7};
    rc = epoll_ctl(epoll, EPOLL_CTL_ADD, io, &watch);
    printf("epoll_ctl(ADD ioeventfd): %d %s\n", rc, errname(rc));
    struct epoll_event got;
    printf("epoll_wait before the guest runs: %d\n", epoll_wait(epoll, &got, 1, 0));

    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    struct kvm_run *run = mmap(NULL, (size_t)ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0), PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    struct kvm_sregs sregs;
    ioctl(vcpu, KVM_GET_SREGS, &sregs);
    sregs.cs.base = 0, sregs.cs.selector = 0;
    ioctl(vcpu, KVM_SET_SREGS, &sregs);
    struct kvm_regs regs = {.rip = 0, .rflags = 2};
    ioctl(vcpu, KVM_SET_REGS, &regs);
    rc = ioctl(vcpu, KVM_RUN, 0);
    printf("KVM_RUN: %d %s exit_reason=%u port=0x%x\n", rc, errname(rc), run->exit_reason, run->io.port);
    rc = epoll_wait(epoll, &got, 1, 1000);
    printf("epoll_wait after: %d data=%u\n", rc, rc == 1 ? got.data.u32 : 0);
    uint64_t count = 0;
    ssize_t n = read(io, &count, sizeof count);
    printf("read(ioeventfd): %zd count=%llu\n", n, (unsigned long long)count);
    n = read(io, &count, sizeof count);
    printf("read(ioeventfd) again: %zd %s\n", n, n < 0 ? strerrorname_np(errno) : "");
    printf("epoll_wait once read: %d\n", epoll_wait(epoll, &got, 1, 0));

    /* The irqfd: KVM takes the count as soon as the VMM writes (irqfd_wakeup reads it). */
    int irq = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct kvm_irqfd irqfd = {.fd = (uint32_t)irq, .gsi = 5};
    rc = ioctl(vm, KVM_IRQFD, &irqfd);
    printf("KVM_IRQFD(gsi 5): %d %s\n", rc, errname(rc));
    uint64_t one = 1;
    n = write(irq, &one, sizeof one);
    printf("write(irqfd): %zd; readable afterwards: %d\n", n, readable(irq));
    irqfd.flags = KVM_IRQFD_FLAG_DEASSIGN;
    rc = ioctl(vm, KVM_IRQFD, &irqfd);
    printf("KVM_IRQFD(deassign): %d %s\n", rc, errname(rc));
    n = write(irq, &one, sizeof one);
    printf("write(no irqfd): %zd; readable afterwards: %d\n", n, readable(irq));

    /* An eventfd nobody in KVM uses: the program's own wakeups go on working. */
    int own = eventfd(3, EFD_CLOEXEC | EFD_SEMAPHORE | EFD_NONBLOCK);
    n = read(own, &count, sizeof count);
    printf("semaphore read: %zd count=%llu readable=%d\n", n, (unsigned long long)count, readable(own));
    close(own);
    close(irq);
    close(io);
    close(epoll);
    close(vcpu);
    close(vm);
    close(kvm);
    return 0;
}

// SPDX-License-Identifier: MIT
//
// A VMM's own guest memory changing under a running VM: anonymous memory in a memslot that the program reprotects,
// unmaps and maps again while a vCPU keeps using it (KVM follows through its MMU notifier). Prints one line per step;
// the same transcript is expected from the real kernel and from `kvmsharp exec --kernel emulated` (ProcessMemory.cs
// lets the emulated kernel use such memory directly, which is only right if every one of these changes reaches it).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/kvm.h>

#define CODE_GPA 0x0
#define DATA_GPA 0x10000
#define DATA_SIZE 0x10000

/* Real mode, DS = 0x1000 (linear 0x10000, the data slot):
 *   mov al, [0]          A0 00 00
 *   out 0x10, al         E6 10
 *   mov byte [0], 0x5a   C6 06 00 00 5A
 *   hlt                  F4 */
static const uint8_t guest[] = {0xa0, 0x00, 0x00, 0xe6, 0x10, 0xc6, 0x06, 0x00, 0x00, 0x5a, 0xf4};

static int vcpu;
static struct kvm_run *run;

static void restart(void)
{
    struct kvm_regs regs = {.rip = 0, .rflags = 2};
    struct kvm_sregs sregs;
    ioctl(vcpu, KVM_GET_SREGS, &sregs);
    sregs.cs.base = 0, sregs.cs.selector = 0;
    sregs.ds.base = DATA_GPA, sregs.ds.selector = DATA_GPA >> 4;
    ioctl(vcpu, KVM_SET_SREGS, &sregs);
    ioctl(vcpu, KVM_SET_REGS, &regs);
}

/* One KVM_RUN: its result, and what the exit says. */
static void step(const char *what)
{
    int rc = ioctl(vcpu, KVM_RUN, 0);
    printf("%s: run %d%s%s exit_reason=%u", what, rc, rc < 0 ? " " : "", rc < 0 ? strerrorname_np(errno) : "",
           run->exit_reason);
    if (rc == 0 && run->exit_reason == KVM_EXIT_IO)
        printf(" port=0x%x data=0x%02x", run->io.port, *((uint8_t *)run + run->io.data_offset));
    if (run->exit_reason == KVM_EXIT_MEMORY_FAULT)
        printf(" gpa=0x%llx size=0x%llx", (unsigned long long)run->memory_fault.gpa,
               (unsigned long long)run->memory_fault.size);
    printf("\n");
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    int vm = kvm < 0 ? -1 : ioctl(kvm, KVM_CREATE_VM, 0);
    vcpu = vm < 0 ? -1 : ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) {
        perror("setting up a VM");
        return 1;
    }
    run = mmap(NULL, (size_t)ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0), PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    uint8_t *code = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    uint8_t *data = mmap(NULL, DATA_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (run == MAP_FAILED || code == MAP_FAILED || data == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    memcpy(code, guest, sizeof guest);
    data[0] = 0x11;
    struct kvm_userspace_memory_region slots[] = {
        {.slot = 0, .guest_phys_addr = CODE_GPA, .memory_size = 0x1000, .userspace_addr = (uintptr_t)code},
        {.slot = 1, .guest_phys_addr = DATA_GPA, .memory_size = DATA_SIZE, .userspace_addr = (uintptr_t)data},
    };
    for (int i = 0; i < 2; i++)
        printf("slot %d: %d\n", i, ioctl(vm, KVM_SET_USER_MEMORY_REGION, &slots[i]));

    restart();
    step("read");
    step("write");
    printf("host sees 0x%02x\n", data[0]);

    /* Read-only now: the guest's read works, its write cannot be mapped. */
    printf("mprotect(PROT_READ): %d\n", mprotect(data, DATA_SIZE, PROT_READ));
    restart();
    step("read, read-only");
    step("write, read-only");
    printf("mprotect(PROT_READ|PROT_WRITE): %d\n", mprotect(data, DATA_SIZE, PROT_READ | PROT_WRITE));
    step("write again");
    printf("host sees 0x%02x\n", data[0]);

    /* Gone: the slot still points at it. */
    printf("munmap: %d\n", munmap(data, DATA_SIZE));
    restart();
    step("read, unmapped");

    /* New memory at the same address: the guest sees it. */
    uint8_t *again = mmap(data, DATA_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    printf("mmap again at the same address: %s\n", again == data ? "yes" : "no");
    data[0] = 0x22;
    restart();
    step("read, new memory");
    step("write, new memory");
    printf("host sees 0x%02x\n", data[0]);

    /* Moved away by mremap: the old address is empty again. */
    uint8_t *moved = mremap(data, DATA_SIZE, DATA_SIZE * 2, MREMAP_MAYMOVE);
    printf("mremap: %s\n", moved == MAP_FAILED ? strerrorname_np(errno) : "ok");
    if (moved != data) {
        restart();
        step("read, after mremap moved it");
    }
    close(vcpu);
    close(vm);
    close(kvm);
    return 0;
}

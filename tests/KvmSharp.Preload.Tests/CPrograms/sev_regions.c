// SPDX-License-Identifier: MIT
// KVM_MEMORY_ENCRYPT_REG_REGION / _UNREG_REGION through `kvmsharp exec`, as QEMU's sev.c issues them for its RAM: an
// SEV VM after KVM_SEV_INIT2 pins a mapped range (0), unregisters it exactly (0) and not twice (EINVAL); a zero-size
// range is EINVAL. The two requests are numbered _IOR but the kernel only reads the struct. Numbers from
// include/uapi/linux/kvm.h (the system headers are too old).
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

struct kvm_enc_region { uint64_t addr, size; };
struct kvm_sev_cmd { uint32_t id, pad0; uint64_t data; uint32_t error, sev_fd; };
struct kvm_sev_init { uint64_t vmsa_features; uint32_t flags; uint16_t ghcb_version, pad1; uint32_t pad2[8]; };

#define KVMIO 0xAE
#define KVM_CREATE_VM _IO(KVMIO, 0x01)
#define KVM_MEMORY_ENCRYPT_OP _IOWR(KVMIO, 0xba, unsigned long)
#define KVM_MEMORY_ENCRYPT_REG_REGION _IOR(KVMIO, 0xbb, struct kvm_enc_region)
#define KVM_MEMORY_ENCRYPT_UNREG_REGION _IOR(KVMIO, 0xbc, struct kvm_enc_region)
#define KVM_X86_SEV_VM 2
#define KVM_SEV_INIT2 22

static void report(const char *what, int rc)
{
    printf("%s: %s\n", what, rc == 0 ? "0" : strerror(errno));
}

int main(void)
{
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    int sev = open("/dev/sev", O_RDWR | O_CLOEXEC);
    if (kvm < 0 || sev < 0) {
        perror("open");
        return 1;
    }
    int vm = ioctl(kvm, KVM_CREATE_VM, KVM_X86_SEV_VM);
    if (vm < 0) {
        perror("KVM_CREATE_VM");
        return 1;
    }
    size_t size = 64 * 4096;
    void *ram = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct kvm_enc_region region = {(uint64_t)(uintptr_t)ram, size};
    report("reg before init2", ioctl(vm, KVM_MEMORY_ENCRYPT_REG_REGION, &region));
    struct kvm_sev_init init = {0};
    struct kvm_sev_cmd cmd = {.id = KVM_SEV_INIT2, .data = (uint64_t)(uintptr_t)&init, .sev_fd = (uint32_t)sev};
    report("init2", ioctl(vm, KVM_MEMORY_ENCRYPT_OP, &cmd));
    report("reg", ioctl(vm, KVM_MEMORY_ENCRYPT_REG_REGION, &region));
    struct kvm_enc_region empty = {(uint64_t)(uintptr_t)ram, 0};
    report("reg size 0", ioctl(vm, KVM_MEMORY_ENCRYPT_REG_REGION, &empty));
    report("unreg", ioctl(vm, KVM_MEMORY_ENCRYPT_UNREG_REGION, &region));
    report("unreg again", ioctl(vm, KVM_MEMORY_ENCRYPT_UNREG_REGION, &region));
    munmap(ram, size);
    close(vm);
    close(sev);
    close(kvm);
    return 0;
}

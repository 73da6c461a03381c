// SPDX-License-Identifier: MIT
// The KVM uAPI the C references need beyond this machine's Linux 6.1 headers (include/uapi/linux/kvm.h of Linux
// >= 6.18). Names end in '_' so they never clash with a newer system header. One copy, shared by every C reference.
#ifndef KVMSHARP_KVM_UAPI_618_H
#define KVMSHARP_KVM_UAPI_618_H
#include <stdint.h>

#define KVM_CREATE_GUEST_MEMFD_ 0xC040AED4UL        /* _IOWR(KVMIO, 0xd4, struct kvm_create_guest_memfd) */
#define KVM_SET_USER_MEMORY_REGION2_ 0x40A0AE49UL   /* _IOW(KVMIO, 0x49, struct kvm_userspace_memory_region2) */
#define GUEST_MEMFD_FLAG_MMAP (1ULL << 0)
#define GUEST_MEMFD_FLAG_INIT_SHARED (1ULL << 1)
#define KVM_MEM_GUEST_MEMFD_ (1U << 2)
#define KVM_CAP_USER_MEMORY2_ 231
#define KVM_CAP_GUEST_MEMFD_ 234
#define KVM_CAP_GUEST_MEMFD_FLAGS_ 244

struct kvm_create_guest_memfd_ {
    uint64_t size;
    uint64_t flags;
    uint64_t reserved[6];
};
_Static_assert(sizeof(struct kvm_create_guest_memfd_) == 64, "kvm_create_guest_memfd is 64 bytes");

struct kvm_userspace_memory_region2_ {
    uint32_t slot;
    uint32_t flags;
    uint64_t guest_phys_addr;
    uint64_t memory_size;
    uint64_t userspace_addr;
    uint64_t guest_memfd_offset;
    uint32_t guest_memfd;
    uint32_t pad1;
    uint64_t pad2[14];
};
_Static_assert(sizeof(struct kvm_userspace_memory_region2_) == 160, "kvm_userspace_memory_region2 is 160 bytes");

#endif

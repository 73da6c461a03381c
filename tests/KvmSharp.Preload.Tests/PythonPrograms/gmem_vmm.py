# SPDX-License-Identifier: MIT
#
# A VMM in Python (standard library only: os, fcntl, mmap, ctypes) whose guest lives in guest_memfd memory alone:
# open /dev/kvm, ask KVM_CAP_GUEST_MEMFD and KVM_CAP_GUEST_MEMFD_FLAGS, create a guest_memfd with MMAP | INIT_SHARED,
# map it with Python's mmap module, put the guest's code (argv[1], hex) and a data byte in it, bind it with
# KVM_SET_USER_MEMORY_REGION2 and run the real-mode guest, which reads the byte at 0x1000, reports it on port 0x10 and
# writes 0x5a back. The interpreter reaches the kernel through libc, so `kvmsharp exec --kernel emulated` answers it
# with the emulated kernel; Python's mmap also fstat()s and dup()s the guest_memfd, which the emulated kernel answers.
import ctypes
import fcntl
import mmap
import os
import struct
import sys

# include/uapi/asm-generic/ioctl.h and include/uapi/linux/kvm.h (6.18): KVMIO = 0xAE.
def _ioc(direction, nr, size):
    return (direction << 30) | (size << 16) | (0xAE << 8) | nr

KVM_CREATE_VM = _ioc(0, 0x01, 0)
KVM_CHECK_EXTENSION = _ioc(0, 0x03, 0)
KVM_GET_VCPU_MMAP_SIZE = _ioc(0, 0x04, 0)
KVM_CREATE_VCPU = _ioc(0, 0x41, 0)
KVM_SET_USER_MEMORY_REGION2 = _ioc(1, 0x49, 0xA0)
KVM_RUN = _ioc(0, 0x80, 0)
KVM_SET_REGS = _ioc(1, 0x82, 0x90)
KVM_GET_SREGS = _ioc(2, 0x83, 0x138)
KVM_SET_SREGS = _ioc(1, 0x84, 0x138)
KVM_CREATE_GUEST_MEMFD = _ioc(3, 0xD4, 0x40)
KVM_CAP_GUEST_MEMFD = 234
KVM_CAP_GUEST_MEMFD_FLAGS = 244
GUEST_MEMFD_FLAG_MMAP = 1 << 0
GUEST_MEMFD_FLAG_INIT_SHARED = 1 << 1
KVM_MEM_GUEST_MEMFD = 1 << 2
KVM_EXIT_IO = 2
KVM_EXIT_HLT = 5
MEMORY = 0x2000


def main():
    guest = bytes.fromhex(sys.argv[1])
    kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    if fcntl.ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD) <= 0:
        print("no guest_memfd: KVM_CAP_GUEST_MEMFD = 0")
        return 0
    vm = fcntl.ioctl(kvm, KVM_CREATE_VM, 0)
    flags = fcntl.ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD_FLAGS)
    wanted = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED
    print(f"KVM_CAP_GUEST_MEMFD_FLAGS = {flags:#x}")
    if flags & wanted != wanted:
        print("no mappable guest_memfd for this VM")
        return 0
    # struct kvm_create_guest_memfd: size u64, flags u64, reserved[6] u64. fcntl.ioctl returns ioctl(2)'s result (the
    # descriptor) only for a mutable buffer; for bytes it returns the bytes.
    buffer = bytearray(struct.pack("<QQ48x", MEMORY, wanted))
    gmem = fcntl.ioctl(vm, KVM_CREATE_GUEST_MEMFD, buffer, True)
    memory = mmap.mmap(gmem, MEMORY, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    memory[: len(guest)] = guest
    memory[0x1000] = 0x2A
    address = ctypes.addressof(ctypes.c_char.from_buffer(memory))
    # struct kvm_userspace_memory_region2: slot, flags, guest_phys_addr, memory_size, userspace_addr,
    # guest_memfd_offset, guest_memfd, pad1, pad2[14].
    region = struct.pack("<IIQQQQII112x", 0, KVM_MEM_GUEST_MEMFD, 0, MEMORY, address, 0, gmem, 0)
    fcntl.ioctl(vm, KVM_SET_USER_MEMORY_REGION2, region)
    vcpu = fcntl.ioctl(vm, KVM_CREATE_VCPU, 0)
    run = mmap.mmap(vcpu, fcntl.ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0), mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    # struct kvm_sregs: cs is its first struct kvm_segment (base u64 at 0, selector u16 at 12).
    sregs = bytearray(0x138)
    fcntl.ioctl(vcpu, KVM_GET_SREGS, sregs, True)
    struct.pack_into("<Q", sregs, 0, 0)
    struct.pack_into("<H", sregs, 12, 0)
    fcntl.ioctl(vcpu, KVM_SET_SREGS, bytes(sregs))
    # struct kvm_regs: 18 u64, rip the 17th, rflags the 18th.
    fcntl.ioctl(vcpu, KVM_SET_REGS, struct.pack("<16QQQ", *([0] * 16), 0, 2))
    # struct kvm_run: exit_reason u32 at 8; io (direction u8, size u8, port u16, count u32, data_offset u64) at 32.
    fcntl.ioctl(vcpu, KVM_RUN, 0)
    reason, = struct.unpack_from("<I", run, 8)
    if reason != KVM_EXIT_IO:
        print(f"unexpected exit {reason}")
        return 1
    port, = struct.unpack_from("<H", run, 34)
    offset, = struct.unpack_from("<Q", run, 40)
    data = run[offset]
    fcntl.ioctl(vcpu, KVM_RUN, 0)
    halted = struct.unpack_from("<I", run, 8)[0] == KVM_EXIT_HLT
    print(f"guest read {data:#x} from guest_memfd (port {port:#x}), wrote {memory[0x1000]:#x} back, halted: {str(halted).lower()}")
    run.close()
    memory.close()
    for fd in (vcpu, gmem, vm, kvm):
        os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())

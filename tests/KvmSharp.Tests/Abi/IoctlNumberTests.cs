// SPDX-License-Identifier: MIT
using KvmSharp.Abi;

namespace KvmSharp.Tests.Abi;

/// <summary>Request numbers computed from _IO/_IOW/_IOWR, checked against their literal values in kvm.h builds.</summary>
public class IoctlNumberTests
{
    public static TheoryData<string, uint, uint> Requests => new()
    {
        { nameof(KvmIoctls.KVM_GET_API_VERSION), KvmIoctls.KVM_GET_API_VERSION, 0x0000AE00 },
        { nameof(KvmIoctls.KVM_CREATE_VM), KvmIoctls.KVM_CREATE_VM, 0x0000AE01 },
        { nameof(KvmIoctls.KVM_CHECK_EXTENSION), KvmIoctls.KVM_CHECK_EXTENSION, 0x0000AE03 },
        { nameof(KvmIoctls.KVM_GET_VCPU_MMAP_SIZE), KvmIoctls.KVM_GET_VCPU_MMAP_SIZE, 0x0000AE04 },
        { nameof(KvmIoctls.KVM_CREATE_VCPU), KvmIoctls.KVM_CREATE_VCPU, 0x0000AE41 },
        { nameof(KvmIoctls.KVM_SET_USER_MEMORY_REGION), KvmIoctls.KVM_SET_USER_MEMORY_REGION, 0x4020AE46 },
        { nameof(KvmIoctls.KVM_SET_TSS_ADDR), KvmIoctls.KVM_SET_TSS_ADDR, 0x0000AE47 },
        { nameof(KvmIoctls.KVM_SET_IDENTITY_MAP_ADDR), KvmIoctls.KVM_SET_IDENTITY_MAP_ADDR, 0x4008AE48 },
        { nameof(KvmIoctls.KVM_SET_USER_MEMORY_REGION2), KvmIoctls.KVM_SET_USER_MEMORY_REGION2, 0x40A0AE49 },
        { nameof(KvmIoctls.KVM_GET_DIRTY_LOG), KvmIoctls.KVM_GET_DIRTY_LOG, 0x4010AE42 },
        { nameof(KvmIoctls.KVM_CLEAR_DIRTY_LOG), KvmIoctls.KVM_CLEAR_DIRTY_LOG, 0xC018AEC0 },
        // _IO(KVMIO, 0xc7), probed on the host: the literal a C program built against 6.18's headers prints.
        { nameof(KvmIoctls.KVM_RESET_DIRTY_RINGS), KvmIoctls.KVM_RESET_DIRTY_RINGS, 0x0000AEC7 },
        { nameof(KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES), KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES, 0x4020AED2 },
        { nameof(KvmIoctls.KVM_CREATE_GUEST_MEMFD), KvmIoctls.KVM_CREATE_GUEST_MEMFD, 0xC040AED4 },
        { nameof(KvmIoctls.KVM_PRE_FAULT_MEMORY), KvmIoctls.KVM_PRE_FAULT_MEMORY, 0xC040AED5 },
        { nameof(KvmIoctls.KVM_RUN), KvmIoctls.KVM_RUN, 0x0000AE80 },
        { nameof(KvmIoctls.KVM_GET_REGS), KvmIoctls.KVM_GET_REGS, 0x8090AE81 },
        { nameof(KvmIoctls.KVM_SET_REGS), KvmIoctls.KVM_SET_REGS, 0x4090AE82 },
        { nameof(KvmIoctls.KVM_GET_SREGS), KvmIoctls.KVM_GET_SREGS, 0x8138AE83 },
        { nameof(KvmIoctls.KVM_SET_SREGS), KvmIoctls.KVM_SET_SREGS, 0x4138AE84 },
        // _IOW(KVMIO, 0x8b, struct kvm_signal_mask): the struct is its 4-byte len (sigset[0] adds nothing).
        { nameof(KvmIoctls.KVM_SET_SIGNAL_MASK), KvmIoctls.KVM_SET_SIGNAL_MASK, 0x4004AE8B },
        // Probed on the host (Linux 6.18 headers' value from a C program): _IOW(KVMIO, 0x9b, 72-byte kvm_guest_debug).
        { nameof(KvmIoctls.KVM_SET_GUEST_DEBUG), KvmIoctls.KVM_SET_GUEST_DEBUG, 0x4048AE9B },
        // x86 machine checks (KVM_CAP_MCE): _IOW(KVMIO, 0x9c, __u64) and _IOR(KVMIO, 0x9d, __u64).
        { nameof(KvmIoctls.KVM_X86_SETUP_MCE), KvmIoctls.KVM_X86_SETUP_MCE, 0x4008AE9C },
        { nameof(KvmIoctls.KVM_X86_GET_MCE_CAP_SUPPORTED), KvmIoctls.KVM_X86_GET_MCE_CAP_SUPPORTED, 0x8008AE9D },
        // x86 XSAVE: struct kvm_xsave is 4096 bytes (the flexible extra[] adds nothing to sizeof).
        { nameof(KvmIoctls.KVM_GET_XSAVE), KvmIoctls.KVM_GET_XSAVE, 0x9000AEA4 },
        { nameof(KvmIoctls.KVM_SET_XSAVE), KvmIoctls.KVM_SET_XSAVE, 0x5000AEA5 },
        { nameof(KvmIoctls.KVM_GET_XSAVE2), KvmIoctls.KVM_GET_XSAVE2, 0x9000AECF },
        // Device control: _IOWR(KVMIO, 0xe0, 12-byte kvm_create_device).
        { nameof(KvmIoctls.KVM_CREATE_DEVICE), KvmIoctls.KVM_CREATE_DEVICE, 0xC00CAEE0 },
        // Proposal (v8 in-place conversion): same nr as KVM_SET_MEMORY_ATTRIBUTES, _IOWR, 128 bytes.
        { nameof(KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES2), KvmIoctls.KVM_SET_MEMORY_ATTRIBUTES2, 0xC080AED2 },
    };

    [Theory]
    [MemberData(nameof(Requests))]
    public void Request_has_the_literal_kernel_value(string name, uint computed, uint literal)
    {
        Assert.True(computed == literal, $"{name}: computed 0x{computed:X8}, kernel 0x{literal:X8}");
        Assert.Equal(name, KvmIoctls.NameOf(computed));
    }

    [Fact]
    public void Encoding_fields_round_trip()
    {
        uint req = KvmIoctls.KVM_CREATE_GUEST_MEMFD;
        Assert.Equal(IoctlEncoding._IOC_READ | IoctlEncoding._IOC_WRITE, IoctlEncoding._IOC_DIR(req));
        Assert.Equal(64u, IoctlEncoding._IOC_SIZE(req));
        Assert.Equal(0xAEu, IoctlEncoding._IOC_TYPE(req));
        Assert.Equal(0xD4u, IoctlEncoding._IOC_NR(req));
    }

    [Fact]
    public void Oversized_argument_is_rejected_by_the_encoder() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => IoctlEncoding._IOW(KvmIoctls.KVMIO, 1, 1u << 14));

    [Theory]
    [InlineData(KvmCaps.KVM_CAP_MCE, 31)]
    [InlineData(KvmCaps.KVM_CAP_XSAVE, 55)]
    [InlineData(KvmCaps.KVM_CAP_XSAVE2, 208)]
    [InlineData(KvmCaps.KVM_CAP_USER_MEMORY2, 231)]
    [InlineData(KvmCaps.KVM_CAP_MEMORY_FAULT_INFO, 232)]
    [InlineData(KvmCaps.KVM_CAP_MEMORY_ATTRIBUTES, 233)]
    [InlineData(KvmCaps.KVM_CAP_GUEST_MEMFD, 234)]
    [InlineData(KvmCaps.KVM_CAP_VM_TYPES, 235)]
    [InlineData(KvmCaps.KVM_CAP_PRE_FAULT_MEMORY, 236)]
    [InlineData(KvmCaps.KVM_CAP_GUEST_MEMFD_FLAGS, 244)]
    public void Capability_has_the_kernel_number(int cap, int number) => Assert.Equal(number, cap);

    [Fact]
    public void Flag_bits_have_the_kernel_values()
    {
        Assert.Equal(1UL, KvmConstants.GUEST_MEMFD_FLAG_MMAP);
        Assert.Equal(2UL, KvmConstants.GUEST_MEMFD_FLAG_INIT_SHARED);
        Assert.Equal(4u, KvmConstants.KVM_MEM_GUEST_MEMFD);
        Assert.Equal(8UL, KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE);
        Assert.Equal(39u, (uint)KvmExitReason.KVM_EXIT_MEMORY_FAULT);
        Assert.Equal(5u, KvmConstants.KVM_X86_TDX_VM);
    }
}

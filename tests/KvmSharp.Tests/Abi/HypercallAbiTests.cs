// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;

namespace KvmSharp.Tests.Abi;

/// <summary>
/// KVM_ENABLE_CAP, struct kvm_enable_cap and the kvm_run hypercall exit against include/uapi/linux/kvm.h; the
/// hypercall numbers and bits against include/uapi/linux/kvm_para.h and arch/x86/include/uapi/asm/kvm_para.h.
/// </summary>
public class HypercallAbiTests
{
    [Fact]
    public void Enable_cap_request_is_the_kernel_literal() =>
        // _IOW(KVMIO, 0xa3, struct kvm_enable_cap): write, size 104 (0x68), type 0xAE, nr 0xA3.
        Assert.Equal(0x4068AEA3u, KvmIoctls.KVM_ENABLE_CAP);

    [Fact]
    public void Kvm_enable_cap_has_the_kernel_layout()
    {
        Assert.Equal(104, Marshal.SizeOf<kvm_enable_cap>());
        Assert.Equal(0, (int)Marshal.OffsetOf<kvm_enable_cap>(nameof(kvm_enable_cap.cap)));
        Assert.Equal(4, (int)Marshal.OffsetOf<kvm_enable_cap>(nameof(kvm_enable_cap.flags)));
        Assert.Equal(8, (int)Marshal.OffsetOf<kvm_enable_cap>(nameof(kvm_enable_cap.args)));
        Assert.Equal(40, (int)Marshal.OffsetOf<kvm_enable_cap>(nameof(kvm_enable_cap.pad)));
    }

    [Fact]
    public void Kvm_run_hypercall_offsets()
    {
        Assert.Equal(32, KvmRunLayout.hypercall_nr);
        Assert.Equal(40, KvmRunLayout.hypercall_args);
        Assert.Equal(88, KvmRunLayout.hypercall_ret);
        Assert.Equal(96, KvmRunLayout.hypercall_longmode);
        Assert.Equal(96, KvmRunLayout.hypercall_flags);
        Assert.Equal(3u, (uint)KvmExitReason.KVM_EXIT_HYPERCALL);
    }

    [Fact]
    public void Hypercall_numbers_and_bits()
    {
        Assert.Equal(201, KvmCaps.KVM_CAP_EXIT_HYPERCALL);
        Assert.Equal(nameof(KvmCaps.KVM_CAP_EXIT_HYPERCALL), KvmCaps.NameOf(201));
        Assert.Equal(nameof(KvmIoctls.KVM_ENABLE_CAP), KvmIoctls.NameOf(0x4068AEA3));
        Assert.Equal(12UL, KvmPara.KVM_HC_MAP_GPA_RANGE);
        Assert.Equal(0x1000UL, KvmPara.KVM_EXIT_HYPERCALL_VALID_MASK);
        Assert.Equal(1UL, KvmPara.KVM_EXIT_HYPERCALL_LONG_MODE);
        Assert.Equal(0xffff_fffeUL, KvmPara.KVM_EXIT_HYPERCALL_MBZ);
        Assert.Equal(1000L, KvmPara.KVM_ENOSYS);
        Assert.Equal(22L, KvmPara.KVM_EINVAL);
        Assert.Equal(1L, KvmPara.KVM_EPERM);
        Assert.Equal(95L, KvmPara.KVM_EOPNOTSUPP);
        Assert.Equal(0x10UL, KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED);
        Assert.Equal(KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED, KvmPara.KVM_MAP_GPA_RANGE_ENC_STAT(1));
        Assert.Equal(0UL, KvmPara.KVM_MAP_GPA_RANGE_DECRYPTED);
        Assert.Equal(2UL, KvmPara.KVM_MAP_GPA_RANGE_PAGE_SZ_1G);
        Assert.Equal((ulong)HypercallExits.MapGpaRange, KvmPara.KVM_EXIT_HYPERCALL_VALID_MASK);
    }
}

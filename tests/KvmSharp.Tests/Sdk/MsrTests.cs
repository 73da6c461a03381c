// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Kernel;
using KvmSharp.Tests.Infrastructure;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// The typed MSR API: Kvm.GetMsrIndexList (E2BIG → grow), Vcpu.GetMsrs/SetMsrs (the count the kernel processed),
/// GetMsr/SetMsr (a typed exception naming the MSR). The kernel rules themselves are conformance cases (MsrRules).
/// </summary>
public class MsrTests : KernelTest
{
    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Index_list_grows_past_e2big_and_names_the_syscall_msrs(string kernel)
    {
        using var kvm = Open(kernel);
        var list = kvm.GetMsrIndexList();
        Assert.Contains(X86Msr.Star, list);
        Assert.Contains(X86Msr.Lstar, list);
        Assert.Contains(X86Msr.KernelGsBase, list);
        Assert.DoesNotContain(X86Msr.Efer, list);
        Assert.NotEmpty(kvm.GetMsrFeatureIndexList());
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Get_and_set_report_the_count_processed(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        MsrEntry[] set = [new(X86Msr.Star, 0x0023_0010_0000_0000), new(X86Msr.Lstar, 0xffff_ffff_8100_0000), new(0x1234_5678, 1), new(X86Msr.Cstar, 0x42)];
        Assert.Equal(2, vcpu.SetMsrs(set));
        Span<MsrEntry> get = [new(X86Msr.Star, 9), new(X86Msr.Lstar, 9), new(X86Msr.Cstar, 9)];
        Assert.Equal(3, vcpu.GetMsrs(get));
        Assert.Equal(new MsrEntry(X86Msr.Star, 0x0023_0010_0000_0000), get[0]);
        Assert.Equal(0xffff_ffff_8100_0000UL, get[1].Value);
        Assert.Equal(0UL, get[2].Value); // CSTAR was not written: the kernel stopped before it
        Assert.Equal(0, vcpu.GetMsrs([]));
        Assert.Equal("STAR=0x230010", new MsrEntry(X86Msr.Star, 0x230010).ToString());
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Single_msr_helpers_throw_a_typed_exception_naming_the_msr(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        vcpu.SetMsr(X86Msr.KernelGsBase, 0xffff_8880_0000_0000);
        Assert.Equal(0xffff_8880_0000_0000UL, vcpu.GetMsr(X86Msr.KernelGsBase));

        var write = Assert.Throws<MsrAccessException>(() => vcpu.SetMsr(X86Msr.Lstar, 0x8000_0000_0000_0000));
        Assert.Equal("KVM_SET_MSRS", write.Operation);
        Assert.Equal(X86Msr.Lstar, write.Index);
        Assert.Equal(0x8000_0000_0000_0000UL, write.Value);
        Assert.Equal(0, write.ErrnoValue);
        Assert.Contains("LSTAR", write.Message, StringComparison.Ordinal);
        Assert.Contains("0x8000000000000000", write.Message, StringComparison.Ordinal);

        var read = Assert.Throws<MsrAccessException>(() => vcpu.GetMsr(0x1234_5678));
        Assert.Equal("KVM_GET_MSRS", read.Operation);
        Assert.Null(read.Value);
        Assert.Contains("0x12345678", read.Message, StringComparison.Ordinal);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Too_many_msrs_is_e2big(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu();
        var many = Enumerable.Repeat(new MsrEntry(X86Msr.Star, 0), Vcpu.MaxMsrsPerCall).ToArray();
        Assert.Equal(Vcpu.MaxMsrsPerCall, vcpu.GetMsrs(many));
        var e = AssertErrno(Errno.E2BIG, () => vcpu.SetMsrs([.. many, new MsrEntry(X86Msr.Star, 0)]));
        Assert.Equal("KVM_SET_MSRS", e.Operation);
        Assert.Contains("nmsrs=256", e.Request, StringComparison.Ordinal);
    }

    [Fact]
    public void Request_names()
    {
        Assert.Equal("KVM_GET_MSR_INDEX_LIST", KvmIoctls.NameOf(KvmIoctls.KVM_GET_MSR_INDEX_LIST));
        Assert.Equal("KVM_GET_MSR_FEATURE_INDEX_LIST", KvmIoctls.NameOf(KvmIoctls.KVM_GET_MSR_FEATURE_INDEX_LIST));
        Assert.Equal("KVM_GET_MSRS", KvmIoctls.NameOf(KvmIoctls.KVM_GET_MSRS));
        Assert.Equal("KVM_SET_MSRS", KvmIoctls.NameOf(KvmIoctls.KVM_SET_MSRS));
        // Computed from the struct sizes: _IOWR(KVMIO, 0x02, 4), _IOWR(KVMIO, 0x88, 8), _IOW(KVMIO, 0x89, 8).
        Assert.Equal(0xC004AE02u, KvmIoctls.KVM_GET_MSR_INDEX_LIST);
        Assert.Equal(0xC004AE0Au, KvmIoctls.KVM_GET_MSR_FEATURE_INDEX_LIST);
        Assert.Equal(0xC008AE88u, KvmIoctls.KVM_GET_MSRS);
        Assert.Equal(0x4008AE89u, KvmIoctls.KVM_SET_MSRS);
    }
}

// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using KvmSharp.Tests.Infrastructure;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// The typed hypercall API: capability query, EnableHypercallExits / EnableCapability errors, the decoded
/// KVM_HC_MAP_GPA_RANGE view and the return value. Guest runs use the emulator: on this host a VMCALL never
/// completes (HostDeviations.KvmPvmHypercallLoops).
/// </summary>
public class HypercallApiTests : KernelTest
{
    [Fact]
    public void Map_gpa_range_request_decodes_attributes()
    {
        var toPrivate = new MapGpaRangeRequest(0x20_0000, 512, KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED | KvmPara.KVM_MAP_GPA_RANGE_PAGE_SZ_2M);
        Assert.True(toPrivate.ToPrivate);
        Assert.False(toPrivate.ToShared);
        Assert.Equal(MapGpaRangePageSize.Size2M, toPrivate.PreferredPageSize);
        Assert.Equal(0x20_0000UL, toPrivate.Size);
        Assert.Equal(KvmConstants.KVM_MEMORY_ATTRIBUTE_PRIVATE, toPrivate.MemoryAttributes);
        Assert.Equal(0UL, toPrivate.ReservedAttributes);
        Assert.Contains("private", toPrivate.ToString(), StringComparison.Ordinal);

        var toShared = new MapGpaRangeRequest(0x1000, 1, 0x20);
        Assert.True(toShared.ToShared);
        Assert.Equal(MapGpaRangePageSize.Size4K, toShared.PreferredPageSize);
        Assert.Equal(0UL, toShared.MemoryAttributes);
        Assert.Equal(0x20UL, toShared.ReservedAttributes);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Enable_errors_are_typed_and_name_the_request(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        Assert.Equal(HypercallExits.MapGpaRange, vm.SupportedHypercallExits);
        vm.EnableHypercallExits(HypercallExits.MapGpaRange);

        var ex = Assert.Throws<KvmCapabilityException>(() => vm.EnableHypercallExits((HypercallExits)0x2000));
        Assert.Equal(Errno.EINVAL, ex.Errno);
        Assert.Equal("KVM_ENABLE_CAP", ex.Operation);
        Assert.Equal(nameof(KvmCaps.KVM_CAP_EXIT_HYPERCALL), ex.Capability);
        Assert.Contains("0x2000", ex.Request, StringComparison.Ordinal);

        var unknown = Assert.Throws<KvmCapabilityException>(() => vm.EnableCapability(int.MaxValue, 1));
        Assert.Equal(0, unknown.Reported);
        var flags = new kvm_enable_cap { cap = KvmCaps.KVM_CAP_EXIT_HYPERCALL, flags = 1 };
        var withFlags = Assert.ThrowsAny<KvmException>(() => vm.EnableCapability(flags));
        Assert.Equal(Errno.EINVAL, withFlags.Errno);
        Assert.Contains("flags=0x1", withFlags.Request, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => vm.EnableCapability(KvmCaps.KVM_CAP_EXIT_HYPERCALL, 1, 2, 3, 4, 5));
    }

    [Fact]
    public void Map_gpa_range_exit_round_trip_on_the_emulator()
    {
        using var kvm = Open("emulated");
        const ulong Attributes = KvmPara.KVM_MAP_GPA_RANGE_ENCRYPTED;
        using var guest = HypercallGuest.LongMode(kvm, KvmPara.KVM_HC_MAP_GPA_RANGE, 0x30_0000, 4, Attributes);
        guest.Vm.EnableHypercallExits(HypercallExits.MapGpaRange);

        var exit = guest.Vcpu.Run();
        Assert.True(exit.TryGetMapGpaRange(out var request));
        Assert.Equal(new MapGpaRangeRequest(0x30_0000, 4, Attributes), request);
        Assert.Equal(request, exit.MapGpaRange);
        Assert.True(exit.HypercallLongMode);
        Assert.Equal(3, exit.HypercallArgs.Length - 3);
        Assert.Contains("KVM_HC_MAP_GPA_RANGE", exit.ToString(), StringComparison.Ordinal);

        guest.Vcpu.HypercallReturn = -KvmPara.KVM_EINVAL;
        Assert.Equal(-KvmPara.KVM_EINVAL, guest.Vcpu.HypercallReturn);
        var next = guest.Vcpu.Run();
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, next.Reason);
        Assert.False(next.TryGetMapGpaRange(out _));
        Assert.Equal(unchecked((ulong)-KvmPara.KVM_EINVAL), guest.Vcpu.GetRegs().rax);
        Assert.Throws<InvalidOperationException>(() => guest.Vcpu.Run().MapGpaRange);
    }
}

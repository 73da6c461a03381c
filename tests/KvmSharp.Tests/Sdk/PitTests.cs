// SPDX-License-Identifier: MIT
using KvmSharp.Kernel;
using KvmSharp.Tests.Infrastructure;

namespace KvmSharp.Tests.Sdk;

/// <summary>
/// Vm.Pit.cs on every kernel: creation, the typed errors, the state round trip and what the kernel rewrites. The
/// kernel's rules are conformance cases (KvmSharp.Conformance/Cases/PitRules.cs).
/// </summary>
public class PitTests : KernelTest
{
    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Create_pit_after_the_irqchip_and_a_second_one_is_a_typed_eexist(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        vm.CreatePit(PitFlags.SpeakerDummy);
        var ex = AssertErrno(Errno.EEXIST, () => vm.CreatePit(PitFlags.None));
        Assert.Equal("KVM_CREATE_PIT2", ex.Operation);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Pit_calls_without_a_pit_are_a_typed_enxio(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        Assert.Equal("KVM_GET_PIT2", AssertErrno(Errno.ENXIO, () => vm.GetPit()).Operation);
        Assert.Equal("KVM_SET_PIT2", AssertErrno(Errno.ENXIO, () => vm.SetPit(default)).Operation);
        Assert.Equal("KVM_REINJECT_CONTROL", AssertErrno(Errno.ENXIO, () => vm.SetPitReinject(false)).Operation);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void A_new_pit_has_unprogrammed_channels(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        vm.CreatePit();
        var s = vm.GetPit();
        Assert.Equal(PitStateFlags.None, s.Flags);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(0x10000u, s[i].Count);
            Assert.Equal(0xff, s[i].Mode);
            Assert.Equal(i == 2 ? 0 : 1, s[i].Gate);
        }
        // pit_load_count sets count_load_time for channels 1 and 2 only.
        Assert.Equal(0, s.Channel0.CountLoadTime);
        Assert.True(s.Channel1.CountLoadTime > 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => s[3]);
    }

    [KvmTheory]
    [MemberData(nameof(Kernels.All), MemberType = typeof(Kernels))]
    public void Set_pit_stores_the_fields_and_normalises_count_and_load_time(string kernel)
    {
        using var kvm = Open(kernel);
        using var vm = kvm.CreateVm();
        vm.CreateIrqchip();
        vm.CreatePit();
        var ch = new PitChannelState(0, 0x1234, 3, true, 0x55, 4, 3, 0x77, 3, 2, true, 1, 12345);
        var before = vm.GetPit().Channel1.CountLoadTime;
        vm.SetPit(new PitState(ch, ch with { Count = 0x20000 }, ch with { Mode = 3 }, PitStateFlags.SpeakerDataOn | (PitStateFlags)0x100));
        var s = vm.GetPit();
        Assert.Equal(PitStateFlags.SpeakerDataOn | (PitStateFlags)0x100, s.Flags);
        Assert.Equal(ch with { Count = 0x10000 }, s.Channel0);
        Assert.Equal(0x20000u, s.Channel1.Count);
        Assert.True(s.Channel1.CountLoadTime >= before, "channel 1's count_load_time is the time of the SET");
        Assert.Equal(ch with { Mode = 3, Count = 0x10000, CountLoadTime = s.Channel2.CountLoadTime }, s.Channel2);
        vm.SetPitReinject(false);
        vm.SetPitReinject(true);
    }
}

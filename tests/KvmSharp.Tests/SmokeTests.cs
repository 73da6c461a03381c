// SPDX-License-Identifier: MIT

namespace KvmSharp.Tests;

public class SmokeTests
{
    [Fact]
    public void Smoke()
    {
        using var kvm = Kvm.Open();
        Assert.Equal(12, kvm.ApiVersion);
        Assert.Equal(GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared, kvm.SupportedGuestMemfdFlags);
        using var vm = kvm.CreateVm();
        using var gmem = vm.CreateGuestMemfd(4 * 4096, GuestMemfdFlags.Mmap | GuestMemfdFlags.InitShared);
        using var map = gmem.Map();
        map.Fill(0, 4 * 4096, 0xaa);
        Assert.Equal(0xaa, map.Read<byte>(100));
        gmem.PunchHole(0, 4096);
        Assert.Equal(0, map.Read<byte>(100));
        var st = gmem.Stat();
        Assert.Equal(4 * 4096, st.Size);
        using var vcpu = vm.CreateVcpu(0);
        var r = vcpu.GetRegs();
        Assert.Equal(0xfff0UL, r.rip);
    }
}

// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

public sealed class PoolTests
{
    /// <summary>
    /// Reset frees every page (a punch of the guest_memfd, MADV_DONTNEED of host memory) on each kernel with each
    /// backing: data the last user left is gone for the guest and the host, and the image and boot state are back.
    /// </summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.KernelsAndBackings), MemberType = typeof(TestKernel))]
    public void Reset_discards_guest_memory_so_no_data_survives(string kernel, GuestMemoryBacking backing)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(Sum.Image(), k.Options(backing));
        Assert.Equal(backing, vm.Memory.Backing);
        ulong scratch = Layout.CallDataEnd - 4096;
        vm.Memory.Fill(scratch, 4096, 0xAB);
        Assert.Equal(0xABUL * 4096, vm.Call("sum", scratch, 4096).Value);
        // Data the guest itself wrote (the reversed input, placed right after the input) must go too.
        Assert.Equal(3UL, vm.Call("reverse", "abc"u8).Value);
        Assert.Equal((byte)'c', vm.Memory.Read<byte>(Layout.CallData + 3));
        vm.Reset();
        Assert.Equal(0UL, vm.Memory.Read<ulong>(Layout.CallData));
        var top = new byte[4096];
        vm.Memory.Read(scratch, top);
        Assert.All(top, b => Assert.Equal(0, b));
        Assert.Equal(0UL, vm.Call("sum", scratch, 4096).Value);
        // And the image and boot state were written back.
        Assert.Equal(5UL, vm.Call("add", 2, 3).Value);
    }

    [KvmFact]
    public void Pool_hands_out_reset_vms_and_replaces_none_it_can_reuse()
    {
        using var pool = new MicroVmPool(Sum.Image(), GuestRun.Quick, size: 2);
        Assert.Equal(2, pool.Idle);
        var a = pool.Rent();
        var b = pool.Rent();
        Assert.Equal(RealKernel.Backing, a.Memory.Backing);
        Assert.Equal(0, pool.Idle);
        using (var c = pool.Rent()) Assert.Equal(9UL, c.Call("add", 4, 5).Value); // beyond the pool: created on demand
        Assert.Equal(GuestOutcome.Shutdown, a.CallAddress(0).Outcome);
        pool.Return(a);
        pool.Return(b);
        Assert.Equal(2, pool.Idle);
        var again = pool.Rent();
        Assert.False(again.IsFaulted);
        Assert.Equal(5050UL, again.Call("sum", DemoGuests.SumInput).Value);
        pool.Return(again);
    }
}

// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

public sealed class PoolTests
{
    [KvmFact]
    public void Reset_punches_guest_memory_so_no_data_survives()
    {
        using var vm = MicroVm.Create(Sum.Image(), GuestRun.Quick);
        ulong scratch = Layout.CallDataEnd - 4096;
        vm.Memory.Fill(scratch, 4096, 0xAB);
        Assert.Equal(0xABUL * 4096, vm.Call("sum", scratch, 4096).Value);
        vm.Reset();
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

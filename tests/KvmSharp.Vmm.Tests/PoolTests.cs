// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

public sealed class PoolTests
{
    /// <summary>
    /// Reset frees every page of a guest_memfd (a punch) and rewrites every changed page of host memory (dirty log plus
    /// the host's own writes) on each kernel with each backing: data the last user left, written by the host or the
    /// guest, on the image's pages or any other, is gone for the guest and the host, and the image and boot state are back.
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
        // Host writes through a span and Fill; a page only the guest wrote (reverse puts its output right after its
        // input, here on the next page, which neither the host nor the image touched); the image itself overwritten.
        // Host memory's first reset frees everything, the later ones restore the changed pages: three rounds.
        const ulong hostPage = 0x60000, filledPage = 0x80000, guestPage = filledPage + 0x1000;
        for (int round = 0; round < 3; round++)
        {
            vm.Memory.GetSpan(hostPage + 100, 200).Fill(0x5A);
            vm.Memory.Fill(filledPage, 0x1000, (byte)(0xCD + round));
            Assert.Equal(0x1000UL, vm.Call("reverse", filledPage, 0x1000).Value);
            Assert.Equal((0xCDUL + (ulong)round) * 4096, vm.Call("sum", guestPage, 4096).Value);
            vm.Memory.Write(scratch, (ulong)0x1122334455667788);
            vm.Memory.GetSpan(Layout.ImageBase, 64).Fill(0xCC);
            vm.Reset();
            Assert.Equal(0UL, vm.Memory.Read<ulong>(Layout.CallData));
            foreach (ulong page in new[] { scratch, hostPage, filledPage, guestPage })
            {
                var bytes = new byte[4096];
                vm.Memory.Read(page, bytes);
                Assert.All(bytes, b => Assert.Equal(0, b));
                Assert.Equal(0UL, vm.Call("sum", page, 4096).Value);
            }
            // And the image and boot state were written back.
            Assert.Equal(5UL, vm.Call("add", 2, 3).Value);
        }
    }

    /// <summary>Writes the tracking cannot see (through <see cref="GuestMemory.HostAddress"/>) are gone after Reset too.</summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.KernelsAndBackings), MemberType = typeof(TestKernel))]
    public void Reset_clears_writes_through_the_raw_host_address(string kernel, GuestMemoryBacking backing)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(Sum.Image(), k.Options(backing));
        const ulong page = 0x70000;
        for (int round = 0; round < 3; round++)
        {
            System.Runtime.InteropServices.Marshal.WriteInt64(vm.Memory.HostAddress + (nint)page, 0x0102030405060708);
            Assert.NotEqual(0UL, vm.Call("sum", page, 8).Value);
            vm.Reset();
            Assert.Equal(0UL, vm.Memory.Read<ulong>(page));
            Assert.Equal(0UL, vm.Call("sum", page, 8).Value);
            Assert.Equal(5UL, vm.Call("add", 2, 3).Value);
        }
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
        Assert.Equal(GuestOutcome.Exception, a.CallAddress(0).Outcome);
        pool.Return(a);
        pool.Return(b);
        Assert.Equal(2, pool.Idle);
        var again = pool.Rent();
        Assert.False(again.IsFaulted);
        Assert.Equal(5050UL, again.Call("sum", DemoGuests.SumInput).Value);
        pool.Return(again);
    }
}

// SPDX-License-Identifier: MIT
using Iced.Intel;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Tests.Infrastructure;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// REP MOVS of every element size over page boundaries and overlapping ranges, on this machine's kvm_pvm and on the
/// emulated kernel (whose interpreter copies whole page runs where that gives the element loop's result,
/// X86Emulator.StringFast.cs): the bytes, rSI, rDI and rCX afterwards are the element-by-element forward copy's (SDM
/// Vol. 2B MOVS, REP) — a destination just above its source repeats the bytes the copy has just written.
/// </summary>
public sealed class RepMovsTests
{
    private const ulong Region = 0x200000, RegionSize = 0x40000;

    private static GuestImage Image()
    {
        var p = new GuestProgram();
        var a = p.Asm;
        Label start = p.Export("_start");
        p.Place(ref start);
        p.ExitWith(0);
        // copy_N(src, dst, count) → (rSI − src) | (rDI − dst) << 24 | rCX << 48.
        foreach (int width in new[] { 1, 2, 4, 8 })
        {
            Label f = p.Export($"copy_{width}");
            p.Place(ref f);
            a.mov(r8, rdi);
            a.mov(r9, rsi);
            a.mov(rcx, rdx);
            a.mov(rdi, r9);
            a.mov(rsi, r8);
            switch (width)
            {
                case 1: a.rep.movsb(); break;
                case 2: a.rep.movsw(); break;
                case 4: a.rep.movsd(); break;
                default: a.rep.movsq(); break;
            }
            a.sub(rsi, r8);
            a.sub(rdi, r9);
            a.shl(rdi, 24);
            a.shl(rcx, 48);
            a.mov(rax, rsi);
            a.or(rax, rdi);
            a.or(rax, rcx);
            a.ret();
        }
        return p.Build(start);
    }

    public static TheoryData<string, GuestMemoryBacking, int, ulong, ulong, ulong> Cases()
    {
        var data = new TheoryData<string, GuestMemoryBacking, int, ulong, ulong, ulong>();
        foreach (var row in TestKernel.KernelsAndBackings)
        {
            var (kernel, backing) = ((string)row[0], (GuestMemoryBacking)row[1]);
            data.Add(kernel, backing, 1, 0x10, 0x20003, 20000);      // apart, across pages at different offsets
            data.Add(kernel, backing, 8, 0xFF8, 0x10000, 3000);      // qwords from a page's last qword on
            data.Add(kernel, backing, 4, 0x2FFE, 0x8001, 1500);      // dwords straddling pages on both sides
            data.Add(kernel, backing, 1, 0x100, 0x101, 9000);        // destination one byte above: the first byte repeated
            data.Add(kernel, backing, 8, 0x1000, 0x1004, 1000);      // half a qword above: a repeating 4-byte pattern
            data.Add(kernel, backing, 2, 0x5001, 0x5000, 7000);      // destination below the source, overlapping
            data.Add(kernel, backing, 1, 0x7000, 0x7000, 5000);      // onto itself
            data.Add(kernel, backing, 8, 0x30, 0x9000, 0);           // no elements
        }
        return data;
    }

    [SkippableTheory]
    [MemberData(nameof(Cases))]
    public void Rep_movs_leaves_the_bytes_and_registers_of_an_element_by_element_forward_copy(string kernel, GuestMemoryBacking backing, int width, ulong src, ulong dst, ulong count)
    {
        using var k = TestKernel.Open(kernel);
        using var vm = MicroVm.Create(Image(), k.Options(backing) with { MemorySize = 4 << 20, Timeout = TimeSpan.FromSeconds(60) });
        byte[] before = new byte[RegionSize];
        for (int i = 0; i < before.Length; i++) before[i] = (byte)((i * 7) ^ (i >> 8));
        vm.Memory.Write(Region, before);

        var r = vm.Call($"copy_{width}", Region + src, Region + dst, count);
        Assert.True(r.IsSuccess, r.ToString());

        byte[] expected = (byte[])before.Clone();
        for (ulong e = 0; e < count; e++)   // each element read whole, then written
            expected.AsSpan((int)(src + e * (ulong)width), width).ToArray().CopyTo(expected.AsSpan((int)(dst + e * (ulong)width)));
        byte[] after = new byte[RegionSize];
        vm.Memory.Read(Region, after);
        int firstDifference = after.AsSpan().CommonPrefixLength(expected);
        Assert.True(firstDifference == after.Length, $"byte 0x{firstDifference:X} of the region differs from what the element loop leaves");
        ulong moved = count * (ulong)width;
        Assert.Equal(moved | moved << 24, r.Value);   // rSI and rDI moved by the bytes copied, rCX 0
    }
}

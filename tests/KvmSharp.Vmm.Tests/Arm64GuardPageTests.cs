// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi.Arm64;
using KvmSharp.Vmm.Arch.Arm64;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Guests.Arm64;
using KvmSharp.Vmm.Loader;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// arm64 micro-VMs run with the stage-1 MMU on over the VMM's identity tables (Arch/Arm64/Layout.cs,
/// Arm64PageTables; GUEST-ABI.md "arm64 micro-VMs"): the null page and the stack guard are unmapped, so a null
/// dereference and a stack overflow are data aborts (translation faults) reported as <see cref="GuestOutcome.Exception"/>;
/// RAM is Normal memory (an unaligned load works), the port window Device memory (the console still works), and
/// Reset rewrites the tables and the MMU registers. On the emulated arm64 kernel (this x86 machine has no arm64 KVM).
/// </summary>
public sealed class Arm64GuardPageTests
{
    /// <summary>ESR_EL1 of a data abort from EL1 (EC 0x25, IL) with DFSC = translation fault, level 3 (0x07).</summary>
    private const ulong TranslationFaultLevel3 = 0x9600_0007;

    /// <summary>The WnR bit of a data abort's ISS (bit 6): the access was a write.</summary>
    private const ulong WnR = 1UL << 6;

    private static void OnArm64(Action<Kvm> body) => Arm64Kernel.Run(body);

    private static MicroVmOptions Options(Kvm kvm) => Arm64Kernel.Options(kvm);

    /// <summary>
    /// The test guest's functions: load(addr) → [addr] (8 bytes), store(addr, v), recurse() (pushes x30 and calls itself
    /// forever), sysregs(n) → SCTLR_EL1 / TCR_EL1 / MAIR_EL1 / TTBR0_EL1 for n = 0..3.
    /// </summary>
    private static GuestImage Image()
    {
        var p = new Arm64Program();
        var a = p.Asm;
        var start = p.Export("_start");
        var load = p.Export("load");
        var store = p.Export("store");
        var recurse = p.Export("recurse");
        var sysregs = p.Export("sysregs");
        a.Bind(start);
        p.ExitWith(0);

        a.Bind(load);
        a.Ldr(X(0), X(0));
        a.Ret();

        a.Bind(store);
        a.Str(X(1), X(0));
        a.Ret();

        a.Bind(recurse);
        a.SubImm(Sp, Sp, 16);
        a.Str(X(30), Sp, 0);
        a.Bl(recurse);
        a.Ret();

        a.Bind(sysregs);
        ulong[] encodings = [KvmArm64SysRegs.SCTLR_EL1, KvmArm64SysRegs.TCR_EL1, KvmArm64SysRegs.MAIR_EL1, KvmArm64SysRegs.TTBR0_EL1];
        for (int i = 0; i < encodings.Length; i++)
        {
            var next = a.CreateLabel();
            a.CmpImm(X(0), (uint)i);
            a.B(A64Condition.NE, next);
            a.Mrs(X(0), encodings[i]);
            a.Ret();
            a.Bind(next);
        }
        a.Movz(X(0), 0);
        a.Ret();
        return p.Build(start);
    }

    private static void AssertTranslationFault(CallResult r, ulong far, bool write = false)
    {
        Assert.Equal(GuestOutcome.Exception, r.Outcome);
        Assert.NotNull(r.Exception);
        Assert.Equal(GuestArchitecture.Arm64, r.Exception!.Architecture);
        Assert.Equal(0x25u, Arm64Exceptions.ExceptionClass(r.Exception.ErrorCode!.Value));
        Assert.Equal(TranslationFaultLevel3 | (write ? WnR : 0), r.Exception.ErrorCode);
        Assert.Equal(far, r.Exception.Cr2);
        Assert.Equal(4, r.Exception.Vector); // current EL with SP_ELx, synchronous
        Assert.Contains("data abort (EC 0x25)", r.Detail, StringComparison.Ordinal);
        Assert.Contains($"far 0x{far:X}", r.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void A_null_dereference_is_a_data_abort_with_far_0() => OnArm64(kvm =>
    {
        var image = Image();
        using var vm = MicroVm.Create(image, Options(kvm));
        var r = vm.Call("load", [0]);
        AssertTranslationFault(r, 0);
        Assert.Equal(image.Exports["load"], r.Exception!.Rip);
        Assert.True(vm.IsFaulted);

        vm.Reset();
        AssertTranslationFault(vm.Call("store", [0x8, 1]), 0x8, write: true);
    });

    [Fact]
    public void A_stack_overflow_by_recursion_is_a_data_abort_in_the_guard_page_reported_without_a_stack() => OnArm64(kvm =>
    {
        var image = Image();
        using var vm = MicroVm.Create(image, Options(kvm));
        var r = vm.Call("recurse");
        // The first store below the stack's bottom: SP = StackBottom - 16, in the guard page; the handler, which uses
        // no stack, still reported it, with SP where the fault left it.
        ulong far = Layout.StackBottom - 16;
        AssertTranslationFault(r, far, write: true);
        Assert.True(Arm64PageTables.IsGuardPage(r.Exception!.Cr2!.Value));
        Assert.InRange(r.Exception.Cr2!.Value, Layout.StackGuard, Layout.StackBottom - 1);
        Assert.Equal(far, r.Exception.Rsp);
        Assert.Equal(image.Exports["recurse"] + 4, r.Exception.Rip); // the STR after the SUB
    });

    [Fact]
    public void Unaligned_loads_from_ram_work_because_ram_is_normal_memory() => OnArm64(kvm =>
    {
        using var vm = MicroVm.Create(Image(), Options(kvm));
        byte[] bytes = [.. Enumerable.Range(1, 32).Select(i => (byte)i)];
        // load(CallData + 1 … + 7): none 8-byte aligned.
        vm.Memory.Write(Arch.X86_64.Layout.CallData, bytes);
        for (ulong offset = 1; offset < 8; offset++)
        {
            var r = vm.Call("load", [Arch.X86_64.Layout.CallData + offset]);
            Assert.True(r.IsSuccess, r.ToString());
            Assert.Equal(BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan((int)offset)), r.Value);
        }
        // Across a 4 KiB page boundary too (both pages are RAM).
        ulong boundary = Arch.X86_64.Layout.ImageBase + 0x1000 - 3;
        var across = vm.Call("load", [boundary]);
        Assert.True(across.IsSuccess, across.ToString());
    });

    [Fact]
    public void The_guest_reads_the_mmu_on_with_caches_and_the_vmms_translation_registers() => OnArm64(kvm =>
    {
        using var vm = MicroVm.Create(Image(), Options(kvm));
        ulong sctlr = vm.Call("sysregs", [0]).Value!.Value;
        Assert.Equal(1UL, sctlr & 1);                 // M
        Assert.Equal(0UL, sctlr & 2);                 // A: no alignment checks
        Assert.Equal(4UL, sctlr & 4);                 // C
        Assert.Equal(1UL << 12, sctlr & (1UL << 12)); // I
        Assert.Equal(0x00C5_0078UL, sctlr & 0x00C5_0078UL); // KVM's reset value (sys_regs.c) is kept
        Assert.Equal(Layout.EntryTcr, vm.Call("sysregs", [1]).Value);
        Assert.Equal(Layout.EntryMair, vm.Call("sysregs", [2]).Value);
        Assert.Equal(Layout.TranslationTables, vm.Call("sysregs", [3]).Value);
    });

    [Fact]
    public void The_port_window_is_still_reached_the_console_exit_and_an_unclaimed_port() => OnArm64(kvm =>
    {
        using (var hello = MicroVm.Create(Arm64Hello.Image(), Options(kvm)))
        {
            var r = hello.Run();
            Assert.Equal(GuestOutcome.Exit, r.Outcome);
            Assert.Equal(Hello.Greeting, r.Console);
        }
        using var bad = MicroVm.Create(Arm64Misbehaving.BadMmioImage(), Options(kvm));
        var u = bad.Run();
        Assert.Equal(GuestOutcome.UnhandledMmio, u.Outcome);
        Assert.Equal((ushort)0x1234, u.Port);
    });

    [Fact]
    public void Addresses_outside_ram_and_the_port_window_and_read_only_pages_fault() => OnArm64(kvm =>
    {
        using var vm = MicroVm.Create(Image(), Options(kvm) with { MemorySize = 4 << 20 });
        // Past the end of RAM (unmapped 2 MiB block: a translation fault at level 2).
        var beyond = vm.Call("load", [4 << 20]);
        Assert.Equal(GuestOutcome.Exception, beyond.Outcome);
        Assert.Equal(0x9600_0006UL, beyond.Exception!.ErrorCode);
        Assert.Equal(4UL << 20, beyond.Exception.Cr2);
        // The last byte of RAM is mapped.
        vm.Reset();
        Assert.True(vm.Call("store", [(4 << 20) - 8, 5]).IsSuccess);
        // A write to the trampoline's page or the translation tables: a permission fault, level 3 (DFSC 0x0F, WnR).
        foreach (ulong address in new[] { Layout.Trampoline, Layout.TranslationTables, Layout.Vectors })
        {
            vm.Reset();
            var w = vm.Call("store", [address, 0]);
            Assert.Equal(GuestOutcome.Exception, w.Outcome);
            Assert.Equal(0x9600_004FUL, w.Exception!.ErrorCode);
            Assert.Equal(address, w.Exception.Cr2);
        }
        // … but they are readable.
        vm.Reset();
        Assert.True(vm.Call("load", [Layout.TranslationTables]).IsSuccess);
    });

    [Theory]
    [InlineData(GuestMemoryBacking.GuestMemfd)]
    [InlineData(GuestMemoryBacking.HostMemory)]
    public void Reset_restores_the_tables_and_the_mmu_so_guard_pages_keep_faulting(GuestMemoryBacking backing) => OnArm64(kvm =>
    {
        using var vm = MicroVm.Create(Image(), Options(kvm) with { Memory = backing });
        for (int round = 0; round < 3; round++)
        {
            AssertTranslationFault(vm.Call("load", [0]), 0);
            vm.Reset();
            AssertTranslationFault(vm.Call("recurse"), Layout.StackBottom - 16, write: true);
            vm.Reset();
            Assert.Equal(1UL, vm.Call("sysregs", [0]).Value & 1);
            Assert.True(vm.Call("store", [Arch.X86_64.Layout.CallData, 7]).IsSuccess);
        }
        // The tables in memory are the VMM's after a reset (the host reads them back).
        vm.Reset();
        Span<byte> descriptor = stackalloc byte[8];
        vm.Memory.Read(Layout.TranslationTables, descriptor);
        Assert.Equal(0x2003UL, BinaryPrimitives.ReadUInt64LittleEndian(descriptor)); // L1[0] → the RAM L2 table
    });
}

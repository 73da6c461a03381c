// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Conformance.Guests;
using KvmSharp.Kernel;
using KvmSharp.Vmm;
using Xunit;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Conformance.Cases;

/// <summary>
/// The x86 CPUID ioctls (arch/x86/kvm/cpuid.c kvm_dev_ioctl_get_cpuid, kvm_vcpu_ioctl_set_cpuid2,
/// kvm_vcpu_ioctl_get_cpuid2, kvm_set_cpuid) and the CPUID instruction over the table (kvm_cpuid,
/// get_out_of_range_cpuid_entry), with raw kvm_cpuid2 buffers so nent write-back and padding are visible. The tables
/// avoid leaves 1, 7 and 0xD where the host rewrites them (HostDeviations.KvmPvmSetCpuidRewritesLeaves).
/// </summary>
public static class CpuidRules
{
    private const uint Sig = KvmCpuid.KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
    private static readonly int Header = Marshal.SizeOf<kvm_cpuid2>();
    private static readonly int EntrySize = Marshal.SizeOf<kvm_cpuid_entry2>();

    // "GenuineIntel" and "AuthenticAMD" as EBX, EDX, ECX.
    private static CpuidEntry Intel(uint max) => CpuidEntry.Leaf(0, max, 0x756e_6547, 0x6c65_746e, 0x4965_6e69);
    private static CpuidEntry Amd(uint max) => CpuidEntry.Leaf(0, max, 0x6874_7541, 0x444d_4163, 0x6974_6e65);

    /// <summary>A table no kernel rewrites: vendor, leaf 5, subleaves of 6 and 0xb, the KVM and extended leaves.</summary>
    private static CpuidEntry[] IntelTable =>
    [
        Intel(0xb),
        CpuidEntry.Leaf(5, 0x1234, 0x5678, 0x9abc, 0xdef0),
        CpuidEntry.Subleaf(6, 1, 0x61, 0x62, 0x63, 0x64),
        CpuidEntry.Subleaf(0xb, 0, 2, 0, 0, 0x66),
        CpuidEntry.Subleaf(0xb, 1, 1, 0, 0, 0x77),
        CpuidEntry.Leaf(0x4000_0000, 0x4000_0001, 0x4b4d_564b, 0x564b_4d56, 0x4d),
        CpuidEntry.Leaf(0x8000_0000, 0x8000_0008, 0, 0, 0),
        CpuidEntry.Leaf(0x8000_0008, 0x3030, 0, 0, 0),
    ];

    private static byte[] Buffer(uint nent, int capacity, byte fill = 0)
    {
        byte[] b = new byte[Header + (capacity * EntrySize)];
        b.AsSpan().Fill(fill);
        MemoryMarshal.Write(b, new kvm_cpuid2 { nent = nent, padding = 0 });
        return b;
    }

    private static byte[] Buffer(IReadOnlyList<kvm_cpuid_entry2> entries, uint? nent = null)
    {
        byte[] b = Buffer(nent ?? (uint)entries.Count, entries.Count);
        for (int i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            MemoryMarshal.Write(b.AsSpan(Header + (i * EntrySize)), in e);
        }
        return b;
    }

    private static kvm_cpuid2 HeaderOf(byte[] b) => MemoryMarshal.Read<kvm_cpuid2>(b);

    private static kvm_cpuid_entry2 EntryOf(byte[] b, int i) => MemoryMarshal.Read<kvm_cpuid_entry2>(b.AsSpan(Header + (i * EntrySize)));

    private static kvm_cpuid_entry2[] Native(IEnumerable<CpuidEntry> entries) => [.. entries.Select(e => e.ToNative())];

    private static long Get2(CaseContext ctx, Vcpu vcpu, byte[] b) => ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_GET_CPUID2, b);

    private static long Set2(CaseContext ctx, Vcpu vcpu, byte[] b) => ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_CPUID2, b);

    [ConformanceCase("arch/x86/kvm/cpuid.c kvm_dev_ioctl_get_cpuid: nent below the table is E2BIG with nent kept; a larger one is written back, entries beyond it untouched")]
    public static void supported_cpuid_e2big_and_nent_write_back(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        foreach (uint small in new uint[] { 0, 1, 2 })
        {
            byte[] b = Buffer(small, 2);
            CaseContext.AssertErrno(Errno.E2BIG, ctx.Kernel.Ioctl(kvm.Handle, KvmIoctls.KVM_GET_SUPPORTED_CPUID, b), $"nent={small}");
            Assert.Equal(small, HeaderOf(b).nent);
        }
        byte[] full = Buffer(256, 256, fill: 0xff);
        MemoryMarshal.Write(full, new kvm_cpuid2 { nent = 256, padding = 0xdead });
        Assert.Equal(0, ctx.Kernel.Ioctl(kvm.Handle, KvmIoctls.KVM_GET_SUPPORTED_CPUID, full));
        var h = HeaderOf(full);
        Assert.InRange(h.nent, 3u, 255u);
        Assert.Equal(0xdeadu, h.padding); // the header is copied back whole: padding as given
        Assert.Equal(0xffff_ffffu, EntryOf(full, (int)h.nent).function);

        // One fewer than the table: E2BIG; above KVM_MAX_CPUID_ENTRIES: clamped, the same answer.
        byte[] oneShort = Buffer(h.nent - 1, 256);
        CaseContext.AssertErrno(Errno.E2BIG, ctx.Kernel.Ioctl(kvm.Handle, KvmIoctls.KVM_GET_SUPPORTED_CPUID, oneShort), "nent = table - 1");
        byte[] exact = Buffer(h.nent, (int)h.nent);
        Assert.Equal(0, ctx.Kernel.Ioctl(kvm.Handle, KvmIoctls.KVM_GET_SUPPORTED_CPUID, exact));
        byte[] huge = Buffer(100_000, 256);
        Assert.Equal(0, ctx.Kernel.Ioctl(kvm.Handle, KvmIoctls.KVM_GET_SUPPORTED_CPUID, huge));
        Assert.Equal(h.nent, HeaderOf(huge).nent);
        CaseContext.AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(kvm.Handle, KvmIoctls.KVM_GET_SUPPORTED_CPUID, 0UL), "NULL");
    }

    [ConformanceCase("arch/x86/kvm/cpuid.c kvm_dev_ioctl_get_cpuid: basic leaves, then extended, then KVM's 0x40000000 \"KVMKVMKVM\" and 0x40000001")]
    public static void supported_cpuid_order_and_kvm_signature(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        var table = kvm.GetSupportedCpuid();
        Assert.Equal(0u, table[0].Function);
        static int Class(uint f) => f >= 0x4000_0000 && f < 0x8000_0000 ? 3 : f >= 0xc000_0000 ? 2 : f >= 0x8000_0000 ? 1 : 0;
        for (int i = 1; i < table.Count; i++)
        {
            var (a, b) = (table[i - 1], table[i]);
            Assert.True(Class(a.Function) < Class(b.Function) || (Class(a.Function) == Class(b.Function) &&
                (a.Function < b.Function || (a.Function == b.Function && a.Index < b.Index))), $"order at {i}: {a} then {b}");
        }
        var sig = Assert.Single(table, e => e.Function == 0x4000_0000);
        Assert.Equal((0x4000_0001u, 0x4b4d_564bu, 0x564b_4d56u, 0x4du), (sig.Eax, sig.Ebx, sig.Ecx, sig.Edx));
        Assert.Single(table, e => e.Function == 0x4000_0001);
        Assert.All(table.Where(e => e.Function is 7 or 0xd), e => Assert.True(e.HasSignificantIndex, e.ToString()));
        Assert.Contains(table, e => e.Function == 0x8000_0000);
    }

    [ConformanceCase("arch/x86/kvm/cpuid.c sanity_check_entries: KVM_GET_EMULATED_CPUID wants zero padding in every entry (EINVAL), KVM_GET_SUPPORTED_CPUID does not look")]
    public static void emulated_cpuid_checks_padding(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        Assert.Contains(kvm.GetEmulatedCpuid(), e => e.Function == 0);
        foreach (uint request in new[] { KvmIoctls.KVM_GET_EMULATED_CPUID, KvmIoctls.KVM_GET_SUPPORTED_CPUID })
        {
            byte[] b = Buffer(256, 256);
            b[Header + (3 * EntrySize) + 32] = 1; // entries[3].padding[1]
            long rc = ctx.Kernel.Ioctl(kvm.Handle, request, b);
            if (request == KvmIoctls.KVM_GET_EMULATED_CPUID) CaseContext.AssertErrno(Errno.EINVAL, rc, "dirty padding");
            else Assert.Equal(0, rc);
        }
    }

    [ConformanceCase("arch/x86/kvm/cpuid.c kvm_vcpu_ioctl_set_cpuid2 / get_cpuid2: entries come back in order with their padding; nent above 256 is E2BIG; a short GET is E2BIG with nent kept")]
    public static void set_get_round_trip(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu(0);
        Assert.Empty(vcpu.GetCpuid()); // no table before KVM_SET_CPUID2

        var given = Native(IntelTable);
        given[1].padding[0] = 7;
        given[1].padding[2] = 9;
        Assert.Equal(0, Set2(ctx, vcpu, Buffer(given)));
        byte[] back = Buffer(64, 64);
        Assert.Equal(0, Get2(ctx, vcpu, back));
        Assert.Equal((uint)given.Length, HeaderOf(back).nent);
        for (int i = 0; i < given.Length; i++)
        {
            var e = EntryOf(back, i);
            Assert.Equal(CpuidEntry.FromNative(given[i]), CpuidEntry.FromNative(e));
            Assert.Equal(given[i].padding[0], e.padding[0]);
            Assert.Equal(given[i].padding[2], e.padding[2]);
        }

        byte[] shortGet = Buffer((uint)given.Length - 1, 64);
        CaseContext.AssertErrno(Errno.E2BIG, Get2(ctx, vcpu, shortGet), "nent = table - 1");
        Assert.Equal((uint)given.Length - 1, HeaderOf(shortGet).nent);

        CaseContext.AssertErrno(Errno.E2BIG, Set2(ctx, vcpu, Buffer(257, 257)), "nent=257");
        Assert.Equal(IntelTable, vcpu.GetCpuid()); // unchanged
        Assert.Equal(0, Set2(ctx, vcpu, Buffer(256, 256)));
        Assert.Equal(256, vcpu.GetCpuid().Count);
        Assert.Equal(0, Set2(ctx, vcpu, Buffer(0, 0)));
        Assert.Empty(vcpu.GetCpuid());
        CaseContext.AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_SET_CPUID2, 0UL), "SET NULL");
        CaseContext.AssertErrno(Errno.EFAULT, ctx.Kernel.Ioctl(vcpu.Handle, KvmIoctls.KVM_GET_CPUID2, 0UL), "GET NULL");
    }

    [ConformanceCase("arch/x86/kvm/cpuid.c kvm_check_cpuid: CPUID.0x80000008 virtual-address width must be 0, 48 or 57 (EINVAL); XTILE_DATA in 0xD.0 needs guest permission (EPERM)")]
    public static void set_cpuid_checks_the_table(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu(0);
        vcpu.SetCpuid(IntelTable);
        foreach (uint bits in new uint[] { 40, 47, 64 })
        {
            var e = AssertErrnoOf(Errno.EINVAL, () => vcpu.SetCpuid([CpuidEntry.Leaf(0x8000_0008, (bits << 8) | 0x27, 0, 0, 0)]));
            Assert.Equal("KVM_SET_CPUID2", e.Operation);
        }
        Assert.Equal(IntelTable, vcpu.GetCpuid()); // a refused table leaves the old one
        AssertErrnoOf(Errno.EPERM, () => vcpu.SetCpuid([CpuidEntry.Subleaf(0xd, 0, 0x6_0000, 0, 0, 0)]));
        foreach (uint bits in new uint[] { 0, 48, 57 })
            vcpu.SetCpuid([CpuidEntry.Leaf(0x8000_0008, (bits << 8) | 0x27, 0, 0, 0)]);
    }

    [ConformanceCase("arch/x86/kvm/cpuid.c kvm_set_cpuid + kvm_cpuid_check_equal: after KVM_RUN only the same table (as read back; padding ignored) is accepted, anything else is EINVAL")]
    public static void set_cpuid_after_run_must_be_identical(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var g = RealModeGuest.Create(kvm, a => a.hlt(), backing: GuestMemoryBacking.HostMemory);
        var vcpu = g.Vcpu;
        var table = IntelTable;
        vcpu.SetCpuid(table);
        vcpu.SetCpuid(table[..^1]); // before the first run anything goes
        vcpu.SetCpuid(table);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, vcpu.Run().Reason);

        var current = vcpu.GetCpuid();
        vcpu.SetCpuid(current);
        var padded = Native(current);
        padded[0].padding[1] = 5;
        Assert.Equal(0, Set2(ctx, vcpu, Buffer(padded)));
        AssertErrnoOf(Errno.EINVAL, () => vcpu.SetCpuid(current.Take(current.Count - 1).ToArray()));
        AssertErrnoOf(Errno.EINVAL, () => vcpu.SetCpuid(current.Reverse().ToArray()));
        AssertErrnoOf(Errno.EINVAL, () => vcpu.SetCpuid([]));
        var changed = current.ToArray();
        changed[1] = changed[1] with { Eax = changed[1].Eax + 1 };
        AssertErrnoOf(Errno.EINVAL, () => vcpu.SetCpuid(changed));
        changed[1] = current[1] with { Flags = current[1].Flags ^ Sig };
        AssertErrnoOf(Errno.EINVAL, () => vcpu.SetCpuid(changed));
        AssertErrnoOf(Errno.E2BIG, () => vcpu.SetCpuid(new CpuidEntry[257])); // checked before "has run"
        Assert.Equal(current, vcpu.GetCpuid());
    }

    [ConformanceCase("arch/x86/kvm/cpuid.c kvm_update_cpuid_runtime: CPUID.1 EDX.APIC follows IA32_APIC_BASE.EN (enabled at reset), ECX.OSXSAVE follows CR4.OSXSAVE")]
    public static void leaf_1_runtime_bits(CaseContext ctx)
    {
        using var kvm = ctx.OpenKvm();
        using var vm = kvm.CreateVm();
        using var vcpu = vm.CreateVcpu(0);
        vcpu.SetCpuid([Intel(1), CpuidEntry.Leaf(1, 0x906a3, 0, 0, 0)]);
        var leaf1 = Assert.Single(vcpu.GetCpuid(), e => e.Function == 1);
        Assert.Equal(0x906a3u, leaf1.Eax);
        Assert.NotEqual(0u, leaf1.Edx & (1u << 9)); // APIC
        Assert.Equal(0u, leaf1.Ecx & (1u << 27)); // OSXSAVE: CR4.OSXSAVE is clear at reset
        if (!HostDeviations.KvmPvmSetCpuidRewritesLeaves(ctx.Target.IsReal))
            Assert.Equal((0u, 1u << 9), (leaf1.Ecx, leaf1.Edx));
    }

    /// <summary>(EAX, ECX) in, (EAX, EBX, ECX, EDX) out.</summary>
    private static (uint, uint, uint, uint)[] RunCpuid(CaseContext ctx, CpuidEntry[]? table, (uint Eax, uint Ecx)[] queries)
    {
        const int Results = 0x8000;
        using var kvm = ctx.OpenKvm();
        using var g = RealModeGuest.Create(kvm, a =>
        {
            for (int i = 0; i < queries.Length; i++)
            {
                a.mov(eax, queries[i].Eax);
                a.mov(ecx, queries[i].Ecx);
                a.mov(ebx, 0x5555_5555u);
                a.mov(edx, 0xaaaa_aaaau);
                a.cpuid();
                a.mov(__dword_ptr[Results + (16 * i)], eax);
                a.mov(__dword_ptr[Results + (16 * i) + 4], ebx);
                a.mov(__dword_ptr[Results + (16 * i) + 8], ecx);
                a.mov(__dword_ptr[Results + (16 * i) + 12], edx);
            }
            a.hlt();
        }, backing: GuestMemoryBacking.HostMemory);
        if (table is not null) g.Vcpu.SetCpuid(table);
        Assert.Equal(KvmExitReason.KVM_EXIT_HLT, g.Vcpu.Run().Reason);
        return [.. queries.Select((_, i) => (
            g.Read<uint>((ulong)(Results + (16 * i))), g.Read<uint>((ulong)(Results + (16 * i) + 4)),
            g.Read<uint>((ulong)(Results + (16 * i) + 8)), g.Read<uint>((ulong)(Results + (16 * i) + 12))))];
    }

    [ConformanceCase("arch/x86/kvm/cpuid.c kvm_cpuid: exact match on function (and index when significant); a missing leaf above its class's maximum reads the max basic leaf with the same index; 0xb passes CL through")]
    public static void cpuid_instruction_reads_the_table(CaseContext ctx)
    {
        (uint, uint)[] queries =
        [
            (0, 0), (5, 9), (6, 1), (6, 2), (0xb, 0), (0xb, 0x1f5), (0xc, 3),
            (0x4000_0000, 0), (0x4000_0001, 0), (0x4000_0100, 0), (0x8000_0008, 0), (0x8000_0009, 0), (0xc000_0000, 1),
        ];
        var got = RunCpuid(ctx, IntelTable, queries);
        var t = IntelTable;
        (uint, uint, uint, uint) R(CpuidEntry e) => (e.Eax, e.Ebx, e.Ecx, e.Edx);
        (uint, uint, uint, uint) zero = (0, 0, 0, 0);
        (uint, uint, uint, uint)[] expected =
        [
            R(t[0]), R(t[1]), R(t[2]), zero, R(t[3]), (0, 0, 0xf5, 0x77), (0, 0, 3, 0x77),
            R(t[5]), zero, R(t[3]), R(t[7]), R(t[3]), R(t[4]), // 0xc0000000.1 → 0xb.1, the index kept
        ];
        for (int i = 0; i < queries.Length; i++)
            Assert.True(expected[i] == got[i], $"CPUID{queries[i]}: expected {expected[i]}, got {got[i]}");
    }

    [ConformanceCase("arch/x86/kvm/cpuid.c get_out_of_range_cpuid_entry: no redirection for an AMD guest vendor or without leaf 0; no table: every leaf reads 0")]
    public static void cpuid_instruction_without_redirection(CaseContext ctx)
    {
        (uint, uint)[] queries = [(2, 0), (0x8000_0009, 0), (0, 0)];
        var amd = RunCpuid(ctx, [Amd(1), CpuidEntry.Leaf(0x8000_0000, 0x8000_0001, 0, 0, 0)], queries);
        Assert.Equal([(0u, 0u, 0u, 0u), (0u, 0u, 0u, 0u), (1u, 0x6874_7541u, 0x444d_4163u, 0x6974_6e65u)], amd);
        var noLeaf0 = RunCpuid(ctx, [CpuidEntry.Leaf(5, 1, 2, 3, 4)], [(2, 0), (5, 0), (0, 0)]);
        Assert.Equal([(0u, 0u, 0u, 0u), (1u, 2u, 3u, 4u), (0u, 0u, 0u, 0u)], noLeaf0);
        var none = RunCpuid(ctx, null, [(0, 0), (1, 0), (0x4000_0000, 0), (0x8000_0000, 0)]);
        Assert.All(none, r => Assert.Equal((0u, 0u, 0u, 0u), r));
    }

    private static KvmException AssertErrnoOf(Errno errno, Action action) => CaseContext.AssertErrno(errno, action);
}

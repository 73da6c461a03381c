// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using Iced.Intel;
using KvmSharp.Vmm.Arch.X86_64;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Snapshots;
using KvmSharp.Vmm.Tests.Infrastructure;
using static Iced.Intel.AssemblerRegisters;

namespace KvmSharp.Vmm.Tests.Snapshots;

/// <summary>
/// A snapshot carries the vCPU state a guest sets in its init and that survives between calls: FS base (in the
/// sregs), KERNEL_GS_BASE and STAR (MSRs). Each body runs on the real kernel and on the emulator, with each backing.
/// </summary>
public sealed class SnapshotVcpuStateTests
{
    private const ulong FsData = 0x16_0000;
    private const ulong FsMarker = 0x1122_3344_5566_7788;
    private const ulong InitKernelGs = 0xFFFF_8000_1234_5000;
    private const ulong InitStar = 0x0023_0010_0000_0000;

    private static readonly (ulong Fs, ulong KernelGs, ulong Star) s_init = (FsData, InitKernelGs, InitStar);

    private static readonly Lazy<GuestImage> s_image = new(BuildImage);

    /// <summary>
    /// <c>init()</c>: FS base = <see cref="FsData"/> (where it stores <see cref="FsMarker"/>), KERNEL_GS_BASE and STAR
    /// by WRMSR. <c>set(fs, kgs, star)</c>: WRMSR all three. <c>read(which)</c>: RDMSR of FS_BASE (0),
    /// KERNEL_GS_BASE (1), STAR (2), or the u64 at FS:0 (3).
    /// </summary>
    private static GuestImage BuildImage()
    {
        var p = new GuestProgram();
        Assembler a = p.Asm;
        Label start = p.Export("_start"), init = p.Export("init"), set = p.Export("set"), read = p.Export("read");

        p.Place(ref start);
        p.ExitWith(0);

        p.Place(ref init);
        a.mov(rax, FsData);
        a.mov(rcx, FsMarker);
        a.mov(__qword_ptr[rax], rcx);
        a.mov(rdi, FsData);
        a.mov(rsi, InitKernelGs);
        a.mov(rdx, InitStar);
        // Falls into set.

        p.Place(ref set);
        a.mov(r8, rdx);
        Wrmsr(a, X86Msr.FsBase, rdi);
        Wrmsr(a, X86Msr.KernelGsBase, rsi);
        Wrmsr(a, X86Msr.Star, r8);
        a.xor(eax, eax);
        a.ret();

        p.Place(ref read);
        Label kgs = a.CreateLabel(), star = a.CreateLabel(), fsLoad = a.CreateLabel(), combine = a.CreateLabel();
        a.cmp(rdi, 1);
        a.je(kgs);
        a.cmp(rdi, 2);
        a.je(star);
        a.cmp(rdi, 3);
        a.je(fsLoad);
        a.mov(ecx, X86Msr.FsBase);
        a.jmp(combine);
        a.Label(ref kgs);
        a.mov(ecx, X86Msr.KernelGsBase);
        a.jmp(combine);
        a.Label(ref star);
        a.mov(ecx, X86Msr.Star);
        a.Label(ref combine);
        a.rdmsr();
        a.shl(rdx, 32);
        a.or(rax, rdx);
        a.ret();
        a.Label(ref fsLoad);
        a.xor(eax, eax);
        a.mov(rax, __qword_ptr.fs[rax]);
        a.ret();

        return p.Build(start);

        static void Wrmsr(Assembler a, uint msr, AssemblerRegister64 value)
        {
            a.mov(ecx, msr);
            a.mov(rax, value);
            a.mov(rdx, value);
            a.shr(rdx, 32);
            a.wrmsr();
        }
    }

    private static ulong Read(MicroVm vm, ulong which)
    {
        CallResult r = vm.Call("read", which);
        Assert.True(r.IsSuccess, r.ToString());
        return r.Value!.Value;
    }

    private static void AssertState(MicroVm vm, (ulong Fs, ulong KernelGs, ulong Star) expected, ulong marker = FsMarker)
    {
        Assert.Equal(expected, (Read(vm, 0), Read(vm, 1), Read(vm, 2)));
        Assert.Equal(marker, Read(vm, 3));
    }

    private static MicroVm CreateInitialised(MicroVmOptions options)
    {
        var vm = MicroVm.Create(s_image.Value, options);
        try
        {
            CallResult init = vm.Call("init");
            Assert.True(init.IsSuccess, init.ToString());
            AssertState(vm, s_init);
            return vm;
        }
        catch
        {
            vm.Dispose();
            throw;
        }
    }

    /// <summary>Bytes of the vCPU section after the MSRs (SnapshotFormat: length, image, XCR0 flags + value, debugregs, events).</summary>
    /// <summary>Bytes of the vCPU section after the MSRs: the extended state, then the TSC and its rate (version 6).</summary>
    private static int ExtendedSize(MicroVmSnapshot snapshot) =>
        4 + snapshot.Vcpu.Extended.Fpu.Length + 12 + VcpuState.DebugRegsSize + VcpuState.EventsSize + 8 + 4;

    private static void Change(MicroVm vm)
    {
        // FS base to the call data area (zero there), other values for the MSRs.
        CallResult r = vm.Call("set", Layout.CallData + 0x800, 0xFFFF_8000_0000_7000, 0x0013_0008_0000_0000);
        Assert.True(r.IsSuccess, r.ToString());
        AssertState(vm, (Layout.CallData + 0x800, 0xFFFF_8000_0000_7000, 0x0013_0008_0000_0000), marker: 0);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.KernelsAndBackings), MemberType = typeof(TestKernel))]
    public void A_snapshot_carries_fs_base_kernel_gs_base_and_star_into_create_restore_the_file_and_a_pool(string kernel, GuestMemoryBacking backing)
    {
        using var k = TestKernel.Open(kernel);
        MicroVmOptions options = CounterGuest.Options(k, backing);
        using var vm = CreateInitialised(options);
        MicroVmSnapshot snapshot = vm.Snapshot();
        Assert.Equal(FsData, snapshot.Sregs.fs.@base);
        Assert.Contains(new MsrEntry(X86Msr.KernelGsBase, InitKernelGs), snapshot.Msrs);
        Assert.Contains(new MsrEntry(X86Msr.Star, InitStar), snapshot.Msrs);

        // A new micro-VM from the snapshot: its vCPU is new (boot state), yet the guest sees what its init set.
        using (var copy = MicroVm.Create(snapshot, options)) AssertState(copy, s_init);

        // Restore after the guest changed them brings the snapshot's back.
        Change(vm);
        vm.Restore(snapshot);
        AssertState(vm, s_init);

        // The file round trip keeps them, byte for byte.
        byte[] bytes = SnapshotSamples.Bytes(snapshot);
        MicroVmSnapshot read = SnapshotSamples.Read(bytes);
        Assert.Equal(snapshot.Msrs, read.Msrs);
        Assert.Equal(bytes, SnapshotSamples.Bytes(read));
        using (var fromFile = MicroVm.Create(read, options))
        {
            AssertState(fromFile, s_init);
            Change(fromFile);
            fromFile.Restore(read);
            AssertState(fromFile, s_init);
        }

        // A pool of the snapshot: rented fresh, and rented again after a user changed them.
        using var pool = new MicroVmPool(snapshot, options, 1);
        MicroVm rented = pool.Rent();
        AssertState(rented, s_init);
        Change(rented);
        pool.Return(rented);
        rented = pool.Rent();
        AssertState(rented, s_init);
        pool.Return(rented);
    }

    [SkippableTheory]
    [MemberData(nameof(TestKernel.KernelsAndBackings), MemberType = typeof(TestKernel))]
    public void Reset_puts_the_msrs_a_guest_set_back_to_their_values_at_creation(string kernel, GuestMemoryBacking backing)
    {
        using var k = TestKernel.Open(kernel);
        MicroVmOptions options = CounterGuest.Options(k, backing);
        // What a new vCPU has: the values Reset must restore (read from the kernel, not assumed).
        MicroVmSnapshot fresh;
        using (var blank = MicroVm.Create(s_image.Value, options)) fresh = blank.Snapshot();

        using var vm = CreateInitialised(options);
        using var pool = new MicroVmPool(s_image.Value, options, 1);
        vm.Reset();
        Assert.Equal((0UL, 0UL, 0UL), (Read(vm, 0), Read(vm, 1), Read(vm, 2)));
        Assert.Equal(fresh.Msrs, vm.Snapshot().Msrs);

        // A pooled micro-VM: the next user does not see the last one's KERNEL_GS_BASE or STAR.
        MicroVm rented = pool.Rent();
        Assert.True(rented.Call("init").IsSuccess);
        pool.Return(rented);
        rented = pool.Rent();
        Assert.Equal((0UL, 0UL), (Read(rented, 1), Read(rented, 2)));
        pool.Return(rented);
    }

    /// <summary>A snapshot taken on one kernel runs on the other with the same vCPU state (both take its MSRs).</summary>
    [SkippableFact]
    public void A_snapshot_of_one_kernel_restores_its_vcpu_state_on_the_other()
    {
        using var real = TestKernel.Real();
        using var emulated = TestKernel.Emulated();
        foreach (var (from, to) in new[] { (real, emulated), (emulated, real) })
        {
            using var vm = CreateInitialised(CounterGuest.Options(from, GuestMemoryBacking.HostMemory));
            MicroVmSnapshot snapshot = SnapshotSamples.Read(SnapshotSamples.Bytes(vm.Snapshot()));
            // The kernels' TSC rates differ (the emulator's 1 GHz): keep the one the vCPU runs at (SnapshotTscAuxTests).
            using var copy = MicroVm.Create(snapshot, CounterGuest.Options(to, GuestMemoryBacking.HostMemory) with { RequireSnapshotTscRate = false });
            AssertState(copy, s_init);
        }
    }

    [Fact]
    public void Format_versions_1_and_2_without_vcpu_state_are_refused_with_the_reason()
    {
        byte[] bytes = SnapshotSamples.Counter;
        Assert.Equal(SnapshotFormat.Version, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8)));
        Assert.Equal(7u, SnapshotFormat.Version);
        foreach (uint version in new uint[] { 1, 2 })
        {
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), version);
            SnapshotSamples.FixChecksum(bytes);
            var e = Assert.Throws<MicroVmSnapshotFormatException>(() => SnapshotSamples.Read(bytes));
            Assert.Equal((SnapshotFormatError.UnsupportedVersion, 8L), (e.Error, e.Offset));
            Assert.Contains($"format version {version} holds guest memory but not the vCPU state", e.Message, StringComparison.Ordinal);
            Assert.Contains("take the snapshot again", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Format_version_3_without_the_fpu_and_extended_state_is_refused_with_the_reason()
    {
        byte[] bytes = SnapshotSamples.Counter;
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), 3);
        SnapshotSamples.FixChecksum(bytes);
        var e = Assert.Throws<MicroVmSnapshotFormatException>(() => SnapshotSamples.Read(bytes));
        Assert.Equal((SnapshotFormatError.UnsupportedVersion, 8L), (e.Error, e.Offset));
        Assert.Contains("format version 3 holds the special registers and MSRs but not the FPU/SSE/AVX registers", e.Message, StringComparison.Ordinal);
        Assert.Contains("take the snapshot again", e.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// The vCPU section sits after the pages: the MSR entries come right before the extended state (FPU image length,
    /// image, XCR0 flags and value, debug registers, events) and the checksum.
    /// </summary>
    [Fact]
    public void The_vcpu_section_is_checked_an_msr_a_snapshot_does_not_carry_or_out_of_order_is_refused()
    {
        byte[] valid = SnapshotSamples.Counter;
        MicroVmSnapshot snapshot = SnapshotSamples.Read(valid);
        int count = snapshot.Msrs.Count;
        Assert.True(count >= 2, string.Join(", ", snapshot.Msrs));
        int entries = valid.Length - 32 - ExtendedSize(snapshot) - 16 * count;
        Assert.Equal((uint)count, BinaryPrimitives.ReadUInt32LittleEndian(valid.AsSpan(entries - 4)));

        byte[] bytes = (byte[])valid.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(entries), X86Msr.Efer);
        SnapshotSamples.FixChecksum(bytes);
        var e = Assert.Throws<MicroVmSnapshotFormatException>(() => SnapshotSamples.Read(bytes));
        Assert.Equal((SnapshotFormatError.InvalidField, (long)entries), (e.Error, e.Offset));
        Assert.Contains("EFER, not one a snapshot carries", e.Message, StringComparison.Ordinal);

        bytes = (byte[])valid.Clone();
        bytes.AsSpan(entries + 16, 4).CopyTo(bytes.AsSpan(entries + 32)); // MSR 2 repeats MSR 1's index
        if (count >= 3)
        {
            SnapshotSamples.FixChecksum(bytes);
            e = Assert.Throws<MicroVmSnapshotFormatException>(() => SnapshotSamples.Read(bytes));
            Assert.Equal((SnapshotFormatError.InvalidField, (long)entries + 32), (e.Error, e.Offset));
        }

        bytes = (byte[])valid.Clone();
        bytes[entries + 4] = 1; // reserved
        SnapshotSamples.FixChecksum(bytes);
        e = Assert.Throws<MicroVmSnapshotFormatException>(() => SnapshotSamples.Read(bytes));
        Assert.Equal((SnapshotFormatError.InvalidField, (long)entries + 4), (e.Error, e.Offset));
    }

    /// <summary>An MSR the target kernel does not list: refused by name before anything changes.</summary>
    [Fact]
    public void A_snapshot_msr_the_kernel_does_not_list_is_refused_by_name_and_nothing_changes()
    {
        using var k = TestKernel.Emulated();
        MicroVmOptions options = CounterGuest.Options(k, GuestMemoryBacking.HostMemory);
        using var vm = CreateInitialised(options);
        MicroVmSnapshot good = vm.Snapshot();
        // TSC_RATIO (AMD, 0xC0000104) is not one a snapshot carries, so such a file cannot be read: forge the snapshot
        // in memory instead. (TSC_AUX, once used here, is carried since format version 6.)
        MsrEntry[] msrs = [.. good.Msrs, new MsrEntry(0xC000_0104, 5)];
        var forged = new MicroVmSnapshot(good.Image, good.MemorySize, good.VmType, good.Features, good.Pages, new VcpuState(good.Sregs, msrs, good.Vcpu.Extended, good.Vcpu.Tsc));
        var create = Assert.Throws<MicroVmSnapshotException>(() => MicroVm.Create(forged, options));
        Assert.Equal(SnapshotRefusal.VcpuStateRefused, create.Reason);
        Assert.Contains("(0xC0000104)", create.Message, StringComparison.Ordinal);
        Change(vm);
        var restore = Assert.Throws<MicroVmSnapshotException>(() => vm.Restore(forged));
        Assert.Equal(SnapshotRefusal.VcpuStateRefused, restore.Reason);
        Assert.False(vm.IsFaulted);
        Assert.Equal(0x0013_0008_0000_0000UL, Read(vm, 2)); // nothing changed
    }

    /// <summary>Special registers the kernel refuses (a reserved CR4 bit): a typed refusal, and Restore faults.</summary>
    [SkippableTheory]
    [MemberData(nameof(TestKernel.Kernels), MemberType = typeof(TestKernel))]
    public void Special_registers_the_kernel_refuses_are_a_typed_refusal(string kernel)
    {
        using var k = TestKernel.Open(kernel);
        MicroVmOptions options = CounterGuest.Options(k, GuestMemoryBacking.HostMemory);
        using var vm = CreateInitialised(options);
        MicroVmSnapshot good = vm.Snapshot();
        var sregs = good.Sregs;
        sregs.cr4 |= 1UL << 63; // reserved
        var forged = new MicroVmSnapshot(good.Image, good.MemorySize, good.VmType, good.Features, good.Pages, new VcpuState(sregs, [.. good.Msrs], good.Vcpu.Extended, good.Vcpu.Tsc));
        var create = Assert.Throws<MicroVmSnapshotException>(() => MicroVm.Create(forged, options));
        Assert.Equal(SnapshotRefusal.VcpuStateRefused, create.Reason);
        Assert.Contains("refused the snapshot's special registers", create.Message, StringComparison.Ordinal);
        Assert.Equal(SnapshotRefusal.VcpuStateRefused, Assert.Throws<MicroVmSnapshotException>(() => vm.Restore(forged)).Reason);
        Assert.True(vm.IsFaulted);
        vm.Restore(good);
        AssertState(vm, s_init);
    }
}

// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Vmm.Arch.Arm64;
using KvmSharp.Vmm.Guests.Arm64;
using KvmSharp.Vmm.Loader;
using KvmSharp.Vmm.Snapshots;
using KvmSharp.Vmm.Tests.Infrastructure;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// Snapshots of arm64 micro-VMs (GUEST-ABI.md, "arm64 micro-VMs"; Snapshots/Arm64VcpuState.cs): the registers of
/// KVM_GET_REG_LIST and the memory, carried into a new micro-VM, back into a used one, through a file (format version 7
/// records the architecture) and a pool; an x86-64 snapshot never goes into an arm64 micro-VM nor the reverse. On the
/// emulated arm64 kernel (this x86 machine has no arm64 KVM).
/// </summary>
public sealed class Arm64SnapshotTests
{
    /// <summary>Where the guest keeps its counter: RAM above the image, below the 2 MiB end.</summary>
    private const ulong CounterAddress = 0x1F_0000;

    private const ulong Marker = 0x1234_5678_9ABC_DEF0;

    private static void OnArm64(Action<Kvm> body) => Arm64Kernel.Run(body);

    private static MicroVmOptions Options(Kvm kvm) => Arm64Kernel.Options(kvm);

    /// <summary>
    /// init(v): the counter in memory = v, TPIDR_EL0 = v, D8 = v (FMOV); bump() → ++counter; tpidr() → TPIDR_EL0;
    /// fp() → D8 (FMOV x0, d8); load(addr) → [addr]; counter() → CNTVCT_EL0.
    /// </summary>
    private static GuestImage Image()
    {
        var p = new Arm64Program();
        var a = p.Asm;
        var start = p.Export("_start");
        var init = p.Export("init");
        var bump = p.Export("bump");
        var tpidr = p.Export("tpidr");
        var fp = p.Export("fp");
        var load = p.Export("load");
        var counter = p.Export("counter");
        a.Bind(start);
        p.ExitWith(0);

        a.Bind(init);
        a.MovImm(X(1), CounterAddress);
        a.Str(X(0), X(1));
        a.Msr(KvmArm64SysRegs.TPIDR_EL0, X(0));
        a.Emit(0x9E67_0008); // FMOV D8, X0
        a.Movz(X(0), 0);
        a.Ret();

        a.Bind(bump);
        a.MovImm(X(1), CounterAddress);
        a.Ldr(X(0), X(1));
        a.AddImm(X(0), X(0), 1);
        a.Str(X(0), X(1));
        a.Ret();

        a.Bind(tpidr);
        a.Mrs(X(0), KvmArm64SysRegs.TPIDR_EL0);
        a.Ret();

        a.Bind(fp);
        a.Emit(0x9E66_0100); // FMOV X0, D8
        a.Ret();

        a.Bind(load);
        a.Ldr(X(0), X(0));
        a.Ret();

        a.Bind(counter);
        a.Mrs(X(0), KvmArm64SysRegs.Encoding(3, 3, 14, 0, 2)); // CNTVCT_EL0
        a.Ret();
        return p.Build(start);
    }

    private static ulong Value(MicroVm vm, string function, params ulong[] args)
    {
        CallResult r = vm.Call(function, args);
        Assert.True(r.IsSuccess, r.ToString());
        return r.Value!.Value;
    }

    /// <summary>A micro-VM whose init ran with <see cref="Marker"/> and whose counter was bumped once.</summary>
    private static MicroVm Initialised(Kvm kvm, GuestImage image)
    {
        var vm = MicroVm.Create(image, Options(kvm));
        Value(vm, "init", Marker);
        Assert.Equal(Marker + 1, Value(vm, "bump"));
        return vm;
    }

    /// <summary>The state <see cref="Initialised"/> left: TPIDR_EL0, D8 and the counter (read by bumping it).</summary>
    private static void AssertInitialised(MicroVm vm)
    {
        Assert.Equal(Marker, Value(vm, "tpidr"));
        Assert.Equal(Marker, Value(vm, "fp"));
        Assert.Equal(Marker + 2, Value(vm, "bump"));
    }

    [Fact]
    public void A_snapshot_holds_the_registers_of_the_reg_list_and_a_micro_vm_created_from_it_continues_where_it_was_taken() => OnArm64(kvm =>
    {
        var image = Image();
        using var vm = Initialised(kvm, image);
        MicroVmSnapshot snapshot = vm.Snapshot();
        Assert.Equal(GuestArchitecture.Arm64, snapshot.Architecture);
        Assert.Equal(vm.Vcpu.GetRegisterList(), snapshot.Arm64RegisterIds);
        Assert.Contains(KvmArm64SysRegs.MPIDR_EL1, snapshot.Arm64RegisterIds);
        Assert.Contains(KvmArm64TimerRegs.KVM_REG_ARM_TIMER_CTL, snapshot.Arm64RegisterIds);
        Assert.Equal(Marker, BinaryPrimitives.ReadUInt64LittleEndian(snapshot.GetArm64Register(KvmArm64SysRegs.TPIDR_EL0)!));
        Assert.Equal(Layout.TranslationTables, BinaryPrimitives.ReadUInt64LittleEndian(snapshot.GetArm64Register(KvmArm64SysRegs.TTBR0_EL1)!));
        // V8 (a 128-bit core register) holds D8 in its low half; FPSR is a 32-bit one.
        ulong v8 = KvmArm64Regs.KVM_REG_ARM64 | KvmArm64Regs.KVM_REG_SIZE_U128 | KvmArm64Regs.KVM_REG_ARM_CORE | KvmArm64Regs.KVM_REG_ARM_CORE_REG(KvmArm64Regs.OffsetVregs + (8 * 16));
        byte[] v8Value = snapshot.GetArm64Register(v8)!;
        Assert.Equal(16, v8Value.Length);
        Assert.Equal(Marker, BinaryPrimitives.ReadUInt64LittleEndian(v8Value));
        ulong fpsr = KvmArm64Regs.KVM_REG_ARM64 | KvmArm64Regs.KVM_REG_SIZE_U32 | KvmArm64Regs.KVM_REG_ARM_CORE | KvmArm64Regs.KVM_REG_ARM_CORE_REG(KvmArm64Regs.OffsetFpsr);
        Assert.Equal(4, snapshot.GetArm64Register(fpsr)!.Length);
        Assert.Null(snapshot.GetArm64Register(KvmArm64Regs.KVM_REG_ARM64 | KvmArm64Regs.KVM_REG_SIZE_U64 | KvmArm64SysRegs.KVM_REG_ARM64_SYSREG | 0x7FFF));
        Assert.Equal((0UL, 0UL), (snapshot.Sregs.cr0, snapshot.Sregs.efer)); // x86 state: none
        Assert.Empty(snapshot.Msrs);

        using var copy = MicroVm.Create(snapshot, Options(kvm));
        Assert.Equal(GuestArchitecture.Arm64, copy.Architecture);
        Assert.Null(copy.LastImageLoad);
        AssertInitialised(copy);
        // The original goes on the same way.
        AssertInitialised(vm);
        // The new vCPU's registers are the snapshot's (read before it ran: the MMU and vector registers too).
        using var fresh = MicroVm.Create(snapshot, Options(kvm));
        foreach (ulong id in new[] { KvmArm64SysRegs.SCTLR_EL1, KvmArm64SysRegs.TCR_EL1, KvmArm64SysRegs.MAIR_EL1, KvmArm64SysRegs.VBAR_EL1, KvmArm64SysRegs.CPACR_EL1, KvmArm64SysRegs.TPIDR_EL0 })
            Assert.Equal(snapshot.GetArm64Register(id), fresh.Vcpu.GetOneRegBytes(id));
    });

    [Fact]
    public void Restore_puts_a_used_micro_vm_back_to_the_snapshot_and_clears_a_fault() => OnArm64(kvm =>
    {
        var image = Image();
        using var vm = Initialised(kvm, image);
        MicroVmSnapshot snapshot = vm.Snapshot();
        Value(vm, "init", 7);
        Value(vm, "bump");
        vm.Restore(snapshot);
        AssertInitialised(vm);

        // A fault (a null dereference) and a restore: the micro-VM runs again, from the snapshot.
        Assert.Equal(GuestOutcome.Exception, vm.Call("load", [0]).Outcome);
        Assert.True(vm.IsFaulted);
        Assert.Throws<MicroVmSnapshotException>(vm.Snapshot);
        vm.Restore(snapshot);
        Assert.False(vm.IsFaulted);
        AssertInitialised(vm);
        // A restore after a Reset too (the reset ran init's effects away; the snapshot brings them back).
        vm.Reset();
        // KVM_ARM_VCPU_INIT resets TPIDR_EL0 to sys_regs.c reset_unknown's 0x1de7ec7edbadc0de.
        Assert.NotEqual(Marker, Value(vm, "tpidr"));
        vm.Restore(snapshot);
        AssertInitialised(vm);
    });

    [Fact]
    public void The_guard_pages_still_fault_after_a_restore_because_the_tables_are_in_the_snapshots_memory() => OnArm64(kvm =>
    {
        var image = Image();
        using var vm = Initialised(kvm, image);
        MicroVmSnapshot snapshot = vm.Snapshot();
        vm.Restore(snapshot);
        foreach (ulong address in new[] { 0UL, Layout.StackGuard })
        {
            CallResult r = vm.Call("load", [address]);
            Assert.Equal(GuestOutcome.Exception, r.Outcome);
            Assert.Equal(0x25u, Arm64Exceptions.ExceptionClass(r.Exception!.ErrorCode!.Value)); // data abort
            Assert.Equal(address, r.Exception.Cr2);
            vm.Restore(snapshot);
        }
        using var copy = MicroVm.Create(snapshot, Options(kvm));
        CallResult c = copy.Call("load", [Layout.StackGuard]);
        Assert.Equal(GuestOutcome.Exception, c.Outcome);
        Assert.Equal(Layout.StackGuard, c.Exception!.Cr2);
    });

    [Fact]
    public void The_virtual_counter_of_a_copy_or_a_restore_is_never_below_what_the_guest_read_before_the_snapshot() => OnArm64(kvm =>
    {
        using var vm = Initialised(kvm, Image());
        ulong before = Value(vm, "counter");
        MicroVmSnapshot snapshot = vm.Snapshot();
        Assert.NotNull(snapshot.GetArm64Register(KvmArm64TimerRegs.KVM_REG_ARM_TIMER_CNT));
        using var copy = MicroVm.Create(SnapshotSamples.Read(SnapshotSamples.Bytes(snapshot)), Options(kvm));
        Assert.True(Value(copy, "counter") >= before);
        vm.Restore(snapshot);
        Assert.True(Value(vm, "counter") >= before);
    });

    [Fact]
    public void A_snapshot_file_records_arm64_and_reads_back_into_a_micro_vm_with_the_same_results() => OnArm64(kvm =>
    {
        var image = Image();
        using var vm = Initialised(kvm, image);
        MicroVmSnapshot snapshot = vm.Snapshot();
        byte[] bytes = SnapshotSamples.Bytes(snapshot);
        Assert.Equal(7u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8)));
        Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(SnapshotSamples.ArchitectureOffset(bytes))));
        MicroVmSnapshot read = SnapshotSamples.Read(bytes);
        Assert.Equal(GuestArchitecture.Arm64, read.Architecture);
        Assert.Equal(snapshot.Arm64RegisterIds, read.Arm64RegisterIds);
        Assert.Equal(bytes, SnapshotSamples.Bytes(read)); // one byte sequence per snapshot
        using var copy = MicroVm.Create(read, Options(kvm));
        AssertInitialised(copy);
        // Into the micro-VM of the original image object too (images compare by digest).
        vm.Restore(read);
        AssertInitialised(vm);
    });

    [Fact]
    public void A_corrupt_arm64_vcpu_section_is_a_format_error_at_its_offset() => OnArm64(kvm =>
    {
        using var vm = Initialised(kvm, Image());
        byte[] valid = SnapshotSamples.Bytes(vm.Snapshot());
        int at = SnapshotSamples.ArchitectureOffset(valid);

        byte[] bytes = (byte[])valid.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(at), 2);
        SnapshotSamples.FixChecksum(bytes);
        var e = Assert.Throws<MicroVmSnapshotFormatException>(() => SnapshotSamples.Read(bytes));
        Assert.Equal((SnapshotFormatError.InvalidField, (long)at), (e.Error, e.Offset));
        Assert.Contains("architecture 2", e.Message, StringComparison.Ordinal);

        // Register 1's id made the same as register 0's.
        bytes = (byte[])valid.Clone();
        int first = at + 8;
        ulong id0 = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(first));
        int second = first + 8 + KvmArm64Regs.KVM_REG_SIZE(id0);
        Assert.Equal(KvmArm64Regs.KVM_REG_SIZE(id0), KvmArm64Regs.KVM_REG_SIZE(BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(second))));
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(second), id0);
        SnapshotSamples.FixChecksum(bytes);
        e = Assert.Throws<MicroVmSnapshotFormatException>(() => SnapshotSamples.Read(bytes));
        Assert.Equal((SnapshotFormatError.InvalidField, (long)second), (e.Error, e.Offset));

        // An x86 register id (KVM_REG_X86) among arm64 ones.
        bytes = (byte[])valid.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(first), (id0 & ~KvmArm64Regs.KVM_REG_ARCH_MASK) | 0x2000_0000_0000_0000);
        SnapshotSamples.FixChecksum(bytes);
        e = Assert.Throws<MicroVmSnapshotFormatException>(() => SnapshotSamples.Read(bytes));
        Assert.Equal((SnapshotFormatError.InvalidField, (long)first), (e.Error, e.Offset));

        // No registers.
        bytes = (byte[])valid.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(at + 4), 0);
        SnapshotSamples.FixChecksum(bytes);
        e = Assert.Throws<MicroVmSnapshotFormatException>(() => SnapshotSamples.Read(bytes));
        Assert.Equal((SnapshotFormatError.InvalidField, (long)(at + 4)), (e.Error, e.Offset));
    });

    [Fact]
    public void An_x86_snapshot_is_refused_by_an_arm64_micro_vm_naming_both_architectures() => OnArm64(kvm =>
    {
        MicroVmSnapshot x86 = SnapshotSamples.Read(SnapshotSamples.Counter);
        Assert.Equal(GuestArchitecture.X86_64, x86.Architecture);
        Assert.Empty(x86.Arm64RegisterIds);
        Assert.Null(x86.GetArm64Register(KvmArm64SysRegs.TPIDR_EL0));
        var e = Assert.Throws<MicroVmSnapshotException>(() => MicroVm.Create(x86, Options(kvm)));
        Assert.Equal(SnapshotRefusal.ArchitectureMismatch, e.Reason);
        Assert.Contains("the snapshot is of an X86_64 micro-VM, this micro-VM is Arm64", e.Message, StringComparison.Ordinal);
        e = Assert.Throws<MicroVmSnapshotException>(() => MicroVm.Create(x86, Options(kvm) with { Architecture = GuestArchitecture.Arm64 }));
        Assert.Equal(SnapshotRefusal.ArchitectureMismatch, e.Reason);

        using var vm = Initialised(kvm, Image());
        e = Assert.Throws<MicroVmSnapshotException>(() => vm.Restore(x86));
        Assert.Equal(SnapshotRefusal.ArchitectureMismatch, e.Reason);
        AssertInitialised(vm); // nothing changed
    });

    [Fact]
    public void An_x86_file_of_version_7_is_version_6_with_the_architecture_field_and_version_6_is_still_read_as_x86()
    {
        byte[] v7 = SnapshotSamples.Counter;
        Assert.Equal(7u, BinaryPrimitives.ReadUInt32LittleEndian(v7.AsSpan(8)));
        int at = SnapshotSamples.ArchitectureOffset(v7);
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(v7.AsSpan(at)));
        // The same bytes without the field, as version 6 wrote them.
        byte[] v6 = [.. v7.AsSpan(0, at), .. v7.AsSpan(at + 4)];
        BinaryPrimitives.WriteUInt32LittleEndian(v6.AsSpan(8), 6);
        SnapshotSamples.FixChecksum(v6);
        MicroVmSnapshot old = SnapshotSamples.Read(v6);
        MicroVmSnapshot current = SnapshotSamples.Read(v7);
        Assert.Equal(GuestArchitecture.X86_64, old.Architecture);
        Assert.Equal((current.Tsc, current.TscKhz, current.TscAux), (old.Tsc, old.TscKhz, old.TscAux));
        Assert.Equal(current.Msrs, old.Msrs);
        // Written again: the version 7 file, byte for byte.
        Assert.Equal(v7, SnapshotSamples.Bytes(old));
    }

    [Fact]
    public void An_arm64_snapshot_is_refused_by_an_x86_micro_vm_naming_both_architectures()
    {
        MicroVmSnapshot arm64 = null!;
        OnArm64(kvm =>
        {
            using var vm = Initialised(kvm, Image());
            arm64 = SnapshotSamples.Read(SnapshotSamples.Bytes(vm.Snapshot()));
        });
        using var k = TestKernel.Emulated();
        var e = Assert.Throws<MicroVmSnapshotException>(() => MicroVm.Create(arm64, CounterGuest.Options(k, GuestMemoryBacking.HostMemory)));
        Assert.Equal(SnapshotRefusal.ArchitectureMismatch, e.Reason);
        Assert.Contains("the snapshot is of an Arm64 micro-VM, this micro-VM is X86_64", e.Message, StringComparison.Ordinal);

        using var x86 = CounterGuest.CreateCountedToThree(CounterGuest.Options(k, GuestMemoryBacking.HostMemory));
        e = Assert.Throws<MicroVmSnapshotException>(() => x86.Restore(arm64));
        Assert.Equal(SnapshotRefusal.ArchitectureMismatch, e.Reason);
        Assert.False(x86.IsFaulted);
    }

    [Fact]
    public void A_pool_of_an_arm64_snapshot_hands_out_micro_vms_at_the_snapshot_after_each_return() => OnArm64(kvm =>
    {
        using var vm = Initialised(kvm, Image());
        MicroVmSnapshot snapshot = vm.Snapshot();
        using var pool = new MicroVmPool(snapshot, Options(kvm), 1);
        for (int use = 0; use < 3; use++)
        {
            MicroVm rented = pool.Rent();
            AssertInitialised(rented);
            Value(rented, "init", (ulong)use); // the next user must not see it
            pool.Return(rented);
        }
    });

    [Fact]
    public void Without_kvm_userfault_an_arm64_lazy_restore_is_eager_if_offered_and_refused_if_required() => OnArm64(kvm =>
    {
        // EmulatorConfig.Arm64() offers neither guest_memfd write(2) nor KVM userfault (Arm64LazyRestoreTests has both).
        using var vm = Initialised(kvm, Image());
        MicroVmSnapshot snapshot = vm.Snapshot();
        using (var eager = MicroVm.Create(snapshot, Options(kvm) with { SnapshotRestore = SnapshotRestoreMode.LazyIfOffered }))
        {
            Assert.False(eager.LastRestoreWasLazy);
            AssertInitialised(eager);
        }
        var e = Assert.Throws<MicroVmSnapshotException>(() => MicroVm.Create(snapshot, Options(kvm) with { SnapshotRestore = SnapshotRestoreMode.Lazy }));
        Assert.Equal(SnapshotRefusal.LazyRestoreUnavailable, e.Reason);
    });
}

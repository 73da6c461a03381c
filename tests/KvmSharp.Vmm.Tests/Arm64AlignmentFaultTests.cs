// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;
using KvmSharp.Vmm.Arch.Arm64;
using KvmSharp.Vmm.Guests.Arm64;
using KvmSharp.Vmm.Loader;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;
using KvmSharp.Vmm.Tests.Infrastructure;

namespace KvmSharp.Vmm.Tests;

/// <summary>
/// Alignment faults of an arm64 micro-VM guest on the emulated arm64 kernel (Arm ARM DDI 0487 B2.5, pseudocode
/// AArch64.CheckAlignment / AArch64.S1HasAlignmentFault; the emulator's A64Interpreter.Alignment.cs): the fault is a
/// Data Abort taken to EL1 (EC 0x25, DFSC 0x21, WnR for a store, FAR_EL1 = the address) that the VMM's vector table
/// (<see cref="Arm64GuestCode.Vectors"/>) reports as a clean <see cref="GuestOutcome.Exception"/>, never a hang. Each
/// guest sets the translation regime it needs itself, so the tests hold whether the VMM boots with the MMU on or off.
/// </summary>
public sealed class Arm64AlignmentFaultTests
{
    private const ulong ImageBase = Arch.X86_64.Layout.ImageBase;
    private const uint Isb = 0xD503_3FDF;
    private static readonly ulong SctlrEl1 = KvmArm64SysRegs.Encoding(3, 0, 1, 0, 0);

    private static void OnArm64(Action<Kvm> body) => Arm64Kernel.Run(body);

    private static MicroVmOptions Options(Kvm kvm) => Arm64Kernel.Options(kvm);

    /// <summary>
    /// A guest that first rewrites SCTLR_EL1 (clears <paramref name="clear"/>, then sets <paramref name="set"/>; ISB),
    /// then runs <paramref name="access"/>, which returns its instruction's offset from the image start. Uses x2, x3.
    /// </summary>
    private static (GuestImage Image, ulong AccessOffset) Build(ulong clear, ulong set, Func<A64Assembler, int> access)
    {
        var p = new Arm64Program();
        var start = p.Export("_start");
        p.Asm.Bind(start);
        p.Asm.Mrs(X(2), SctlrEl1);
        p.Asm.MovImm(X(3), ~clear);
        p.Asm.And(X(2), X(2), X(3));
        p.Asm.MovImm(X(3), set);
        p.Asm.Orr(X(2), X(2), X(3));
        p.Asm.Msr(SctlrEl1, X(2));
        p.Asm.Emit(Isb);
        int at = access(p.Asm);
        p.Hang();
        return (p.Build(start), (ulong)at);
    }

    /// <summary>The outcome is the vector table's report of an alignment fault at <paramref name="pc"/> on <paramref name="far"/>.</summary>
    private static void AssertAlignmentFault(CallResult r, ulong pc, ulong far, bool write)
    {
        Assert.Equal(GuestOutcome.Exception, r.Outcome);
        Assert.NotNull(r.Exception);
        ulong esr = r.Exception!.ErrorCode!.Value;
        Assert.Equal(0x25u, Arm64Exceptions.ExceptionClass(esr)); // data abort from the current EL
        Assert.Equal(0x21UL, esr & 0x3F);                         // DFSC: alignment fault
        Assert.Equal(write, ((esr >> 6) & 1) != 0);               // WnR
        Assert.Equal(0UL, esr & (1UL << 24));                     // ISV = 0: a stage-1 fault
        Assert.Equal(far, r.Exception.Cr2);
        Assert.Equal(pc, r.Exception.Rip);
        Assert.Equal(4, r.Exception.Vector);                      // current EL with SP_ELx, synchronous
        Assert.Contains("data abort", r.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unaligned_load_with_the_mmu_off_is_an_alignment_fault_exception() => OnArm64(kvm =>
    {
        // SCTLR_EL1.M = 0 (the VA is the PA, so the code runs on): every data access is Device-nGnRnE
        // (AArch64.S1DisabledOutput), and an unaligned one faults even with SCTLR_EL1.A = 0.
        var (image, at) = Build(clear: 3, set: 0, a =>
        {
            a.MovImm(X(1), ImageBase + 1);
            int pos = a.Position;
            a.Ldr(X(0), X(1));
            return pos;
        });
        using var vm = MicroVm.Create(image, Options(kvm));
        var r = vm.Run();
        AssertAlignmentFault(r, image.Entry + at, ImageBase + 1, write: false);
        Assert.True(vm.IsFaulted);
        // Reset makes it runnable again, and it faults the same way.
        vm.Reset();
        AssertAlignmentFault(vm.Run(), image.Entry + at, ImageBase + 1, write: false);
    });

    [Fact]
    public void An_unaligned_store_with_sctlr_a_is_an_alignment_fault_with_wnr() => OnArm64(kvm =>
    {
        // SCTLR_EL1.A = 1 (AlignmentEnforced): Mem[] → AArch64.CheckAlignment faults before any translation, with the
        // MMU on or off.
        const ulong address = Layout.StackTop - 0x102;
        var (image, at) = Build(clear: 0, set: 2, a =>
        {
            a.MovImm(X(1), address);
            int pos = a.Position;
            a.Str(W(0), X(1));
            return pos;
        });
        using var vm = MicroVm.Create(image, Options(kvm));
        AssertAlignmentFault(vm.Run(), image.Entry + at, address, write: true);
    });

    [Fact]
    public void An_unaligned_load_from_the_port_window_faults_before_any_mmio_exit() => OnArm64(kvm =>
    {
        // The port window is Device memory (MMU off: all data accesses; MMU on: its Device-nGnRE pages), so the
        // unaligned load takes the alignment fault at stage 1: no KVM_EXIT_MMIO, no UnhandledMmio outcome.
        ulong address = Layout.Port(0x1001);
        var (image, at) = Build(clear: 2, set: 0, a =>
        {
            a.MovImm(X(1), address);
            int pos = a.Position;
            a.Ldr(W(0), X(1));
            return pos;
        });
        using var vm = MicroVm.Create(image, Options(kvm));
        AssertAlignmentFault(vm.Run(), image.Entry + at, address, write: false);
    });

    [Fact]
    public void Aligned_accesses_with_sctlr_a_run_on_to_the_exit() => OnArm64(kvm =>
    {
        // The control: the same regime with every access aligned ends as a clean exit.
        var (image, _) = Build(clear: 0, set: 2, a =>
        {
            a.MovImm(X(1), Layout.StackTop - 0x100);
            a.MovImm(X(0), 7);
            a.Str(X(0), X(1));
            a.Ldr(W(5), X(1));
            a.MovImm(X(9), Layout.Port(GuestAbi.Ports.Exit));
            int pos = a.Position;
            a.Str(W(5), X(9));
            return pos;
        });
        using var vm = MicroVm.Create(image, Options(kvm));
        var r = vm.Run();
        Assert.Equal(GuestOutcome.Exit, r.Outcome);
        Assert.Equal(7, r.Status);
    });
}

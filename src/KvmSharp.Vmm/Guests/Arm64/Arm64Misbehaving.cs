// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.Arch.Arm64;
using KvmSharp.Vmm.Loader;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Vmm.Guests.Arm64;

/// <summary>arm64 guests that end every way but a clean return, one per outcome (<see cref="Misbehaving"/> on x86-64).</summary>
public static class Arm64Misbehaving
{
    /// <summary>The MMIO address <see cref="BadMmioImage"/> writes to: port 0x1234 of the port window, which no device claims.</summary>
    public static ulong BadMmioAddress => Layout.Port(0x1234);

    /// <summary>
    /// The address <see cref="DataAbortImage"/> loads from: 2^52, beyond the 32-bit VA space of the VMM's translation
    /// tables (TCR_EL1.T0SZ = 32), so the stage-1 walk faults (translation fault, level 0, FAR = the address) and the
    /// vector table reports it. (It is also beyond any IPA size KVM gives a VM, which with the MMU off made KVM inject
    /// an abort: mmu.c kvm_handle_guest_abort → kvm_inject_size_fault.)
    /// </summary>
    public const ulong BeyondIpaAddress = 1UL << 52;

    /// <summary>Exits with status 42.</summary>
    public static GuestImage Exit42Image() => Build(p => p.ExitWith(42));

    /// <summary>Writes to <see cref="BadMmioAddress"/>: ends as <see cref="GuestOutcome.UnhandledMmio"/>.</summary>
    public static GuestImage BadMmioImage() => Build(p =>
    {
        p.Asm.MovImm(X(9), BadMmioAddress);
        p.Asm.Str(W(0), X(9));
        p.Hang();
    });

    /// <summary>Spins forever (B .): stopped by the timeout.</summary>
    public static GuestImage EndlessLoopImage() => Build(p => p.Hang());

    /// <summary>UDF #0: an undefined-instruction exception (EC 0) the vector table reports.</summary>
    public static GuestImage UndefinedImage() => Build(p =>
    {
        p.Asm.Nop();
        p.Asm.Udf(0);
    });

    /// <summary>Loads from <see cref="BeyondIpaAddress"/>: a data abort (EC 0x25) with FAR the address.</summary>
    public static GuestImage DataAbortImage() => Build(p =>
    {
        p.Asm.MovImm(X(9), BeyondIpaAddress);
        p.Asm.Ldr(X(0), X(9));
        p.Hang();
    });

    /// <summary>PSCI SYSTEM_OFF (HVC with x0 = PSCI_0_2_FN_SYSTEM_OFF): ends as <see cref="GuestOutcome.Shutdown"/>.</summary>
    public static GuestImage PowerOffImage() => Build(p =>
    {
        p.Asm.MovImm(X(0), PsciSystemOff);
        p.Asm.Hvc(0);
        p.Hang();
    });

    /// <summary>PSCI_0_2_FN_SYSTEM_OFF (include/uapi/linux/psci.h).</summary>
    public const uint PsciSystemOff = 0x8400_0008;

    private static GuestImage Build(Action<Arm64Program> body)
    {
        var p = new Arm64Program();
        A64Label start = p.Export("_start");
        p.Asm.Bind(start);
        body(p);
        return p.Build(start);
    }
}

// SPDX-License-Identifier: MIT
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using KvmSharp.Abi;

namespace KvmSharp.Fuzzing;

/// <summary>
/// What <see cref="OpKind.InterruptQueue"/> and <see cref="OpKind.InterruptGuestRun"/> draw: KVM_INTERRUPT vectors
/// (below 256 and not), KVM_NMI arguments, kvm_x86_mce errors (corrected, UCNA, action-required, without VAL, random
/// bits; banks inside and outside MCG_CAP's count; MCG_STATUS with and without MCIP) and how their results are shown.
/// </summary>
internal static class InterruptOps
{
    /// <summary><see cref="OpKind.InterruptQueue"/>'s E: the call.</summary>
    public const int Interrupt = 0, InterruptBadPointer = 1, Nmi = 2, SetMce = 3, SetMceBadPointer = 4, Calls = 5;

    /// <summary>E bit: KVM_X86_SETUP_MCE of a drawn MCG_CAP first.</summary>
    public const int SetupFirst = 8;

    /// <summary>E bit: KVM_GET_SREGS, CR4.MCE flipped, KVM_SET_SREGS first.</summary>
    public const int FlipCr4Mce = 16;

    /// <summary>E bit: KVM_GET_REGS, RFLAGS.IF flipped, KVM_SET_REGS first (which also drops a pending exception).</summary>
    public const int FlipIf = 32;

    internal static readonly string[] Names = ["KVM_INTERRUPT", "KVM_INTERRUPT(bad pointer)", "KVM_NMI", "KVM_X86_SET_MCE", "KVM_X86_SET_MCE(bad pointer)"];

    private const ulong Val = 1UL << 63, Over = 1UL << 62, Uc = 1UL << 61, En = 1UL << 60, Pcc = 1UL << 57, S = 1UL << 56, Ar = 1UL << 55;

    /// <summary>A KVM_INTERRUPT irq: mostly a vector, sometimes KVM_NR_INTERRUPTS or beyond (EINVAL).</summary>
    public static uint Vector(Random rng) => rng.Next(10) switch
    {
        0 => 256,
        1 => rng.Next(2) == 0 ? uint.MaxValue : (uint)rng.Next(257, 0x10000),
        2 => (uint)rng.Next(32),                                 // an exception vector, as an external interrupt
        _ => (uint)rng.Next(32, 256),
    };

    /// <summary>A kvm_x86_mce: a bank near MCG_CAP's count and an error of every kind the ioctl tells apart.</summary>
    public static kvm_x86_mce Mce(Random rng)
    {
        ulong low = (ulong)(uint)rng.Next(0x10000) | ((ulong)(uint)rng.Next(0x10000) << 16);
        ulong status = rng.Next(12) switch
        {
            < 3 => Val | En | low,                                  // corrected
            < 5 => Val | Uc | En | low,                             // UCNA without MCG_STATUS
            < 8 => Val | Uc | En | S | Ar | (rng.Next(3) == 0 ? Pcc : 0UL) | low, // action required
            8 => Uc | En | S | Ar | low,                            // no VAL: EINVAL
            9 => Val | Over | Uc | low,
            _ => (ulong)rng.NextInt64() | (rng.Next(2) == 0 ? Val : 0UL),
        };
        ulong mcgStatus = rng.Next(6) switch
        {
            0 => 0,
            1 => 0x4,                                               // MCIP
            2 => 0x6,                                               // EIPV | MCIP
            3 => (ulong)rng.NextInt64(),
            _ => 0x5,                                               // RIPV | MCIP
        };
        byte bank = rng.Next(8) switch
        {
            0 => 31,
            1 => 32,
            2 => (byte)rng.Next(256),
            _ => (byte)rng.Next(4),
        };
        var mce = new kvm_x86_mce
        {
            bank = bank, status = status, mcg_status = mcgStatus,
            addr = rng.Next(3) == 0 ? (ulong)rng.NextInt64() : (ulong)rng.Next(0x10_0000) << 12,
            misc = rng.Next(3) == 0 ? (ulong)rng.NextInt64() : (ulong)rng.Next(0x100),
        };
        // The pads are not looked at.
        if (rng.Next(6) == 0)
        {
            mce.pad1[2] = 0xff;
            mce.pad2[1] = (ulong)rng.NextInt64();
        }
        return mce;
    }

    public static Span<byte> Bytes<T>(ref T value) where T : unmanaged => MemoryMarshal.AsBytes(MemoryMarshal.CreateSpan(ref value, 1));

    /// <summary>A bad user pointer: NULL or the kernel half (copy_from_user faults).</summary>
    public static ulong BadPointer(Random rng) => rng.Next(2) == 0 ? 0UL : 0xFFFF_8000_0000_0000UL;

    /// <summary>
    /// KVM_GET_VCPU_EVENTS as text: every byte (flags, the exception, interrupt and NMI queues, the shadow, SMI, the
    /// triple-fault and payload fields), the same way <see cref="KernelSession"/>'s vCPU state round trips compare it.
    /// </summary>
    public static void AppendEvents(StringBuilder text, long rc, kvm_vcpu_events events) =>
        text.Append(rc == 0 ? "events " + Convert.ToHexString(Bytes(ref events)) : "events " + rc.ToString(CultureInfo.InvariantCulture));

    public static string Describe(FuzzOp op)
    {
        string h(int id) => id < 0 ? "-" : "h" + id.ToString(CultureInfo.InvariantCulture);
        var text = new StringBuilder();
        if ((op.E & SetupFirst) != 0) text.Append("KVM_X86_SETUP_MCE+");
        if ((op.E & FlipCr4Mce) != 0) text.Append("KVM_SET_SREGS(CR4.MCE flipped)+");
        if ((op.E & FlipIf) != 0) text.Append("KVM_SET_REGS(RFLAGS.IF flipped)+");
        text.Append(Names[op.E & 7]).Append(CultureInfo.InvariantCulture, $"({h(op.Target)}, seed={op.A})+KVM_GET_VCPU_EVENTS");
        return text.ToString();
    }
}

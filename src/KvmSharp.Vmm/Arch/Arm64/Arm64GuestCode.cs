// SPDX-License-Identifier: MIT
using KvmSharp.Abi.Arm64;
using KvmSharp.Vmm.GuestAbi;
using static KvmSharp.Vmm.Arch.Arm64.A64Register;

namespace KvmSharp.Vmm.Arch.Arm64;

/// <summary>
/// The VMM's own A64 code in an arm64 micro-VM (<see cref="Layout"/>): the call trampoline and the vector table that
/// reports exceptions to the host, as the x86-64 trampoline and IDT handlers do (GUEST-ABI.md, "arm64 micro-VMs").
/// </summary>
public static class Arm64GuestCode
{
    // System register encodings op0:op1:CRn:CRm:op2 (Arm ARM D19).
    private static readonly ulong SpsrEl1 = KvmArm64SysRegs.Encoding(3, 0, 4, 0, 0), ElrEl1 = KvmArm64SysRegs.Encoding(3, 0, 4, 0, 1),
        EsrEl1 = KvmArm64SysRegs.Encoding(3, 0, 5, 2, 0), FarEl1 = KvmArm64SysRegs.Encoding(3, 0, 6, 0, 0);

    /// <summary>
    /// The trampoline at <see cref="Layout.Trampoline"/>: x0..x5 = CallRegion.args[0..5], BLR CallRegion.entry, then
    /// CallRegion.result = x0 and a store to the return port (the call ends as a return). It never runs on after that.
    /// </summary>
    public static byte[] Trampoline()
    {
        var a = new A64Assembler();
        a.MovImm(X(9), X86_64.Layout.CallRegion);
        a.Ldr(X(16), X(9), (uint)CallRegion.Entry);
        for (int i = 0; i < CallRegion.MaxArgs; i++) a.Ldr(X(i), X(9), (uint)(CallRegion.Args + (ulong)(i * sizeof(ulong))));
        a.Blr(X(16));
        a.MovImm(X(9), X86_64.Layout.CallRegion);
        a.Str(X(0), X(9), (uint)CallRegion.Result);
        a.MovImm(X(9), Layout.Port(Ports.Return));
        // A byte store: 0x501 is not 4-byte aligned, and the port window is Device memory, where an unaligned access is
        // an alignment fault on hardware (Arm ARM B2.5.2).
        a.Strb(W(0), X(9));
        var stay = a.CreateLabel();
        a.Bind(stay);
        a.B(stay);
        return a.Assemble();
    }

    /// <summary>
    /// The vector table at <see cref="Layout.Vectors"/> (16 entries: current EL with SP_EL0, current EL with SP_ELx,
    /// lower EL AArch64, lower EL AArch32; each synchronous, IRQ, FIQ, SError). Entry n sets x17 = n and branches to
    /// the common handler, which fills the exception block — vector = n, error code = ESR_EL1, rip = ELR_EL1, rflags =
    /// SPSR_EL1, rsp = SP, cr2 = FAR_EL1 — and stores to the exception port. Uses x16 and x17 only (the AAPCS64
    /// intra-procedure-call scratch registers); no stack, so a guest whose SP is broken — or ran into the unmapped stack
    /// guard (<see cref="Layout.StackGuard"/>), whose data abort is taken with SP still there — still gets its report.
    /// </summary>
    public static byte[] Vectors()
    {
        var a = new A64Assembler();
        var common = a.CreateLabel();
        for (int n = 0; n < 16; n++)
        {
            int start = a.Position;
            a.Movz(X(17), (ushort)n);
            a.B(common);
            while (a.Position - start < (int)Layout.VectorEntrySize) a.Nop();
        }
        a.Bind(common);
        a.MovImm(X(16), ExceptionBlock.Base);
        a.Str(X(17), X(16), (uint)ExceptionBlock.Vector);
        a.Mrs(X(17), EsrEl1);
        a.Str(X(17), X(16), (uint)ExceptionBlock.ErrorCode);
        a.Mrs(X(17), ElrEl1);
        a.Str(X(17), X(16), (uint)ExceptionBlock.Rip);
        a.Mrs(X(17), SpsrEl1);
        a.Str(X(17), X(16), (uint)ExceptionBlock.Rflags);
        a.AddImm(X(17), Sp, 0);
        a.Str(X(17), X(16), (uint)ExceptionBlock.Rsp);
        a.Mrs(X(17), FarEl1);
        a.Str(X(17), X(16), (uint)ExceptionBlock.Cr2);
        a.MovImm(X(16), Layout.Port(Ports.Exception));
        a.Strb(W(17), X(16)); // a byte store: 0x503 is not 4-byte aligned (see the return port above)
        var stay = a.CreateLabel();
        a.Bind(stay);
        a.B(stay);
        return a.Assemble();
    }
}

// SPDX-License-Identifier: MIT
// Near branch targets (JMP, CALL) and the counter register of LOOP/LOOPE/LOOPNE.
using Iced.Intel;

namespace KvmSharp.Emulation.X86.Emulate;

internal sealed partial class X86Emulator
{
    private ulong BranchTarget(in Instruction i, int size) => i.GetOpKind(0) switch
    {
        OpKind.NearBranch16 or OpKind.NearBranch32 or OpKind.NearBranch64 => i.NearBranchTarget,
        _ => ReadOp(i, 0, size),
    };

    private static Register LoopCounter(Code code)
    {
        string name = code.ToString();
        return name.EndsWith("RCX", StringComparison.Ordinal) ? Register.RCX
            : name.EndsWith("ECX", StringComparison.Ordinal) ? Register.ECX : Register.CX;
    }
}

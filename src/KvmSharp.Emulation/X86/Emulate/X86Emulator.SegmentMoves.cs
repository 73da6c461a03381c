// SPDX-License-Identifier: MIT
// POP and MOV of segment registers.
using Iced.Intel;
using static KvmSharp.Emulation.X86.X86Consts;

namespace KvmSharp.Emulation.X86.Emulate;

internal sealed partial class X86Emulator
{
    /// <summary>
    /// emulate.c em_pop_sreg: "emulate_pop(ctxt, &amp;selector, 2)"; for SS "ctxt->interruptibility =
    /// KVM_X86_SHADOW_INT_MOV_SS" (toggled as for MOV SS: pop ss; pop ss leaves none); "if (ctxt->op_bytes &gt; 2)
    /// rsp_increment(ctxt, ctxt->op_bytes - 2)"; then load_segment_descriptor. Probed on Linux 6.18 kvm_pvm (real mode):
    /// pop ss / o32 pop ss / sti; pop ss leave shadow 1 over the next instruction, pop es / pop fs none, o32 pops 4 bytes.
    /// (POP DS/ES/SS do not exist in 64-bit mode: the decoder reports them invalid.)
    /// </summary>
    private void PopSegment(in Instruction i)
    {
        var reg = i.Op0Register;
        int opBytes = i.StackPointerIncrement;
        ushort selector = (ushort)Pop(2);
        if (reg == Register.SS) _shadowAfter = ToggledShadow(Abi.KvmVcpuEvents.KVM_X86_SHADOW_INT_MOV_SS);
        if (opBytes > 2) WriteStackPointer(ReadStackPointer() + (ulong)(opBytes - 2));
        if (_cpu.ProtectedMode)
        {
            LoadSegmentProtected(reg, selector);
            return;
        }
        ref var seg = ref Segment(reg);
        seg.selector = selector;
        seg.@base = (ulong)selector << 4;
    }

    private static bool IsSegmentMove(in Instruction i) =>
        (i.GetOpKind(0) == OpKind.Register && i.Op0Register.IsSegmentRegister()) ||
        (i.OpCount > 1 && i.GetOpKind(1) == OpKind.Register && i.GetOpRegister(1).IsSegmentRegister());

    /// <summary>MOV to/from a segment register: real mode base = selector * 16; protected mode loads the descriptor.</summary>
    private void MoveSegment(in Instruction i)
    {
        if (i.GetOpKind(0) == OpKind.Register && i.Op0Register.IsSegmentRegister())
        {
            if (i.Op0Register == Register.CS) throw new GuestFault(UD_VECTOR);
            ushort selector = (ushort)ReadOp(i, 1, 2);
            // Intel SDM Vol. 2A MOV: a load of SS blocks interrupts until after the next instruction.
            if (i.Op0Register == Register.SS) _shadowAfter = ToggledShadow(Abi.KvmVcpuEvents.KVM_X86_SHADOW_INT_MOV_SS);
            if (_cpu.ProtectedMode)
            {
                LoadSegmentProtected(i.Op0Register, selector);
                return;
            }
            ref var seg = ref Segment(i.Op0Register);
            seg.selector = selector;
            seg.@base = (ulong)selector << 4;
            return;
        }
        int size = OpSize(i, 0);
        WriteOp(i, 0, size, ReadReg(i.GetOpRegister(1)));
    }
}

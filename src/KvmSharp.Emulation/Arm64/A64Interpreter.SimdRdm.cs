// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// SQRDMLAH/SQRDMLSH (vector, by element, scalar and scalar by element; FEAT_RDM, ID_AA64ISAR0_EL1.RDM; Arm ARM DDI
/// 0487 C7.2 SQRDMLAH, SQRDMLSH), decoded and feature-checked with SDOT/UDOT (A64Interpreter.SimdDotProd.cs
/// <see cref="TrySimdIsar0"/>). The element operation is SVE2's (<see cref="SqrdmlahUnsaturated"/>, shared); the
/// AdvSIMD forms saturate through SignedSatQ, which sets FPSR.QC.
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>
    /// Vd.T[e] = SignedSatQ(((Vd.T[e] &lt;&lt; esize) ± 2 × Vn.T[e] × element2 + (1 &lt;&lt; (esize − 1))) &gt;&gt; esize)
    /// for H (size 01) and S (10) lanes, FPSR.QC set on saturation. element2 = Vm.T[e] (vector) or Vm.T[index]
    /// (by element: H:L:M with Rm in V0–V15 for H, H:L with Vm = M:Rm for S, from the whole 128-bit Vm). Scalar
    /// (bit 28 = 1): one lane, the rest of Vd zeroed; vector: Q selects 64 or 128 bits, the upper half zeroed for Q = 0.
    /// </summary>
    private void SimdRdm(uint insn, bool indexed, bool sub)
    {
        bool scalar = ((insn >> 28) & 1) != 0, q = ((insn >> 30) & 1) != 0;
        int size = (int)((insn >> 22) & 3), esize = 8 << size, rd = (int)(insn & 31);
        int rm = (int)((insn >> 16) & 31), index = 0;
        if (indexed)
        {
            int h = (int)((insn >> 11) & 1), l = (int)((insn >> 21) & 1), m = (int)((insn >> 20) & 1);
            index = size == 1 ? (h << 2) | (l << 1) | m : (h << 1) | l;
            if (size == 1) rm &= 15;
        }
        UInt128 d = cpu.Vregs[rd], n = cpu.Vregs[(insn >> 5) & 31], vm = cpu.Vregs[rm], result = 0;
        int elements = scalar ? 1 : (q ? 128 : 64) / esize;
        for (int e = 0; e < elements; e++)
        {
            Int128 a = SignExtend(Elem(n, e, esize), esize), b = SignExtend(Elem(vm, indexed ? index : e, esize), esize);
            Int128 acc = SignExtend(Elem(d, e, esize), esize);
            result = WithElem(result, e, esize, Saturate(SqrdmlahUnsaturated(acc, a, b, esize, sub), esize, unsigned: false));
        }
        SetV(rd, scalar || !q ? result & ulong.MaxValue : result);
    }
}

// SPDX-License-Identifier: MIT
using System.Collections.Concurrent;
using Iced.Intel;

namespace KvmSharp.Emulation.X86.Emulate;

/// <summary>
/// The VEX forms of the legacy SSE…SSE4.1 instructions the interpreter already runs (Intel SDM Vol. 2A 2.3 "Intel
/// Advanced Vector Extensions (AVX)", 2.3.10 and each instruction page's VEX.128/VEX.256 operation): one generic path
/// runs the legacy operation per 128-bit lane with the VEX operand rules instead of copying each operation. VEX.vvvv
/// is the first source (the legacy destination's input), so the legacy instruction runs on a work register holding it
/// and a scratch register holding the second source's lane; a VEX.128 result zeroes bits 255:128 of the destination,
/// a VEX.256 result is both lanes' results (the in-lane shuffles, PALIGNR, PSHUFB, unpacks and packs work per lane, as
/// the SDM defines them; VBLENDPS/PD, VSHUFPD and VMPSADBW take the upper lane's selectors from higher imm8 bits); the XMM/m128 count of VPSLL/VPSRL/VPSRA applies to both lanes; the 4-operand blends
/// (VBLENDVPS/PD, VPBLENDVB) take their mask from the is4 register where the legacy form reads XMM0. VEX memory operands
/// have no alignment rule (SDM Vol. 2A 2.5, exception type 4 with VEX), so an m128/m256 operand is read here with none.
/// Forms that cross lanes or change width (VCVTPS2PD ymm, VPMOVZX ymm …) have no legacy twin and run in
/// X86Emulator.Avx2.cs or not at all. Faults as <see cref="RequireAvx"/> (AVX2 for the 256-bit forms the SDM lists
/// under AVX2); the legacy operation's own rule for CR4.OSFXSR still applies (an OS enabling AVX enables it).
/// </summary>
internal sealed partial class X86Emulator
{
    private const int VexWork = 14, VexScratch = 15;

    private static readonly ConcurrentDictionary<Code, VexTwin> s_vexTwins = new();

    /// <summary>A VEX code's legacy twin: the code, whether VEX op 1 is the dropped first source, whether an is4 mask is the last operand.</summary>
    private readonly record struct VexTwin(Code Legacy, bool DropsSource1, bool Is4Mask);

    /// <summary>The x86-64-v3 VEX instructions: the AVX2/FMA ones of their own files, then the generic legacy-twin path.</summary>
    private bool TryVexV3(in Instruction i, ref ulong f)
    {
        if (i.Encoding != EncodingKind.VEX) return false;
        if (TryAvx2(i) || TryFma(i) || TryF16c(i)) return true;
        if (TryGather(i) || TryMaskMove(i) || TryFmaAddSub(i) || TryPermil(i)) return true; // X86Emulator.Gather.cs, MaskMove.cs, FmaAddSub.cs, Permil.cs
        if (TryVectorTest(i, ref f)) return true; // VTESTPS/VTESTPD (X86Emulator.VectorTest.cs)
        var twin = s_vexTwins.GetOrAdd(i.Code, FindTwin);
        if (twin.Legacy == Code.INVALID) return false;
        bool wide = IsWide(i);
        RequireAvx(avx2: wide && Array.IndexOf(i.Code.CpuidFeatures(), CpuidFeature.AVX2) >= 0);
        if (i.GetOpKind(0) == OpKind.Register && (i.Op0Register.IsXMM() || i.Op0Register.IsYMM())) VexLanes(i, twin, wide ? 32 : 16, ref f);
        else if (!wide) RunLegacy(Retag(i, twin), ref f);
        else return false;
        return true;
    }

    private static bool IsWide(in Instruction i)
    {
        for (int op = 0; op < i.OpCount; op++)
            if (i.GetOpKind(op) == OpKind.Register && i.GetOpRegister(op).IsYMM()) return true;
        return i.GetOpKind(0) == OpKind.Memory && i.MemorySize.GetSize() == 32;
    }

    /// <summary>The legacy code named like the VEX one (VEX_Vpaddd_ymm_ymm_ymmm256 → Paddd_xmm_xmmm128), when its lanes are the VEX form's.</summary>
    private static VexTwin FindTwin(Code vex)
    {
        string name = vex.ToString();
        if (!name.StartsWith("VEX_V", StringComparison.Ordinal)) return default;
        var info = vex.ToOpCode();
        // VMOVSS/VMOVSD xmm1, xmm2, xmm3 have a second encoding, VEX.LIG.F3/F2.0F 11 /r with ModRM.rm the destination
        // (Iced: VEX_Vmovss_xmm_xmm_xmm_0F11): the same operation as the 0F 10 form (SDM Vol. 2B MOVSS/MOVSD, "VMOVSS
        // xmm1, xmm2, xmm3" under both opcodes; gcc -march=x86-64-v3 emits it), so the opcode suffix is dropped.
        string[] parts = name[5..].Split('_').Where(p => p != "0F11").ToArray();
        string mnemonic = char.ToUpperInvariant(parts[0][0]) + parts[0][1..];
        if (mnemonic.StartsWith("Pcmpestr", StringComparison.Ordinal) || mnemonic.StartsWith("Pcmpistr", StringComparison.Ordinal)
            || mnemonic == "Maskmovdqu") return default; // implicit registers the lanes cannot stage
        bool drops = false, is4 = false, wide = parts[1] == "ymm", count = mnemonic is "Psllw" or "Pslld" or "Psllq" or "Psrlw"
            or "Psrld" or "Psrlq" or "Psraw" or "Psrad";
        for (int k = 0; k < info.OpCount; k++)
        {
            var kind = info.GetOpKind(k);
            if (kind is OpCodeOperandKind.xmm_vvvv or OpCodeOperandKind.ymm_vvvv) drops = true;
            if (kind is OpCodeOperandKind.xmm_is4 or OpCodeOperandKind.ymm_is4) is4 = true;
        }
        var ops = new List<string>();
        for (int k = 1; k < parts.Length; k++)
        {
            string p = parts[k];
            if (drops && k == 2) continue; // VEX op 1: vvvv, or the shifted register of VPSLLx ymm1(vvvv), ymm2, imm8
            if (is4 && k == parts.Length - 1) continue;
            bool y = p.StartsWith("ymm", StringComparison.Ordinal) || p == "m256";
            bool x = p.StartsWith("xmm", StringComparison.Ordinal) || p == "m128";
            if (wide && x && !(count && k == parts.Length - 1)) return default; // crosses lanes or changes width
            if (!wide && y) return default;
            ops.Add(p.Replace("ymmm256", "xmmm128").Replace("ymm", "xmm").Replace("m256", "m128"));
        }
        if (TryLegacy(mnemonic, ops, out var code)) return new VexTwin(code, drops, is4);
        // VEX splits what one legacy code covers (VMOVSS xmm, m32 / xmm, xmm, xmm vs MOVSS xmm, xmm/m32): try each
        // operand as the legacy register-or-memory operand.
        for (int k = 0; k < ops.Count; k++)
        {
            string[] merged = ops[k] switch
            {
                "m32" or "m64" or "m128" => ["xmm" + ops[k]],
                "xmm" => ["xmmm128", "xmmm64", "xmmm32"],
                _ => [],
            };
            foreach (string alt in merged)
            {
                var tried = new List<string>(ops) { [k] = alt };
                if (TryLegacy(mnemonic, tried, out code)) return new VexTwin(code, drops, is4);
            }
        }
        return default;
    }

    private static bool TryLegacy(string mnemonic, List<string> ops, out Code code) =>
        Enum.TryParse(mnemonic + (ops.Count > 0 ? "_" + string.Join('_', ops) : ""), out code) && code.ToOpCode().Encoding == EncodingKind.Legacy;

    /// <summary>The legacy instruction: the twin's code, VEX operands after the dropped first source moved down one.</summary>
    private static Instruction Retag(in Instruction i, VexTwin twin)
    {
        var li = i;
        li.Code = twin.Legacy;
        if (twin.DropsSource1)
        {
            for (int k = 1; k < li.OpCount; k++)
            {
                li.SetOpKind(k, i.GetOpKind(k + 1));
                if (i.GetOpKind(k + 1) == OpKind.Register) li.SetOpRegister(k, i.GetOpRegister(k + 1));
            }
        }
        return li;
    }

    /// <summary>
    /// The imm8 bits the upper lane's element selectors start at (SDM VBLENDPS/VBLENDPD/VSHUFPD/VMPSADBW VEX.256:
    /// imm8[7:4], [3:2], [3:2], [5:3]); 0 where both lanes use the same imm8 (VSHUFPS, VPSHUFD, VPALIGNR, VPBLENDW …).
    /// </summary>
    private static int LaneImmediateShift(Mnemonic m) => m switch
    {
        Mnemonic.Vblendps => 4,
        Mnemonic.Vblendpd or Mnemonic.Vshufpd => 2,
        Mnemonic.Vmpsadbw => 3,
        _ => 0,
    };

    private void RunLegacy(in Instruction li, ref ulong f)
    {
        if (TryExecuteExtended(li, ref f) || TrySseFloat(li, ref f) || TrySseInteger(li) || TrySseV2(li, ref f)) return;
        throw new EmulationFailure($"{li.Mnemonic} (the legacy twin of a VEX instruction) is outside the emulated subset", haveInstructionBytes: true);
    }

    /// <summary>
    /// A VEX instruction with a vector destination, lane by lane: XMM14 (work) ← the destination's input lane (VEX.vvvv,
    /// or the destination itself for the two-operand forms), XMM15 (scratch) ← the vector/m128/m256 source's lane, XMM0
    /// ← the is4 mask's lane, the legacy twin run on them; the three restored after, the results written as a VEX write.
    /// VPTEST's and the (U)COMIS* flags are the only outputs of those (PTEST ymm: ZF and CF of both lanes ANDed).
    /// </summary>
    private void VexLanes(in Instruction i, VexTwin twin, int bytes, ref ulong f)
    {
        var li = Retag(i, twin);
        int dest = VectorIndex(i.Op0Register);
        bool flagsOnly = i.Mnemonic is Mnemonic.Vptest or Mnemonic.Vucomiss or Mnemonic.Vucomisd or Mnemonic.Vcomiss or Mnemonic.Vcomisd;
        Span<byte> first = stackalloc byte[32], second = stackalloc byte[32], mask = stackalloc byte[32], result = stackalloc byte[32];
        if (twin.DropsSource1) VectorRegisters.Read(Vec, VectorIndex(i.GetOpRegister(1)), first[..bytes]);
        else VectorRegisters.Read(Vec, dest, first[..bytes]);
        int staged = -1, secondBytes = 0;
        int shift = twin.DropsSource1 ? 1 : 0;
        for (int k = 1; k < li.OpCount; k++)
        {
            var kind = i.GetOpKind(k + shift);
            if (kind == OpKind.Register && i.GetOpRegister(k + shift) is var r && (r.IsXMM() || r.IsYMM()))
            {
                secondBytes = r.IsYMM() ? 32 : 16;
                VectorRegisters.Read(Vec, VectorIndex(r), second[..secondBytes]);
            }
            else if (kind == OpKind.Memory && i.MemorySize.GetSize() >= 16)
            {
                secondBytes = i.MemorySize.GetSize();
                AccessMemory(VectorLinear(i, alignment: 1), second[..secondBytes], write: false);
            }
            else continue;
            if (staged >= 0) throw new EmulationFailure($"{i.Mnemonic}: two vector sources", haveInstructionBytes: true);
            staged = k;
            li.SetOpKind(k, OpKind.Register);
            li.SetOpRegister(k, Register.XMM0 + VexScratch);
        }
        if (twin.Is4Mask) VectorRegisters.Read(Vec, VectorIndex(i.GetOpRegister(i.OpCount - 1)), mask[..bytes]);
        li.SetOpRegister(0, Register.XMM0 + VexWork);
        Span<byte> saved = stackalloc byte[48];
        VectorRegisters.Low(Vec, VexWork).CopyTo(saved);
        VectorRegisters.Low(Vec, VexScratch).CopyTo(saved[16..]);
        VectorRegisters.Low(Vec, 0).CopyTo(saved[32..]);
        ulong zfCf = X86Consts.RFLAGS_ZF | X86Consts.RFLAGS_CF;
        try
        {
            for (int lane = 0; lane * 16 < bytes; lane++)
            {
                first.Slice(lane * 16, 16).CopyTo(VectorRegisters.Low(Vec, VexWork));
                if (staged >= 0) second.Slice(secondBytes == 32 ? lane * 16 : 0, 16).CopyTo(VectorRegisters.Low(Vec, VexScratch));
                if (twin.Is4Mask) mask.Slice(lane * 16, 16).CopyTo(VectorRegisters.Low(Vec, 0));
                if (lane > 0 && LaneImmediateShift(i.Mnemonic) is int by and > 0) li.Immediate8 = (byte)(i.Immediate8 >> by);
                RunLegacy(li, ref f);
                zfCf &= f;
                VectorRegisters.Low(Vec, VexWork).CopyTo(result.Slice(lane * 16, 16));
            }
        }
        finally
        {
            saved[..16].CopyTo(VectorRegisters.Low(Vec, VexWork));
            saved[16..32].CopyTo(VectorRegisters.Low(Vec, VexScratch));
            saved[32..].CopyTo(VectorRegisters.Low(Vec, 0));
        }
        if (i.Mnemonic == Mnemonic.Vptest) f = (f & ~X86Consts.RFLAGS_ARITH) | zfCf;
        if (!flagsOnly) VectorRegisters.WriteVex(Vec, dest, result[..bytes]);
    }
}

// SPDX-License-Identifier: MIT
namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// SVE first-fault and non-fault loads and the first-fault register FFR (Arm ARM DDI 0487 B1.2.x "SVE first-fault and
/// non-fault loads"; C8.2 pseudocode of LDFF1B…LDFF1SW, LDNF1B…LDNF1SW, RDFFR, RDFFRS, SETFFR, WRFFR; shared
/// pseudocode AArch64.MemSingleNF). FFR is the seventeenth predicate slot of <see cref="Arm64SveState"/> (what
/// KVM_REG_ARM64_SVE_FFR transfers).
/// <list type="bullet">
/// <item>LDFF1*: the first active element is read with Mem[] (a fault is taken as usual, nothing written); every later
/// active element with MemNF[] (AccType_CNOTFIRST), which never takes an exception: a fault, or any other reason the
/// read is not performed, clears the FFR element of that element and of every later one.</item>
/// <item>LDNF1*: every active element is read with MemNF[].</item>
/// <item>The data of an element at or after the first suppressed one is CONSTRAINED UNPREDICTABLE
/// (Unpredictable_SVELDNFDATA / SVELDNFZERO / merge); this model zeroes it, as qemu's sve_ldnfff1_r does (it clears
/// the destination before loading). An element whose FFR bit was already 0 keeps its loaded data
/// (the SVELDNFDATA choice).</item>
/// </list>
/// MemNF[] (AArch64.MemSingleNF) reports a fault without an exception for: an access that is not aligned while
/// SCTLR_EL1.A is set, any stage-1 fault (translation, access flag, permission, a walk outside guest memory), Device
/// memory ("Non-fault load from Device memory must not be performed externally" — with the MMU off every data access
/// is Device-nGnRnE, so there only the first element of LDFF1 is read and LDNF1 reads nothing), and any stage-2 outcome
/// other than RAM (MMIO, an IPA outside the VM, a userfault or memory-fault exit: the pseudocode's full translation
/// includes stage 2, so KVM never sees these).
/// </summary>
internal sealed partial class A64Interpreter
{
    /// <summary>The FFR slot of <see cref="Arm64SveState.Preg"/>.</summary>
    private const int Ffr = 16;

    /// <summary>
    /// SETFFR (0x252C9000), RDFFR Pd.B (0x2519F000), RDFFR/RDFFRS Pd.B, Pg/Z (0x2518F000 / 0x2558F000) and WRFFR Pn.B
    /// (0x25289000). False: not one of them.
    /// </summary>
    private bool SveFfrGroup(uint insn)
    {
        var buf = _p1;
        if (insn == 0x252C_9000)
        {
            // SETFFR: FFR[] = Ones(PL).
            Array.Fill(buf, (byte)0xFF);
            SetP(Ffr, buf);
        }
        else if ((insn & 0xFFFF_FFF0) == 0x2519_F000)
        {
            // RDFFR (unpredicated): P[d] = FFR[].
            SetP((int)(insn & 15), P(Ffr, buf));
        }
        else if ((insn & 0xFFBF_FE10) == 0x2518_F000)
        {
            // RDFFR / RDFFRS (predicated): P[d] = FFR[] AND P[g]; RDFFRS sets NZCV = PredTest(mask, result, 8).
            var mask = P((int)((insn >> 5) & 15), _p0);
            P(Ffr, buf);
            for (int i = 0; i < buf.Length; i++) buf[i] &= mask[i];
            SetP((int)(insn & 15), buf);
            if (((insn >> 22) & 1) != 0) PredTest(mask, buf, 1);
        }
        else if ((insn & 0xFFFF_FE1F) == 0x2528_9000)
        {
            // WRFFR: FFR[] = P[n] (a non-monotonic value is CONSTRAINED UNPREDICTABLE; it is written as given).
            SetP(Ffr, P((int)((insn >> 5) & 15), buf));
        }
        else
        {
            return false;
        }
        Next();
        return true;
    }

    /// <summary>
    /// LDFF1* / LDNF1* (contiguous and gathers): the pseudocode's loop — Mem[] for the first active element of a
    /// first-fault load, MemNF[] for the rest; "faulted = faulted || fault; if faulted then ElemFFR[e, esize] = '0'".
    /// Zt and FFR are written only when the first element did not take an exception.
    /// </summary>
    private bool FirstFaultLoad(uint insn, int zt, int mbytes, int esz, bool signed, Func<int, ulong> address, bool nonFault)
    {
        var p = P((int)((insn >> 10) & 7), _p0);
        var ffr = P(Ffr, _p1);
        var d = _z1;
        bool first = !nonFault, faulted = false;
        for (int e = 0; e < Elements(esz); e++)
        {
            ulong v = 0;
            if (Act(p, e, esz) && !faulted)
            {
                if (first)
                {
                    // "Mem[] will not return if a fault is detected for the first active element".
                    if (!MemoryAccess(address(e), _sveElem.AsSpan(0, mbytes), false, default, isvValid: false, alignment: mbytes)) return true;
                    first = false;
                    v = Load(mbytes, signed);
                }
                else if (ReadNonFault(address(e), _sveElem.AsSpan(0, mbytes), mbytes))
                {
                    v = Load(mbytes, signed);
                }
                else
                {
                    faulted = true;
                }
            }
            if (faulted)
            {
                SetAct(ffr, e, esz, false);
                v = 0;
            }
            SetE(d, e, esz, v & EMask(esz));
        }
        SetZ(zt, d);
        SetP(Ffr, ffr);
        Next();
        return true;
    }

    /// <summary>
    /// AArch64.MemSingleNF for a read of <paramref name="data"/>.Length bytes: true with the data when the read is
    /// performed; false (no exception, no side effect) when it faults or would access Device memory or anything
    /// but RAM at stage 2. See the class comment.
    /// </summary>
    private bool ReadNonFault(ulong address, Span<byte> data, int alignment)
    {
        if (AlignmentEnforced && !IsAligned(address, alignment)) return false;
        if (!MmuOn) return false; // AArch64.S1DisabledOutput: Device-nGnRnE
        bool el0 = cpu.AtEl0;
        bool pan = !el0 && (cpu.Pstate & PanBit) != 0 && HasPan;
        for (int done = 0; done < data.Length;)
        {
            ulong va = address + (ulong)done;
            int chunk = (int)Math.Min((ulong)(data.Length - done), 4096 - (va & 4095));
            var r = TranslateStage1(va, S1Access.Read, el0, pan);
            if (r.Status != S1Status.Ok || IsDeviceAttr(r.Attr)) return false;
            if (memory.Access(r.Ipa, data.Slice(done, chunk), write: false, fetch: false).Status != Stage2Status.Done) return false;
            done += chunk;
        }
        return true;
    }
}

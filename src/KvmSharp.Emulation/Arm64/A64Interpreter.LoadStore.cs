// SPDX-License-Identifier: MIT
using System.Buffers.Binary;

namespace KvmSharp.Emulation.Arm64;

/// <summary>Loads and stores of one general-purpose register (unsigned offset, pre-index, post-index).</summary>
internal sealed partial class A64Interpreter
{
    private readonly byte[] _data = new byte[8];

    private bool TryLoadStore(uint insn)
    {
        // Load/store register (unsigned immediate): size 111 0 01 opc imm12 Rn Rt (V = 0).
        if ((insn & 0x3F00_0000) == 0x3900_0000)
        {
            int size = (int)(insn >> 30);
            ulong offset = ((insn >> 10) & 0xfff) << size;
            LoadStore(insn, offset, writeback: false, postIndex: false);
            return true;
        }
        // Load/store register (immediate pre/post-indexed): size 111 0 00 opc 0 imm9 x1 Rn Rt.
        if ((insn & 0x3F20_0400) == 0x3800_0400)
        {
            ulong offset = (ulong)((long)((int)(insn << 11) >> 23));
            LoadStore(insn, offset, writeback: true, postIndex: ((insn >> 11) & 1) == 0);
            return true;
        }
        // LDTR*/STTR* (A64Interpreter.Unprivileged.cs), LDAPUR*/STLUR* (FEAT_LRCPC2): A64Interpreter.Rcpc2.cs.
        return TryLoadStoreUnprivileged(insn) || TryRcpc2(insn);
    }

    /// <summary>
    /// One STR/LDR/LDRS of 1, 2, 4 or 8 bytes. opc 00 store, 01 load (zero-extend), 10 load signed to 64 bits,
    /// 11 load signed to 32 bits; size 11 opc 10 is PRFM (a hint, no access), size 10 opc 11 and size 11 opc 11 are
    /// unallocated.
    /// </summary>
    private void LoadStore(uint insn, ulong offset, bool writeback, bool postIndex)
    {
        int size = (int)(insn >> 30);
        uint opc = (insn >> 22) & 3;
        int rn = (int)((insn >> 5) & 31), rt = (int)(insn & 31);
        if ((size == 2 && opc == 3) || (size == 3 && opc == 3))
        {
            Undefined();
            return;
        }
        if (size == 3 && opc == 2)
        {
            // PRFM: writeback forms are unallocated; the unsigned-offset form is a hint.
            if (writeback) Undefined();
            else Next();
            return;
        }
        // Writeback with Rt == Rn is CONSTRAINED UNPREDICTABLE; treated as unallocated (one of the permitted choices).
        if (writeback && rt == rn && rn != 31)
        {
            Undefined();
            return;
        }
        ulong baseAddress = cpu.RegOrSp(rn);
        // SP alignment check: SCTLR_EL1.SA (KVM resets SCTLR_EL1 to 0x00C50078, SA set) for SP-based accesses.
        if (rn == 31 && (baseAddress & 15) != 0)
        {
            SpAlignmentFault();
            return;
        }
        ulong address = postIndex ? baseAddress : baseAddress + offset;
        int length = 1 << size;
        bool store = opc == 0;
        bool signExtend = opc >= 2;
        // SF: the destination is an X register (64-bit load, or a sign-extending load to 64 bits).
        bool sf = size == 3 || opc == 2;
        var data = _data.AsSpan(0, length);
        if (store) WriteLittleEndian(data, cpu.Reg(rt));
        if (!MemoryAccess(address, data, store, new MmioSyndrome(address, store, length, rt, signExtend, sf, store ? cpu.Reg(rt) : 0), isvValid: !writeback))
            return;
        if (!store) cpu.SetReg(rt, Extend(ReadLittleEndian(data), length, signExtend, sf));
        if (writeback) cpu.SetRegOrSp(rn, baseAddress + offset);
        Next();
    }

    /// <summary>
    /// A data access through stage 2, split at a page boundary. False when the guest took an injected abort (the
    /// instruction did not execute). MMIO stops the run: with a valid syndrome as KVM_EXIT_MMIO, without one as a
    /// <see cref="NisvStop"/> (mmio.c io_mem_abort: "No valid syndrome? Ask userspace for help if it has volunteered
    /// to do so, and bail out otherwise": KVM_EXIT_ARM_NISV or -ENOSYS, decided in Arm64Run).
    /// <paramref name="deviceFaults"/>: any Device memory type is an alignment fault (DC ZVA,
    /// A64Interpreter.CacheMaintenance.cs).
    /// </summary>
    private bool MemoryAccess(ulong address, Span<byte> data, bool write, MmioSyndrome syndrome, bool isvValid,
        int alignment = 0, bool deviceFaults = false)
    {
        // Alignment (A64Interpreter.Alignment.cs) is checked on the element: alignment, or the whole access when 0.
        if (!CheckEnforcedAlignment(address, alignment == 0 ? data.Length : alignment, write)) return false;
        bool aligned = IsAligned(address, alignment == 0 ? data.Length : alignment) && !deviceFaults;
        // The host's watchpoints (KVM_GUESTDBG_USE_HW, A64Interpreter.HostDebug.cs): the whole access, on the VA,
        // before the walk.
        if (_hostWatch is not null) CheckHostWatchpoints(address, data.Length, write);
        // Split at the stage-1 granule (4 KiB) too; stage 1 translates every page before any byte moves.
        int page = Math.Min(EmulatorConfig.PageSize, 4096);
        int first = (int)Math.Min((ulong)data.Length, (ulong)page - (address & (ulong)(page - 1)));
        var access = write ? S1Access.Write : S1Access.Read;
        // TranslateData: Translate, or the EL0 walk of LDTR/STTR at EL1 (A64Interpreter.Unprivileged.cs).
        if (!TranslateData(address, access, out ulong ipa0, aligned)) return false;
        ulong ipa1 = 0;
        if (first < data.Length && !TranslateData(address + (ulong)first, access, out ipa1, aligned)) return false;
        for (int done = 0; done < data.Length;)
        {
            int chunk = done == 0 ? first : data.Length - done;
            ulong ipa = done == 0 ? ipa0 : ipa1;
            var r = memory.Access(ipa, data.Slice(done, chunk), write, fetch: false);
            switch (r.Status)
            {
                case Stage2Status.Done:
                    break;
                case Stage2Status.Mmio:
                    // A page-crossing access is split by the hardware; only a whole access to MMIO is reported.
                    if (!isvValid || done != 0 || chunk != data.Length) throw new NisvStop(NisvIss(write), ipa);
                    throw new MmioStop(syndrome with { Ipa = ipa });
                case Stage2Status.InjectAbort:
                case Stage2Status.InjectSeaIpa:
                    InjectDataAbort(ipa, sea: r.Status == Stage2Status.InjectSeaIpa);
                    return false;
                default:
                    throw new RunErrorStop(r.Errno, ipa, r.MemoryFaultExit, r.Userfault);
            }
            done += chunk;
        }
        return true;
    }

    /// <summary>
    /// kvm_emulate.h kvm_vcpu_dabt_iss_nisv_sanitized: "kvm_vcpu_get_esr(vcpu) &amp; (ESR_ELx_CM | ESR_ELx_WNR |
    /// ESR_ELx_FSC)". CM (bit 8) is 0 for a load/store; WnR (bit 6) is set for a write; FSC is the stage-2 fault:
    /// the emulator has no stage-2 tables, so it reports a translation fault at level 3 (ESR_ELx_FSC_FAULT | 3 =
    /// 0x07), what a fault on an unmapped page under populated tables shows [D: the real level depends on which
    /// stage-2 tables KVM has built; a write to a read-only slot's mapped page would be a permission fault].
    /// </summary>
    internal static ulong NisvIss(bool write) => 0x07UL | (write ? 1UL << 6 : 0);

    /// <summary>kvm_handle_mmio_return's view of a load result: sign-extend (SSE) and, without SF, keep 32 bits.</summary>
    public static ulong Extend(ulong value, int length, bool signExtend, bool sf)
    {
        if (signExtend && length < 8)
        {
            ulong mask = 1UL << (length * 8 - 1);
            value = (value ^ mask) - mask;
        }
        return sf ? value : value & 0xffff_ffff;
    }

    private static void WriteLittleEndian(Span<byte> data, ulong value)
    {
        Span<byte> all = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(all, value);
        all[..data.Length].CopyTo(data);
    }

    public static ulong ReadLittleEndian(ReadOnlySpan<byte> data)
    {
        Span<byte> all = stackalloc byte[8];
        all.Clear();
        data.CopyTo(all);
        return BinaryPrimitives.ReadUInt64LittleEndian(all);
    }
}

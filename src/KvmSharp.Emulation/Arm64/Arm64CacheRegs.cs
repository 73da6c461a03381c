// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi.Arm64;
using static KvmSharp.Abi.Arm64.KvmArm64Regs;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// The cache-geometry registers of arch/arm64/kvm/sys_regs.c (the "Normalize cache configuration" rules, 6.3+):
/// <list type="bullet">
/// <item>CLIDR_EL1: reset_clidr fabricates a value from the VM's CTR_EL0 (IDC set: a unified cache at level 2, or 1
/// with DIC; no DIC: an L1 instruction cache; LoC = that level; no MTE tags here); set_clidr (validate_clidr_el1) refuses
/// RES0 bits [63:47] and, when CTR_EL0.IDC is clear, a value that needs no data-cache clean to the PoU; the guest's MSR
/// is write_to_read_only (UNDEF).</item>
/// <item>CSSELR_EL1: reset_unknown, plain storage.</item>
/// <item>CCSIDR_EL1 (guest only): get_ccsidr for CSSELR_EL1's Level:InD (values ≥ 14 leave the destination as it was
/// read: here 0).</item>
/// <item>KVM_REG_ARM_DEMUX / KVM_REG_ARM_DEMUX_ID_CCSIDR | n, n = 0..13 (CSSELR_MAX), 32-bit, listed after the system
/// registers (write_demux_regids): demux_c15_get / demux_c15_set. Without an override get_ccsidr fabricates LineSize =
/// log2(min line bytes) - 4 from CTR_EL0's IminLine (InD) or DminLine, 1 set, 1 way; set_ccsidr refuses a line smaller
/// than that minimum (EINVAL), accepts the fabricated value without allocating, and otherwise keeps a per-vCPU array of
/// 14 values (vcpu->arch.ccsidr, not reset by KVM_ARM_VCPU_INIT).</item>
/// </list>
/// </summary>
internal static class Arm64CacheRegs
{
    /// <summary>CSSELR_MAX.</summary>
    public const int CsselrMax = 14;

    private static readonly int CtrIndex = Arm64IdRegs.IndexOf("CTR_EL0");

    public static IEnumerable<SysRegDesc> Descs()
    {
        yield return new("CCSIDR_EL1", 3, 1, 0, 0, 0, SysRegReset.None, User: SysRegUser.NotListed, Guest: SysRegGuest.Ccsidr);
        yield return new("CLIDR_EL1", 3, 1, 0, 0, 1, SysRegReset.Clidr, GuestWritable: false, User: SysRegUser.Clidr);
        yield return new("CSSELR_EL1", 3, 2, 0, 0, 0, SysRegReset.Unknown);
    }

    /// <summary>The VM's CTR_EL0 (kvm_read_vm_id_reg(kvm, SYS_CTR_EL0)).</summary>
    public static ulong Ctr(Arm64Cpu cpu)
    {
        lock (cpu.IdRegs) return Arm64IdRegs.Read(cpu.IdRegs, CtrIndex);
    }

    private const int CtrIdc = 28, CtrDic = 29;
    private const ulong CacheTypeInst = 1, CacheTypeUnified = 4;

    private static int CtypeShift(int level) => 3 * (level - 1);

    /// <summary>reset_clidr.</summary>
    public static ulong ResetClidr(ulong ctr)
    {
        ulong clidr;
        ulong loc;
        if (((ctr >> CtrIdc) & 1) != 0)
        {
            // "Data cache clean to the PoU is not required so LoUU and LoUIS will not be set and a unified cache,
            // which will be marked as LoC, will be added. If not DIC, let the unified cache L2".
            loc = ((ctr >> CtrDic) & 1) != 0 ? 1UL : 2UL;
            clidr = CacheTypeUnified << CtypeShift((int)loc);
        }
        else
        {
            // "let L1 have a data cache and mark it as LoUU and LoUIS ... it can be marked as LoC too".
            loc = 1;
            clidr = (1UL << 27) | (1UL << 21) | (2UL << CtypeShift(1));
        }
        // "Instruction cache invalidation to the PoU is required so let L1 have an instruction cache."
        if (((ctr >> CtrDic) & 1) == 0) clidr |= CacheTypeInst << CtypeShift(1);
        clidr |= loc << 24;
        return clidr;
    }

    /// <summary>validate_clidr_el1: RES0 bits, and "idc" (no LoC, or neither LoUIS nor LoUU) needs CTR_EL0.IDC.</summary>
    public static bool ValidClidr(ulong clidr, ulong ctr)
    {
        ulong louis = (clidr >> 21) & 7, loc = (clidr >> 24) & 7, louu = (clidr >> 27) & 7;
        bool idc = loc == 0 || (louis == 0 && louu == 0);
        const ulong Res0 = ~((1UL << 47) - 1);
        return (clidr & Res0) == 0 && !(((ctr >> CtrIdc) & 1) == 0 && idc);
    }

    /// <summary>get_min_cache_line_size: log2(bytes) = CTR_EL0.IminLine (InD) or DminLine (log2 words) + 2.</summary>
    private static int MinLineSize(Arm64Cpu cpu, bool icache)
    {
        ulong ctr = Ctr(cpu);
        return (int)(icache ? ctr & 0xf : (ctr >> 16) & 0xf) + 2;
    }

    /// <summary>get_ccsidr.</summary>
    public static uint GetCcsidr(Arm64Cpu cpu, int csselr)
    {
        if (cpu.Ccsidr is { } overrides) return overrides[csselr];
        return (uint)(MinLineSize(cpu, (csselr & 1) != 0) - 4);
    }

    /// <summary>set_ccsidr.</summary>
    private static long SetCcsidr(Arm64Cpu cpu, int csselr, uint val)
    {
        int lineSize = (int)(val & 7) + 4;
        // CCSIDR_EL1_RES0 is bits [63:32]: a 32-bit value never has them.
        if (lineSize < MinLineSize(cpu, (csselr & 1) != 0)) return Vfs.Err.EINVAL;
        if (cpu.Ccsidr is null)
        {
            if (val == GetCcsidr(cpu, csselr)) return 0;
            var array = new uint[CsselrMax];
            for (int i = 0; i < CsselrMax; i++) array[i] = GetCcsidr(cpu, i);
            cpu.Ccsidr = array;
        }
        cpu.Ccsidr[csselr] = val;
        return 0;
    }

    /// <summary>access_ccsidr: CSSELR_EL1 &amp; (Level | InD); a value ≥ CSSELR_MAX leaves p->regval untouched (0 here).</summary>
    public static ulong GuestCcsidr(Arm64Cpu cpu, ulong csselr)
    {
        csselr &= 0xf;
        return csselr < CsselrMax ? GetCcsidr(cpu, (int)csselr) : 0;
    }

    public static bool IsDemuxId(ulong id) => (id & KVM_REG_ARM_COPROC_MASK) == KvmArm64CacheRegs.KVM_REG_ARM_DEMUX;

    /// <summary>
    /// demux_c15_get / demux_c15_set's id checks: no bits beyond arch, size, coproc and the low 16; the CCSIDR id; a
    /// 32-bit size; a value below CSSELR_MAX. -1 when the id is not one (ENOENT).
    /// </summary>
    private static int DemuxIndex(ulong id)
    {
        if ((id & ~(KVM_REG_ARCH_MASK | KVM_REG_SIZE_MASK | KVM_REG_ARM_COPROC_MASK | 0xffff)) != 0) return -1;
        if ((id & KvmArm64CacheRegs.KVM_REG_ARM_DEMUX_ID_MASK) != KvmArm64CacheRegs.KVM_REG_ARM_DEMUX_ID_CCSIDR) return -1;
        if ((id & KVM_REG_SIZE_MASK) != KVM_REG_SIZE_U32) return -1;
        ulong val = (id & KvmArm64CacheRegs.KVM_REG_ARM_DEMUX_VAL_MASK) >> KvmArm64CacheRegs.KVM_REG_ARM_DEMUX_VAL_SHIFT;
        return val < CsselrMax ? (int)val : -1;
    }

    public static long DemuxGet(Arm64Cpu cpu, ulong id, Span<byte> value, out int size)
    {
        size = 0;
        int csselr = DemuxIndex(id);
        if (csselr < 0) return Vfs.Err.ENOENT;
        size = sizeof(uint);
        BinaryPrimitives.WriteUInt32LittleEndian(value, GetCcsidr(cpu, csselr));
        return 0;
    }

    public static long DemuxSet(Arm64Cpu cpu, ulong id, Func<int, byte[]?> copyFromUser)
    {
        int csselr = DemuxIndex(id);
        if (csselr < 0) return Vfs.Err.ENOENT;
        byte[]? bytes = copyFromUser(sizeof(uint));
        if (bytes is null) return Vfs.Err.EFAULT;
        return SetCcsidr(cpu, csselr, BinaryPrimitives.ReadUInt32LittleEndian(bytes));
    }

    /// <summary>write_demux_regids: every CSSELR value 0..13, whatever CLIDR_EL1 says.</summary>
    public static IEnumerable<ulong> DemuxIndices() => Enumerable.Range(0, CsselrMax).Select(KvmArm64CacheRegs.Ccsidr);
}

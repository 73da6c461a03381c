// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi.Arm64;
using static KvmSharp.Abi.Arm64.KvmArm64Regs;

namespace KvmSharp.Emulation.Arm64;

/// <summary>How <c>kvm_reset_sys_regs</c> initialises one register (arch/arm64/kvm/sys_regs.c reset_*).</summary>
internal enum SysRegReset
{
    /// <summary>reset_val: the descriptor's value.</summary>
    Value,

    /// <summary>reset_unknown: <see cref="Arm64Cpu.ResetUnknown"/>.</summary>
    Unknown,

    /// <summary>reset_mpidr: Aff0 = vcpu_id[3:0], Aff1 = vcpu_id[11:4], Aff2 = vcpu_id[19:12], bit 31 (RES1).</summary>
    Mpidr,
}

/// <summary>
/// One entry of sys_reg_descs[] the emulator models: its op0:op1:CRn:CRm:op2, reset, and whether the guest may write it
/// (MPIDR_EL1 is read-only to EL1: an MSR to it is UNDEFINED).
/// </summary>
internal sealed record SysRegDesc(string Name, int Op0, int Op1, int CRn, int CRm, int Op2, SysRegReset Reset, ulong Value = 0, bool GuestWritable = true,
    int IdIndex = -1)
{
    /// <summary>An ID register of <see cref="Arm64IdRegs.Table"/> (VM-wide value, read-only to the guest).</summary>
    public bool IsId => IdIndex >= 0;

    public ushort Encoding => (ushort)KvmArm64SysRegs.Encoding(Op0, Op1, CRn, CRm, Op2);

    public ulong Id => KvmArm64SysRegs.ARM64_SYS_REG(Op0, Op1, CRn, CRm, Op2);
}

/// <summary>
/// The EL1/EL0 system registers of arch/arm64/kvm/sys_regs.c sys_reg_descs[] the emulator models, with their reset
/// values: KVM_GET/SET_ONE_REG on their ids (kvm_sys_reg_get_user / kvm_sys_reg_set_user: a 64-bit id in the
/// KVM_REG_ARM64_SYSREG space, -ENOENT for any register not here; the generic-timer ids go to Arm64Timer first,
/// as guest.c is_timer_reg does), their part of KVM_GET_REG_LIST (walk_sys_regs, in encoding order), and the
/// guest's MRS/MSR on them (A64Interpreter.System.cs). ACTLR_EL1 and AMAIR_EL1 reset to the host's values
/// (reset_actlr, reset_amair_el1); the emulated host's are 0 [D]. The ID registers of <see cref="Arm64IdRegs"/>
/// (MIDR_EL1, REVIDR_EL1, the CRm 1..7 block, AIDR_EL1, CTR_EL0) sit in the same table at their encodings; their
/// values are VM-wide (get_id_reg / set_id_reg). Debug, PMU, pointer-authentication, cache-geometry
/// (CLIDR/CSSELR/CCSIDR) and the other registers sys_reg_descs[] has are not modelled: -ENOENT, not listed.
/// </summary>
internal static class Arm64SysRegs
{
    private static readonly SysRegDesc[] Plain =
    [
        new("MDSCR_EL1", 2, 0, 0, 2, 2, SysRegReset.Value, 0),
        new("MPIDR_EL1", 3, 0, 0, 0, 5, SysRegReset.Mpidr, GuestWritable: false),
        new("SCTLR_EL1", 3, 0, 1, 0, 0, SysRegReset.Value, 0x00C5_0078),
        new("ACTLR_EL1", 3, 0, 1, 0, 1, SysRegReset.Value, 0),
        new("CPACR_EL1", 3, 0, 1, 0, 2, SysRegReset.Value, 0),
        new("TTBR0_EL1", 3, 0, 2, 0, 0, SysRegReset.Unknown),
        new("TTBR1_EL1", 3, 0, 2, 0, 1, SysRegReset.Unknown),
        new("TCR_EL1", 3, 0, 2, 0, 2, SysRegReset.Value, 0),
        new("AFSR0_EL1", 3, 0, 5, 1, 0, SysRegReset.Unknown),
        new("AFSR1_EL1", 3, 0, 5, 1, 1, SysRegReset.Unknown),
        new("ESR_EL1", 3, 0, 5, 2, 0, SysRegReset.Unknown),
        new("FAR_EL1", 3, 0, 6, 0, 0, SysRegReset.Unknown),
        new("PAR_EL1", 3, 0, 7, 4, 0, SysRegReset.Unknown),
        new("MAIR_EL1", 3, 0, 10, 2, 0, SysRegReset.Unknown),
        new("AMAIR_EL1", 3, 0, 10, 3, 0, SysRegReset.Value, 0),
        new("VBAR_EL1", 3, 0, 12, 0, 0, SysRegReset.Value, 0),
        new("CONTEXTIDR_EL1", 3, 0, 13, 0, 1, SysRegReset.Value, 0),
        new("TPIDR_EL1", 3, 0, 13, 0, 4, SysRegReset.Unknown),
        new("CNTKCTL_EL1", 3, 0, 14, 1, 0, SysRegReset.Value, 0),
        new("TPIDR_EL0", 3, 3, 13, 0, 2, SysRegReset.Unknown),
        new("TPIDRRO_EL0", 3, 3, 13, 0, 3, SysRegReset.Unknown),
    ];

    /// <summary>Sorted by encoding, as sys_reg_descs[] is (check_sysreg_table): the plain registers and the ID registers.</summary>
    public static readonly SysRegDesc[] Table =
        [.. Plain.Concat(Arm64IdRegs.Table.Select((d, i) => new SysRegDesc(d.Name, d.Op0, d.Op1, d.CRn, d.CRm, d.Op2, SysRegReset.Value,
            GuestWritable: false, IdIndex: i))).OrderBy(d => d.Encoding)];

    private static readonly Dictionary<ushort, int> ByEncoding = Table.Select((d, i) => (d.Encoding, i)).ToDictionary(p => p.Encoding, p => p.i);

    public static int Count => Table.Length;

    public static int Index(string name) => Array.FindIndex(Table, d => d.Name == name);

    /// <summary>The table index of op0:op1:CRn:CRm:op2, or -1.</summary>
    public static int Find(ushort encoding) => ByEncoding.TryGetValue(encoding, out int i) ? i : -1;

    /// <summary>kvm_reset_sys_regs for the modelled registers.</summary>
    public static void Reset(Arm64Cpu cpu)
    {
        for (int i = 0; i < Table.Length; i++)
        {
            var d = Table[i];
            if (d.IsId) continue; // kvm->arch.id_regs: initialised once per VM, not by a vCPU reset.
            cpu.SysRegs[i] = d.Reset switch
            {
                SysRegReset.Unknown => Arm64Cpu.ResetUnknown,
                SysRegReset.Mpidr => Mpidr(cpu.VcpuId),
                _ => d.Value,
            };
        }
    }

    /// <summary>reset_mpidr: "Map the vcpu_id into the first three affinity level fields of the MPIDR" plus bit 31.</summary>
    public static ulong Mpidr(int vcpuId) =>
        ((ulong)(vcpuId & 0x0f) << 0) | ((ulong)((vcpuId >> 4) & 0xff) << 8) | ((ulong)((vcpuId >> 12) & 0xff) << 16) | (1UL << 31);

    public static bool IsSysRegId(ulong id) => (id & KVM_REG_ARM_COPROC_MASK) == KvmArm64SysRegs.KVM_REG_ARM64_SYSREG;

    /// <summary>
    /// index_to_params + id_to_sys_reg_desc: a register of this table iff the id is 64-bit and carries nothing
    /// but the encoding; anything else is -ENOENT (kvm_sys_reg_get_user).
    /// </summary>
    private static int IndexOf(ulong id)
    {
        const ulong EncodingMask = 0xffff;
        if ((id & KVM_REG_SIZE_MASK) != KVM_REG_SIZE_U64) return -1;
        if ((id & KVM_REG_ARM_COPROC_MASK) != KvmArm64SysRegs.KVM_REG_ARM64_SYSREG) return -1;
        if ((id & ~(KVM_REG_ARCH_MASK | KVM_REG_SIZE_MASK | KVM_REG_ARM_COPROC_MASK | EncodingMask)) != 0) return -1;
        return Find((ushort)(id & EncodingMask));
    }

    public static long Get(Arm64Cpu cpu, ulong id, Span<byte> value, out int size)
    {
        size = 0;
        int i = IndexOf(id);
        if (i < 0) return Vfs.Err.ENOENT;
        size = sizeof(ulong);
        var d = Table[i];
        ulong v;
        if (d.IsId)
        {
            lock (cpu.IdRegs) v = Arm64IdRegs.Read(cpu.IdRegs, d.IdIndex);
        }
        else
        {
            v = cpu.SysRegs[i];
        }
        BinaryPrimitives.WriteUInt64LittleEndian(value, v);
        return 0;
    }

    /// <summary>
    /// kvm_sys_reg_set_user: get_user of the value (EFAULT), then the plain store of reg_to_user's inverse, or the ID
    /// register rules of <see cref="Arm64IdRegs.Write"/>.
    /// </summary>
    public static long Set(Arm64Cpu cpu, ulong id, Func<int, byte[]?> copyFromUser)
    {
        int i = IndexOf(id);
        if (i < 0) return Vfs.Err.ENOENT;
        byte[]? bytes = copyFromUser(sizeof(ulong));
        if (bytes is null) return Vfs.Err.EFAULT;
        ulong value = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (Table[i].IsId) return Arm64IdRegs.Write(cpu.IdRegs, Table[i].IdIndex, value);
        cpu.SysRegs[i] = value;
        return 0;
    }

    /// <summary>The ids KVM_GET_REG_LIST lists after the core registers (copy_sys_reg_indices: sys_reg_descs order).</summary>
    public static IEnumerable<ulong> Indices() => Table.Select(d => d.Id);
}

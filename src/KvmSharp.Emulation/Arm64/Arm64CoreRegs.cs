// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi.Arm64;
using static KvmSharp.Abi.Arm64.KvmArm64Regs;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// KVM_GET/SET_ONE_REG for arm64 (arch/arm64/kvm/guest.c kvm_arm_get_reg / kvm_arm_set_reg, get_core_reg,
/// set_core_reg, core_reg_size_from_offset, core_reg_addr) and the core part of KVM_GET_REG_LIST. System registers
/// are <see cref="Arm64SysRegs"/>, firmware registers <see cref="Arm64FwRegs"/>, timer registers
/// <see cref="Arm64Timer"/> and SVE registers <see cref="Arm64Sve"/> (Arm64VcpuIoctls dispatches). On an SVE vCPU the
/// V registers are not core registers (EINVAL, not listed): userspace reaches them as the Z registers' low 128 bits.
/// </summary>
internal static class Arm64CoreRegs
{
    private const int NrRegs = KvmRegsSize / sizeof(uint);

    // asm/ptrace.h PSR_AA32_MODE_* (PSTATE.M with nRW set).
    private const ulong PsrAa32ModeMask = 0x1f;
    private const ulong PsrAa32ModeUsr = 0x10, PsrAa32ModeFiq = 0x11, PsrAa32ModeIrq = 0x12, PsrAa32ModeSvc = 0x13;
    private const ulong PsrAa32ModeAbt = 0x17, PsrAa32ModeUnd = 0x1b;

    /// <summary>
    /// system_supports_32bit_el0() of the emulated host: false, like current server cores without AArch32 (a host
    /// fact, not observable here [D]).
    /// </summary>
    private static bool Supports32BitEl0 => false;

    /// <summary>kvm_arm_get_reg; <paramref name="value"/> receives KVM_REG_SIZE(id) bytes on success.</summary>
    public static long Get(Arm64Cpu cpu, ulong id, Span<byte> value, out int size)
    {
        size = 0;
        // "We currently use nothing arch-specific in upper 32 bits" → -EINVAL.
        if ((id & ~KVM_REG_SIZE_MASK) >> 32 != KVM_REG_ARM64 >> 32) return Vfs.Err.EINVAL;
        if ((id & KVM_REG_ARM_COPROC_MASK) != KVM_REG_ARM_CORE) return Vfs.Err.ENOENT;
        // get_core_reg: the offset (and its last word) must lie inside struct kvm_regs, else -ENOENT.
        ulong off = CoreOffset(id);
        size = KVM_REG_SIZE(id);
        if (off >= NrRegs || off + (ulong)(size / sizeof(uint)) >= NrRegs) return Vfs.Err.ENOENT;
        // core_reg_addr: NULL (size mismatch, misaligned, not a register) → -EINVAL.
        if (CoreRegSize(off, cpu.Sve is not null) != size) return Vfs.Err.EINVAL;
        Read(cpu, (int)off, value[..size]);
        return 0;
    }

    /// <summary>kvm_arm_set_reg; <paramref name="copyFromUser"/> reads the user's KVM_REG_SIZE(id) bytes (null: EFAULT).</summary>
    public static long Set(Arm64Cpu cpu, ulong id, Func<int, byte[]?> copyFromUser)
    {
        if ((id & ~KVM_REG_SIZE_MASK) >> 32 != KVM_REG_ARM64 >> 32) return Vfs.Err.EINVAL;
        if ((id & KVM_REG_ARM_COPROC_MASK) != KVM_REG_ARM_CORE) return Vfs.Err.ENOENT;
        ulong off = CoreOffset(id);
        int size = KVM_REG_SIZE(id);
        if (off >= NrRegs || off + (ulong)(size / sizeof(uint)) >= NrRegs) return Vfs.Err.ENOENT;
        if (CoreRegSize(off, cpu.Sve is not null) != size) return Vfs.Err.EINVAL;
        // "if (KVM_REG_SIZE(reg->id) > sizeof(tmp)) return -EINVAL;" cannot trigger: sizes above are 4, 8, 16.
        byte[]? bytes = copyFromUser(size);
        if (bytes is null) return Vfs.Err.EFAULT;
        if (off == KVM_REG_ARM_CORE_REG(OffsetPstate))
        {
            ulong mode = BinaryPrimitives.ReadUInt64LittleEndian(bytes) & PsrAa32ModeMask;
            switch (mode)
            {
                case PsrAa32ModeUsr:
                    if (!Supports32BitEl0) return Vfs.Err.EINVAL;
                    break;
                case PsrAa32ModeFiq or PsrAa32ModeIrq or PsrAa32ModeSvc or PsrAa32ModeAbt or PsrAa32ModeUnd:
                    // vcpu_el1_is_32bit(): KVM_ARM_VCPU_EL1_32BIT is never accepted by this host.
                    return Vfs.Err.EINVAL;
                case KvmArm64Constants.PSR_MODE_EL0t or KvmArm64Constants.PSR_MODE_EL1t or KvmArm64Constants.PSR_MODE_EL1h:
                    break;
                default:
                    // EL2t/EL2h need nested virtualization (vcpu_has_nv), which this host does not offer.
                    return Vfs.Err.EINVAL;
            }
        }
        Write(cpu, (int)off, bytes);
        return 0;
    }

    /// <summary>
    /// guest.c copy_core_reg_indices: the id of every offset of struct kvm_regs that is a register, in offset order
    /// (KVM_REG_SIZE_U32 / U64 / U128 as core_reg_size_from_offset says; no V registers on an SVE vCPU).
    /// </summary>
    public static IEnumerable<ulong> Indices(bool sve = false)
    {
        for (int i = 0; i < NrRegs; i++)
        {
            int size = CoreRegSize((ulong)i, sve);
            if (size < 0) continue;
            ulong sizeBits = size switch { 4 => KVM_REG_SIZE_U32, 8 => KVM_REG_SIZE_U64, _ => KVM_REG_SIZE_U128 };
            yield return KVM_REG_ARM64 | KVM_REG_ARM_CORE | sizeBits | (uint)i;
        }
    }

    private static ulong CoreOffset(ulong id) => id & ~(KVM_REG_ARCH_MASK | KVM_REG_SIZE_MASK | KVM_REG_ARM_CORE);

    /// <summary>core_reg_size_from_offset: the register's size in bytes, or -1 for an offset that is not one.</summary>
    private static int CoreRegSize(ulong off, bool sve)
    {
        int size;
        if (off <= KVM_REG_ARM_CORE_REG(OffsetSpsr + 4 * 8)) size = 8;
        else if (off >= KVM_REG_ARM_CORE_REG(OffsetVregs) && off <= KVM_REG_ARM_CORE_REG(OffsetVregs + 31 * 16)) size = 16;
        else if (off == KVM_REG_ARM_CORE_REG(OffsetFpsr) || off == KVM_REG_ARM_CORE_REG(OffsetFpcr)) size = 4;
        else return -1;
        // "if (!IS_ALIGNED(off, size / sizeof(__u32))) return -EINVAL;"
        if (off % (ulong)(size / sizeof(uint)) != 0) return -1;
        // "The KVM_REG_ARM64_SVE regs must be used instead of KVM_REG_ARM_CORE for accessing the FPSIMD V-registers
        // on SVE-enabled vcpus": "if (vcpu_has_sve(vcpu) && core_reg_offset_is_vreg(off)) return -EINVAL;".
        return sve && size == 16 ? -1 : size;
    }

    private static void Read(Arm64Cpu cpu, int off, Span<byte> dest)
    {
        int bytes = off * sizeof(uint);
        if (bytes >= OffsetVregs && bytes < OffsetFpsr)
        {
            BinaryPrimitives.WriteUInt128LittleEndian(dest, cpu.Vregs[(bytes - OffsetVregs) / 16]);
            return;
        }
        if (bytes == OffsetFpsr) { BinaryPrimitives.WriteUInt32LittleEndian(dest, cpu.Fpsr); return; }
        if (bytes == OffsetFpcr) { BinaryPrimitives.WriteUInt32LittleEndian(dest, cpu.Fpcr); return; }
        BinaryPrimitives.WriteUInt64LittleEndian(dest, Get64(cpu, bytes));
    }

    private static void Write(Arm64Cpu cpu, int off, byte[] src)
    {
        int bytes = off * sizeof(uint);
        if (bytes >= OffsetVregs && bytes < OffsetFpsr)
        {
            cpu.Vregs[(bytes - OffsetVregs) / 16] = BinaryPrimitives.ReadUInt128LittleEndian(src);
            return;
        }
        if (bytes == OffsetFpsr) { cpu.Fpsr = BinaryPrimitives.ReadUInt32LittleEndian(src); return; }
        if (bytes == OffsetFpcr) { cpu.Fpcr = BinaryPrimitives.ReadUInt32LittleEndian(src); return; }
        Set64(cpu, bytes, BinaryPrimitives.ReadUInt64LittleEndian(src));
    }

    private static ulong Get64(Arm64Cpu cpu, int bytes) => bytes switch
    {
        < OffsetSp => cpu.X[bytes / 8],
        OffsetSp => cpu.SpEl0,
        OffsetPc => cpu.Pc,
        OffsetPstate => cpu.Pstate,
        OffsetSpEl1 => cpu.SpEl1,
        OffsetElrEl1 => cpu.ElrEl1,
        _ => cpu.Spsr[(bytes - OffsetSpsr) / 8],
    };

    private static void Set64(Arm64Cpu cpu, int bytes, ulong value)
    {
        switch (bytes)
        {
            case < OffsetSp: cpu.X[bytes / 8] = value; break;
            case OffsetSp: cpu.SpEl0 = value; break;
            case OffsetPc: cpu.Pc = value; break;
            case OffsetPstate: cpu.Pstate = value; break;
            case OffsetSpEl1: cpu.SpEl1 = value; break;
            case OffsetElrEl1: cpu.ElrEl1 = value; break;
            default: cpu.Spsr[(bytes - OffsetSpsr) / 8] = value; break;
        }
    }
}

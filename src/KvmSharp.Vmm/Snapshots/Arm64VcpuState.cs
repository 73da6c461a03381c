// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi.Arm64;
using KvmSharp.Arm64;
using KvmSharp.Kernel;
using KvmSharp.Vmm.Arch.Arm64;

namespace KvmSharp.Vmm.Snapshots;

/// <summary>
/// The vCPU state an arm64 snapshot carries: every register KVM_GET_REG_LIST names, in the kernel's order, each read
/// with KVM_GET_ONE_REG — what firecracker's aarch64 snapshot saves (arch/aarch64/vcpu.rs get_all_registers). The list
/// (arch/arm64/kvm/guest.c kvm_arm_copy_reg_indices) is the core registers (struct kvm_regs: x0..x30, SP_EL0, PC,
/// PSTATE, SP_EL1, ELR_EL1, the SPSRs, V0..V31, FPSR, FPCR; ids KVM_REG_ARM_CORE | offset / 4), the firmware registers
/// (PSCI version, SMCCC workarounds, the hypercall bitmaps), the timers (CNTV_CTL, CNTVCT, CNTV_CVAL, then the physical
/// timer's) and the system registers in sys_reg_descs order (KVM_REG_ARM64_SYSREG | op0:op1:CRn:CRm:op2: MPIDR, the ID
/// registers, SCTLR, CPACR, TTBR0/1, TCR, ESR, FAR, PAR, MAIR, AMAIR, VBAR, CONTEXTIDR, TPIDR_EL0/EL1, TPIDRRO_EL0,
/// CNTKCTL …), then the demultiplexed CCSIDRs. A list rather than a fixed set: it is what this kernel holds for the
/// vCPU (a guest could change none of the rest), and a later kernel's new registers come with it.
/// Restored by KVM_ARM_VCPU_INIT (a reset) and then KVM_SET_ONE_REG of each in the same order, as firecracker does:
/// writing an ID or firmware register after the VM ran is refused only when the value differs (sys_regs.c
/// set_id_reg, hypercalls.c kvm_arm_set_fw_reg_bmap: EBUSY), so a snapshot from the same kernel loads, and one from a
/// kernel whose CPU differs is refused naming the register. An SVE vCPU (<see cref="MicroVmOptions.Arm64SveVectorBits"/>)
/// lists KVM_REG_ARM64_SVE_VLS, Z0..Z31, P0..P15 and FFR (slice 0, each id sized for the largest vector length:
/// KVM_REG_SIZE_U2048 and U256, the bytes beyond the vCPU's length zero: guest.c sve_reg_to_region) after the core
/// registers, and ZCR_EL1 among the system registers: they travel like the rest, except the vector lengths, which are
/// compared instead of written (<see cref="CheckSve"/>). The virtual counter (KVM_REG_ARM_TIMER_CNT) goes back to
/// its value at the snapshot (arch_timer.c kvm_arm_timer_set_reg moves the VM's counter offset), so a time the guest
/// stored in its initialisation is never in its future.
/// </summary>
internal sealed class Arm64VcpuState
{
    /// <summary>The most registers a file may hold: a vCPU lists a few hundred (firecracker sizes its list at 500).</summary>
    public const int MaxRegisters = 4096;

    /// <summary>The largest register: KVM_REG_SIZE_U2048 (an SVE Z register slice), 256 bytes.</summary>
    public const int MaxRegisterSize = 256;

    private readonly ulong[] _ids;
    private readonly byte[][] _values;

    public Arm64VcpuState(ulong[] ids, byte[][] values)
    {
        _ids = ids;
        _values = values;
    }

    /// <summary>The register ids, in the order KVM_GET_REG_LIST gave them (the file's and the restore's order).</summary>
    public IReadOnlyList<ulong> Ids => _ids;

    /// <summary>The value of register <paramref name="index"/> (KVM_REG_SIZE of its id bytes, little-endian).</summary>
    public ReadOnlySpan<byte> Value(int index) => _values[index];

    /// <summary>The value of register <paramref name="id"/>, or null when the snapshot does not hold it.</summary>
    public byte[]? Find(ulong id)
    {
        int i = Array.IndexOf(_ids, id);
        return i < 0 ? null : (byte[])_values[i].Clone();
    }

    /// <summary>KVM_GET_REG_LIST, then KVM_GET_ONE_REG of each register.</summary>
    public static Arm64VcpuState Capture(Vcpu vcpu)
    {
        ulong[] ids = vcpu.GetRegisterList();
        var values = new byte[ids.Length][];
        for (int i = 0; i < ids.Length; i++)
        {
            try
            {
                values[i] = vcpu.GetOneRegBytes(ids[i]);
            }
            catch (KvmException e)
            {
                throw new MicroVmSnapshotException(SnapshotRefusal.VcpuStateRefused,
                    $"cannot snapshot: the kernel lists register {Describe(ids[i])} but KVM_GET_ONE_REG does not read it: {e.Message}", e);
            }
        }
        return new Arm64VcpuState(ids, values);
    }

    /// <summary>
    /// KVM_SET_ONE_REG of every register, in order, on a vCPU just reset by KVM_ARM_VCPU_INIT. A register this kernel
    /// refuses (not on its list, or a value it does not take) is a <see cref="MicroVmSnapshotException"/> naming it.
    /// </summary>
    public void Load(Vcpu vcpu)
    {
        CheckSve(vcpu);
        for (int i = 0; i < _ids.Length; i++)
        {
            // Fixed at the vCPU's finalization, which comes before any register can be loaded (guest.c set_sve_vls:
            // "if (kvm_arm_vcpu_sve_finalized(vcpu)) return -EPERM; /* too late! */"); CheckSve found it equal.
            if (_ids[i] == KvmArm64Sve.KVM_REG_ARM64_SVE_VLS) continue;
            try
            {
                vcpu.SetOneRegBytes(_ids[i], _values[i]);
            }
            catch (KvmException e)
            {
                throw new MicroVmSnapshotException(SnapshotRefusal.VcpuStateRefused,
                    $"this kernel refused the snapshot's register {Describe(_ids[i])} = 0x{Convert.ToHexString([.. _values[i].Reverse()])} (KVM_SET_ONE_REG {e.ErrnoName}): a snapshot loads on a kernel whose vCPU has the same registers and ID values", e);
            }
        }
    }

    /// <summary>
    /// Refuses a snapshot whose vCPU had other SVE vector lengths than <paramref name="vcpu"/> (the one the micro-VM
    /// finalized with <see cref="MicroVmOptions.Arm64SveVectorBits"/>): KVM_REG_ARM64_SVE_VLS, listed first of the
    /// SVE registers of an SVE vCPU (guest.c copy_sve_reg_indices), cannot be changed once the vCPU is finalized, and
    /// the Z, P and FFR registers the snapshot holds are sized by it; a vCPU without SVE has no such register
    /// (get_sve_vls: ENOENT).
    /// </summary>
    public void CheckSve(Vcpu vcpu)
    {
        byte[]? saved = Find(KvmArm64Sve.KVM_REG_ARM64_SVE_VLS);
        byte[]? current;
        try
        {
            current = vcpu.GetOneRegBytes(KvmArm64Sve.KVM_REG_ARM64_SVE_VLS);
        }
        catch (KvmException e) when (e.Errno == Errno.ENOENT)
        {
            current = null;
        }
        if (saved is null && current is null) return;
        if (saved is not null && current is not null && saved.AsSpan().SequenceEqual(current)) return;
        throw new MicroVmSnapshotException(SnapshotRefusal.VcpuStateRefused,
            $"the snapshot's vCPU has {SveLengths(saved)}, this micro-VM's has {SveLengths(current)} (MicroVmOptions.Arm64SveVectorBits): a snapshot loads into a micro-VM with the same SVE vector lengths");

        static string SveLengths(byte[]? vls) => vls is null
            ? "no SVE"
            : $"SVE vector lengths {string.Join(", ", Arm64Boot.VectorBits(MemoryMarshal.Cast<byte, ulong>(vls)))} bits";
    }

    /// <summary>A register id with its kind: core (struct kvm_regs offset), system (op0:op1:CRn:CRm:op2) or other.</summary>
    public static string Describe(ulong id)
    {
        ulong coproc = id & KvmArm64Regs.KVM_REG_ARM_COPROC_MASK;
        string kind = coproc == KvmArm64Regs.KVM_REG_ARM_CORE
            ? $"core, kvm_regs offset {(id & 0xFFFF) * 4}"
            : coproc == KvmArm64SysRegs.KVM_REG_ARM64_SYSREG
                ? $"sysreg S{(id >> 14) & 3}_{(id >> 11) & 7}_C{(id >> 7) & 15}_C{(id >> 3) & 15}_{id & 7}"
                : $"coproc 0x{coproc >> KvmArm64Regs.KVM_REG_ARM_COPROC_SHIFT:X}";
        return $"0x{id:X} ({kind}, {KvmArm64Regs.KVM_REG_SIZE(id)} bytes)";
    }
}

// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;

namespace KvmSharp.Fuzzing;

/// <summary>
/// Argument buffers for vCPU state: on arm64 KVM_ARM_VCPU_INIT, KVM_GET_REG_LIST and KVM_{GET,SET}_ONE_REG with ids
/// near real registers; on x86 KVM_SET_REGS / KVM_SET_SREGS starting from the vCPU's current state with a few fields
/// changed, and the CPUID requests' kvm_cpuid2 with a plausible entry count.
/// </summary>
internal sealed partial class RawFuzzSession
{
    /// <summary>
    /// How many ids a structured KVM_GET_REG_LIST buffer has room for (the emulator lists 257 — core, firmware, timer,
    /// system, debug and ID registers and the CCSIDR demux ids — or 331 with KVM_ARM_VCPU_PMU_V3's PMU registers).
    /// </summary>
    private const ulong Arm64RegListRoom = 512;

    private static readonly ulong[] s_arm64SysRegIds =
    [
        KvmArm64SysRegs.MPIDR_EL1, KvmArm64SysRegs.SCTLR_EL1, KvmArm64SysRegs.TTBR0_EL1, KvmArm64SysRegs.VBAR_EL1,
        KvmArm64SysRegs.ESR_EL1, KvmArm64SysRegs.TPIDR_EL0,
    ];

    /// <summary>The arm64 vCPU requests (init, register list, one register); false for any other request.</summary>
    private bool FillArm64Vcpu(uint request, byte[] b)
    {
        if (request == KvmArm64Ioctls.KVM_ARM_VCPU_INIT) FillArm64VcpuInit(b);
        else if (request == KvmArm64Ioctls.KVM_GET_REG_LIST) FillArm64RegList(b);
        else if (request == KvmArm64Ioctls.KVM_GET_ONE_REG || request == KvmArm64Ioctls.KVM_SET_ONE_REG) FillArm64OneReg(b);
        else return false;
        return true;
    }

    /// <summary>
    /// struct kvm_vcpu_init (target@0, features[0]@4): mostly the generic target with PSCI 0.2 and maybe POWER_OFF, so
    /// ONE_REG and KVM_RUN get past -ENOEXEC; sometimes unknown targets and feature bits.
    /// </summary>
    private void FillArm64VcpuInit(byte[] b)
    {
        U32(b, 0, _rng.Next(6) == 0 ? (uint)_rng.Next(16) : KvmArm64Constants.KVM_ARM_TARGET_GENERIC_V8);
        U32(b, 4, _rng.Next(4) switch
        {
            0 => (uint)_rng.Next(1 << 10),
            1 => 0,
            _ => (1u << KvmArm64Constants.KVM_ARM_VCPU_PSCI_0_2) | (uint)_rng.Next(2) << KvmArm64Constants.KVM_ARM_VCPU_POWER_OFF,
        });
    }

    /// <summary>
    /// struct kvm_reg_list (n@0, then the ids the call writes): n mostly room for the whole list (the buffer holds
    /// <see cref="Arm64RegListRoom"/> ids), sometimes short.
    /// </summary>
    private void FillArm64RegList(byte[] b)
    {
        U64(b, 0, _rng.Next(4) == 0 ? (ulong)_rng.Next(0, 100) : Arm64RegListRoom);
    }

    /// <summary>
    /// struct kvm_one_reg (id@0, addr@8): an id near a real one (core offsets, the modelled and unmodelled system
    /// registers, other coprocessors and sizes), and addr into the sandbox (made safe in Shape whatever the mutation does).
    /// </summary>
    private void FillArm64OneReg(byte[] b)
    {
        ulong id = _rng.Next(7) switch
        {
            0 or 1 => KvmArm64Regs.X(_rng.Next(31)),
            2 => s_arm64SysRegIds[_rng.Next(s_arm64SysRegIds.Length)],
            5 => KvmArm64SysRegs.ARM64_SYS_REG(_rng.Next(2, 4), _rng.Next(8), _rng.Next(16), _rng.Next(16), _rng.Next(8)),
            3 => KvmArm64SysRegs.ARM64_SYS_REG(3, 0, _rng.Next(16), _rng.Next(8), _rng.Next(8)),
            4 => KvmArm64Regs.KVM_REG_ARM64 | ((ulong)(uint)_rng.Next(8) << KvmArm64Regs.KVM_REG_SIZE_SHIFT) |
                 ((ulong)(uint)_rng.Next(0x20) << KvmArm64Regs.KVM_REG_ARM_COPROC_SHIFT) | (uint)_rng.Next(0x10000),
            _ => Interesting(),
        };
        U64(b, 0, id);
        U64(b, 8, (ulong)_sandbox.Start + (ulong)_rng.Next(0, 64) * 8);
    }

    /// <summary>KVM_SET_REGS / KVM_SET_SREGS and the CPUID requests; false for any other request.</summary>
    private bool FillX86Vcpu(uint request, byte[] b, int fd)
    {
        if (request == KvmIoctls.KVM_SET_REGS || request == KvmIoctls.KVM_SET_SREGS) FillFromVcpuState(request, b, fd);
        else if (IsCpuidRequest(request)) FillCpuid(b);
        else return false;
        return true;
    }

    /// <summary>
    /// kvm_regs / kvm_sregs: the vCPU's current state (read with the matching GET, when the fd is a vCPU) with one to
    /// three words changed.
    /// </summary>
    private void FillFromVcpuState(uint request, byte[] b, int fd)
    {
        uint get = request == KvmIoctls.KVM_SET_REGS ? KvmIoctls.KVM_GET_REGS : KvmIoctls.KVM_GET_SREGS;
        int size = NaturalSize(request);
        byte[] current = new byte[size];
        if (_kernel.Ioctl(Handle(fd), get, current) == 0) current.CopyTo(b, 0);
        int fields = _rng.Next(1, 4);
        for (int i = 0; i < fields; i++)
        {
            int at = _rng.Next(size / 8) * 8;
            U64(b, at, _rng.Next(3) == 0 ? Interesting() : GetU64(b, at) ^ (1UL << _rng.Next(64)));
        }
    }

    /// <summary>struct kvm_cpuid2: random entries, nent@0 mostly around what the buffer holds (0 … 9, or anything).</summary>
    private void FillCpuid(byte[] b)
    {
        _rng.NextBytes(b);
        U32(b, 0, _rng.Next(4) == 0 ? (uint)Interesting() : (uint)_rng.Next(10));
    }
}

// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi.Arm64;
using KvmSharp.Emulation.Vfs;
using KvmSharp.Memory;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// KVM_ARM_GET_REG_WRITABLE_MASKS (arch/arm64/kvm/arm.c kvm_arch_vm_ioctl → sys_regs.c
/// kvm_vm_ioctl_get_reg_writable_masks): the rd->val of every feature ID register with a set_user, at
/// KVM_ARM_FEATURE_ID_RANGE_IDX of its encoding; RAZ registers (val 0) and, without 32-bit EL0, the AArch32 ones stay 0.
/// The masks of registers whose host value is 0 follow arch/arm64/tools/sysreg field layouts [D: approximate].
/// </summary>
internal static class Arm64IdRegMasks
{
    public static long Ioctl(EmulatorConfig config, IoctlArg arg)
    {
        // copy_from_user(&range, argp, sizeof(range)).
        if (arg.Buffer.Length < KvmArm64Ioctls.RegMaskRangeSize) return Err.EFAULT;
        ulong addr = BinaryPrimitives.ReadUInt64LittleEndian(arg.Buffer);
        uint range = BinaryPrimitives.ReadUInt32LittleEndian(arg.Buffer[8..]);
        // "Only feature id range is supported, reserved[13] must be zero."
        if (range != KvmArm64Ioctls.KVM_ARM_FEATURE_ID_RANGE || arg.Buffer[12..(int)KvmArm64Ioctls.RegMaskRangeSize].ContainsAnyExcept((byte)0))
            return Err.EINVAL;
        byte[] masks = new byte[KvmArm64Ioctls.KVM_ARM_FEATURE_ID_RANGE_SIZE * sizeof(ulong)];
        foreach (var d in Arm64IdRegs.Table)
        {
            // is_feature_id_reg (op0 3, op1 0/1/3, CRn 0, CRm 0..7) with a set_user and a non-zero val.
            if (d.Kind is IdRegKind.Raz or IdRegKind.Aa32RazUserWi || d.WritableMask == 0) continue;
            int idx = KvmArm64Ioctls.KVM_ARM_FEATURE_ID_RANGE_IDX(d.Op0, d.Op1, d.CRn, d.CRm, d.Op2);
            BinaryPrimitives.WriteUInt64LittleEndian(masks.AsSpan(idx * sizeof(ulong)), d.WritableMask);
        }
        // clear_user of the whole range, then put_user of each mask: any inaccessible byte is -EFAULT.
        if (!UserMemory.AccessOk(config, addr, (ulong)masks.Length)) return Err.EFAULT;
        return HostMemory.WriteProcessMemory(addr, masks) == masks.Length ? 0 : Err.EFAULT;
    }
}

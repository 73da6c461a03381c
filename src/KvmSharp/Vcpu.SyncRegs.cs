// SPDX-License-Identifier: MIT
using System.Buffers.Binary;
using KvmSharp.Abi;

namespace KvmSharp;

public sealed partial class Vcpu
{
    /// <summary>
    /// kvm_run.kvm_valid_regs: the register sets (KVM_SYNC_X86_REGS = 1, SREGS = 2, EVENTS = 4) KVM copies into the run
    /// page's <c>s.regs</c> when KVM_RUN returns. KVM_RUN fails with EINVAL for a bit outside KVM_CAP_SYNC_REGS's
    /// answer — any bit on a VM with protected state (SEV-ES, SNP, TDX), whose registers KVM cannot read.
    /// </summary>
    public ulong SyncValidRegisters
    {
        get => BinaryPrimitives.ReadUInt64LittleEndian(_run.GetSpan(KvmRunLayout.kvm_valid_regs, sizeof(ulong)));
        set => BinaryPrimitives.WriteUInt64LittleEndian(_run.GetSpan(KvmRunLayout.kvm_valid_regs, sizeof(ulong)), value);
    }

    /// <summary>
    /// kvm_run.kvm_dirty_regs: the register sets KVM loads from <c>s.regs</c> before entering the guest; the same
    /// EINVAL rule as <see cref="SyncValidRegisters"/>.
    /// </summary>
    public ulong SyncDirtyRegisters
    {
        get => BinaryPrimitives.ReadUInt64LittleEndian(_run.GetSpan(KvmRunLayout.kvm_dirty_regs, sizeof(ulong)));
        set => BinaryPrimitives.WriteUInt64LittleEndian(_run.GetSpan(KvmRunLayout.kvm_dirty_regs, sizeof(ulong)), value);
    }
}

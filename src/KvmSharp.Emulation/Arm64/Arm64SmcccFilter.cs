// SPDX-License-Identifier: MIT
using KvmSharp.Abi;
using KvmSharp.Emulation.Vfs;
using static KvmSharp.Abi.Arm64.KvmArm64Smccc;

namespace KvmSharp.Emulation.Arm64;

/// <summary>
/// kvm->arch.smccc_filter (arch/arm64/kvm/hypercalls.c, 6.18): a maple tree of disjoint function-id ranges, each
/// with a KVM_SMCCC_FILTER_* action, set through the VM attribute KVM_ARM_VM_SMCCC_CTRL / KVM_ARM_VM_SMCCC_FILTER
/// (arm.c kvm_vm_has_attr / kvm_vm_set_attr → kvm_vm_smccc_has_attr / kvm_vm_smccc_set_attr). Ranges cannot be
/// removed; the filter is frozen once the VM ran.
/// </summary>
internal sealed class Arm64SmcccFilter
{
    /// <summary>sizeof(struct kvm_smccc_filter).</summary>
    public const int StructSize = 24;

    // SMC32_ARCH_RANGE_BEGIN..END and SMC64_ARCH_RANGE_BEGIN..END: the SMCCC architecture calls of both conventions.
    private const uint Smc32ArchBegin = 0x8000_0000, Smc32ArchEnd = 0x8000_FFFF;
    private const uint Smc64ArchBegin = 0xC000_0000, Smc64ArchEnd = 0xC000_FFFF;

    private readonly List<(uint Start, uint End, byte Action)> _ranges = [];

    /// <summary>
    /// kvm_smccc_filter_get_action: no filter configured → HANDLE; else the action of the range holding the id
    /// ("mt_find() returns NULL if no entry was found, which just so happens to match KVM_SMCCC_FILTER_HANDLE").
    /// </summary>
    public byte GetAction(uint fn)
    {
        lock (_ranges)
        {
            foreach (var (start, end, action) in _ranges)
            {
                if (fn >= start && fn <= end) return action;
            }
            return KVM_SMCCC_FILTER_HANDLE;
        }
    }

    /// <summary>kvm_vm_smccc_has_attr: only KVM_ARM_VM_SMCCC_FILTER exists (else ENXIO).</summary>
    public static long HasAttr(in kvm_device_attr attr) => attr.attr == KVM_ARM_VM_SMCCC_FILTER ? 0 : Err.ENXIO;

    /// <summary>
    /// kvm_vm_smccc_set_attr → kvm_smccc_set_filter: copy_from_user (EFAULT); non-zero pad → EINVAL; "end = start +
    /// nr_functions - 1" in u32, "end &lt; start || filter.action &gt;= NR_SMCCC_FILTER_ACTIONS" → EINVAL; under
    /// config_lock: kvm_vm_has_ran_once → EBUSY; the first filter inserts the reserved SMCCC arch ranges as HANDLE
    /// ("avoiding the risk of misrepresenting Spectre mitigation status to the guest"); mtree_insert_range of an
    /// overlapping range → EEXIST.
    /// </summary>
    public static long SetAttr(KvmMain.Kvm kvm, in kvm_device_attr attr)
    {
        if (attr.attr != KVM_ARM_VM_SMCCC_FILTER) return Err.ENXIO;
        byte[] raw = new byte[StructSize];
        if (!UserMemory.CopyFromUser(kvm.Kernel.Config, attr.addr, raw)) return Err.EFAULT;
        uint start = BitConverter.ToUInt32(raw, 0);
        uint nr = BitConverter.ToUInt32(raw, 4);
        byte action = raw[8];
        for (int i = 9; i < StructSize; i++)
        {
            if (raw[i] != 0) return Err.EINVAL;
        }
        uint end = unchecked(start + nr - 1);
        if (end < start || action > KVM_SMCCC_FILTER_FWD_TO_USER) return Err.EINVAL;
        var vm = Arm64VmState.Of(kvm);
        var filter = vm.SmcccFilter;
        lock (vm.Firmware)
        lock (filter._ranges)
        {
            if (vm.HasRanOnce) return Err.EBUSY;
            if (filter._ranges.Count == 0)
            {
                filter._ranges.Add((Smc32ArchBegin, Smc32ArchEnd, KVM_SMCCC_FILTER_HANDLE));
                filter._ranges.Add((Smc64ArchBegin, Smc64ArchEnd, KVM_SMCCC_FILTER_HANDLE));
            }
            foreach (var (s, e, _) in filter._ranges)
            {
                if (start <= e && s <= end) return Err.EEXIST;
            }
            filter._ranges.Add((start, end, action));
            return 0;
        }
    }
}

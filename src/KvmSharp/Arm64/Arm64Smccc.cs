// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Abi.Arm64;
using KvmSharp.Kernel;
using static KvmSharp.Abi.Arm64.KvmArm64Smccc;

namespace KvmSharp.Arm64;

/// <summary>What KVM does with the SMCCC calls of a filter range (enum kvm_smccc_filter_action).</summary>
public enum SmcccFilterAction : byte
{
    /// <summary>KVM_SMCCC_FILTER_HANDLE: KVM handles the call as without a filter.</summary>
    Handle = KVM_SMCCC_FILTER_HANDLE,

    /// <summary>KVM_SMCCC_FILTER_DENY: the guest gets SMCCC_RET_NOT_SUPPORTED (-1) in x0.</summary>
    Deny = KVM_SMCCC_FILTER_DENY,

    /// <summary>
    /// KVM_SMCCC_FILTER_FWD_TO_USER: KVM_RUN returns a KVM_EXIT_HYPERCALL (<see cref="Arm64Smccc.TryGetSmcccCall"/>);
    /// the VMM answers with <see cref="Arm64Smccc.CompleteSmcccCall"/> before running the vCPU again.
    /// </summary>
    ForwardToUser = KVM_SMCCC_FILTER_FWD_TO_USER,
}

/// <summary>
/// An SMCCC call KVM forwarded to userspace (KVM_EXIT_HYPERCALL on arm64): the function id (w0) and the conduit. The
/// guest's PC is already past the HVC/SMC; the arguments are in x1..x17 (read them with <see cref="Arm64Vcpu.GetX"/>).
/// </summary>
/// <param name="FunctionId">kvm_run.hypercall.nr: the SMCCC function id.</param>
/// <param name="IsSmc">KVM_HYPERCALL_EXIT_SMC: the guest used SMC (false: HVC).</param>
/// <param name="Is16Bit">KVM_HYPERCALL_EXIT_16BIT: a 16-bit T32 instruction trapped (never for an A64 guest).</param>
public readonly record struct SmcccCall(uint FunctionId, bool IsSmc, bool Is16Bit);

/// <summary>
/// The arm64 SMCCC filter (VM attribute KVM_ARM_VM_SMCCC_CTRL / KVM_ARM_VM_SMCCC_FILTER, Linux 6.4+;
/// Documentation/virt/kvm/devices/vm.rst) and the hypercall exits it produces (api.rst KVM_EXIT_HYPERCALL).
/// </summary>
public static class Arm64Smccc
{
    /// <summary>KVM_HAS_DEVICE_ATTR of KVM_ARM_VM_SMCCC_FILTER on the VM: false on kernels without the filter.</summary>
    /// <exception cref="KvmException">An error other than ENXIO or EINVAL (no VM attributes).</exception>
    public static bool HasSmcccFilter(this Vm vm)
    {
        ArgumentNullException.ThrowIfNull(vm);
        var attr = new kvm_device_attr { group = KVM_ARM_VM_SMCCC_CTRL, attr = KVM_ARM_VM_SMCCC_FILTER };
        long rc = vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_HAS_DEVICE_ATTR, KvmCall.Bytes(ref attr));
        if (rc == -(long)Errno.ENXIO || rc == -(long)Errno.EINVAL) return false;
        KvmCall.Check(rc, "KVM_HAS_DEVICE_ATTR", "vm KVM_ARM_VM_SMCCC_FILTER");
        return true;
    }

    /// <summary>
    /// Gives the SMCCC function ids [<paramref name="baseFunction"/>, <paramref name="baseFunction"/> +
    /// <paramref name="count"/>) the action <paramref name="action"/> (KVM_SET_DEVICE_ATTR KVM_ARM_VM_SMCCC_FILTER).
    /// Ranges cannot be changed or removed; the SMCCC architecture ranges (0x80000000-0x8000ffff,
    /// 0xc0000000-0xc000ffff) are reserved to KVM.
    /// </summary>
    /// <exception cref="KvmException">EINVAL (count 0 or the range wraps, unknown action), EEXIST (overlaps a range
    /// already set or a reserved one), EBUSY (a vCPU of the VM has run), ENXIO/EINVAL on kernels without the filter.</exception>
    public static void SetSmcccFilter(this Vm vm, uint baseFunction, uint count, SmcccFilterAction action)
    {
        ArgumentNullException.ThrowIfNull(vm);
        var filter = GC.AllocateArray<kvm_smccc_filter>(1, pinned: true);
        filter[0] = new kvm_smccc_filter { @base = baseFunction, nr_functions = count, action = (byte)action };
        var attr = new kvm_device_attr
        {
            group = KVM_ARM_VM_SMCCC_CTRL,
            attr = KVM_ARM_VM_SMCCC_FILTER,
            addr = (ulong)Marshal.UnsafeAddrOfPinnedArrayElement(filter, 0),
        };
        long rc = vm.Kernel.Ioctl(vm.Handle, KvmIoctls.KVM_SET_DEVICE_ATTR, KvmCall.Bytes(ref attr));
        GC.KeepAlive(filter);
        if (KvmCall.IsError(rc))
            KvmCall.ThrowKvm(rc, "KVM_SET_DEVICE_ATTR", $"vm KVM_ARM_VM_SMCCC_FILTER base=0x{baseFunction:X} count={count} action={action}");
    }

    /// <summary>True when this exit is an SMCCC call forwarded by the filter (KVM_EXIT_HYPERCALL on arm64); decodes it.</summary>
    public static bool TryGetSmcccCall(this VcpuExit exit, out SmcccCall call)
    {
        if (exit.Interrupted || exit.Reason != KvmExitReason.KVM_EXIT_HYPERCALL)
        {
            call = default;
            return false;
        }
        ulong flags = exit.HypercallFlags;
        call = new SmcccCall((uint)exit.HypercallNr, (flags & KVM_HYPERCALL_EXIT_SMC) != 0, (flags & KVM_HYPERCALL_EXIT_16BIT) != 0);
        return true;
    }

    /// <summary>
    /// Answers a forwarded SMCCC call: writes x0..x3 (KVM_SET_ONE_REG), which the guest sees when the vCPU runs
    /// again. SMCCC_RET_NOT_SUPPORTED is <c>ulong.MaxValue</c> (-1).
    /// </summary>
    public static void CompleteSmcccCall(this Vcpu vcpu, ulong x0, ulong x1 = 0, ulong x2 = 0, ulong x3 = 0)
    {
        ArgumentNullException.ThrowIfNull(vcpu);
        vcpu.SetX(0, x0);
        vcpu.SetX(1, x1);
        vcpu.SetX(2, x2);
        vcpu.SetX(3, x3);
    }
}

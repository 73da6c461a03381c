// SPDX-License-Identifier: MIT
namespace KvmSharp.Fuzzing;

/// <summary>
/// x86 vCPU state round trips (<see cref="VcpuStateOps"/>): KVM_SET then KVM_GET of the FPU image, XCR0 (sometimes
/// after a CPUID table), the event state, the MP state and the debug registers, or the GET alone. Like the CPUID
/// and MSR calls (OpGenerator.X86State.cs): drawn only on a kernel without guest_memfd and from a stream of their own
/// (<c>_vcpuState</c>), so a seed's other calls keep their order and arguments.
/// </summary>
public sealed partial class OpGenerator
{
    private readonly Random _vcpuState;

    private FuzzOp? NextVcpuState()
    {
        if (_vcpuState.Next(10) != 0 || _vcpus.Count == 0) return null;
        int kind = _vcpuState.Next(VcpuStateOps.Names.Length);
        int e = kind;
        if (kind == 1 && _vcpuState.Next(3) == 0) e |= VcpuStateOps.CpuidFirst;
        if (_vcpuState.Next(8) == 0) e |= VcpuStateOps.GetOnly;
        // Now and then on a VM handle (not a vCPU ioctl there) or a closed one.
        int target = _vcpuState.Next(20) == 0 ? PickState(_vms.Concat(_closed).ToList()) : PickState(_vcpus);
        return new FuzzOp(OpKind.VcpuStateRoundTrip, Target: target, A: (ulong)_vcpuState.Next(), E: e);
    }

    private int PickState(List<int> ids) => ids.Count == 0 ? -1 : ids[_vcpuState.Next(ids.Count)];
}

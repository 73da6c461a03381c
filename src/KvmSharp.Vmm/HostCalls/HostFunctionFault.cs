// SPDX-License-Identifier: MIT
namespace KvmSharp.Vmm.HostCalls;

/// <summary>A host function threw: which one, what, and where the guest stood (the OUT to the host-call port).</summary>
public sealed record HostFunctionFault(string FunctionName, uint FunctionId, Exception Exception, ulong Rip)
{
    /// <summary>"host function 'name' (id n) threw Type: message (guest rip 0x…)".</summary>
    public override string ToString() =>
        $"host function '{FunctionName}' (id {FunctionId}) threw {Exception.GetType().Name}: {Exception.Message} (guest rip 0x{Rip:X})";
}

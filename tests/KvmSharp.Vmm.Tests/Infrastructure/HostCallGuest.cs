// SPDX-License-Identifier: MIT
using KvmSharp.Vmm.GuestAbi;
using KvmSharp.Vmm.Guests;
using KvmSharp.Vmm.HostCalls;

namespace KvmSharp.Vmm.Tests.Infrastructure;

/// <summary>The host-call probe guest (<see cref="HostCallProbe"/>) in a fresh micro-VM, and reads of the host-call block.</summary>
public static class HostCallGuest
{
    public static MicroVm Create(HostFunctions? functions = null, MicroVmOptions? options = null) =>
        MicroVm.Create(HostCallProbe.Image(), (options ?? GuestRun.Quick) with { HostFunctions = functions });

    /// <summary>The status the host wrote for the last host call.</summary>
    public static HostCallStatus LastStatus(MicroVm vm) => (HostCallStatus)vm.Memory.Read<ulong>(HostCallBlock.Address(HostCallBlock.Status));

    /// <summary>call6's input: seven u64 [id, a0 … a5].</summary>
    public static byte[] Call6Input(ulong id, params ReadOnlySpan<ulong> args)
    {
        var bytes = new byte[7 * sizeof(ulong)];
        BitConverter.TryWriteBytes(bytes, id);
        for (int i = 0; i < args.Length; i++) BitConverter.TryWriteBytes(bytes.AsSpan((i + 1) * sizeof(ulong)), args[i]);
        return bytes;
    }
}

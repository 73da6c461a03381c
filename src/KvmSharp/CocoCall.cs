// SPDX-License-Identifier: MIT
using System.Runtime.InteropServices;
using KvmSharp.Abi;
using KvmSharp.Memory;

namespace KvmSharp;

/// <summary>
/// The plumbing of the launch commands: a sub-command struct in pinned memory (the kernel reads it from the address
/// in kvm_sev_cmd.data / kvm_tdx_cmd.data with copy_from_user and writes results back there), and the
/// KVM_MEMORY_ENCRYPT_OP call itself.
/// </summary>
internal static class CocoCall
{
    /// <summary>A pinned buffer holding <paramref name="value"/> followed by <paramref name="extra"/> zero bytes.</summary>
    public static PinnedArray<byte> Pin<T>(in T value, int extra = 0) where T : unmanaged
    {
        var buffer = new PinnedArray<byte>(Marshal.SizeOf<T>() + extra, 64);
        MemoryMarshal.Write(buffer.Span, in value);
        return buffer;
    }

    /// <summary>The struct at the start of <paramref name="buffer"/> (as the kernel left it).</summary>
    public static T Read<T>(PinnedArray<byte> buffer) where T : unmanaged => MemoryMarshal.Read<T>(buffer.Span);

    /// <summary>A pinned copy of <paramref name="bytes"/> (a blob the kernel copies in).</summary>
    public static PinnedArray<byte> PinBytes(ReadOnlySpan<byte> bytes)
    {
        var buffer = new PinnedArray<byte>(bytes.Length, 64);
        bytes.CopyTo(buffer.Span);
        return buffer;
    }

    /// <summary>KVM_MEMORY_ENCRYPT_OP with a kvm_sev_cmd on the VM fd; the command comes back with the firmware's error.</summary>
    public static long Sev(Vm vm, ref kvm_sev_cmd cmd) =>
        vm.Kernel.Ioctl(vm.Handle, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, KvmCall.Bytes(ref cmd));

    /// <summary>KVM_MEMORY_ENCRYPT_OP with a kvm_tdx_cmd on the VM fd or a vCPU fd.</summary>
    public static long Tdx(Vm vm, Vcpu? vcpu, ref kvm_tdx_cmd cmd) =>
        vm.Kernel.Ioctl(vcpu?.Handle ?? vm.Handle, KvmMemoryEncrypt.KVM_MEMORY_ENCRYPT_OP, KvmCall.Bytes(ref cmd));
}
